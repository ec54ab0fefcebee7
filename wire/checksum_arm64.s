//go:build !purego

#include "textflag.h"

// ADD8 adds the eight words R4-R7, R9-R12 to the sum R2 in one carry chain
// and the carry out at the end, which cannot carry again.
#define ADD8 \
	ADDS R4, R2, R2; \
	ADCS R5, R2, R2; \
	ADCS R6, R2, R2; \
	ADCS R7, R2, R2; \
	ADCS R9, R2, R2; \
	ADCS R10, R2, R2; \
	ADCS R11, R2, R2; \
	ADCS R12, R2, R2; \
	ADC  ZR, R2, R2

// func sumNEON(b []byte) uint64
//
// Register use: R0 points at the next byte, R1 counts the bytes left, R2
// is the 64-bit sum with end-around carry, R8 keeps the whole length.
TEXT ·sumNEON(SB), NOSPLIT, $0-32
	MOVD b_base+0(FP), R0
	MOVD b_len+8(FP), R1
	MOVD R1, R8
	MOVD ZR, R2
	CMP  $256, R1
	BHS  vector

scalar:
	CMP $64, R1
	BLO rest32

loop64:
	LDP.P 16(R0), (R4, R5)
	LDP.P 16(R0), (R6, R7)
	LDP.P 16(R0), (R9, R10)
	LDP.P 16(R0), (R11, R12)
	ADD8
	SUB   $64, R1, R1
	CMP   $64, R1
	BHS   loop64

rest32:
	CMP   $32, R1
	BLO   rest16
	LDP.P 16(R0), (R4, R5)
	LDP.P 16(R0), (R6, R7)
	ADDS  R4, R2, R2
	ADCS  R5, R2, R2
	ADCS  R6, R2, R2
	ADCS  R7, R2, R2
	ADC   ZR, R2, R2
	SUB   $32, R1, R1

rest16:
	CMP   $16, R1
	BLO   rest8
	LDP.P 16(R0), (R4, R5)
	ADDS  R4, R2, R2
	ADCS  R5, R2, R2
	ADC   ZR, R2, R2
	SUB   $16, R1, R1

rest8:
	CMP    $8, R1
	BLO    rest
	MOVD.P 8(R0), R4
	ADDS   R4, R2, R2
	ADC    ZR, R2, R2
	SUB    $8, R1, R1

rest:
	// 0 to 7 bytes left, starting at a multiple of 8 from the start of b.
	CBZ R1, done
	CMP $8, R8
	BLO short

	// b has at least 8 bytes: load its last 8 and shift out the ones
	// already summed, which puts the first byte left at bit 0, its place
	// in a little-endian word.
	SUB  $8, R0, R6
	MOVD (R6)(R1), R4
	LSL  $3, R1, R7
	MOVD $64, R9
	SUB  R7, R9, R9
	LSR  R9, R4, R4
	ADDS R4, R2, R2
	ADC  ZR, R2, R2
	B    done

short:
	// All of b is under 8 bytes: gather them into one word.
	MOVD    ZR, R4
	TBZ     $2, R1, short2
	MOVWU.P 4(R0), R4

short2:
	TBZ     $1, R1, short1
	MOVHU.P 2(R0), R5
	ORR     R5<<32, R4, R4

short1:
	TBZ   $0, R1, short0
	MOVBU (R0), R5
	ORR   R5<<48, R4, R4

short0:
	ADDS R4, R2, R2
	ADC  ZR, R2, R2

done:
	MOVD R2, ret+24(FP)
	RET

vector:
	// Each 16-byte vector is four 32-bit words; UADDW and UADDW2 add its
	// low and high two, widened, to the two 64-bit lanes of an
	// accumulator: 2^32 is 1 modulo 0xffff, so the words' sum is
	// congruent to the sum of their 16-bit halves. Four accumulators
	// take eight adds a round, two each, so that no add waits on the one
	// before. A chunk is at most 4 GiB: each lane then receives at most
	// 2^27 values below 2^32, so the four accumulators' eight lanes add
	// up to less than 2^62.
	MOVD $0x100000000, R3

chunk:
	CMP  R3, R1
	CSEL LO, R1, R3, R4
	AND  $~63, R4, R4 // bytes in this chunk
	SUB  R4, R1, R1
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16

vec64:
	VLD1.P  64(R0), [V4.S4, V5.S4, V6.S4, V7.S4]
	VUADDW  V4.S2, V0.D2, V0.D2
	VUADDW2 V4.S4, V1.D2, V1.D2
	VUADDW  V5.S2, V2.D2, V2.D2
	VUADDW2 V5.S4, V3.D2, V3.D2
	VUADDW  V6.S2, V0.D2, V0.D2
	VUADDW2 V6.S4, V1.D2, V1.D2
	VUADDW  V7.S2, V2.D2, V2.D2
	VUADDW2 V7.S4, V3.D2, V3.D2
	SUBS    $64, R4, R4
	BNE     vec64

	VADD  V1.D2, V0.D2, V0.D2
	VADD  V3.D2, V2.D2, V2.D2
	VADD  V2.D2, V0.D2, V0.D2
	VADDP V0.D2, V0.D2, V0.D2
	VMOV  V0.D[0], R4
	ADDS  R4, R2, R2
	ADC   ZR, R2, R2
	CMP   $64, R1
	BHS   chunk
	B     scalar
