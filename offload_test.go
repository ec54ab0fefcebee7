package synstack_test

import (
	"io"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/link/pipe"
	"github.com/synstack/synstack/wire"
)

// TestChecksumOffload moves data over a pipe with and without
// ChecksumOffload and looks at the TCP checksums on the link: computed
// without it, left out with it (the link vouches for the packets), the
// stream arriving whole either way.
func TestChecksumOffload(t *testing.T) {
	for _, offload := range []bool{false, true} {
		a, b := pipe.NewWithOptions(pipe.Options{MTU: 1500, ChecksumOffload: offload})
		var good, bad atomic.Int64
		a.SetDropFunc(func(pkt []byte) bool {
			h, tcp, err := wire.ParseIPv4(pkt)
			if err != nil {
				return false
			}
			if wire.TCPChecksumValid(tcp, h.Src, h.Dst) {
				good.Add(1)
			} else {
				bad.Add(1)
			}
			return false
		})
		srv, err := synstack.New(synstack.Config{Link: b, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}})
		if err != nil {
			t.Fatal(err)
		}
		cli, err := synstack.New(synstack.Config{Link: a, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := srv.Listen("tcp", "10.0.0.1:80")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan int64)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				done <- -1
				return
			}
			n, _ := io.Copy(io.Discard, c)
			c.Close()
			done <- n
		}()
		c, err := cli.Dial("tcp", "10.0.0.1:80")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(make([]byte, 1<<20)); err != nil {
			t.Fatal(err)
		}
		c.Close()
		if n := <-done; n != 1<<20 {
			t.Fatalf("offload %v: %d bytes arrived, want %d", offload, n, 1<<20)
		}
		ln.Close()
		srv.Close()
		cli.Close()
		if offload && good.Load() > 1 || !offload && bad.Load() > 0 || bad.Load()+good.Load() == 0 {
			t.Errorf("offload %v: %d segments with a valid checksum, %d without", offload, good.Load(), bad.Load())
		}
	}
}
