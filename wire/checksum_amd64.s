//go:build !purego

#include "textflag.h"

// func sumLE(b []byte) uint64
//
// Register use: SI points at the next byte, CX counts the bytes left, AX
// is the 64-bit sum with end-around carry (every carry chain ends with
// ADCQ $0, which cannot carry again), R8 keeps the whole length.
TEXT ·sumLE(SB), NOSPLIT, $0-32
	MOVQ b_base+0(FP), SI
	MOVQ b_len+8(FP), CX
	MOVQ CX, R8
	XORQ AX, AX
	CMPQ CX, $256
	JB   scalar
	CMPB ·useAVX2(SB), $0
	JNE  vector

scalar:
	CMPQ CX, $64
	JB   rest32

loop64:
	ADDQ 0(SI), AX
	ADCQ 8(SI), AX
	ADCQ 16(SI), AX
	ADCQ 24(SI), AX
	ADCQ 32(SI), AX
	ADCQ 40(SI), AX
	ADCQ 48(SI), AX
	ADCQ 56(SI), AX
	ADCQ $0, AX
	ADDQ $64, SI
	SUBQ $64, CX
	CMPQ CX, $64
	JAE  loop64

rest32:
	CMPQ CX, $32
	JB   rest16
	ADDQ 0(SI), AX
	ADCQ 8(SI), AX
	ADCQ 16(SI), AX
	ADCQ 24(SI), AX
	ADCQ $0, AX
	ADDQ $32, SI
	SUBQ $32, CX

rest16:
	CMPQ CX, $16
	JB   rest8
	ADDQ 0(SI), AX
	ADCQ 8(SI), AX
	ADCQ $0, AX
	ADDQ $16, SI
	SUBQ $16, CX

rest8:
	CMPQ CX, $8
	JB   rest
	ADDQ 0(SI), AX
	ADCQ $0, AX
	ADDQ $8, SI
	SUBQ $8, CX

rest:
	// 0 to 7 bytes left, starting at a multiple of 8 from the start of b.
	TESTQ CX, CX
	JZ    done
	CMPQ  R8, $8
	JB    short

	// b has at least 8 bytes: load its last 8 and shift out the ones
	// already summed, which puts the first byte left at bit 0.
	MOVQ -8(SI)(CX*1), DX
	SHLQ $3, CX
	NEGQ CX
	ADDQ $64, CX
	SHRQ CX, DX
	ADDQ DX, AX
	ADCQ $0, AX
	JMP  done

short:
	// All of b is under 8 bytes: gather them into one word.
	XORQ  DX, DX
	TESTQ $4, CX
	JZ    short2
	MOVL  (SI), DX
	ADDQ  $4, SI

short2:
	TESTQ   $2, CX
	JZ      short1
	MOVWQZX (SI), BX
	SHLQ    $32, BX
	ORQ     BX, DX
	ADDQ    $2, SI

short1:
	TESTQ   $1, CX
	JZ      short0
	MOVBQZX (SI), BX
	SHLQ    $48, BX
	ORQ     BX, DX

short0:
	ADDQ DX, AX
	ADCQ $0, AX

done:
	MOVQ AX, ret+24(FP)
	RET

vector:
	// Each 32-byte vector is split into the low and the high 16-bit
	// halves of its eight 32-bit lanes (AND with 0x0000ffff, shift right
	// by 16), and the halves are added to 32-bit lane accumulators: no
	// carries to propagate. Four vectors a round go to two pairs of
	// accumulators, so that no add waits on the one before. A chunk is at
	// most 1 MiB: each lane of each accumulator then receives at most
	// 8192 values below 2^16, so the four add up to less than 2^31.
	VPCMPEQD Y15, Y15, Y15
	VPSRLD   $16, Y15, Y15 // 0x0000ffff in every lane

chunk:
	MOVQ  $(1<<20), DX
	CMPQ  CX, DX
	CMOVQLT CX, DX
	ANDQ  $~63, DX          // bytes in this chunk
	SUBQ  DX, CX
	VPXOR Y0, Y0, Y0        // low halves, vectors 0 and 2
	VPXOR Y1, Y1, Y1        // high halves, vectors 0 and 2
	VPXOR Y2, Y2, Y2        // low halves, vectors 1 and 3
	VPXOR Y3, Y3, Y3        // high halves, vectors 1 and 3
	CMPQ  DX, $128
	JB    vec64

vec128:
	VMOVDQU (SI), Y4
	VMOVDQU 32(SI), Y5
	VMOVDQU 64(SI), Y6
	VMOVDQU 96(SI), Y7
	VPSRLD  $16, Y4, Y8
	VPAND   Y15, Y4, Y4
	VPSRLD  $16, Y5, Y9
	VPAND   Y15, Y5, Y5
	VPSRLD  $16, Y6, Y10
	VPAND   Y15, Y6, Y6
	VPSRLD  $16, Y7, Y11
	VPAND   Y15, Y7, Y7
	VPADDD  Y4, Y0, Y0
	VPADDD  Y8, Y1, Y1
	VPADDD  Y5, Y2, Y2
	VPADDD  Y9, Y3, Y3
	VPADDD  Y6, Y0, Y0
	VPADDD  Y10, Y1, Y1
	VPADDD  Y7, Y2, Y2
	VPADDD  Y11, Y3, Y3
	ADDQ    $128, SI
	SUBQ    $128, DX
	CMPQ    DX, $128
	JAE     vec128

vec64:
	TESTQ   DX, DX
	JZ      reduce
	VMOVDQU (SI), Y4
	VMOVDQU 32(SI), Y5
	VPSRLD  $16, Y4, Y8
	VPAND   Y15, Y4, Y4
	VPSRLD  $16, Y5, Y9
	VPAND   Y15, Y5, Y5
	VPADDD  Y4, Y0, Y0
	VPADDD  Y8, Y1, Y1
	VPADDD  Y5, Y2, Y2
	VPADDD  Y9, Y3, Y3
	ADDQ    $64, SI

reduce:
	// Add the four accumulators in 32 bits, widen the eight lanes to 64
	// bits and add across; the result is below 2^34.
	VPADDD       Y1, Y0, Y0
	VPADDD       Y3, Y2, Y2
	VPADDD       Y2, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPMOVZXDQ    X0, Y0
	VPMOVZXDQ    X1, Y1
	VPADDQ       Y1, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDQ       X1, X0, X0
	VPSHUFD      $0x4e, X0, X1
	VPADDQ       X1, X0, X0
	VMOVQ        X0, DX
	ADDQ         DX, AX
	ADCQ         $0, AX
	CMPQ         CX, $64
	JAE          chunk
	VZEROUPPER
	JMP          rest32
