package synstack

import (
	"testing"
	"unsafe"
)

// The structures an idle connection is made of stay in their size
// classes: a change that grows one past its bound costs every idle
// connection the next class (docs/performance.md, "Idle memory"). The
// bounds are for 64-bit platforms; the engine's structures have a test of
// their own (internal/engine).
func TestIdleStructureSizes(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("sizes are for 64-bit platforms")
	}
	for _, c := range []struct {
		what      string
		size, max uintptr
	}{
		{"TCPConn", unsafe.Sizeof(TCPConn{}), 144},
	} {
		if c.size > c.max {
			t.Errorf("%s is %d bytes, over its bound of %d: every idle connection pays the next size class", c.what, c.size, c.max)
		}
	}
}
