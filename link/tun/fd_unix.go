//go:build unix

package tun

import (
	"fmt"
	"io"
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

// readPackets reads a batch of packets into r's buffers (readBatch): it
// waits for the first in Go's poller, as a Read would, then takes what
// the device already holds without waiting. It returns how many it read;
// an error only if it read none (one after the first ends the batch, and
// the next call meets it again).
func (q *queue) readPackets(r *reading) (int, error) {
	if q.rc == nil {
		rc, err := q.f.SyscallConn()
		if err != nil {
			return 0, err
		}
		q.rc, q.readSome = rc, r.readSome
	}
	r.n, r.err = 0, nil
	if err := q.rc.Read(q.readSome); err != nil && r.n == 0 {
		return 0, err
	}
	if r.n == 0 {
		return 0, r.err
	}
	return r.n, nil
}

// readSome is readPackets' function for the raw descriptor: it reads
// until the batch is full, the device has nothing more (it then asks to
// wait only if it has nothing yet), or an error.
func (r *reading) readSome(fd uintptr) bool {
	for r.n < readBatch {
		m, err := syscall.Read(int(fd), r.buf(r.n))
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return r.n > 0
		case err != nil:
			r.err = err
			return true
		case m == 0:
			r.err = io.EOF
			return true
		}
		r.sizes[r.n] = m
		r.n++
	}
	return true
}
