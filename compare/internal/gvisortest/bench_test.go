package gvisortest_test

import (
	"context"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/compare/internal/gvisortest"
	"github.com/synstack/synstack/link"
	"github.com/synstack/synstack/link/pipe"
)

// forward is a Dispatcher that writes what it is given to another link:
// two Peers' links joined back to back make a gVisor-to-gVisor network.
type forward struct{ to link.Endpoint }

func (f forward) DeliverPacket(pkt []byte) { f.to.WritePacket(pkt) }

// BenchmarkBulk moves data one way over one connection, MB/s per pair of
// stacks, side by side: synstack to synstack (link/pipe), gVisor to
// gVisor, and each to the other. Run with
//
//	go test -run '^$' -bench Bulk ./internal/gvisortest/
func BenchmarkBulk(b *testing.B) {
	for _, mtu := range []int{1500, 65535} {
		for _, pair := range []string{"synstack-synstack", "gvisor-gvisor", "synstack-gvisor", "gvisor-synstack"} {
			b.Run(pair+"/mtu"+itoa(mtu), func(b *testing.B) {
				w, r, stop := benchPair(b, pair, mtu)
				defer stop()
				benchCopy(b, w, r)
			})
		}
	}
}

func itoa(n int) string {
	if n == 1500 {
		return "1500"
	}
	return "65535"
}

// benchCopy writes b.N MiB to w and reads them from r.
func benchCopy(b *testing.B, w io.WriteCloser, r io.Reader) {
	const chunk = 1 << 20
	b.SetBytes(chunk)
	done := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(io.Discard, r)
		done <- n
	}()
	buf := make([]byte, chunk)
	b.ResetTimer()
	for range b.N {
		if _, err := w.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if cw, ok := w.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	if n := <-done; n != int64(b.N)*chunk {
		b.Fatalf("read %d of %d", n, int64(b.N)*chunk)
	}
}

var (
	addrA = []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}
	addrB = []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}
)

// benchPair returns a connection's writing end (first stack) and reading
// end (second), and a function that tears everything down.
func benchPair(b *testing.B, pair string, mtu int) (io.WriteCloser, io.Reader, func()) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stops []func()
	stop := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	fail := func(err error) {
		stop()
		b.Fatal(err)
	}
	switch pair {
	case "synstack-synstack":
		la, lb := pipe.New(mtu)
		sa, err := synstack.New(synstack.Config{Link: la, Addrs: addrA})
		if err != nil {
			fail(err)
		}
		stops = append(stops, func() { sa.Close() })
		sb, err := synstack.New(synstack.Config{Link: lb, Addrs: addrB})
		if err != nil {
			fail(err)
		}
		stops = append(stops, func() { sb.Close() })
		ln, err := sb.Listen("tcp", "10.0.0.2:80")
		if err != nil {
			fail(err)
		}
		defer ln.Close()
		w, err := sa.DialContext(ctx, "tcp", "10.0.0.2:80")
		if err != nil {
			fail(err)
		}
		r, err := ln.Accept()
		if err != nil {
			fail(err)
		}
		stops = append(stops, func() { w.Close(); r.Close() })
		return w, r, stop
	case "gvisor-gvisor":
		pa, err := gvisortest.New(mtu, addrA...)
		if err != nil {
			fail(err)
		}
		stops = append(stops, pa.Close)
		pb, err := gvisortest.New(mtu, addrB...)
		if err != nil {
			fail(err)
		}
		stops = append(stops, pb.Close)
		pa.Link().Attach(forward{pb.Link()})
		pb.Link().Attach(forward{pa.Link()})
		ln, err := pb.Listen(netip.MustParseAddrPort("10.0.0.2:80"))
		if err != nil {
			fail(err)
		}
		defer ln.Close()
		acc := make(chan *gvisortest.Conn, 1)
		go func() {
			c, _ := ln.Accept(ctx)
			acc <- c
		}()
		w, err := pa.Dial(ctx, netip.MustParseAddrPort("10.0.0.2:80"))
		if err != nil {
			fail(err)
		}
		r := <-acc
		if r == nil {
			fail(io.ErrUnexpectedEOF)
		}
		stops = append(stops, func() { w.Close(); r.Close() })
		return w, r, stop
	}
	// synstack and gVisor, either writing.
	gv, err := gvisortest.New(mtu, addrB...)
	if err != nil {
		fail(err)
	}
	stops = append(stops, gv.Close)
	s, err := synstack.New(synstack.Config{Link: gv.Link(), Addrs: addrA})
	if err != nil {
		fail(err)
	}
	stops = append(stops, func() { s.Close() })
	ln, err := gv.Listen(netip.MustParseAddrPort("10.0.0.2:80"))
	if err != nil {
		fail(err)
	}
	defer ln.Close()
	acc := make(chan *gvisortest.Conn, 1)
	go func() {
		c, _ := ln.Accept(ctx)
		acc <- c
	}()
	sc, err := s.DialContext(ctx, "tcp", "10.0.0.2:80")
	if err != nil {
		fail(err)
	}
	gc := <-acc
	if gc == nil {
		fail(io.ErrUnexpectedEOF)
	}
	stops = append(stops, func() { sc.Close(); gc.Close() })
	if pair == "synstack-gvisor" {
		return sc.(io.WriteCloser), gc, stop
	}
	return gc, sc, stop
}
