package synstack_test

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"testing"
	"time"
)

var bigFlag = flag.Bool("synstack.big", false, "move 1 GiB each way in the bulk tests instead of 32 MiB")

// bulkSize is what the bulk tests move each way over one connection: 32
// MiB by default (64 MiB per connection, a few seconds under -race on two
// cores), 4 MiB with -short, 1 GiB with -synstack.big.
func bulkSize(t testing.TB) int64 {
	switch {
	case *bigFlag:
		return 1 << 30
	case testing.Short():
		return 4 << 20
	}
	return 32 << 20
}

// randReader is n bytes of a seeded pseudo-random stream.
func randReader(seed uint64, n int64) io.Reader {
	return io.LimitReader(mrand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}), n)
}

// hashCopy writes n pseudo-random bytes to w with io.Copy and returns
// their SHA-256.
func hashCopy(w io.Writer, seed uint64, n int64) ([32]byte, error) {
	h := sha256.New()
	k, err := io.Copy(w, io.TeeReader(randReader(seed, n), h))
	if err == nil && k != n {
		err = fmt.Errorf("copied %d of %d bytes", k, n)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum, err
}

// hashRead reads r to its end and returns the SHA-256 and length.
func hashRead(r io.Reader) ([32]byte, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum, n, err
}

// bulk sends n bytes from a to b and n other bytes from b to a with
// io.Copy, both at once, each followed by a half-close, and compares the
// SHA-256 of what arrived with what was sent.
func bulk(t *testing.T, a, b net.Conn, n int64) {
	t.Helper()
	type result struct {
		sum [32]byte
		n   int64
		err error
	}
	var sent, got [2]chan result
	for i, pair := range [][2]net.Conn{{a, b}, {b, a}} {
		sent[i] = make(chan result, 1)
		got[i] = make(chan result, 1)
		go func() {
			sum, err := hashCopy(pair[0], uint64(i+1), n)
			if err == nil {
				err = closeWrite(pair[0])
			}
			sent[i] <- result{sum, n, err}
		}()
		go func() {
			sum, k, err := hashRead(pair[1])
			got[i] <- result{sum, k, err}
		}()
	}
	for i := range 2 {
		s, g := <-sent[i], <-got[i]
		switch {
		case s.err != nil:
			t.Fatalf("direction %d: send: %v", i, s.err)
		case g.err != nil:
			t.Fatalf("direction %d: receive: %v", i, g.err)
		case g.n != n || g.sum != s.sum:
			t.Fatalf("direction %d: received %d bytes of %d, hash %x, sent %x", i, g.n, n, g.sum[:8], s.sum[:8])
		}
	}
}

func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// TestBulkCopy moves bulkSize bytes each way at once over one connection,
// at MTU 1500 and 65535, IPv4 and IPv6, and compares SHA-256 hashes.
func TestBulkCopy(t *testing.T) {
	for _, mtu := range []int{1500, 65535} {
		for _, addr := range []string{"10.0.0.1:80", "[fd00::1]:80"} {
			t.Run(fmt.Sprintf("mtu%d/%s", mtu, addr), func(t *testing.T) {
				srv, cli := stackPair(t, mtu, nil)
				c1, c2 := connPair(t, srv, cli, "tcp", addr)
				defer c1.Close()
				defer c2.Close()
				start := time.Now()
				n := bulkSize(t)
				bulk(t, c1, c2, n)
				d := time.Since(start)
				t.Logf("%d MiB each way in %v: %.1f MB/s", n>>20, d.Round(time.Millisecond), float64(2*n)/d.Seconds()/1e6)
			})
		}
	}
}
