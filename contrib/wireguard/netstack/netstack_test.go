package netstack_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/synstack/synstack/contrib/wireguard/netstack"
	"github.com/synstack/synstack/contrib/wireguard/wgtest"
	"golang.zx2c4.com/wireguard/tun"
)

// offset is the room wireguard-go leaves before each packet in its buffers
// (its transport header), which the device must honour.
const offset = 16

var (
	addrA4, addrA6 = netip.MustParseAddr("10.9.0.1"), netip.MustParseAddr("fd00:9::1")
	addrB4, addrB6 = netip.MustParseAddr("10.9.0.2"), netip.MustParseAddr("fd00:9::2")
)

// side is one of two devices wired back to back.
type side struct {
	dev tun.Device
	net *netstack.Net
}

// backToBack makes two devices (A: 10.9.0.1 and fd00:9::1; B: 10.9.0.2
// and fd00:9::2, with A as its DNS server) and two goroutines that carry
// the packets each one's stack sends to the other, a batch at a time, as
// wireguard-go would (without the encryption). Cleanup closes both and
// waits for the goroutines.
func backToBack(t testing.TB, mtu int) (a, b side) {
	t.Helper()
	da, na, err := netstack.CreateNetTUN([]netip.Addr{addrA4, addrA6}, nil, mtu)
	if err != nil {
		t.Fatal(err)
	}
	db, nb, err := netstack.CreateNetTUN([]netip.Addr{addrB4, addrB6}, []netip.Addr{addrA4}, mtu)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); carry(da, db, mtu) }()
	go func() { defer wg.Done(); carry(db, da, mtu) }()
	t.Cleanup(func() {
		da.Close()
		db.Close()
		wg.Wait()
	})
	return side{da, na}, side{db, nb}
}

// carry reads batches of packets from src and writes them to dst until
// src is closed.
func carry(src, dst tun.Device, mtu int) {
	bufs := make([][]byte, src.BatchSize())
	out := make([][]byte, len(bufs))
	sizes := make([]int, len(bufs))
	for i := range bufs {
		bufs[i] = make([]byte, offset+mtu)
	}
	for {
		n, err := src.Read(bufs, sizes, offset)
		if err != nil {
			return
		}
		for i := range n {
			out[i] = bufs[i][:offset+sizes[i]]
		}
		dst.Write(out[:n], offset)
	}
}

// exchange sends data through c and checks that echo, on the other end,
// returns it unchanged.
func roundTrip(t *testing.T, c net.Conn, data []byte) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		errc <- err
	}()
	back := make([]byte, len(data))
	if _, err := io.ReadFull(c, back); err != nil {
		t.Fatalf("read back: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(back, data) {
		t.Fatal("the echo differs from what was sent")
	}
}

// echoTCP accepts one connection on ln and echoes it until EOF.
func echoTCP(ln net.Listener) {
	c, err := ln.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	io.Copy(c, c)
}

// randomBytes returns n bytes of a seeded generator.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestTCPBothWays: each side listens in turn, over IPv4 and IPv6, and a
// megabyte goes there and back byte-exact.
func TestTCPBothWays(t *testing.T) {
	a, b := backToBack(t, 1420)
	data := randomBytes(1<<20, 1)
	for _, c := range []struct {
		name     string
		srv, cli side
		addr     netip.Addr
	}{
		{"B dials A over IPv4", a, b, addrA4},
		{"A dials B over IPv4", b, a, addrB4},
		{"B dials A over IPv6", a, b, addrA6},
		{"A dials B over IPv6", b, a, addrB6},
	} {
		t.Run(c.name, func(t *testing.T) {
			ln, err := c.srv.net.ListenTCPAddrPort(netip.AddrPortFrom(c.addr, 80))
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			done := make(chan struct{})
			go func() { defer close(done); echoTCP(ln) }()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, err := c.cli.net.DialContextTCPAddrPort(ctx, netip.AddrPortFrom(c.addr, 80))
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, conn, data)
			conn.Close()
			<-done
		})
	}
}

// TestUDPBothWays: a datagram to a socket on each side and the echo of
// it, through DialUDP and ListenUDP.
func TestUDPBothWays(t *testing.T) {
	a, b := backToBack(t, 1420)
	for _, c := range []struct {
		name     string
		srv, cli side
		addr     netip.Addr
	}{
		{"B to A", a, b, addrA4},
		{"A to B", b, a, addrB6},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, err := c.srv.net.ListenUDP(&net.UDPAddr{IP: c.addr.AsSlice(), Port: 7})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			go func() {
				buf := make([]byte, 2048)
				for {
					n, from, err := srv.ReadFromUDPAddrPort(buf)
					if err != nil {
						return
					}
					srv.WriteToUDPAddrPort(buf[:n], from)
				}
			}()
			cli, err := c.cli.net.DialUDP(nil, &net.UDPAddr{IP: c.addr.AsSlice(), Port: 7})
			if err != nil {
				t.Fatal(err)
			}
			defer cli.Close()
			cli.SetReadDeadline(time.Now().Add(10 * time.Second))
			for i, size := range []int{1, 1000, 1392} {
				msg := randomBytes(size, uint64(i))
				if _, err := cli.Write(msg); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 2048)
				n, err := cli.Read(buf)
				if err != nil || !bytes.Equal(buf[:n], msg) {
					t.Fatalf("%d bytes: echo of %d bytes, %v", size, n, err)
				}
			}
		})
	}
}

// TestLookupHostAndDial: B asks the DNS server on A for a name (A and
// AAAA, through the stacks), then DialContext dials the name and reaches
// A's listener.
func TestLookupHostAndDial(t *testing.T) {
	a, b := backToBack(t, 1420)
	pc, err := a.net.ListenUDPAddrPort(netip.AddrPortFrom(addrA4, 53))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go wgtest.ServeDNS(pc, map[string][]netip.Addr{"service.wg.example.": {addrA4, addrA6}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addrs, err := b.net.LookupContextHost(ctx, "service.wg.example")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, s := range addrs {
		got[s] = true
	}
	if len(addrs) != 2 || !got[addrA4.String()] || !got[addrA6.String()] {
		t.Fatalf("LookupContextHost: %v, want %v and %v", addrs, addrA4, addrA6)
	}
	if addrs, err := b.net.LookupHost("10.1.2.3"); err != nil || len(addrs) != 1 || addrs[0] != "10.1.2.3" {
		t.Fatalf("LookupHost of a literal: %v, %v", addrs, err)
	}

	ln, err := a.net.ListenTCP(&net.TCPAddr{Port: 8080})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() { defer close(done); echoTCP(ln) }()
	c, err := b.net.DialContext(ctx, "tcp4", "service.wg.example:8080")
	if err != nil {
		t.Fatal(err)
	}
	if ra := c.RemoteAddr().(*net.TCPAddr); !ra.IP.Equal(addrA4.AsSlice()) {
		t.Errorf("tcp4 dial reached %v, want %v", ra, addrA4)
	}
	roundTrip(t, c, []byte("hello through the name"))
	c.Close()
	<-done

	if _, err := b.net.Dial("tcp", "service.wg.example:http-alt"); err == nil {
		t.Error("Dial with a port name: no error, want one (ports are numbers, as wireguard-go's)")
	}
	if _, err := b.net.Dial("sctp", "10.9.0.1:1"); err == nil {
		t.Error("Dial sctp: no error")
	}
}

// TestPing: a ping socket on one side pings the other, which answers.
func TestPing(t *testing.T) {
	_, b := backToBack(t, 1420)
	pc, err := b.net.DialPingAddr(netip.Addr{}, addrA4)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.SetReadDeadline(time.Now().Add(30 * time.Second)) // a hang guard
	echo := []byte{8, 0, 0, 0, 0, 0, 0, 7, 'w', 'g'}     // type, code, checksum, ident, seq 7, data
	if _, err := pc.Write(echo); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	n, from, err := pc.ReadFrom(buf)
	if err != nil || from.String() != addrA4.String() || n != len(echo) || buf[0] != 0 || buf[7] != 7 || string(buf[8:n]) != "wg" {
		t.Fatalf("read % x from %v, %v: want the echo reply from %v", buf[:n], from, err, addrA4)
	}
	if _, err := b.net.Dial("ping", addrA4.String()); err != nil {
		t.Errorf("Dial ping: %v", err)
	}
}

// TestDeviceLifecycle: EventUp is waiting after CreateNetTUN; Close wakes
// a blocked Read, closes Events, fails later Reads and Writes and the
// stack's calls, and a second Close is harmless.
func TestDeviceLifecycle(t *testing.T) {
	dev, n, err := netstack.CreateNetTUN([]netip.Addr{addrA4}, nil, 1420)
	if err != nil {
		t.Fatal(err)
	}
	if ev := <-dev.Events(); ev != tun.EventUp {
		t.Fatalf("first event %v, want EventUp", ev)
	}
	if bs := dev.BatchSize(); bs <= 1 {
		t.Errorf("BatchSize %d, want more than 1", bs)
	}
	ln, err := n.ListenTCP(nil)
	if err != nil {
		t.Fatal(err)
	}
	readErr := make(chan error, 1)
	go func() {
		_, err := dev.Read([][]byte{make([]byte, 1500)}, []int{0}, 0)
		readErr <- err
	}()
	acceptErr := make(chan error, 1)
	go func() {
		_, err := ln.Accept()
		acceptErr <- err
	}()
	if err := dev.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-readErr; !errors.Is(err, os.ErrClosed) {
		t.Errorf("blocked Read after Close: %v, want os.ErrClosed", err)
	}
	if err := <-acceptErr; !errors.Is(err, net.ErrClosed) {
		t.Errorf("blocked Accept after Close: %v, want net.ErrClosed", err)
	}
	if _, ok := <-dev.Events(); ok {
		t.Error("Events still open after Close")
	}
	if _, err := dev.Write([][]byte{make([]byte, 40)}, 0); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Write after Close: %v, want os.ErrClosed", err)
	}
	if err := dev.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestCreateNetTUNBadInput: bad arguments give errors, not a device.
func TestCreateNetTUNBadInput(t *testing.T) {
	if _, _, err := netstack.CreateNetTUN([]netip.Addr{addrA4}, nil, 100); err == nil {
		t.Error("MTU 100: no error")
	}
	if _, _, err := netstack.CreateNetTUN([]netip.Addr{{}}, nil, 1420); err == nil {
		t.Error("invalid address: no error")
	}
}
