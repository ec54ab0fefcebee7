package tun

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/link"
)

// enterNewNetns moves the test's goroutine, locked to its OS thread, into a
// network namespace of its own: the devices, addresses and sockets the
// test makes from this goroutine live there, and so does all its
// traffic. The thread is never unlocked, so it ends with the test and the
// namespace with it. Skips without root or TUN devices.
func enterNewNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root, to create a network namespace and a TUN device in it")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("skipped: no TUN device support: %v", err)
	}
	runtime.LockOSThread()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		t.Skipf("skipped: cannot create a network namespace: %v", err)
	}
}

var (
	stackAddr = netip.MustParsePrefix("10.99.0.2/24")
	hostAddr  = netip.MustParsePrefix("10.99.0.1/24")
)

// The kernel's TCP talks to a synstack stack over the device, bulk data
// both ways, with and without offloads; with them, large packets cross in
// both directions.
func TestKernelEcho(t *testing.T) {
	for _, mode := range []string{"offload", "no-offload", "fallback"} {
		t.Run(mode, func(t *testing.T) {
			enterNewNetns(t)
			offload := mode == "offload"
			if mode == "fallback" {
				// A kernel that refuses every offload asked for: the
				// endpoint falls back to a plain device.
				saved := offloadTries
				offloadTries = append(offloadTries[:0:0], offloadTries[0]) // a copy
				offloadTries[0].flags = 1 << 30
				defer func() { offloadTries = saved }()
			}
			ep, err := Open(Options{Name: "tuntest0", NoOffload: mode == "no-offload", HostAddrs: []netip.Prefix{hostAddr}})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: offloads %s", ep.Name(), ep.Offload())
			if offload == strings.HasPrefix(ep.Offload(), "none") || mode == "fallback" && !strings.Contains(ep.Offload(), "TUNSETOFFLOAD") {
				t.Errorf("%s, endpoint says %q", mode, ep.Offload())
			}
			st, err := synstack.New(synstack.Config{Link: ep, Addrs: []netip.Prefix{stackAddr}})
			if err != nil {
				ep.Close()
				t.Fatal(err)
			}
			defer st.Close()
			if ok, err := ep.KernelReady(stackAddr.Addr()); !ok || err != nil {
				t.Fatalf("kernel side not ready: %v %v", ok, err)
			}
			kernelEcho(t, ep, st, 16<<20, offload)
		})
	}
}

// kernelEcho has a kernel socket in the test's namespace send size bytes
// to an echo service of st, over ep, and checks that they all come back;
// then that ep carried large packets both ways if and only if offload,
// and that nothing was dropped as bad on either side.
func kernelEcho(t *testing.T, ep *Endpoint, st *synstack.Stack, size int, offload bool) {
	t.Helper()
	ln, err := st.Listen("tcp", ":7")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srvDone := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srvDone <- err
			return
		}
		_, err = io.Copy(c, c)
		c.Close()
		srvDone <- err
	}()
	c, err := net.DialTimeout("tcp", net.JoinHostPort(stackAddr.Addr().String(), "7"), 5*time.Second) // a kernel socket, in the namespace
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := echoOnce(c.(*net.TCPConn), size, 1); err != nil {
		t.Fatal(err)
	}
	if err := <-srvDone; err != nil {
		t.Fatal(err)
	}
	s := ep.Stats()
	t.Logf("%+v", s)
	if offload && (s.GSOIn == 0 || s.GSOOut+s.TSOOut == 0 || s.CsumIn+s.VerifiedIn == 0) {
		t.Errorf("offloads on, but no large packets both ways: %+v", s)
	}
	// With TSO the stack hands over large segments whole (tcp's
	// Config.SegmentOffload): the kernel cuts them.
	if tso := ep.SegmentOffload() > 0; tso && s.TSOOut == 0 || !tso && s.TSOOut != 0 {
		t.Errorf("SegmentOffload %d, but %d large segments written whole", ep.SegmentOffload(), s.TSOOut)
	}
	// The kernel marks what it sends (NEEDS_CSUM): with offloads the
	// stack takes those packets as verified and checks none of them.
	// The stack's count first, the link's after: the link counts a packet
	// before it hands it over, so the stack's is never ahead.
	stt := st.Stats()
	if s := ep.Stats(); offload && (s.VerifiedIn == 0 || stt.SynstackInCsumTrusted == 0 || stt.SynstackInCsumTrusted > s.VerifiedIn) {
		t.Errorf("offloads on: %d packets vouched for by the kernel, %d taken as such by the stack", s.VerifiedIn, stt.SynstackInCsumTrusted)
	}
	if !offload && (s.GSOIn != 0 || s.GSOOut != 0 || s.TSOOut != 0 || s.CsumIn != 0) {
		t.Errorf("offloads off, but large packets: %+v", s)
	}
	if s.DropBad != 0 || s.WriteErrors != 0 || s.ReadErrors != 0 {
		t.Errorf("errors: %+v", s)
	}
	if cs := st.Stats(); cs.TcpInCsumErrors != 0 || cs.IpInHdrErrors != 0 {
		t.Errorf("stack dropped bad packets: %+v", cs)
	}
}

// A device Open created, Close removes; one that existed, Close leaves as
// it found it: its MTU, down, without the addresses Open added.
func TestOpenCloseRestores(t *testing.T) {
	enterNewNetns(t)
	nl, err := netlink.NewHandle()
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()

	ep, err := Open(Options{Name: "tunnew0", MTU: 1400})
	if err != nil {
		t.Fatal(err)
	}
	l, err := nl.LinkByName("tunnew0")
	if err != nil || l.Attrs().MTU != 1400 || l.Attrs().Flags&net.FlagUp == 0 || !ep.Created() {
		t.Fatalf("created device: %v, %+v, created %v", err, l, ep.Created())
	}
	if ok, _ := ep.KernelReady(stackAddr.Addr()); ok {
		t.Error("ready with no route to the stack")
	}
	ep.Close()
	if _, err := nl.LinkByName("tunnew0"); err == nil {
		t.Error("created device still there after Close")
	}
	if err := ep.WritePacket([]byte{0x45}); err != ErrClosed {
		t.Errorf("WritePacket after Close: %v", err)
	}

	// A persistent device, down, MTU 1500.
	fd, name, err := createTun("tunkeep0", unix.IFF_TUN|unix.IFF_NO_PI)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETPERSIST, 1); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	defer func() {
		if l, err := nl.LinkByName(name); err == nil {
			nl.LinkDel(l)
		}
	}()
	ep, err = Open(Options{Name: name, MTU: 9000, HostAddrs: []netip.Prefix{hostAddr}})
	if err != nil {
		t.Fatal(err)
	}
	if ep.Created() {
		t.Error("existing device said to be created")
	}
	addrs, err := ep.HostAddrs()
	if err != nil || !slices.Contains(addrs, hostAddr) {
		t.Errorf("host addresses %v (%v), want %v among them", addrs, err, hostAddr)
	}
	if ok, err := ep.KernelReady(stackAddr.Addr()); !ok || err != nil {
		t.Errorf("not ready with %v on the device: %v", hostAddr, err)
	}
	l, _ = nl.LinkByName(name)
	if l.Attrs().MTU != 9000 || l.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("attached device: MTU %d, flags %v", l.Attrs().MTU, l.Attrs().Flags)
	}
	if err := ep.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = nl.LinkByName(name)
	if err != nil {
		t.Fatalf("existing device gone after Close: %v", err)
	}
	if l.Attrs().MTU != 1500 || l.Attrs().Flags&net.FlagUp != 0 {
		t.Errorf("after Close: MTU %d, flags %v; want 1500, down", l.Attrs().MTU, l.Attrs().Flags)
	}
	if a, _ := nl.AddrList(l, netlink.FAMILY_V4); len(a) != 0 {
		t.Errorf("addresses left after Close: %v", a)
	}
}

// Several kernel connections echo through a stack on a two-queue device,
// with and without offloads: every byte comes back, both queues carry
// packets both ways, and Close removes the device (TestMain checks that
// no goroutine is left).
func TestMultiQueueEcho(t *testing.T) {
	for _, mode := range []string{"offload", "no-offload"} {
		t.Run(mode, func(t *testing.T) {
			enterNewNetns(t)
			const queues, conns, size = 2, 8, 4 << 20
			ep, err := Open(Options{Name: "tunmq0", Queues: queues, NoOffload: mode == "no-offload", HostAddrs: []netip.Prefix{hostAddr}})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d queues, offloads %s", ep.Name(), len(ep.QueueStats()), ep.Offload())
			if len(ep.QueueStats()) != queues {
				t.Fatalf("%d queues, want %d", len(ep.QueueStats()), queues)
			}
			st, err := synstack.New(synstack.Config{Link: ep, Addrs: []netip.Prefix{stackAddr}})
			if err != nil {
				ep.Close()
				t.Fatal(err)
			}
			closed := false
			defer func() {
				if !closed {
					st.Close()
				}
			}()
			ln, err := st.Listen("tcp", ":7")
			if err != nil {
				t.Fatal(err)
			}
			srvDone := make(chan error, conns)
			go func() {
				for range conns {
					c, err := ln.Accept()
					if err != nil {
						srvDone <- err
						return
					}
					go func() {
						_, err := io.Copy(c, c)
						c.Close()
						srvDone <- err
					}()
				}
			}()

			// Client ports whose flows the endpoint writes half to each
			// queue, so that both queues are used whatever the kernel's
			// choice of ports would have been.
			var ports []int
			for p, want := 40000, 0; len(ports) < conns; p++ {
				pkt := tcp4Packet(stackAddr.Addr(), hostAddr.Addr(), 7, uint16(p))
				if link.FlowQueue(pkt, queues) == want {
					ports = append(ports, p)
					want = (want + 1) % queues
				}
			}
			// Dialled here, on the namespace's thread, the sockets are
			// the namespace's; their transfers run in parallel.
			errs := make(chan error, conns)
			for i, port := range ports {
				d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IP(hostAddr.Addr().AsSlice()), Port: port}}
				c, err := d.Dial("tcp", net.JoinHostPort(stackAddr.Addr().String(), "7"))
				if err != nil {
					ln.Close()
					t.Fatal(err)
				}
				defer c.Close()
				go func() { errs <- echoOnce(c.(*net.TCPConn), size, uint64(i)) }()
			}
			for range conns {
				if err := <-errs; err != nil {
					t.Error(err)
				}
			}
			for range conns {
				if err := <-srvDone; err != nil {
					t.Error(err)
				}
			}
			ln.Close()
			s, qs := ep.Stats(), ep.QueueStats()
			t.Logf("%+v", s)
			var in, out uint64
			for i, q := range qs {
				t.Logf("queue %d: %+v", i, q)
				if q.PacketsIn == 0 || q.PacketsOut == 0 {
					t.Errorf("queue %d idle: %+v", i, q)
				}
				in += q.PacketsIn
				out += q.PacketsOut
			}
			if in != s.PacketsIn || out != s.PacketsOut {
				t.Errorf("queues' packets %d in, %d out; endpoint's %d, %d", in, out, s.PacketsIn, s.PacketsOut)
			}
			if mode == "offload" && (s.GSOIn == 0 || s.GSOOut+s.TSOOut == 0) {
				t.Errorf("offloads on, but no large packets both ways: %+v", s)
			}
			if s.DropBad != 0 || s.WriteErrors != 0 || s.ReadErrors != 0 {
				t.Errorf("errors: %+v", s)
			}
			if cs := st.Stats(); cs.TcpInCsumErrors != 0 || cs.IpInHdrErrors != 0 {
				t.Errorf("stack dropped bad packets: %+v", cs)
			}
			closed = true
			if err := st.Close(); err != nil { // closes the endpoint too
				t.Errorf("Close: %v", err)
			}
			if _, err := netlink.LinkByName("tunmq0"); err == nil {
				t.Error("device still there after Close")
			}
			if err := ep.WritePacket(tcp4Packet(stackAddr.Addr(), hostAddr.Addr(), 7, 1)); err != ErrClosed {
				t.Errorf("WritePacket after Close: %v", err)
			}
		})
	}
}

// echoOnce sends size bytes (seeded by seed) to an echo service on c and
// checks that they all come back.
func echoOnce(c *net.TCPConn, size int, seed uint64) error {
	c.SetDeadline(time.Now().Add(time.Minute))
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 7}).Read(data)
	wrote := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.CloseWrite()
		}
		wrote <- err
	}()
	got, err := io.ReadAll(c)
	port := c.LocalAddr().(*net.TCPAddr).Port
	if werr := <-wrote; err == nil {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("port %d: %w", port, err)
	}
	if len(got) != size || sha256.Sum256(got) != sha256.Sum256(data) {
		return fmt.Errorf("port %d: %d bytes back, not the %d sent", port, len(got), size)
	}
	return nil
}

// Queues above 1 need a multi-queue device: attaching them to an existing
// single-queue one fails clearly, and leaves the device as it was; a
// number of queues out of range fails before anything is opened.
func TestMultiQueueRefused(t *testing.T) {
	if _, err := Open(Options{Queues: MaxQueues + 1}); err == nil || !strings.Contains(err.Error(), "queues") {
		t.Errorf("Queues %d: %v", MaxQueues+1, err)
	}
	if _, err := Open(Options{Queues: -1}); err == nil {
		t.Error("Queues -1: no error")
	}
	enterNewNetns(t)
	fd, name, err := createTun("tunsq0", unix.IFF_TUN|unix.IFF_NO_PI)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETPERSIST, 1); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	defer func() {
		if l, err := netlink.LinkByName(name); err == nil {
			netlink.LinkDel(l)
		}
	}()
	for _, noOffload := range []bool{false, true} {
		ep, err := Open(Options{Name: name, Queues: 2, NoOffload: noOffload, MTU: 1400})
		if err == nil {
			ep.Close()
			t.Fatalf("NoOffload %v: 2 queues on a single-queue device: no error", noOffload)
		}
		t.Logf("NoOffload %v: %v", noOffload, err)
		if !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), "IFF_MULTI_QUEUE") {
			t.Errorf("NoOffload %v: error %q, want EINVAL naming IFF_MULTI_QUEUE", noOffload, err)
		}
	}
	l, err := netlink.LinkByName(name)
	if err != nil || l.Attrs().MTU != 1500 || l.Attrs().Flags&net.FlagUp != 0 {
		t.Errorf("device after the failed Opens: %v %+v", err, l)
	}
	// The same device name, created multi-queue, takes them.
	netlink.LinkDel(l)
	ep, err := Open(Options{Name: name, Queues: 4})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(ep.QueueStats()); n != 4 {
		t.Errorf("%d queues, want 4", n)
	}
	if err := ep.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName(name); err == nil {
		t.Error("created multi-queue device still there after Close")
	}
}
