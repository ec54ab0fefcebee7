//go:build !unix

package tun

import (
	"errors"
	"fmt"
	"os"
	"runtime"
)

// No address family header here (FileOptions.AFHeader): it is a BSD
// device's.
const (
	hasAFHeader = false
	afInet      = 0
	afInet6     = 0
)

// pollableFile fails: there are no Unix descriptors here.
func pollableFile(fd int, name string) (*os.File, error) {
	return nil, fmt.Errorf("tun: FromFD: %w on %s: no Unix descriptors (FromFile takes a file that supports deadlines)", errors.ErrUnsupported, runtime.GOOS)
}

// dupNonblocking fails: a file without deadlines cannot be made to have
// them here.
func dupNonblocking(f *os.File) (int, error) {
	return -1, fmt.Errorf("tun: FromFile %s: %w on %s: a file without deadlines, whose reads Close could not interrupt", f.Name(), errors.ErrUnsupported, runtime.GOOS)
}

// closeFD does nothing: dupNonblocking never gives a descriptor here.
func closeFD(fd int) {}

// readPackets reads one packet into r's first buffer: here a file is read
// through its Read, one packet a call.
func (q *queue) readPackets(r *reading) (int, error) {
	n, err := q.f.Read(r.bufs[0])
	if err != nil {
		return 0, err
	}
	r.sizes[0] = n
	return 1, nil
}
