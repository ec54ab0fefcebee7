package synstack

import (
	"testing"
	"unsafe"
)

// The structures an idle connection is made of stay in their size
// classes: a change that grows one past its bound costs every idle
// connection the next class (docs/performance.md, "Idle memory"). The
// bounds are for 64-bit platforms. The endpoint (with its tcp.Conn) must
// leave room for the 8-byte header Go puts before an object over 512
// bytes that holds pointers: 888 bytes fit the 896-byte class.
func TestIdleStructureSizes(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("sizes are for 64-bit platforms")
	}
	for _, c := range []struct {
		what      string
		size, max uintptr
	}{
		{"endpoint (with its tcp.Conn)", unsafe.Sizeof(endpoint{}), 888},
		{"socket", unsafe.Sizeof(socket{}), 96},
		{"TCPConn", unsafe.Sizeof(TCPConn{}), 144},
	} {
		if c.size > c.max {
			t.Errorf("%s is %d bytes, over its bound of %d: every idle connection pays the next size class", c.what, c.size, c.max)
		}
	}
}
