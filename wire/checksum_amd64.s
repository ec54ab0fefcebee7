//go:build !purego

#include "textflag.h"

// LANES adds the low 16-bit halves of the eight 32-bit lanes of V to LO and
// the high halves to HI; T is scratch, Y15 holds 0x0000ffff in each lane.
#define LANES(V, T, LO, HI) \
	VPSRLD $16, V, T; \
	VPAND  Y15, V, V; \
	VPADDD V, LO, LO; \
	VPADDD T, HI, HI

// REDUCE adds the four accumulators Y0-Y3 in 32 bits (every lane is below
// 2^30, see the vector loops), widens the eight lanes to 64 bits, adds
// across and adds the total, below 2^34, to AX with end-around carry. It
// uses DX.
#define REDUCE \
	VPADDD       Y1, Y0, Y0; \
	VPADDD       Y3, Y2, Y2; \
	VPADDD       Y2, Y0, Y0; \
	VEXTRACTI128 $1, Y0, X1; \
	VPMOVZXDQ    X0, Y0; \
	VPMOVZXDQ    X1, Y1; \
	VPADDQ       Y1, Y0, Y0; \
	VEXTRACTI128 $1, Y0, X1; \
	VPADDQ       X1, X0, X0; \
	VPSHUFD      $0x4e, X0, X1; \
	VPADDQ       X1, X0, X0; \
	VMOVQ        X0, DX; \
	ADDQ         DX, AX; \
	ADCQ         $0, AX

// CHUNK sets DX to the bytes of the next chunk, CX's multiple of 64 but
// at most 1 MiB, takes them from CX and clears the accumulators Y0-Y3.
#define CHUNK \
	MOVQ    $(1<<20), DX; \
	CMPQ    CX, DX; \
	CMOVQLT CX, DX; \
	ANDQ    $~63, DX; \
	SUBQ    DX, CX; \
	VPXOR   Y0, Y0, Y0; \
	VPXOR   Y1, Y1, Y1; \
	VPXOR   Y2, Y2, Y2; \
	VPXOR   Y3, Y3, Y3

// START clears the sum AX, keeps the length CX in R8, and goes to the
// label scalar under 256 bytes or without AVX2, else to vector.
#define START(scalar, vector) \
	MOVQ CX, R8; \
	XORQ AX, AX; \
	CMPQ CX, $256; \
	JB   scalar; \
	CMPB ·useAVX2(SB), $0; \
	JNE  vector; \
	JMP  scalar

// TAIL adds to AX the last CX (1 to 7) bytes of the 8 in DX, the last 8
// of the input: shifting out the ones already summed puts the first byte
// left at bit 0, its place in a little-endian word since it lies a
// multiple of 8 bytes from the start.
#define TAIL \
	SHLQ $3, CX; \
	NEGQ CX; \
	ADDQ $64, CX; \
	SHRQ CX, DX; \
	ADDQ DX, AX; \
	ADCQ $0, AX

// FINISH folds the sum AX to 16 bits with end-around carry, swaps its
// bytes to network order, adds initial (the 32 bits in BX), and folds
// again into AX, as addSwapped does. A non-zero value stays non-zero
// through each end-around fold. The second fold from 64 to 32 bits cannot
// carry (the sum is below 2^32+2^16), so it has no ADCL. It uses DX.
#define FINISH \
	MOVQ    AX, DX; \
	SHRQ    $32, DX; \
	ADDL    AX, DX; \
	ADCL    $0, DX; \
	MOVL    DX, AX; \
	SHRL    $16, AX; \
	ADDW    DX, AX; \
	ADCW    $0, AX; \
	ROLW    $8, AX; \
	MOVWQZX AX, AX; \
	ADDQ    BX, AX; \
	MOVQ    AX, DX; \
	SHRQ    $32, DX; \
	ADDL    AX, DX; \
	MOVL    DX, AX; \
	SHRL    $16, AX; \
	ADDW    DX, AX; \
	ADCW    $0, AX; \
	MOVWLZX AX, AX

// SUM64, SUM32 and SUM16 add the 8, 4 or 2 words at SI to AX in one
// carry chain and the carry out at the end, which cannot carry again.
#define SUM64 \
	ADDQ 0(SI), AX; \
	ADCQ 8(SI), AX; \
	ADCQ 16(SI), AX; \
	ADCQ 24(SI), AX; \
	ADCQ 32(SI), AX; \
	ADCQ 40(SI), AX; \
	ADCQ 48(SI), AX; \
	ADCQ 56(SI), AX; \
	ADCQ $0, AX

#define SUM32 \
	ADDQ 0(SI), AX; \
	ADCQ 8(SI), AX; \
	ADCQ 16(SI), AX; \
	ADCQ 24(SI), AX; \
	ADCQ $0, AX

#define SUM16 \
	ADDQ 0(SI), AX; \
	ADCQ 8(SI), AX; \
	ADCQ $0, AX

// MASK sets every 32-bit lane of Y15 to 0x0000ffff.
#define MASK \
	VPCMPEQD Y15, Y15, Y15; \
	VPSRLD   $16, Y15, Y15

// func checksumAsm(b []byte, initial uint32) uint32
//
// Register use: SI points at the next byte, CX counts the bytes left, AX
// is the 64-bit sum with end-around carry (every carry chain ends with
// ADCQ $0, which cannot carry again), R8 keeps the whole length.
TEXT ·checksumAsm(SB), NOSPLIT, $0-36
	MOVQ b_base+0(FP), SI
	MOVQ b_len+8(FP), CX
	START(scalar, vector)

scalar:
	CMPQ CX, $64
	JB   rest32

loop64:
	SUM64
	ADDQ $64, SI
	SUBQ $64, CX
	CMPQ CX, $64
	JAE  loop64

rest32:
	CMPQ CX, $32
	JB   rest16
	SUM32
	ADDQ $32, SI
	SUBQ $32, CX

rest16:
	CMPQ CX, $16
	JB   rest8
	SUM16
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

	// b has at least 8 bytes: take its last 8.
	MOVQ -8(SI)(CX*1), DX
	TAIL
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
	MOVL   initial+24(FP), BX
	FINISH
	MOVL   AX, ret+32(FP)
	RET

vector:
	// Each 32-byte vector is split into the low and the high 16-bit
	// halves of its eight 32-bit lanes (AND with 0x0000ffff, shift right
	// by 16), and the halves are added to 32-bit lane accumulators: no
	// carries to propagate. Four vectors a round go to two pairs of
	// accumulators, so that no add waits on the one before. A chunk is at
	// most 1 MiB, 8192 rounds: each lane of each accumulator receives at
	// most 16384 values below 2^16, so stays below 2^30, and the four add
	// up to less than 2^32.
	MASK

chunk:
	CHUNK
	CMPQ DX, $128
	JB   vec64

vec128:
	VMOVDQU (SI), Y4
	VMOVDQU 32(SI), Y5
	VMOVDQU 64(SI), Y6
	VMOVDQU 96(SI), Y7
	LANES(Y4, Y8, Y0, Y1)
	LANES(Y5, Y9, Y2, Y3)
	LANES(Y6, Y10, Y0, Y1)
	LANES(Y7, Y11, Y2, Y3)
	ADDQ    $128, SI
	SUBQ    $128, DX
	CMPQ    DX, $128
	JAE     vec128

vec64:
	TESTQ   DX, DX
	JZ      reduce
	VMOVDQU (SI), Y4
	VMOVDQU 32(SI), Y5
	LANES(Y4, Y8, Y0, Y1)
	LANES(Y5, Y9, Y2, Y3)
	ADDQ    $64, SI

reduce:
	REDUCE
	CMPQ CX, $64
	JAE  chunk
	VZEROUPPER
	JMP  rest32

// func copyChecksumAsm(dst, src []byte, initial uint32) uint32
//
// Copies src to dst and returns its sum as checksumAsm does: the same carry
// chain and vector loop, storing each word or vector it has loaded. DI
// points into dst, the other registers are as in checksumAsm. len(dst) must
// equal len(src) and the two must not overlap.
TEXT ·copyChecksumAsm(SB), NOSPLIT, $0-60
	MOVQ dst_base+0(FP), DI
	MOVQ src_base+24(FP), SI
	MOVQ src_len+32(FP), CX
	START(cscalar, cvector)

cscalar:
	// Copy with 16-byte SSE moves (every amd64 CPU has them) and sum
	// the same bytes from src, still in L1, with ADCQ from memory: half
	// the stores of copying words one by one.
	CMPQ CX, $64
	JB   crest32

cloop64:
	MOVOU 0(SI), X0
	MOVOU 16(SI), X1
	MOVOU 32(SI), X2
	MOVOU 48(SI), X3
	MOVOU X0, 0(DI)
	MOVOU X1, 16(DI)
	MOVOU X2, 32(DI)
	MOVOU X3, 48(DI)
	SUM64
	ADDQ  $64, SI
	ADDQ  $64, DI
	SUBQ  $64, CX
	CMPQ  CX, $64
	JAE   cloop64

crest32:
	CMPQ  CX, $32
	JB    crest16
	MOVOU 0(SI), X0
	MOVOU 16(SI), X1
	MOVOU X0, 0(DI)
	MOVOU X1, 16(DI)
	SUM32
	ADDQ  $32, SI
	ADDQ  $32, DI
	SUBQ  $32, CX

crest16:
	CMPQ  CX, $16
	JB    crest8
	MOVOU 0(SI), X0
	MOVOU X0, 0(DI)
	SUM16
	ADDQ  $16, SI
	ADDQ  $16, DI
	SUBQ  $16, CX

crest8:
	CMPQ CX, $8
	JB   crest
	MOVQ 0(SI), R9
	MOVQ R9, 0(DI)
	ADDQ R9, AX
	ADCQ $0, AX
	ADDQ $8, SI
	ADDQ $8, DI
	SUBQ $8, CX

crest:
	TESTQ CX, CX
	JZ    cdone
	CMPQ  R8, $8
	JB    cshort

	// Copy the last 8 bytes of src, rewriting in dst some bytes just
	// copied, and sum the new ones as checksumAsm does.
	MOVQ -8(SI)(CX*1), DX
	MOVQ DX, -8(DI)(CX*1)
	TAIL
	JMP  cdone

cshort:
	XORQ  DX, DX
	TESTQ $4, CX
	JZ    cshort2
	MOVL  (SI), DX
	MOVL  DX, (DI)
	ADDQ  $4, SI
	ADDQ  $4, DI

cshort2:
	TESTQ   $2, CX
	JZ      cshort1
	MOVWQZX (SI), BX
	MOVW    BX, (DI)
	SHLQ    $32, BX
	ORQ     BX, DX
	ADDQ    $2, SI
	ADDQ    $2, DI

cshort1:
	TESTQ   $1, CX
	JZ      cshort0
	MOVBQZX (SI), BX
	MOVB    BX, (DI)
	SHLQ    $48, BX
	ORQ     BX, DX

cshort0:
	ADDQ DX, AX
	ADCQ $0, AX

cdone:
	MOVL   initial+48(FP), BX
	FINISH
	MOVL   AX, ret+56(FP)
	RET

cvector:
	MASK

cchunk:
	CHUNK
	CMPQ DX, $128
	JB   cvec64

cvec128:
	VMOVDQU (SI), Y4
	VMOVDQU 32(SI), Y5
	VMOVDQU 64(SI), Y6
	VMOVDQU 96(SI), Y7
	VMOVDQU Y4, (DI)
	VMOVDQU Y5, 32(DI)
	VMOVDQU Y6, 64(DI)
	VMOVDQU Y7, 96(DI)
	LANES(Y4, Y8, Y0, Y1)
	LANES(Y5, Y9, Y2, Y3)
	LANES(Y6, Y10, Y0, Y1)
	LANES(Y7, Y11, Y2, Y3)
	ADDQ    $128, SI
	ADDQ    $128, DI
	SUBQ    $128, DX
	CMPQ    DX, $128
	JAE     cvec128

cvec64:
	TESTQ   DX, DX
	JZ      creduce
	VMOVDQU (SI), Y4
	VMOVDQU 32(SI), Y5
	VMOVDQU Y4, (DI)
	VMOVDQU Y5, 32(DI)
	LANES(Y4, Y8, Y0, Y1)
	LANES(Y5, Y9, Y2, Y3)
	ADDQ    $64, SI
	ADDQ    $64, DI

creduce:
	REDUCE
	CMPQ CX, $64
	JAE  cchunk
	VZEROUPPER
	JMP  cscalar
