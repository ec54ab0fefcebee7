package netstack_test

import (
	"io"
	"net/netip"
	"runtime"
	"testing"
)

// TestDeviceDoesNotAllocate counts allocations in a steady TCP bulk
// transfer between two devices back to back: the stacks, the device's
// queue and Read, its batched Write into the stack, and the goroutines
// carrying the batches. A step writes 256 KiB and reads them back on the
// other side; it is a count, not a timing.
func TestDeviceDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop buffers at random: allocation counts need a build without -race (go test -run DoesNotAllocate ./netstack)")
	}
	a, b := backToBack(t, 1420)
	ln, err := a.net.ListenTCPAddrPort(netip.AddrPortFrom(addrA4, 80))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	w, err := b.net.DialTCPAddrPort(netip.AddrPortFrom(addrA4, 80))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	const step = 256 << 10
	w.SetWriteBuffer(4 * step)
	r.(interface{ SetReadBuffer(int) error }).SetReadBuffer(4 * step)
	chunk, back := make([]byte, step), make([]byte, step)
	run := func() {
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(r, back); err != nil {
			t.Fatal(err)
		}
	}
	for range 20 {
		run()
	}
	before := a.net.Stack().Stats().IpInReceives + b.net.Stack().Stats().IpInReceives
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	allocs := testing.AllocsPerRun(100, run)
	runtime.ReadMemStats(&m1)
	pkts := a.net.Stack().Stats().IpInReceives + b.net.Stack().Stats().IpInReceives - before
	t.Logf("%d allocations in 101 steps of %d KiB, %d packets through the devices: %.5f per packet",
		m1.Mallocs-m0.Mallocs, step>>10, pkts, float64(m1.Mallocs-m0.Mallocs)/float64(pkts))
	if allocs != 0 {
		t.Errorf("%v allocations per step of %d packets, want 0", allocs, pkts/101)
	}
}

// TestUDPDoesNotAllocate counts allocations in a steady flow of 64-byte
// datagrams between two devices back to back: the UDPConn calls, both
// stacks, the devices and the goroutines carrying the batches. Issue 17
// asks for none per datagram.
func TestUDPDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop buffers at random: allocation counts need a build without -race")
	}
	a, b := backToBack(t, 1420)
	srv, err := a.net.ListenUDPAddrPort(netip.AddrPortFrom(addrA4, 9))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := b.net.DialUDPAddrPort(netip.AddrPort{}, netip.AddrPortFrom(addrA4, 9))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	const step = 16 // datagrams; well under the receive buffer
	msg, buf := make([]byte, 64), make([]byte, 2048)
	run := func() {
		for range step {
			if _, err := cli.Write(msg); err != nil {
				t.Fatal(err)
			}
		}
		for range step {
			if _, _, err := srv.ReadFromUDPAddrPort(buf); err != nil {
				t.Fatal(err)
			}
		}
	}
	for range 10 {
		run()
	}
	if allocs := testing.AllocsPerRun(100, run); allocs != 0 {
		t.Errorf("%v allocations per %d datagrams, want 0", allocs, step)
	}
}
