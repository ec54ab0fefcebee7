package synstack

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/synstack/synstack/link"
	"github.com/synstack/synstack/link/pipe"
	"github.com/synstack/synstack/wire"
)

// orderLink wraps a link and records the IPv4 ID of every packet written
// to it, in the order they reach the link, and counts TCP segments whose
// checksum does not verify. The stack numbers its IPv4 packets under its
// lock as it builds them, so the IDs say whether packets reach the link in
// the order they were built.
type orderLink struct {
	link.Endpoint
	mu      sync.Mutex
	ids     []uint16
	badCsum int
}

func (l *orderLink) WritePacket(pkt []byte) error {
	l.mu.Lock()
	if h, payload, err := wire.ParseIPv4(pkt); err == nil {
		l.ids = append(l.ids, h.ID)
		if h.Protocol == wire.ProtoTCP && !wire.TCPChecksumValid(payload, h.Src, h.Dst) {
			l.badCsum++
		}
	}
	l.mu.Unlock()
	return l.Endpoint.WritePacket(pkt)
}

// Packets built during packet delivery are written after the lock is
// released, those of socket calls at once: with bulk data both ways on
// several connections, both kinds interleave. Every packet must still
// reach the link in the order it was built (IDs one apart), with a valid
// checksum (computed, for queued packets, outside the lock), and OnPacket
// must see them in that same order.
func TestTxOrder(t *testing.T) {
	for _, hook := range []bool{false, true} {
		la, lb := pipe.New(1500)
		ola, olb := &orderLink{Endpoint: la}, &orderLink{Endpoint: lb}
		var hookMu sync.Mutex
		hooked := map[*orderLink][]uint16{}
		cfg := func(l *orderLink, a netip.Addr) Config {
			c := Config{Link: l, Addrs: []netip.Prefix{netip.PrefixFrom(a, 24)}}
			if hook {
				c.OnPacket = func(dir string, pkt []byte) {
					if dir != "out" {
						return
					}
					hookMu.Lock()
					hooked[l] = append(hooked[l], binary.BigEndian.Uint16(pkt[4:6]))
					hookMu.Unlock()
				}
			}
			return c
		}
		a, err := New(cfg(ola, addrA))
		must(t, err)
		b, err := New(cfg(olb, addrB))
		must(t, err)

		ln, err := a.Listen("tcp", "10.0.0.1:80")
		must(t, err)
		const conns, size = 4, 256 << 10
		var ends []net.Conn
		for range conns {
			c, err := b.Dial("tcp", "10.0.0.1:80")
			must(t, err)
			s, err := ln.Accept()
			must(t, err)
			ends = append(ends, c, s)
		}
		data := bytes.Repeat([]byte("0123456789abcdef"), size/16)
		var wg sync.WaitGroup
		errs := make(chan error, 2*len(ends))
		for _, c := range ends {
			wg.Add(2)
			go func() {
				defer wg.Done()
				if _, err := c.Write(data); err != nil {
					errs <- err
				}
				if err := c.(*TCPConn).CloseWrite(); err != nil {
					errs <- err
				}
			}()
			go func() {
				defer wg.Done()
				got, err := io.ReadAll(c)
				if err != nil {
					errs <- err
				} else if !bytes.Equal(got, data) {
					errs <- io.ErrUnexpectedEOF
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for _, c := range ends {
			c.Close()
		}
		ln.Close()
		a.Close()
		b.Close()

		for _, l := range []*orderLink{ola, olb} {
			l.mu.Lock()
			for i := 1; i < len(l.ids); i++ {
				if l.ids[i] != l.ids[i-1]+1 {
					t.Fatalf("hook %v: packet %d of %d reached the link out of order: ID %d after %d",
						hook, i, len(l.ids), l.ids[i], l.ids[i-1])
				}
			}
			if l.badCsum != 0 {
				t.Errorf("hook %v: %d segments with a bad checksum", hook, l.badCsum)
			}
			if hook && !slices.Equal(hooked[l], l.ids) {
				t.Errorf("hook %v: OnPacket saw %d packets, the link %d, or in another order", hook, len(hooked[l]), len(l.ids))
			}
			l.mu.Unlock()
		}
	}
}
