//go:build unix

package tun

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/synstack/synstack/wire"
)

// batchRecorder is a Dispatcher that takes batches, verified or not, and
// records each call as a string: its kind and the first payload byte of
// each packet. Its first call waits for hold to close, so that the test
// can fill the device meanwhile.
type batchRecorder struct {
	calls chan string
	hold  chan struct{}
	held  bool
}

func (r *batchRecorder) record(kind string, pkts ...[]byte) {
	var b []byte
	for _, p := range pkts {
		b = append(b, p[len(p)-1])
	}
	r.calls <- kind + " " + string(b)
	if !r.held {
		r.held = true
		<-r.hold
	}
}

func (r *batchRecorder) DeliverPacket(p []byte)             { r.record("one", p) }
func (r *batchRecorder) DeliverVerified(p []byte)           { r.record("verified", p) }
func (r *batchRecorder) DeliverPackets(p [][]byte)          { r.record("batch", p...) }
func (r *batchRecorder) DeliverVerifiedPackets(ps [][]byte) { r.record("verified-batch", ps...) }
func (r *batchRecorder) next(t *testing.T) string {
	t.Helper()
	select {
	case c := <-r.calls:
		return c
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery in 30 s")
		return ""
	}
}

// Packets waiting in the device when the reader comes back from a
// delivery reach the stack together, in order: in one call for each run
// of packets the kernel vouches for (DATA_VALID), or does not.
func TestReadBatch(t *testing.T) {
	for _, tc := range []struct {
		vnet  bool
		valid string // of the packets b to f, which are marked DATA_VALID
		want  []string
	}{
		{false, "", []string{"one a", "batch bcdef"}},
		{true, "bcdf", []string{"one a", "verified-batch bcd", "one e", "verified f"}},
		{true, "bcdef", []string{"one a", "verified-batch bcdef"}},
	} {
		t.Run(fmt.Sprintf("vnet=%v,valid=%s", tc.vnet, tc.valid), func(t *testing.T) {
			fd, peer := packetPair(t)
			ep, err := FromFD(fd, FileOptions{VnetHdr: tc.vnet})
			if err != nil {
				t.Fatal(err)
			}
			defer ep.Close()
			r := &batchRecorder{calls: make(chan string, 8), hold: make(chan struct{})}
			ep.Attach(r)
			send := func(c byte) {
				pkt := seg{seq: uint32(c), flags: wire.FlagACK, payload: []byte{c}}.build(t)
				if !tc.vnet {
					writePeer(t, peer, pkt)
					return
				}
				h := make([]byte, vnetHdrLen)
				if bytes.IndexByte([]byte(tc.valid), c) >= 0 {
					h[0] = vnetFlagDataValid
				}
				writePeer(t, peer, h, pkt)
			}
			send('a')
			got := []string{r.next(t)} // the reader now waits in the delivery
			for _, c := range []byte("bcdef") {
				send(c)
			}
			close(r.hold)
			for len(got) < len(tc.want) {
				got = append(got, r.next(t))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("deliveries %q, want %q", got, tc.want)
			}
			if s := ep.Stats(); s.PacketsIn != 6 || s.VerifiedIn != uint64(len(tc.valid)) {
				t.Errorf("%d packets in, %d verified; want 6, %d", s.PacketsIn, s.VerifiedIn, len(tc.valid))
			}
		})
	}
}
