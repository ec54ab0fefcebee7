//go:build unix

package tun

import (
	"fmt"
	"os"
	"syscall"
)

// The address family header (FileOptions.AFHeader) carries this OS's
// values: AF_INET6 is 30 on macOS and iOS, 28 on FreeBSD.
const (
	hasAFHeader = true
	afInet      = syscall.AF_INET
	afInet6     = syscall.AF_INET6
)

// pollableFile makes fd non-blocking and wraps it in an *os.File, so that
// reads wait in Go's poller and closing the file interrupts them.
func pollableFile(fd int, name string) (*os.File, error) {
	if err := syscall.SetNonblock(fd, true); err != nil {
		return nil, fmt.Errorf("tun: descriptor %d: %w", fd, err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// dupNonblocking returns a duplicate of f's descriptor, close-on-exec, for
// pollableFile.
func dupNonblocking(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, fmt.Errorf("tun: %s: %w", f.Name(), err)
	}
	nfd := -1
	var derr error
	err = rc.Control(func(fd uintptr) {
		syscall.ForkLock.RLock()
		defer syscall.ForkLock.RUnlock()
		if nfd, derr = syscall.Dup(int(fd)); derr == nil {
			syscall.CloseOnExec(nfd)
		}
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return -1, fmt.Errorf("tun: %s: dup: %w", f.Name(), err)
	}
	return nfd, nil
}

// closeFD closes a descriptor of dupNonblocking.
func closeFD(fd int) { syscall.Close(fd) }
