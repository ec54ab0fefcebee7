package gvisorhost

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// OpenTUN creates (or opens) the TUN device name (IFF_TUN, IFF_NO_PI) and
// returns its descriptor. With vnetHdr it is opened with IFF_VNET_HDR, a
// 10-byte virtio-net header, and TUNSETOFFLOAD with checksum, TSO4 and
// TSO6, as GSOLink reads and writes it; without, it is the plain device
// upstream's tun.Open makes.
func OpenTUN(name string, vnetHdr bool) (int, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("gvisorhost: open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("gvisorhost: TUN %q: %w", name, err)
	}
	flags := uint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if vnetHdr {
		flags |= unix.IFF_VNET_HDR
	}
	ifr.SetUint16(flags)
	err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
	what := "TUNSETIFF"
	if err == nil && vnetHdr {
		what = "TUNSETVNETHDRSZ"
		if err = unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, vnetHdrLen); err == nil {
			what = "TUNSETOFFLOAD"
			err = unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, unix.TUN_F_CSUM|unix.TUN_F_TSO4|unix.TUN_F_TSO6)
		}
	}
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("gvisorhost: TUN %s: %s: %w", name, what, err)
	}
	return fd, nil
}

// SetUpTUN gives the device name an MTU and the kernel's addresses
// hosts, and brings it up.
func SetUpTUN(name string, mtu int, hosts ...netip.Prefix) error {
	lk, err := netlink.LinkByName(name)
	if err == nil {
		err = netlink.LinkSetMTU(lk, mtu)
	}
	for _, host := range hosts {
		if err != nil {
			break
		}
		ipn := &net.IPNet{IP: host.Addr().AsSlice(), Mask: net.CIDRMask(host.Bits(), host.Addr().BitLen())}
		// IFA_F_NODAD: an IPv6 address works at once.
		err = netlink.AddrAdd(lk, &netlink.Addr{IPNet: ipn, Flags: unix.IFA_F_NODAD})
	}
	if err == nil {
		err = netlink.LinkSetUp(lk)
	}
	if err != nil {
		return fmt.Errorf("gvisorhost: configuring %s: %w", name, err)
	}
	return nil
}
