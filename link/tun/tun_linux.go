package tun

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TUNSETOFFLOAD's flags (include/uapi/linux/if_tun.h): what the kernel may
// hand the device undone.
const (
	tunFCsum = 0x01 // TUN_F_CSUM: partial checksums
	tunFTSO4 = 0x02 // TUN_F_TSO4: large TCP/IPv4 packets
	tunFTSO6 = 0x04 // TUN_F_TSO6: large TCP/IPv6 packets
)

// offloadTries are the offloads Open asks for, best first.
var offloadTries = []struct {
	flags int
	name  string
}{
	{tunFCsum | tunFTSO4 | tunFTSO6, "checksum, TSO4, TSO6 (large packets both ways)"},
	{tunFCsum, "checksum only"},
}

// Open creates the TUN device opts.Name (or attaches to it if it exists),
// negotiates offloads unless opts.NoOffload, sets its MTU, brings it up and
// adds opts.HostAddrs to it, then starts reading it. Packets read before
// Attach are dropped.
func Open(opts Options) (*Endpoint, error) {
	if opts.MTU == 0 {
		opts.MTU = DefaultMTU
	}
	if opts.MTU < 68 || opts.MTU > maxIPPacket {
		return nil, fmt.Errorf("tun: MTU %d out of range", opts.MTU)
	}
	if opts.QueueLen <= 0 {
		opts.QueueLen = DefaultQueueLen
	}
	if opts.Queues < 0 || opts.Queues > MaxQueues {
		return nil, fmt.Errorf("tun: %d queues, out of range [0, %d]", opts.Queues, MaxQueues)
	}
	nl, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("tun: netlink: %w", err)
	}
	e := newEndpoint(opts.MTU)
	e.sys.nl = nl
	ok := false
	defer func() {
		if !ok {
			e.teardown()
		}
	}()
	if opts.Name != "" {
		if _, err := nl.LinkByName(opts.Name); err != nil {
			e.sys.created = true
		}
	} else {
		e.sys.created = true
	}
	if err := e.openDevice(opts); err != nil {
		return nil, err
	}
	l, err := nl.LinkByName(e.name)
	if err != nil {
		return nil, fmt.Errorf("tun: %s: %w", e.name, err)
	}
	attrs := l.Attrs()
	e.index = attrs.Index
	if attrs.MTU != e.mtu {
		if !e.sys.created {
			e.sys.oldMTU = attrs.MTU
		}
		if err := nl.LinkSetMTU(l, e.mtu); err != nil {
			return nil, fmt.Errorf("tun: %s: set MTU %d: %w", e.name, e.mtu, err)
		}
	}
	if attrs.Flags&net.FlagUp == 0 {
		e.sys.wasDown = !e.sys.created
		if err := nl.LinkSetUp(l); err != nil {
			return nil, fmt.Errorf("tun: %s: up: %w", e.name, err)
		}
	}
	for _, p := range opts.HostAddrs {
		a := &netlink.Addr{IPNet: prefixIPNet(p)}
		if err := nl.AddrAdd(l, a); err != nil {
			if errors.Is(err, unix.EEXIST) {
				continue // someone else's: not ours to remove
			}
			return nil, fmt.Errorf("tun: %s: add address %s: %w", e.name, p, err)
		}
		e.sys.addedAddrs = append(e.sys.addedAddrs, *a)
	}
	e.start(opts.QueueLen)
	ok = true
	return e, nil
}

// openDevice opens /dev/net/tun on the device, with offloads if asked and
// available: IFF_VNET_HDR and TUNSETOFFLOAD with checksums and TSO, else
// checksums alone, else a plain device. With several queues, the first
// open negotiates and the others (IFF_MULTI_QUEUE, same name) ask for what
// the first got.
func (e *Endpoint) openDevice(opts Options) error {
	var feats uint32
	multi := opts.Queues > 1
	if !opts.NoOffload || multi {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("tun: %w", err)
		}
		feats, _ = unix.IoctlGetUint32(fd, unix.TUNGETFEATURES)
		unix.Close(fd)
	}
	var mq uint16
	if multi {
		if feats&unix.IFF_MULTI_QUEUE == 0 {
			return fmt.Errorf("tun: %d queues: the kernel has no multi-queue TUN devices (IFF_MULTI_QUEUE)", opts.Queues)
		}
		mq = unix.IFF_MULTI_QUEUE
	}
	flags, offFlags, err := e.openFirst(opts, feats, mq)
	if err != nil {
		return err
	}
	for i := 1; i < opts.Queues; i++ {
		fd, _, err := openQueue(e.name, flags, offFlags)
		if err != nil {
			return fmt.Errorf("%w (queue %d of %d)", err, i+1, opts.Queues)
		}
		if err := e.addQueue(fd); err != nil {
			return err
		}
	}
	return nil
}

// openFirst opens the device's first queue, negotiating offloads, and
// returns the TUNSETIFF and TUNSETOFFLOAD flags it got (offFlags -1: no
// TUNSETOFFLOAD).
func (e *Endpoint) openFirst(opts Options, feats uint32, mq uint16) (flags uint16, offFlags int, err error) {
	reason := "turned off"
	if !opts.NoOffload && feats&unix.IFF_VNET_HDR == 0 {
		reason = "the kernel has no IFF_VNET_HDR"
	}
	if !opts.NoOffload && feats&unix.IFF_VNET_HDR != 0 {
		flags = unix.IFF_TUN | unix.IFF_NO_PI | unix.IFF_VNET_HDR | mq
		for _, off := range offloadTries {
			fd, name, err := openQueue(opts.Name, flags, off.flags)
			if err == nil {
				e.vnet, e.tso, e.offload = true, off.flags&tunFTSO4 != 0, off.name
				e.name = name
				return flags, off.flags, e.addQueue(fd)
			}
			var oe offloadError
			if !errors.As(err, &oe) {
				if mq != 0 {
					return 0, 0, err // refused IFF_MULTI_QUEUE: fail, not fall back
				}
				reason = err.Error()
				break
			}
			reason = err.Error()
		}
	}
	flags = unix.IFF_TUN | unix.IFF_NO_PI | mq
	fd, name, err := openQueue(opts.Name, flags, -1)
	if err != nil {
		return 0, 0, err
	}
	e.offload = "none (" + reason + ")"
	e.name = name
	return flags, -1, e.addQueue(fd)
}

// offloadError is an error of openQueue's offload negotiation, after the
// device was opened.
type offloadError struct{ err error }

func (o offloadError) Error() string { return o.err.Error() }
func (o offloadError) Unwrap() error { return o.err }

// openQueue opens the TUN device name with the given flags and, if they
// have IFF_VNET_HDR, sets the virtio header's size and the offloads
// offFlags.
func openQueue(name string, flags uint16, offFlags int) (int, string, error) {
	fd, name, err := createTun(name, flags)
	if err != nil {
		return -1, "", err
	}
	if flags&unix.IFF_VNET_HDR == 0 {
		return fd, name, nil
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, vnetHdrLen); err != nil {
		unix.Close(fd)
		return -1, "", offloadError{fmt.Errorf("TUNSETVNETHDRSZ: %w", err)}
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, offFlags); err != nil {
		unix.Close(fd)
		return -1, "", offloadError{fmt.Errorf("TUNSETOFFLOAD: %w", err)}
	}
	return fd, name, nil
}

// createTun opens a TUN device with the given flags.
func createTun(name string, flags uint16) (int, string, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, "", fmt.Errorf("tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return -1, "", fmt.Errorf("tun: device name %q: %w", name, err)
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		if flags&unix.IFF_MULTI_QUEUE != 0 && errors.Is(err, unix.EINVAL) {
			return -1, "", fmt.Errorf("tun: TUNSETIFF %q with IFF_MULTI_QUEUE refused (an existing device that is not multi-queue, or other flags than its own?): %w", name, err)
		}
		return -1, "", fmt.Errorf("tun: TUNSETIFF %q: %w", name, err)
	}
	return fd, ifr.Name(), nil
}

// addQueue makes fd non-blocking and wraps it in an *os.File, so that reads
// wait in the runtime's poller and Close interrupts them, as a new queue.
func (e *Endpoint) addQueue(fd int) error {
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return fmt.Errorf("tun: %w", err)
	}
	e.addFile(os.NewFile(uintptr(fd), fmt.Sprintf("/dev/net/tun:%s:%d", e.name, len(e.queues))))
	return nil
}

func prefixIPNet(p netip.Prefix) *net.IPNet {
	bits := 32
	if p.Addr().Is6() && !p.Addr().Is4In6() {
		bits = 128
	}
	return &net.IPNet{IP: net.IP(p.Addr().Unmap().AsSlice()), Mask: net.CIDRMask(p.Bits(), bits)}
}

// KernelReady reports whether the kernel's side of the device is ready to
// reach addr (one of the stack's addresses): the device is up and the
// kernel's route to addr goes through it, as it does once the device has
// an address whose prefix holds addr (`ip addr add 10.99.0.1/24 dev NAME`)
// or a route to it.
func (e *Endpoint) KernelReady(addr netip.Addr) (bool, error) {
	if e.closed.Load() {
		return false, ErrClosed
	}
	nl, l, err := e.link("KernelReady")
	if err != nil {
		return false, err
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		return false, nil
	}
	routes, err := nl.RouteGet(net.IP(addr.Unmap().AsSlice()))
	if err != nil {
		return false, nil // no route yet (ENETUNREACH)
	}
	for _, r := range routes {
		if r.LinkIndex == e.index && r.Type != unix.RTN_LOCAL {
			return true, nil
		}
	}
	return false, nil
}

// HostAddrs returns the kernel's addresses on the device.
func (e *Endpoint) HostAddrs() ([]netip.Prefix, error) {
	nl, l, err := e.link("HostAddrs")
	if err != nil {
		return nil, err
	}
	addrs, err := nl.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("tun: %s: %w", e.name, err)
	}
	var out []netip.Prefix
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ones, _ := a.Mask.Size()
		out = append(out, netip.PrefixFrom(ip.Unmap(), ones))
	}
	return out, nil
}

// netlink returns the endpoint's netlink handle, which only Open's
// endpoints have.
func (e *Endpoint) netlink(op string) (*netlink.Handle, error) {
	if e.sys.nl == nil {
		return nil, fmt.Errorf("tun: %s: %w for an endpoint of FromFD or FromFile (only for one of Open)", op, errors.ErrUnsupported)
	}
	return e.sys.nl, nil
}

// link returns the endpoint's netlink handle and the device's link, for
// the method op.
func (e *Endpoint) link(op string) (*netlink.Handle, netlink.Link, error) {
	nl, err := e.netlink(op)
	if err != nil {
		return nil, nil, err
	}
	l, err := nl.LinkByIndex(e.index)
	if err != nil {
		return nil, nil, fmt.Errorf("tun: %s: %w", e.name, err)
	}
	return nl, l, nil
}

// deviceGone reports whether a read's error means that nothing more will
// come: the device was removed, or the descriptor is in a bad state.
func deviceGone(err error) bool {
	return errors.Is(err, unix.EBADFD) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.EINVAL)
}

// sysState is what Open did to the device, for Close to undo.
type sysState struct {
	created    bool            // Open created the device: closing its last fd removes it
	nl         *netlink.Handle // nil for an endpoint of FromFD
	oldMTU     int             // MTU of an attached device before Open, 0 if unchanged
	wasDown    bool            // an attached device was down before Open
	addedAddrs []netlink.Addr  // host addresses Open added
}

// undo undoes what Open did to a device it did not create: the addresses
// it added, its MTU, its up state.
func (e *Endpoint) undo() error {
	nl := e.sys.nl
	if nl == nil {
		return nil
	}
	defer nl.Close()
	if e.sys.created || e.index == 0 {
		return nil
	}
	l, err := nl.LinkByIndex(e.index)
	if err != nil {
		return nil // gone
	}
	var errs []error
	for i := range e.sys.addedAddrs {
		if err := nl.AddrDel(l, &e.sys.addedAddrs[i]); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			errs = append(errs, fmt.Errorf("tun: %s: remove address %s: %w", e.name, e.sys.addedAddrs[i].IPNet, err))
		}
	}
	if e.sys.oldMTU != 0 {
		errs = append(errs, nl.LinkSetMTU(l, e.sys.oldMTU))
	}
	if e.sys.wasDown {
		errs = append(errs, nl.LinkSetDown(l))
	}
	return errors.Join(errs...)
}

// fdInfo learns the name, index and MTU of the TUN device on fd, and
// checks opts against its flags (TUNGETIFF). A descriptor that is not a
// TUN device, or one whose flags cannot be read (a sandbox that forbids
// the ioctl), is taken as opts says.
func fdInfo(fd int, opts FileOptions) (fdDevice, error) {
	ifr, err := unix.NewIfreq("")
	if err != nil {
		return fdDevice{}, nil
	}
	if err := unix.IoctlIfreq(fd, unix.TUNGETIFF, ifr); err != nil {
		return fdDevice{}, nil
	}
	d := fdDevice{name: ifr.Name()}
	flags := ifr.Uint16()
	switch {
	case flags&unix.IFF_TUN == 0:
		return d, fmt.Errorf("tun: %s is not a TUN device (a TAP one? it carries Ethernet frames, not IP packets)", d.name)
	case flags&unix.IFF_NO_PI == 0:
		return d, fmt.Errorf("tun: %s was opened without IFF_NO_PI: its packets carry a struct tun_pi, which the endpoint does not read", d.name)
	case opts.AFHeader:
		return d, fmt.Errorf("tun: %s: FileOptions.AFHeader, but a Linux TUN device has no address family header", d.name)
	case flags&unix.IFF_VNET_HDR != 0 && !opts.VnetHdr:
		return d, fmt.Errorf("tun: %s was opened with IFF_VNET_HDR: set FileOptions.VnetHdr", d.name)
	case flags&unix.IFF_VNET_HDR == 0 && opts.VnetHdr:
		return d, fmt.Errorf("tun: %s was opened without IFF_VNET_HDR: FileOptions.VnetHdr must be false", d.name)
	}
	if opts.VnetHdr {
		if n, err := unix.IoctlGetInt(fd, unix.TUNGETVNETHDRSZ); err == nil && n != vnetHdrLen {
			return d, fmt.Errorf("tun: %s: virtio-net header of %d bytes (TUNSETVNETHDRSZ), the endpoint reads %d", d.name, n, vnetHdrLen)
		}
	}
	if ifi, err := net.InterfaceByName(d.name); err == nil {
		d.index, d.mtu = ifi.Index, ifi.MTU
	}
	return d, nil
}
