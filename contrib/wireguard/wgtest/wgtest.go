// Package wgtest is the harness of the wireguard-go end-to-end test and
// benchmark, shared by this module's test (synstack behind wireguard-go)
// and by the comparison module (the same scenario with wireguard-go's own
// gVisor netstack): two wireguard-go devices in one process, talking over
// loopback UDP, one on a kernel TUN device, the other on a userspace
// stack's tun.Device. The kernel's programs (curl, dig, sockets of this
// process) then reach the userspace stack through the tunnel.
//
// It needs root, TUN devices and ip (iproute2), and runs inside a network
// namespace of the test's own (InNamespace). Only tests import it.
package wgtest

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"

	"github.com/synstack/synstack/contrib/wireguard/netstack"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"
)

// The tunnel's addresses.
var (
	KernelAddr  = netip.MustParseAddr("10.77.0.1") // the kernel TUN device's (/24)
	StackAddr   = netip.MustParseAddr("10.77.0.2") // the userspace stack's
	KernelAddr6 = netip.MustParseAddr("fd77::1")   // the kernel TUN device's (/64)
	StackAddr6  = netip.MustParseAddr("fd77::2")   // the userspace stack's
)

// MTU is the MTU of the tunnel (wireguard-go's default).
const MTU = 1420

// The loopback UDP ports of the two wireguard-go devices.
const (
	kernelPort = 51820
	stackPort  = 51821
)

// Netstack is a userspace stack behind a tun.Device, as the scenarios see
// it: wireguard-go's netstack.Net and synstack's have the same methods
// with different result types, so each gives these functions.
type Netstack struct {
	// Name names the stack in logs and tables.
	Name string
	// Dev is the stack's tun.Device, which the wireguard-go device owns
	// (and closes).
	Dev tun.Device
	// Listen listens for TCP on addr.
	Listen func(addr netip.AddrPort) (net.Listener, error)
	// ListenPacket opens a UDP socket on addr.
	ListenPacket func(addr netip.AddrPort) (net.PacketConn, error)
	// DialContext dials through the stack ("tcp" or "udp").
	DialContext func(ctx context.Context, network, address string) (net.Conn, error)
	// LookupContextHost resolves a name with the DNS server given.
	LookupContextHost func(ctx context.Context, host string) ([]string, error)
	// Counters, if set, describes the stack's counters of interest (drops),
	// for logs.
	Counters func() string
}

// Factory makes a Netstack with the addresses locals, resolving names
// with dns, with link MTU mtu.
type Factory func(locals []netip.Addr, dns netip.Addr, mtu int) (*Netstack, error)

// Synstack is the Factory of synstack's netstack (this module's).
func Synstack(locals []netip.Addr, dns netip.Addr, mtu int) (*Netstack, error) {
	dev, n, err := netstack.CreateNetTUN(locals, []netip.Addr{dns}, mtu)
	if err != nil {
		return nil, err
	}
	ns := NewNetstack("synstack", dev, n.ListenTCPAddrPort, n.ListenUDPAddrPort, n.DialContext, n.LookupContextHost)
	ns.Counters = func() string {
		st := n.Stack().Stats()
		return fmt.Sprintf("UdpInDatagrams %d UdpRcvbufErrors %d UdpOutDatagrams %d UdpSndbufErrors %d TcpRetransSegs %d device drops %d",
			st.UdpInDatagrams, st.UdpRcvbufErrors, st.UdpOutDatagrams, st.UdpSndbufErrors, st.TcpRetransSegs, n.Drops())
	}
	return ns, nil
}

// NewNetstack is the Netstack of a stack whose Net has the given methods
// (those of wireguard-go's netstack.Net and of synstack's, whose
// listeners and sockets are of different types).
func NewNetstack[L net.Listener, P net.PacketConn, C net.Conn](name string, dev tun.Device,
	listenTCP func(netip.AddrPort) (L, error), listenUDP func(netip.AddrPort) (P, error),
	dial func(ctx context.Context, network, address string) (C, error),
	lookup func(ctx context.Context, host string) ([]string, error)) *Netstack {
	return &Netstack{
		Name: name,
		Dev:  dev,
		Listen: func(addr netip.AddrPort) (net.Listener, error) {
			ln, err := listenTCP(addr)
			if err != nil {
				return nil, err // not a typed nil in an interface
			}
			return ln, nil
		},
		ListenPacket: func(addr netip.AddrPort) (net.PacketConn, error) {
			pc, err := listenUDP(addr)
			if err != nil {
				return nil, err
			}
			return pc, nil
		},
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			c, err := dial(ctx, network, address)
			if err != nil {
				return nil, err
			}
			return c, nil
		},
		LookupContextHost: lookup,
	}
}

// Tunnel is the two wireguard-go devices and the stack behind one of them.
type Tunnel struct {
	// Stack is the userspace stack at StackAddr and StackAddr6.
	Stack *Netstack
	// TUN is the name of the kernel's TUN device, at KernelAddr and
	// KernelAddr6.
	TUN           string
	kernel, stack *device.Device
}

// Up makes the tunnel inside the namespace the caller runs in: a kernel
// TUN device named tunName (10.77.0.1/24) behind a wireguard-go device on
// 127.0.0.1:51820, and the stack f makes (10.77.0.2, resolving with
// 10.77.0.1) behind another on 127.0.0.1:51821, peers of each other. It
// returns once a first packet has crossed (a handshake done). Close takes
// it down.
func Up(f Factory, tunName string) (*Tunnel, error) {
	kpriv, kpub, err := keyPair()
	if err != nil {
		return nil, err
	}
	spriv, spub, err := keyPair()
	if err != nil {
		return nil, err
	}
	ns, err := f([]netip.Addr{StackAddr, StackAddr6}, KernelAddr, MTU)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tunName, err)
	}
	t := &Tunnel{Stack: ns, TUN: tunName}
	t.stack = device.NewDevice(ns.Dev, conn.NewDefaultBind(), device.NewLogger(device.LogLevelError, ns.Name+": "))
	// The stack sends everything into the tunnel.
	if err := configure(t.stack, spriv, kpub, stackPort, kernelPort, "0.0.0.0/0", "::/0"); err != nil {
		t.Close()
		return nil, err
	}
	kdev, err := tun.CreateTUN(tunName, MTU)
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("kernel TUN %s: %w", tunName, err)
	}
	t.kernel = device.NewDevice(kdev, conn.NewDefaultBind(), device.NewLogger(device.LogLevelError, "kernel: "))
	if err := configure(t.kernel, kpriv, spub, kernelPort, stackPort, StackAddr.String()+"/32", StackAddr6.String()+"/128"); err != nil {
		t.Close()
		return nil, err
	}
	for _, args := range [][]string{
		{"addr", "add", KernelAddr.String() + "/24", "dev", tunName},
		{"addr", "add", KernelAddr6.String() + "/64", "dev", tunName, "nodad"},
		{"link", "set", tunName, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Close()
			return nil, fmt.Errorf("ip %v: %v: %s", args, err, out)
		}
	}
	if err := t.waitPath(); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// configure gives d its key, port and one peer (key peer, at 127.0.0.1 on
// peerPort, owning the prefixes allowed) and brings it up.
func configure(d *device.Device, priv, peer []byte, port, peerPort int, allowed ...string) error {
	cfg := fmt.Sprintf("private_key=%s\nlisten_port=%d\nreplace_peers=true\npublic_key=%s\nendpoint=127.0.0.1:%d\n",
		hex.EncodeToString(priv), port, hex.EncodeToString(peer), peerPort)
	for _, a := range allowed {
		cfg += "allowed_ip=" + a + "\n"
	}
	if err := d.IpcSet(cfg); err != nil {
		return fmt.Errorf("wireguard-go configuration: %w", err)
	}
	return d.Up()
}

// keyPair returns a Curve25519 private key and its public key.
func keyPair() (priv, pub []byte, err error) {
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	return k.Bytes(), k.PublicKey().Bytes(), nil
}

// waitPath dials the stack from the kernel until a TCP connection goes
// through (a listener on port 9 refuses it, which proves the path just as
// well), for at most 10 s.
func (t *Tunnel) waitPath() error {
	ln, err := t.Stack.Listen(netip.AddrPortFrom(StackAddr, 9))
	if err != nil {
		return err
	}
	defer ln.Close()
	go ServeEach(ln, func(net.Conn) {})
	var last error
	for range 20 {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(StackAddr, 9).String(), 500*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		last = err
	}
	return fmt.Errorf("no TCP path through the tunnel to %s: %w", t.Stack.Name, last)
}

// ServeEach accepts connections on ln until it is closed, and for each
// calls handle, then closes the connection: one at a time, on the
// calling goroutine.
func ServeEach(ln net.Listener, handle func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		handle(c)
		c.Close()
	}
}

// Close takes both wireguard-go devices down, which closes their TUN
// devices: the kernel's disappears, and the stack is closed.
func (t *Tunnel) Close() {
	if t.stack != nil {
		t.stack.Close()
	} else {
		t.Stack.Dev.Close()
	}
	if t.kernel != nil {
		t.kernel.Close()
	}
}

// netnsChild is set in the environment of the copy of a test binary that
// InNamespace runs inside the namespace, to the test's name.
const netnsChild = "WGTEST_NETNS_CHILD"

// InNamespace runs the calling test in a network namespace of its own. In
// the test binary go test started it makes the namespace (ip netns add),
// runs the binary again inside it (ip netns exec) with -test.run matching
// t's name and args, for at most timeout, deletes the namespace and
// returns false: the caller returns. In that second copy it brings lo up
// and returns true: the caller runs the test's body, whose devices,
// sockets and packets all stay in the namespace.
//
// It skips t, saying why, without root, TUN support, ip or a namespace.
func InNamespace(t *testing.T, timeout time.Duration, args ...string) bool {
	t.Helper()
	if os.Getenv(netnsChild) == t.Name() {
		if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			t.Fatalf("ip link set lo up: %v: %s", err, out)
		}
		return true
	}
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root, to create a network namespace and a TUN device in it")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("skipped: no TUN device support: %v", err)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipped: needs ip (apt-get install -y iproute2)")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Skipf("skipped: cannot find the test binary: %v", err)
	}
	ns := fmt.Sprintf("wgtest-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("skipped: cannot create a network namespace: %v: %s", err, out)
	}
	defer func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns, err, out)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	argv := append([]string{"netns", "exec", ns, exe, "-test.run", "^" + regexp.QuoteMeta(t.Name()) + "$",
		"-test.v", "-test.timeout", timeout.String()}, args...)
	cmd := exec.CommandContext(ctx, "ip", argv...)
	cmd.Env = append(os.Environ(), netnsChild+"="+t.Name())
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s in namespace %s: %v", t.Name(), ns, err)
	}
	return false
}
