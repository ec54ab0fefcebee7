package tun

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"
)

// FileOptions configure FromFD and FromFile: they describe a TUN device
// that someone else opened, and what comes before each packet on it.
type FileOptions struct {
	// MTU is the device's MTU, which the opener set: the largest packet
	// the stack sends. Default: on Linux, the device's own MTU when the
	// endpoint can learn it; elsewhere, or when it cannot, DefaultMTU.
	MTU int
	// QueueLen is how many packets written by the stack may wait for the
	// device before more are dropped. Default DefaultQueueLen.
	QueueLen int
	// VnetHdr says that a virtio-net header (struct virtio_net_hdr, 10
	// bytes) precedes every packet: a Linux TUN device opened with
	// IFF_VNET_HDR, its header size left at 10. The endpoint then works as
	// Open's does with offloads: it completes the checksums the kernel
	// left partial, takes large packets whole, and coalesces the stack's
	// segments into large packets that the kernel cuts. For the kernel to
	// send large packets, the opener turns them on with TUNSETOFFLOAD
	// (TUN_F_CSUM|TUN_F_TSO4|TUN_F_TSO6). On Linux, FromFD checks the
	// device's flags against this option.
	VnetHdr bool
	// AFHeader says that a 4-byte address family, in network byte order,
	// precedes every packet: macOS's and iOS's utun devices (the
	// descriptor of an NEPacketTunnelProvider's packet flow), and the BSDs'
	// tun devices in TUNSIFHEAD mode. The endpoint reads the family from
	// the IP header and writes this OS's AF_INET or AF_INET6. Not with
	// VnetHdr.
	AFHeader bool
}

// afHdrLen is the length of the address family header (FileOptions.AFHeader).
const afHdrLen = 4

// putAFHeader writes the family of the IP packet that follows afHdrLen
// bytes into p's first afHdrLen bytes.
func putAFHeader(p []byte) {
	af := uint32(afInet)
	if p[afHdrLen]>>4 == 6 {
		af = afInet6
	}
	binary.BigEndian.PutUint32(p, af)
}

// FromFD returns an endpoint over fd, a TUN device that someone else
// opened and configured: Android's VpnService (the descriptor of
// ParcelFileDescriptor.detachFd), a macOS or iOS utun, a descriptor a
// privileged helper passed over a Unix socket. Each read of fd gives one
// packet and each write takes one, preceded by what opts says. The
// endpoint owns fd from then on: it makes it non-blocking, and Close
// closes it. On error, fd is left as it was, the caller's to close.
//
// Such an endpoint has one queue. It does not configure the device (its
// addresses, MTU, routes are the opener's): KernelReady and HostAddrs
// return an error wrapping errors.ErrUnsupported. FromFD is for Unix
// descriptors; elsewhere it returns an error wrapping
// errors.ErrUnsupported (see FromFile).
func FromFD(fd int, opts FileOptions) (*Endpoint, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	if fd < 0 {
		return nil, fmt.Errorf("tun: FromFD: bad descriptor %d", fd)
	}
	info, err := fdInfo(fd, opts)
	if err != nil {
		return nil, err
	}
	f, err := pollableFile(fd, info.fileName(fd))
	if err != nil {
		return nil, err
	}
	return fromFile(f, opts, info), nil
}

// FromFile is FromFD for a device already in an *os.File. The endpoint
// owns f from then on, and Close closes it. A file whose reads wait in
// Go's poller (one that supports deadlines) is used as it is; a
// descriptor in blocking mode (from os.NewFile of one) is first
// duplicated and made non-blocking, so that Close can stop the reader, and
// f is closed. Where the OS has no such descriptors (Windows), only a file
// that supports deadlines is taken; another gives an error wrapping
// errors.ErrUnsupported. On error, f is left open, the caller's to close.
func FromFile(f *os.File, opts FileOptions) (*Endpoint, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	if f == nil {
		return nil, errors.New("tun: FromFile: nil file")
	}
	if f.SetReadDeadline(time.Time{}) != nil {
		// Blocking mode: a read could not be interrupted by Close.
		fd, err := dupNonblocking(f)
		if err != nil {
			return nil, err
		}
		e, err := FromFD(fd, opts)
		if err != nil {
			closeFD(fd)
			return nil, err
		}
		f.Close()
		return e, nil
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("tun: FromFile: %w", err)
	}
	var info fdDevice
	var ierr error
	if err := rc.Control(func(fd uintptr) { info, ierr = fdInfo(int(fd), opts) }); err != nil {
		return nil, fmt.Errorf("tun: FromFile: %w", err)
	}
	if ierr != nil {
		return nil, ierr
	}
	return fromFile(f, opts, info), nil
}

// check checks the options that do not depend on the device.
func (o *FileOptions) check() error {
	if o.MTU != 0 && (o.MTU < 68 || o.MTU > maxIPPacket) {
		return fmt.Errorf("tun: MTU %d out of range [68, %d]", o.MTU, maxIPPacket)
	}
	if o.VnetHdr && o.AFHeader {
		return errors.New("tun: FileOptions: VnetHdr and AFHeader together: a device has one header or the other")
	}
	if o.AFHeader && !hasAFHeader {
		return fmt.Errorf("tun: FileOptions.AFHeader: %w on %s", errors.ErrUnsupported, runtime.GOOS)
	}
	return nil
}

// fdDevice is what FromFD learned of the device from the OS.
type fdDevice struct {
	name  string // the device's name, "" if unknown
	index int    // its interface index, 0 if unknown
	mtu   int    // its MTU, 0 if unknown
}

// fileName is the name of the *os.File over fd.
func (d fdDevice) fileName(fd int) string {
	if d.name != "" {
		return "tun:" + d.name
	}
	return fmt.Sprintf("tun:fd%d", fd)
}

// fromFile starts an endpoint over f.
func fromFile(f *os.File, opts FileOptions, d fdDevice) *Endpoint {
	mtu := opts.MTU
	if mtu == 0 {
		mtu = d.mtu
	}
	if mtu < 68 || mtu > maxIPPacket {
		mtu = DefaultMTU
	}
	if opts.QueueLen <= 0 {
		opts.QueueLen = DefaultQueueLen
	}
	e := newEndpoint(mtu)
	e.name, e.index = d.name, d.index
	e.vnet, e.tso, e.af = opts.VnetHdr, opts.VnetHdr, opts.AFHeader
	switch {
	case opts.VnetHdr:
		e.offload = "checksum, TSO4, TSO6 (a virtio-net header on a descriptor opened elsewhere)"
	case opts.AFHeader:
		e.offload = "none (an address family header on a descriptor opened elsewhere)"
	default:
		e.offload = "none (a descriptor opened elsewhere, without a virtio-net header)"
	}
	e.addFile(f)
	e.start(opts.QueueLen)
	return e
}
