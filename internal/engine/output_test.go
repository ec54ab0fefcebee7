package engine

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/synstack/synstack/clock"
	"github.com/synstack/synstack/link"
	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/tcp/seq"
	"github.com/synstack/synstack/wire"
)

// segLink is a link of MTU 1500 that records what is written to it, and
// cuts segments up to max octets when max is above the MTU.
type segLink struct {
	max    int
	writes [][]byte // every packet written, headers and payload joined
	sizes  []int    // the segSize of each write, 0 for a plain one
}

func (l *segLink) MTU() int                      { return 1500 }
func (l *segLink) Attach(link.Dispatcher)        {}
func (l *segLink) Close() error                  { return nil }
func (l *segLink) SegmentOffload() int           { return l.max }
func (l *segLink) ChecksumOffload() (bool, bool) { return true, false }
func (l *segLink) WritePacket(p []byte) error {
	return l.WritePacketGather(p, nil)
}
func (l *segLink) WritePacketGather(hdr, payload []byte) error {
	return l.WritePacketSegments(hdr, payload, 0)
}
func (l *segLink) WritePacketSegments(hdr, payload []byte, segSize int) error {
	l.writes = append(l.writes, append(append([]byte(nil), hdr...), payload...))
	l.sizes = append(l.sizes, segSize)
	return nil
}

// sendOne sends seg from 10.0.0.1:80 to 10.0.0.2:40000 through a host on
// l, as a connection's Host.Send does, and returns the host.
func sendOne(t *testing.T, l *segLink, hook func(string, []byte), seg *tcp.Segment) *Host {
	t.Helper()
	s, err := New(Config{Link: l, Clock: clock.Real{}, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")},
		Hooks: Hooks{OnPacket: hook}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.ctl.Lock()
	s.sendSegmentLocked(s.g(), netip.MustParseAddrPort("10.0.0.1:80"), netip.MustParseAddrPort("10.0.0.2:40000"), seg)
	s.ctl.Unlock()
	return s
}

// A segment of several MSS reaches a link that cuts segments once, as one
// packet with the MSS beside it; the host counts the segments the wire
// carries, and numbers IPv4 IDs on past the pieces.
func TestSegmentReachesLinkOnce(t *testing.T) {
	for _, hooked := range []bool{false, true} {
		var seen [][]byte
		var hook func(string, []byte)
		if hooked {
			hook = func(dir string, p []byte) { seen = append(seen, append([]byte(nil), p...)) }
		}
		payload := bytes.Repeat([]byte("0123456789"), 1000) // 10000 octets
		seg := &tcp.Segment{SEQ: seq.Value(1000), ACK: 1, Flags: wire.FlagACK | wire.FlagPSH, WND: 100, Payload: payload, GSOSize: 1448}
		l := &segLink{max: 65535}
		s := sendOne(t, l, hook, seg)
		if len(l.writes) != 1 || l.sizes[0] != 1448 {
			t.Fatalf("hooked %v: %d writes of sizes %v, want one of 1448", hooked, len(l.writes), l.sizes)
		}
		p := l.writes[0]
		if len(p) != 20+20+len(payload) || !bytes.Equal(p[40:], payload) {
			t.Fatalf("hooked %v: packet of %d octets, want the headers and the payload", hooked, len(p))
		}
		if hooked && (len(seen) != 1 || !bytes.Equal(seen[0], p)) {
			t.Fatalf("the packet hook saw %d packets, want the one written", len(seen))
		}
		st := s.Stats()
		if st.TcpOutSegs != 7 || st.IpOutRequests != 1 {
			t.Fatalf("TcpOutSegs %d, IpOutRequests %d: want 7 and 1", st.TcpOutSegs, st.IpOutRequests)
		}
		if id, now := uint16(p[4])<<8|uint16(p[5]), s.g().ipID; now != id+6 {
			t.Fatalf("IPv4 ID %d and next %d: the link numbers six more pieces after it", id, now+1)
		}
	}
}

// A segment for the link to cut whose pieces would not fit the MTU, or
// that the link cannot take, is dropped and counted, never written.
func TestSegmentTooLargeIsDropped(t *testing.T) {
	for _, c := range []struct {
		name string
		max  int
		seg  tcp.Segment
	}{
		{"pieces above the MTU", 65535, tcp.Segment{Flags: wire.FlagACK, Payload: make([]byte, 4000), GSOSize: 1461}},
		{"above the link's ceiling", 8000, tcp.Segment{Flags: wire.FlagACK, Payload: make([]byte, 9000), GSOSize: 1000}},
		{"a link that does not cut", 0, tcp.Segment{Flags: wire.FlagACK, Payload: make([]byte, 4000), GSOSize: 1000}},
	} {
		l := &segLink{max: c.max}
		s := sendOne(t, l, nil, &c.seg)
		if len(l.writes) != 0 || s.Stats().IpOutDiscards != 1 {
			t.Errorf("%s: %d writes, IpOutDiscards %d: want none and 1", c.name, len(l.writes), s.Stats().IpOutDiscards)
		}
	}
}

// A batch the link vouches for (DeliverVerifiedPackets) is taken without
// checking its checksums, each packet counted as trusted; the same batch
// through DeliverPackets is checked, and its partial checksums fail. The
// packets are SYNs to a closed port, so each one taken draws a RST.
func TestDeliverVerifiedPacketsTrustsTheBatch(t *testing.T) {
	// The peer's SYNs, with the partial checksums a checksum-offloading
	// link leaves: wrong unless the link completes them.
	from := &segLink{}
	peer := sendOne(t, from, nil, &tcp.Segment{SEQ: 100, Flags: wire.FlagSYN, WND: 1000})
	peer.ctl.Lock()
	peer.sendSegmentLocked(peer.g(), netip.MustParseAddrPort("10.0.0.1:80"), netip.MustParseAddrPort("10.0.0.2:40001"),
		&tcp.Segment{SEQ: 200, Flags: wire.FlagSYN, WND: 1000})
	peer.ctl.Unlock()
	if len(from.writes) != 2 {
		t.Fatalf("%d SYNs written, want 2", len(from.writes))
	}
	for _, verified := range []bool{false, true} {
		l := &segLink{}
		s, err := New(Config{Link: l, Clock: clock.Real{}, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}})
		if err != nil {
			t.Fatal(err)
		}
		if verified {
			s.DeliverVerifiedPackets(from.writes)
		} else {
			s.DeliverPackets(from.writes)
		}
		st := s.Stats()
		s.Close()
		want := 0 // checked: both dropped
		if verified {
			want = 2
		}
		if len(l.writes) != want || st.SynstackInCsumTrusted != uint64(want) || st.TcpInCsumErrors != uint64(2-want) {
			t.Errorf("verified %v: %d RSTs, %d trusted, %d checksum errors; want %d, %d, %d",
				verified, len(l.writes), st.SynstackInCsumTrusted, st.TcpInCsumErrors, want, want, 2-want)
		}
		for _, w := range l.writes {
			if wire.TCPFlags(w[20+13])&wire.FlagRST == 0 {
				t.Errorf("verified: answered %x, want a RST", w[20:40])
			}
		}
	}
}
