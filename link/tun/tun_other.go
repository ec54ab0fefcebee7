//go:build !linux

package tun

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"
)

// Open fails with an error wrapping errors.ErrUnsupported: it creates
// Linux TUN devices. Elsewhere, the system opens the device (a utun on
// macOS and iOS, a tun on FreeBSD) and FromFD or FromFile wraps it.
func Open(opts Options) (*Endpoint, error) {
	return nil, fmt.Errorf("tun: Open: %w on %s: it creates Linux TUN devices; FromFD or FromFile takes a device opened by the system", errors.ErrUnsupported, runtime.GOOS)
}

// KernelReady fails with an error wrapping errors.ErrUnsupported: only an
// endpoint of Open (Linux) knows the kernel's routes.
func (e *Endpoint) KernelReady(addr netip.Addr) (bool, error) {
	if e.closed.Load() {
		return false, ErrClosed
	}
	return false, fmt.Errorf("tun: KernelReady: %w on %s", errors.ErrUnsupported, runtime.GOOS)
}

// HostAddrs fails with an error wrapping errors.ErrUnsupported: only an
// endpoint of Open (Linux) knows the kernel's addresses on the device.
func (e *Endpoint) HostAddrs() ([]netip.Prefix, error) {
	return nil, fmt.Errorf("tun: HostAddrs: %w on %s", errors.ErrUnsupported, runtime.GOOS)
}

// fdInfo learns nothing of the device here: the options say what it is.
func fdInfo(fd int, opts FileOptions) (fdDevice, error) { return fdDevice{}, nil }

// sysState: no endpoint creates or changes a device here.
type sysState struct {
	created bool // always false
}

// undo has nothing to undo.
func (e *Endpoint) undo() error { return nil }

// deviceGone reports whether a read's error means that nothing more will
// come: here, every error does. The runtime's poller absorbs EAGAIN and
// EINTR; what errors a device of another system gives once it is gone is
// not known here, and a reader that retried a lasting one would spin.
func deviceGone(err error) bool { return true }
