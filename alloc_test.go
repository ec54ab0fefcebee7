package synstack_test

import (
	"io"
	"net"
	"net/netip"
	"runtime"
	"testing"
)

// TestStackBulkDoesNotAllocate counts allocations per segment in a steady
// bulk transfer through the whole stack: socket calls, the connection,
// IP and TCP headers, checksums, demux, and link/pipe between two stacks.
// It is a count, not a timing. A step writes 256 KiB and reads them back
// through the other stack (the buffers hold a whole step, so one goroutine
// does both); the pipe's goroutines carry the packets.
func TestStackBulkDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop buffers at random: allocation counts need a build without -race (go test -run TestStackBulkDoesNotAllocate .)")
	}
	for _, mtu := range []int{1500, 65535} {
		srv, cli := newPairMTU(mtu)
		ln, err := srv.Listen("tcp", "10.0.0.1:80")
		if err != nil {
			t.Fatal(err)
		}
		w, err := cli.Dial("tcp", "10.0.0.1:80")
		if err != nil {
			t.Fatal(err)
		}
		r, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		const step = 256 << 10
		type buffers interface {
			SetReadBuffer(int) error
			SetWriteBuffer(int) error
		}
		w.(buffers).SetWriteBuffer(4 * step)
		r.(buffers).SetReadBuffer(4 * step)
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
		before := cli.Stats().TcpOutSegs + srv.Stats().TcpOutSegs
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		allocs := testing.AllocsPerRun(200, run)
		runtime.ReadMemStats(&m1)
		segs := cli.Stats().TcpOutSegs + srv.Stats().TcpOutSegs - before
		t.Logf("MTU %d: %d allocations in 201 steps of %d KiB, %d segments (data and ACKs): %.5f per segment",
			mtu, m1.Mallocs-m0.Mallocs, step>>10, segs, float64(m1.Mallocs-m0.Mallocs)/float64(segs))
		if allocs != 0 {
			t.Errorf("MTU %d: %v allocations per step of %d segments, want 0", mtu, allocs, segs/201)
		}
		w.Close()
		r.Close()
		ln.Close()
		srv.Close()
		cli.Close()
	}
}

// TestUDPDoesNotAllocate counts allocations per datagram in a steady UDP
// exchange through both stacks: WriteTo, the IP and UDP headers, the
// checksum, demux, the receive queue and ReadFrom (a count, not a
// timing).
func TestUDPDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop buffers at random: allocation counts need a build without -race (go test -run TestUDPDoesNotAllocate .)")
	}
	srv, cli := newPair()
	defer srv.Close()
	defer cli.Close()
	ln, err := srv.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 53})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cli.ListenUDP("udp4", nil)
	if err != nil {
		t.Fatal(err)
	}
	to := netip.MustParseAddrPort("10.0.0.1:53")
	msg, buf := make([]byte, 1400), make([]byte, 2048)
	step := func() {
		if _, err := c.WriteToUDPAddrPort(msg, to); err != nil {
			t.Fatal(err)
		}
		if _, _, err := ln.ReadFromUDPAddrPort(buf); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 {
		step()
	}
	if n := testing.AllocsPerRun(1000, step); n > 0.01 {
		t.Errorf("%.3f allocations per datagram, want 0", n)
	}
}
