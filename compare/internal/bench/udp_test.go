package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Every kind carries every size over one flow and several: all that was
// sent is accounted for, and some of it arrived.
func TestUDPSmoke(t *testing.T) {
	for _, k := range Kinds {
		for _, size := range UDPSizes {
			for _, flows := range []int{1, 3} {
				r, err := UDP(context.Background(), k, size, flows, Budget{Count: 3000})
				if err != nil {
					t.Fatalf("%s %d B %d flow(s): %v", k, size, flows, err)
				}
				if r.Sent != 3000 || r.Received <= 0 || r.Received+r.Lost != r.Sent || r.PerSecond() <= 0 || r.Elapsed <= 0 {
					t.Errorf("%s %d B %d flow(s): %+v", k, size, flows, r)
				}
				if r.Lost > 0 {
					t.Logf("%s %d B %d flow(s): %d of %d datagrams lost (%d stalls)", k, size, flows, r.Lost, r.Sent, r.Stalls)
				}
			}
		}
	}
}

func TestUDPByDuration(t *testing.T) {
	r, err := UDP(context.Background(), Synstack, 64, 2, Budget{Warmup: 20 * time.Millisecond, Duration: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Received <= 0 || r.Sent < r.Received || r.Elapsed <= 0 {
		t.Errorf("%+v", r)
	}
}

func TestUDPBadArguments(t *testing.T) {
	for _, c := range []struct{ size, flows int }{{udpSeqLen - 1, 1}, {UDPMaxSize + 1, 1}, {64, 0}} {
		if _, err := UDP(context.Background(), Synstack, c.size, c.flows, Budget{Count: 10}); err == nil {
			t.Errorf("size %d, %d flows: no error", c.size, c.flows)
		}
	}
	if _, err := UDP(context.Background(), Synstack, 64, 1, Budget{}); err == nil {
		t.Error("an empty budget was taken")
	}
}

// fakeLink carries the datagrams of one flow through a queue much longer
// than UDPWindow, dropping those drop picks, and records the most it
// held at once.
type fakeLink struct {
	q         chan []byte
	drop      func(seq int64) bool
	trunc     bool // deliver each datagram one byte short
	closed    chan struct{}
	closeOnce sync.Once
	mu        sync.Mutex
	maxQueued int
}

func newFakeLink(drop func(int64) bool) *fakeLink {
	return &fakeLink{q: make(chan []byte, 4*UDPWindow), drop: drop, closed: make(chan struct{})}
}

// fakeEnd is one end of a fakeLink, as a net.Conn (only Read, Write,
// Close and SetWriteDeadline are used).
type fakeEnd struct {
	net.Conn
	l *fakeLink
}

func (e fakeEnd) Write(p []byte) (int, error) {
	l := e.l
	if l.drop != nil && l.drop(int64(binary.LittleEndian.Uint64(p))) {
		return len(p), nil
	}
	b := slices.Clone(p)
	if l.trunc {
		b = b[:len(b)-1]
	}
	select {
	case l.q <- b:
	default:
		return 0, errors.New("fake link: queue full")
	}
	l.mu.Lock()
	l.maxQueued = max(l.maxQueued, len(l.q))
	l.mu.Unlock()
	return len(p), nil
}

func (e fakeEnd) Read(p []byte) (int, error) {
	select {
	case b := <-e.l.q:
		return copy(p, b), nil
	case <-e.l.closed:
		return 0, net.ErrClosed
	}
}

func (e fakeEnd) Close() error {
	e.l.closeOnce.Do(func() { close(e.l.closed) })
	return nil
}

func (e fakeEnd) SetWriteDeadline(time.Time) error { return nil }

// runFake runs one flow over each link; a sender whose window stays full
// for stall writes it off.
func runFake(t *testing.T, links []*fakeLink, size int, stall time.Duration, b Budget) (UDPResult, error) {
	t.Helper()
	fs := make([]*udpFlow, len(links))
	for i, l := range links {
		fs[i] = newUDPFlow(fakeEnd{l: l}, fakeEnd{l: l})
		fs[i].stall = stall
	}
	res := UDPResult{Kind: Synstack, Size: size, Flows: len(fs)}
	err := runUDP(context.Background(), &res, fs, b)
	return res, err
}

// The sender never has more than UDPWindow datagrams in flight, though
// the link would hold four times as many, and a lossless link loses
// nothing. (The stall is an hour, so that a receiver kept off the CPU
// for a while is waited for: a stall would let the window grow.)
func TestUDPWindowBoundsTheSender(t *testing.T) {
	links := []*fakeLink{newFakeLink(nil), newFakeLink(nil)}
	r, err := runFake(t, links, 64, time.Hour, Budget{Count: 20000})
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent != 20000 || r.Received != 20000 || r.Lost != 0 || r.Stalls != 0 {
		t.Errorf("%+v", r)
	}
	for i, l := range links {
		if l.maxQueued > UDPWindow || l.maxQueued == 0 {
			t.Errorf("flow %d: %d datagrams queued at once, window %d", i, l.maxQueued, UDPWindow)
		}
	}
}

// Lost datagrams are counted, whether a later one arrives (the hole is
// passed over at once) or none does (the sender writes its window off
// after udpStall and goes on).
func TestUDPLossIsCounted(t *testing.T) {
	tenth := newFakeLink(func(seq int64) bool { return seq%10 == 9 })
	r, err := runFake(t, []*fakeLink{tenth}, 100, udpStall, Budget{Count: 5000})
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent != 5000 || r.Lost != 500 || r.Received != 4500 || r.LossPercent() != 10 {
		t.Errorf("every tenth dropped: %+v", r)
	}

	dead := newFakeLink(func(seq int64) bool { return seq >= 1000 })
	r, err = runFake(t, []*fakeLink{dead}, 100, udpStall, Budget{Count: 1000 + 3*UDPWindow})
	if err != nil {
		t.Fatal(err)
	}
	if r.Received != 1000 || r.Lost != 3*UDPWindow || r.Stalls < 2 {
		t.Errorf("all dropped after 1000: %+v", r)
	}
}

// A datagram of the wrong length fails the run; so does a run in which
// nothing arrives.
func TestUDPFailures(t *testing.T) {
	l := newFakeLink(nil)
	l.trunc = true
	if _, err := runFake(t, []*fakeLink{l}, 64, udpStall, Budget{Count: 100}); err == nil || !strings.Contains(err.Error(), "63 bytes") {
		t.Errorf("truncated datagrams: %v", err)
	}
	none := newFakeLink(func(int64) bool { return true })
	if _, err := runFake(t, []*fakeLink{none}, 64, udpStall, Budget{Warmup: time.Millisecond, Duration: 30 * time.Millisecond}); err == nil {
		t.Error("no error when nothing arrived")
	}
}

// Run with Only udp gives the rate and loss rows of every size and flow
// count, with the three kinds, and the ratios on the rate rows only.
func TestRunOnlyUDP(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the UDP figures of the three kinds for a short while (a few seconds)")
	}
	r, err := Run(context.Background(), Options{Quick: true, Only: []string{NameUDP}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Errors) > 0 || len(r.Figures) != 2*len(UDPSizes)*len(UDPFlows) {
		t.Fatalf("%d figures, errors %v", len(r.Figures), r.Errors)
	}
	for _, name := range []string{"udp_64b_1flow", "udp_64b_8flow", "udp_1400b_1flow", "udp_1400b_8flow"} {
		f, loss := r.Figure(name), r.Figure(name+"_loss")
		if f == nil || loss == nil {
			t.Fatalf("no %s or its loss", name)
		}
		if f.Synstack == nil || f.GVisor == nil || f.Kernel == nil || f.SynstackOverGVisor == nil || f.SynstackOverKernel == nil || *f.Synstack <= 0 {
			t.Errorf("%s: %+v", name, f)
		}
		if loss.Synstack == nil || loss.GVisor == nil || loss.Kernel == nil || *loss.Synstack < 0 || *loss.Synstack > 100 ||
			loss.SynstackOverGVisor != nil || loss.SynstackOverKernel != nil {
			t.Errorf("%s_loss: %+v", name, loss)
		}
	}
}
