package tcp

import (
	"errors"
	"syscall"
	"testing"
)

// TestNotSentLowat: under TCP_NOTSENT_LOWAT a write takes what the
// windows let leave at once plus pieces of the size goal while fewer
// bytes than the mark wait unsent (TestNotSentLowatWriteRoom has Linux's
// figures); at the mark a write gets EAGAIN; the socket is
// ready for writing again once fewer than half the mark wait.
func TestNotSentLowat(t *testing.T) {
	n := newNet(t, nil)
	n.handshake()
	a := n.a.c
	const lowat = 4000
	a.SetNotSentLowat(lowat)
	mss := a.currentMSS()
	cwnd := a.cc.cwnd
	if k, err := a.Write(n.now, make([]byte, cwnd)); k != cwnd || err != nil || a.Unsent() != 0 {
		t.Fatalf("a window's worth: wrote %d (%v), %d unsent; want %d, all sent", k, err, a.Unsent(), cwnd)
	}
	// With nothing unsent the write starts a piece of the size goal and
	// fills it (Linux checks the mark only before a new piece).
	k, err := a.Write(n.now, make([]byte, 100000))
	if want := max(a.sizeGoal(mss), (lowat+mss-1)/mss*mss); k != want || err != nil || a.Unsent() != want {
		t.Fatalf("with the window full: wrote %d (%v), %d unsent; want %d", k, err, a.Unsent(), want)
	}
	if a.WriteReady() {
		t.Errorf("ready for writing with %d bytes unsent, mark %d", a.Unsent(), lowat)
	}
	if _, err := a.Write(n.now, []byte{1}); !errors.Is(err, syscall.EAGAIN) {
		t.Errorf("write at the mark: %v, want EAGAIN", err)
	}
	n.settle() // ACKs open the window: the data leaves
	if a.Unsent() >= lowat/2 || !a.WriteReady() {
		t.Errorf("after the ACKs: %d unsent, ready %v; want fewer than %d and ready", a.Unsent(), a.WriteReady(), lowat/2)
	}
	a.SetNotSentLowat(0) // no mark: the send buffer alone limits
	if k, _ := a.Write(n.now, make([]byte, 100000)); k <= lowat {
		t.Errorf("without a mark: wrote %d", k)
	}
}
