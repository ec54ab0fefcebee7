package tun

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/synstack/synstack"
)

// openTunElsewhere opens and configures a TUN device as a program other
// than this package would (a privileged helper, a VPN service): its own
// open of /dev/net/tun and TUNSETIFF, the virtio-net header and offloads
// if vnet, then netlink for the MTU, the up state and hostAddr. It returns
// the descriptor.
func openTunElsewhere(t *testing.T, name string, vnet bool, mtu int) int {
	t.Helper()
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		t.Fatal(err)
	}
	flags := uint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if vnet {
		flags |= unix.IFF_VNET_HDR
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		t.Fatalf("TUNSETIFF: %v", err)
	}
	if vnet {
		if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, 10); err != nil {
			unix.Close(fd)
			t.Fatalf("TUNSETVNETHDRSZ: %v", err)
		}
		if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, tunFCsum|tunFTSO4|tunFTSO6); err != nil {
			unix.Close(fd)
			t.Skipf("skipped: the kernel refuses TSO on a TUN device: %v", err)
		}
	}
	l, err := netlink.LinkByName(name)
	if err == nil {
		err = netlink.LinkSetMTU(l, mtu)
	}
	if err == nil {
		err = netlink.LinkSetUp(l)
	}
	if err == nil {
		err = netlink.AddrAdd(l, &netlink.Addr{IPNet: prefixIPNet(hostAddr)})
	}
	if err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	return fd
}

// A TUN device opened outside the package, in a namespace the test makes,
// carries the kernel's TCP to a stack through FromFD, with and without the
// virtio-net header; with it, large packets cross both ways. The endpoint
// learns the device's name and MTU, and Close closes the descriptor,
// which removes the device.
func TestFromFDKernelEcho(t *testing.T) {
	for _, mode := range []string{"vnet", "plain"} {
		t.Run(mode, func(t *testing.T) {
			enterNewNetns(t)
			vnet := mode == "vnet"
			fd := openTunElsewhere(t, "tunfd0", vnet, 1400)
			ep, err := FromFD(fd, FileOptions{VnetHdr: vnet})
			if err != nil {
				unix.Close(fd)
				t.Fatal(err)
			}
			t.Logf("%s: index %d, MTU %d, offloads %s", ep.Name(), ep.Index(), ep.MTU(), ep.Offload())
			if ep.Name() != "tunfd0" || ep.MTU() != 1400 || ep.Index() == 0 || ep.Created() {
				t.Errorf("name %q, MTU %d, index %d, created %v; want tunfd0, 1400, the device's, false", ep.Name(), ep.MTU(), ep.Index(), ep.Created())
			}
			st, err := synstack.New(synstack.Config{Link: ep, Addrs: []netip.Prefix{stackAddr}})
			if err != nil {
				ep.Close()
				t.Fatal(err)
			}
			defer st.Close() // harmless after the Close below
			kernelEcho(t, ep, st, 4<<20, vnet)
			if err := st.Close(); err != nil { // closes the endpoint too
				t.Errorf("Close: %v", err)
			}
			if _, err := netlink.LinkByName("tunfd0"); err == nil {
				t.Error("device still there after Close: the descriptor was not closed")
			}
		})
	}
}

// FromFD checks the options against the device's flags: a mismatch fails
// with an error naming the flag, and leaves the descriptor open, the
// caller's.
func TestFromFDFlagsMismatch(t *testing.T) {
	enterNewNetns(t)
	for _, c := range []struct {
		vnet bool
		opts FileOptions
		want string
	}{
		{true, FileOptions{}, "IFF_VNET_HDR"},
		{false, FileOptions{VnetHdr: true}, "IFF_VNET_HDR"},
		{false, FileOptions{AFHeader: true}, "address family"},
	} {
		fd := openTunElsewhere(t, "tunfd1", c.vnet, 1500)
		ep, err := FromFD(fd, c.opts)
		if err == nil {
			ep.Close()
			t.Errorf("device vnet %v, %+v: no error", c.vnet, c.opts)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("device vnet %v, %+v: %v, want it to name %s", c.vnet, c.opts, err, c.want)
		}
		ifr, _ := unix.NewIfreq("")
		if err := unix.IoctlIfreq(fd, unix.TUNGETIFF, ifr); err != nil || ifr.Name() != "tunfd1" {
			t.Errorf("the descriptor after the failed FromFD: %v, %q", err, ifr.Name())
		}
		unix.Close(fd)
	}
	if _, err := netlink.LinkByName("tunfd1"); err == nil {
		t.Error("the device outlived its descriptor")
	}
}
