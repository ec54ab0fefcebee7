package tcp

import (
	"errors"
	"syscall"
	"testing"
	"time"
)

// With nothing in flight and a link without room for new data
// (RoomHost), the probe timer watches the connection as Linux's does
// after a transmit that failed locally: first after the RTO, then every
// half second without backing off, each try counted in tcpi_probes; with
// TCP_USER_TIMEOUT the connection fails with ETIMEDOUT once that long has
// passed since the first try (Linux's icsk_probes_tstamp).
func TestHostProbesWhileLinkFull(t *testing.T) {
	n, h := roomNet(t)
	a := n.a.c
	a.SetUserTimeout(3 * time.Second)
	h.room = 0
	if _, err := a.Write(n.now, make([]byte, 24)); err != nil {
		t.Fatal(err)
	}
	if len(n.a.out) != 0 {
		t.Fatalf("sent %d segments with no room", len(n.a.out))
	}
	start := n.now
	if d := a.Deadline().Sub(n.now); d != max(a.rtx.rto, a.cfg.RTOMin) {
		t.Fatalf("first try in %v, want the RTO %v", d, a.rtx.rto)
	}
	var tries []time.Duration
	for a.State() != Closed && len(tries) < 20 {
		n.now = a.Deadline()
		a.Tick(n.now)
		tries = append(tries, n.now.Sub(start))
	}
	if len(n.a.out) != 0 {
		t.Fatalf("sent %d segments with no room", len(n.a.out))
	}
	rto := tries[0]
	for i, at := range tries {
		if want := rto + time.Duration(i)*resourceProbeInterval; at != want {
			t.Fatalf("try %d at %v, want %v (tries %v)", i, at, want, tries)
		}
	}
	if len(tries) != 7 {
		t.Fatalf("%d tries before giving up, want 6 probes and the timeout: %v", len(tries), tries)
	}
	if _, err := a.Write(n.now, []byte("x")); !errors.Is(err, syscall.ETIMEDOUT) {
		t.Fatalf("write after the timeout: %v, want ETIMEDOUT", err)
	}
	if p, b := a.probesOut(), a.Info(n.now).Backoff; p != 6 || b != 0 {
		t.Fatalf("probes %d, backoff %d; want 6 and 0", p, b)
	}
}

// Room again before the timeout: the held data goes, and the ACK of it
// clears the count of probes.
func TestHostProbesEndWithRoom(t *testing.T) {
	n, h := roomNet(t)
	a := n.a.c
	h.room = 0
	a.Write(n.now, make([]byte, 100))
	for range 3 {
		n.now = a.Deadline()
		a.Tick(n.now)
	}
	if a.probesOut() != 3 {
		t.Fatalf("%d probes after three tries, want 3", a.probesOut())
	}
	h.room = 1 << 30
	a.Push(n.now)
	n.settle()
	if n.b.c.Readable() != 100 || a.probesOut() != 0 || a.State() != Established {
		t.Fatalf("B has %d bytes, %d probes, A in %v", n.b.c.Readable(), a.probesOut(), a.State())
	}
}
