package tcp

import (
	"syscall"
	"testing"
)

// TestErrnoPacking: a pending error keeps its value in two bytes, for the
// errnos of every system (Windows' invented ones start at 1<<29).
func TestErrnoPacking(t *testing.T) {
	for _, e := range []syscall.Errno{0, 1, syscall.ECONNRESET, syscall.ETIMEDOUT, syscall.ECONNREFUSED,
		syscall.EHOSTUNREACH, 10054, 0x7ffe, errnoInvented, errnoInvented + 23, errnoInvented + 0x7ffe} {
		if got := packErrno(e).unpack(); got != e {
			t.Errorf("errno %d comes back as %d", uintptr(e), uintptr(got))
		}
	}
	for _, e := range []syscall.Errno{0x7fff, 0x10000, errnoInvented - 1, errnoInvented + 0x7fff} {
		if got := packErrno(e).unpack(); got != syscall.EIO {
			t.Errorf("errno %d that does not fit comes back as %d, want EIO", uintptr(e), uintptr(got))
		}
	}
}
