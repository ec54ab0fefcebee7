//go:build unix

package tun

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/synstack/synstack/wire"
)

// The tests of FromFD and FromFile over a pair of Unix datagram sockets:
// like a TUN device, each read gives one packet and each write takes one,
// so the endpoint cannot tell them apart. They need no privileges.

// packetPair returns a descriptor for the endpoint and its peer, the
// test's end, which reads with a deadline.
func packetPair(t *testing.T) (fd int, peer *os.File) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.SetNonblock(fds[1], true); err != nil {
		t.Fatal(err)
	}
	peer = os.NewFile(uintptr(fds[1]), "peer")
	t.Cleanup(func() { peer.Close() })
	return fds[0], peer
}

// recorder is a Dispatcher that keeps a copy of every packet.
type recorder chan []byte

func (r recorder) DeliverPacket(p []byte) { r <- bytes.Clone(p) }

// next returns the next packet delivered.
func (r recorder) next(t *testing.T) []byte {
	t.Helper()
	select {
	case p := <-r:
		return p
	case <-time.After(30 * time.Second):
		t.Fatal("no packet delivered in 30 s")
		return nil
	}
}

// readPeer returns the next datagram the endpoint wrote to peer.
func readPeer(t *testing.T, peer *os.File) []byte {
	t.Helper()
	peer.SetReadDeadline(time.Now().Add(30 * time.Second))
	b := make([]byte, 70000)
	n, err := peer.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	return b[:n]
}

// writePeer writes one datagram, the concatenation of parts, to the endpoint.
func writePeer(t *testing.T, peer *os.File, parts ...[]byte) {
	t.Helper()
	if _, err := peer.Write(bytes.Join(parts, nil)); err != nil {
		t.Fatal(err)
	}
}

// afHeader is the address family header of an IP packet of version v.
func afHeader(v int) []byte {
	af := uint32(afInet)
	if v == 6 {
		af = afInet6
	}
	return binary.BigEndian.AppendUint32(nil, af)
}

// Packets cross a plain descriptor as they are, both ways, IPv4 and IPv6;
// a TCP packet larger than FileOptions.MTU is cut to it; Close closes the
// descriptor.
func TestFromFDPlain(t *testing.T) {
	fd, peer := packetPair(t)
	ep, err := FromFD(fd, FileOptions{MTU: 576})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	r := make(recorder, 4)
	ep.Attach(r)
	if ep.MTU() != 576 || ep.Created() {
		t.Errorf("MTU %d, created %v", ep.MTU(), ep.Created())
	}
	for _, v6 := range []bool{false, true} {
		pkt := seg{v6: v6, seq: 1, flags: wire.FlagACK, payload: []byte("hello")}.build(t)
		writePeer(t, peer, pkt)
		if got := r.next(t); !bytes.Equal(got, pkt) {
			t.Errorf("v6 %v: delivered\n%x\nwant\n%x", v6, got, pkt)
		}
		if err := ep.WritePacket(pkt); err != nil {
			t.Fatal(err)
		}
		if got := readPeer(t, peer); !bytes.Equal(got, pkt) {
			t.Errorf("v6 %v: written\n%x\nwant\n%x", v6, got, pkt)
		}
	}
	big := seg{seq: 1, flags: wire.FlagACK, payload: bytes.Repeat([]byte("x"), 1200)}.build(t)
	if err := ep.WritePacket(big); err != nil {
		t.Fatal(err)
	}
	var payload []byte
	for len(payload) < 1200 {
		s := readPeer(t, peer)
		if len(s) > 576 {
			t.Fatalf("a %d-byte segment over an MTU of 576", len(s))
		}
		_, data, err := wire.ParseTCP(s[20:])
		if err != nil {
			t.Fatal(err)
		}
		payload = append(payload, data...)
	}
	if !bytes.Equal(payload, bytes.Repeat([]byte("x"), 1200)) {
		t.Errorf("segments carry %q", payload)
	}
	if _, err := ep.KernelReady(src4); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("KernelReady: %v", err)
	}
	if err := ep.Close(); err != nil {
		t.Fatal(err)
	}
	// After Close, which waits for the reader and the writer, the
	// counters are final.
	if s := ep.Stats(); s.PacketsIn != 2 || s.PacketsOut != 5 || s.WritesOut != 5 || s.DropBad != 0 {
		t.Errorf("stats %+v, want 2 packets in, 5 out in 5 writes", s)
	}
	if err := ep.WritePacket(big); err != ErrClosed {
		t.Errorf("WritePacket after Close: %v", err)
	}
	if _, err := peer.Write([]byte{0x45}); err == nil {
		t.Error("the endpoint's descriptor is still open after Close")
	}
}

// With FileOptions.AFHeader (macOS utun), every packet read loses its
// 4-byte address family and every packet written gains this OS's; a
// datagram too short for the header is dropped and counted.
func TestFromFDAFHeader(t *testing.T) {
	fd, peer := packetPair(t)
	ep, err := FromFD(fd, FileOptions{MTU: 576, AFHeader: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	r := make(recorder, 4)
	ep.Attach(r)
	writePeer(t, peer, []byte{0, 0, 2})
	for _, v6 := range []bool{false, true} {
		v := 4
		if v6 {
			v = 6
		}
		pkt := seg{v6: v6, seq: 1, flags: wire.FlagACK, payload: []byte("hello")}.build(t)
		writePeer(t, peer, afHeader(v), pkt)
		if got := r.next(t); !bytes.Equal(got, pkt) {
			t.Errorf("IPv%d: delivered\n%x\nwant\n%x", v, got, pkt)
		}
		if err := ep.WritePacket(pkt); err != nil {
			t.Fatal(err)
		}
		if got, want := readPeer(t, peer), append(afHeader(v), pkt...); !bytes.Equal(got, want) {
			t.Errorf("IPv%d: written\n%x\nwant\n%x", v, got, want)
		}
	}
	// Cut to the MTU, each segment has its header.
	big := seg{v6: true, seq: 1, flags: wire.FlagACK, payload: bytes.Repeat([]byte("y"), 1000)}.build(t)
	if err := ep.WritePacket(big); err != nil {
		t.Fatal(err)
	}
	for n := 0; n < 1000; {
		s := readPeer(t, peer)
		if !bytes.Equal(s[:afHdrLen], afHeader(6)) || len(s) > afHdrLen+576 || s[afHdrLen]>>4 != 6 {
			t.Fatalf("segment %x...", s[:min(len(s), 8)])
		}
		_, data, err := wire.ParseTCP(s[afHdrLen+40:])
		if err != nil {
			t.Fatal(err)
		}
		n += len(data)
	}
	ep.Close() // waits for the reader: the counters are final
	if s := ep.Stats(); s.DropBad != 1 || s.PacketsIn != 2 {
		t.Errorf("stats %+v, want 1 dropped, 2 in", s)
	}
}

// With FileOptions.VnetHdr, a virtio-net header precedes every packet
// both ways, and a TCP packet goes out with its checksum left to the
// kernel.
func TestFromFDVnetHdr(t *testing.T) {
	fd, peer := packetPair(t)
	ep, err := FromFD(fd, FileOptions{VnetHdr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	r := make(recorder, 4)
	ep.Attach(r)
	pkt := seg{seq: 1, flags: wire.FlagACK, payload: []byte("hello")}.build(t)
	writePeer(t, peer, make([]byte, vnetHdrLen), pkt)
	if got := r.next(t); !bytes.Equal(got, pkt) {
		t.Errorf("delivered\n%x\nwant\n%x", got, pkt)
	}
	if err := ep.WritePacket(pkt); err != nil {
		t.Fatal(err)
	}
	got := readPeer(t, peer)
	if len(got) != vnetHdrLen+len(pkt) {
		t.Fatalf("wrote %d bytes, want %d", len(got), vnetHdrLen+len(pkt))
	}
	var h vnetHdr
	h.decode(got)
	if h.flags != vnetFlagNeedsCsum || h.csumStart != 20 || h.gsoType != vnetGSONone {
		t.Errorf("virtio-net header %+v", h)
	}
	if !bytes.Equal(got[vnetHdrLen:vnetHdrLen+36], pkt[:36]) {
		t.Errorf("packet\n%x\nwant\n%x", got[vnetHdrLen:], pkt)
	}
}

// FromFile takes a pollable file as it is, and closes it on Close; a
// descriptor in blocking mode it takes by a non-blocking duplicate, and
// closes the file at once. Either way packets cross, and Close stops the
// reader (TestMain checks that no goroutine is left).
func TestFromFile(t *testing.T) {
	for _, mode := range []string{"pollable", "blocking"} {
		t.Run(mode, func(t *testing.T) {
			fd, peer := packetPair(t)
			if mode == "pollable" {
				syscall.SetNonblock(fd, true)
			}
			f := os.NewFile(uintptr(fd), "tun")
			ep, err := FromFile(f, FileOptions{})
			if err != nil {
				f.Close()
				t.Fatal(err)
			}
			defer ep.Close()
			if mode == "blocking" {
				if err := f.Close(); !errors.Is(err, os.ErrClosed) {
					t.Errorf("the blocking file after FromFile: Close gives %v, want it closed already", err)
				}
			}
			r := make(recorder, 1)
			ep.Attach(r)
			pkt := seg{seq: 1, flags: wire.FlagACK}.build(t)
			writePeer(t, peer, pkt)
			if got := r.next(t); !bytes.Equal(got, pkt) {
				t.Errorf("delivered %x, want %x", got, pkt)
			}
			ep.WritePacket(pkt)
			if got := readPeer(t, peer); !bytes.Equal(got, pkt) {
				t.Errorf("written %x, want %x", got, pkt)
			}
			if err := ep.Close(); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); !errors.Is(err, os.ErrClosed) {
				t.Errorf("the file after Close: Close gives %v, want it closed already", err)
			}
			if _, err := peer.Write(pkt); err == nil {
				t.Error("the endpoint's descriptor is still open after Close")
			}
		})
	}
}

// Bad options fail before the descriptor is touched: it stays the
// caller's, open.
func TestFromFDBadOptions(t *testing.T) {
	fd, peer := packetPair(t)
	defer syscall.Close(fd)
	for _, c := range []struct {
		fd   int
		opts FileOptions
	}{
		{-1, FileOptions{}},
		{fd, FileOptions{MTU: 10}},
		{fd, FileOptions{MTU: maxIPPacket + 1}},
		{fd, FileOptions{VnetHdr: true, AFHeader: true}},
	} {
		if ep, err := FromFD(c.fd, c.opts); err == nil {
			ep.Close()
			t.Errorf("FromFD(%d, %+v): no error", c.fd, c.opts)
		}
	}
	if _, err := syscall.Write(fd, []byte{0x45}); err != nil {
		t.Errorf("the descriptor after the failed calls: %v", err)
	}
	if got := readPeer(t, peer); !bytes.Equal(got, []byte{0x45}) {
		t.Errorf("peer read %x", got)
	}
	if _, err := FromFile(nil, FileOptions{}); err == nil {
		t.Error("FromFile(nil): no error")
	}
}

// A segment the stack hands over whole (WritePacketSegments) goes out as
// it came, with one virtio-net header that has the kernel cut it: TCPv4 or
// TCPv6 GSO, ECN when it carries CWR, gso_size the segment size, the
// checksum left to the kernel. It is written in its place among the other
// packets, and never coalesced with them; one that does not qualify is
// dropped.
func TestWritePacketSegments(t *testing.T) {
	fd, peer := packetPair(t)
	ep, err := FromFD(fd, FileOptions{VnetHdr: true, MTU: 1500})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	if got := ep.SegmentOffload(); got != maxIPPacket {
		t.Fatalf("SegmentOffload %d, want %d", got, maxIPPacket)
	}
	payload := bytes.Repeat([]byte("abcdefgh"), 1810) // ten pieces of 1448
	for _, c := range []struct {
		v6      bool
		flags   wire.TCPFlags
		gsoType uint8
	}{
		{false, wire.FlagACK | wire.FlagPSH, vnetGSOTCPv4},
		{true, wire.FlagACK | wire.FlagCWR, vnetGSOTCPv6 | vnetGSOECN},
	} {
		mss := 1448
		if c.v6 {
			mss = 1428
		}
		before := seg{v6: c.v6, seq: 1, flags: wire.FlagACK, payload: payload[:mss]}.build(t)
		unit := seg{v6: c.v6, seq: uint32(1 + mss), flags: c.flags, payload: payload}.build(t)
		after := seg{v6: c.v6, seq: uint32(1 + mss + len(payload)), flags: wire.FlagACK, payload: payload[:mss]}.build(t)
		hdrLen := len(unit) - len(payload)
		if err := ep.WritePacket(before); err != nil {
			t.Fatal(err)
		}
		if err := ep.WritePacketSegments(unit[:hdrLen], unit[hdrLen:], mss); err != nil {
			t.Fatal(err)
		}
		if err := ep.WritePacket(after); err != nil {
			t.Fatal(err)
		}
		for i, want := range [][]byte{before, unit, after} {
			got := readPeer(t, peer)
			var h vnetHdr
			h.decode(got)
			if !bytes.Equal(got[vnetHdrLen+hdrLen:], want[hdrLen:]) {
				t.Fatalf("v6 %v: packet %d: %d bytes, want %d", c.v6, i, len(got)-vnetHdrLen, len(want))
			}
			wantGSO := vnetHdr{flags: vnetFlagNeedsCsum, csumStart: uint16(hdrLen - 32), csumOffset: tcpCsumOff}
			if i == 1 {
				wantGSO.gsoType, wantGSO.gsoSize, wantGSO.hdrLen = c.gsoType, uint16(mss), uint16(hdrLen)
			}
			if h != wantGSO {
				t.Errorf("v6 %v: packet %d: virtio-net header %+v, want %+v", c.v6, i, h, wantGSO)
			}
		}
	}
	if s := ep.Stats(); s.TSOOut != 2 || s.GSOOut != 0 || s.DropBad != 0 {
		t.Errorf("stats %+v: want two large segments written whole, none coalesced", s)
	}
	// Pieces above the MTU, and a SYN, are not for the kernel to cut.
	unit := seg{seq: 1, flags: wire.FlagACK, payload: payload}.build(t)
	syn := seg{seq: 1, flags: wire.FlagSYN, payload: payload}.build(t)
	ep.WritePacketSegments(unit[:52], unit[52:], 1449)
	ep.WritePacketSegments(syn[:52], syn[52:], 1448)
	if s := ep.Stats(); s.DropBad != 2 || s.TSOOut != 2 {
		t.Errorf("stats %+v: want two dropped as bad", s)
	}
}

// Close writes what was queued before it: a closing stack's last packets
// (the RSTs of the connections it aborts) are queued just before the link
// closes, and once went nowhere.
func TestCloseWritesQueued(t *testing.T) {
	for round := range 20 {
		fd, peer := packetPair(t)
		ep, err := FromFD(fd, FileOptions{MTU: 1500})
		if err != nil {
			t.Fatal(err)
		}
		const n = 8 // within a unix datagram socket's queue (max_dgram_qlen)
		for i := range n {
			p := seg{seq: uint32(1 + i), flags: wire.FlagRST | wire.FlagACK}.build(t)
			if err := ep.WritePacket(p); err != nil {
				t.Fatal(err)
			}
		}
		if err := ep.Close(); err != nil {
			t.Fatal(err)
		}
		// Whatever Close wrote is in the socket already: the deadline
		// only ends the reading.
		peer.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		got := 0
		buf := make([]byte, 2048)
		for {
			if _, err := peer.Read(buf); err != nil {
				break
			}
			got++
		}
		if got != n {
			t.Fatalf("round %d: %d of the %d packets queued before Close were written", round, got, n)
		}
	}
}
