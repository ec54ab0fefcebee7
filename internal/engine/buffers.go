package engine

import (
	"math/bits"
	"sync"
	"unsafe"
)

// bufferPool lends the connections' send and receive queues their memory
// (tcp.Buffers): buffers in power-of-two sizes from 2 KiB to 8 MiB, one
// sync.Pool per size. A queue borrows a buffer while it holds data and
// gives it back when it empties, so a busy connection takes the same memory
// round without allocating and an idle one holds none; the pools let the
// garbage collector have what nobody borrows for two cycles.
//
// A pool holds the address of a buffer's first byte (an unsafe.Pointer fits
// in an interface without an allocation; a []byte would not), and the size
// follows from the pool it is in.
type bufferPool struct {
	sizes [bufClasses]sync.Pool
}

const (
	bufMinShift = 11 // 2 KiB
	bufClasses  = 13 // up to 8 MiB
)

// buffers is shared by every stack: memory a connection of one stack gives
// back serves the next connection of any.
var buffers bufferPool

// class returns the size class of a buffer of n bytes and its size.
func bufClass(n int) (int, int) {
	if n <= 1<<bufMinShift {
		return 0, 1 << bufMinShift
	}
	shift := bits.Len(uint(n - 1))
	return shift - bufMinShift, 1 << shift
}

// Get returns a buffer of at least n bytes.
func (p *bufferPool) Get(n int) []byte {
	c, size := bufClass(n)
	if c >= bufClasses {
		return make([]byte, n)
	}
	if v := p.sizes[c].Get(); v != nil {
		return unsafe.Slice((*byte)(v.(unsafe.Pointer)), size)
	}
	return make([]byte, size)
}

// Put takes back a buffer that Get returned.
func (p *bufferPool) Put(b []byte) {
	c, size := bufClass(cap(b))
	if c >= bufClasses || cap(b) != size {
		return // not one of ours: the collector takes it
	}
	p.sizes[c].Put(unsafe.Pointer(unsafe.SliceData(b)))
}
