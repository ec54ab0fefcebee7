package gvisorhost_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/synstack/synstack/compare/internal/gvisorhost"
)

// gsoBytes is what each side sends in TestGSOLinkOverTUN, each way and
// each address family.
const gsoBytes = 32 << 20

// pattern returns n bytes that differ from those of another seed.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31+i>>11) ^ seed
	}
	return b
}

// TestGSOLinkOverTUN runs gVisor on a GSOLink over a TUN device with
// virtio-net headers, in a namespace of its own, and moves 32 MiB each
// way over IPv4 and over IPv6 between the kernel and gVisor, byte-exact.
// The link must have written and read large (GSO) packets both ways, and
// dropped nothing.
func TestGSOLinkOverTUN(t *testing.T) {
	if !gvisorhost.InNamespace(t, 2*time.Minute) {
		return
	}
	const dev = "gvgso0"
	kernel4, stack4 := netip.MustParsePrefix("10.98.0.1/24"), netip.MustParsePrefix("10.98.0.2/24")
	kernel6, stack6 := netip.MustParsePrefix("fd00:98::1/64"), netip.MustParsePrefix("fd00:98::2/64")
	fd, err := gvisorhost.OpenTUN(dev, true)
	if err != nil {
		t.Fatal(err)
	}
	link, err := gvisorhost.NewGSOLink(fd, 1500)
	if err != nil {
		t.Fatal(err)
	}
	if err := gvisorhost.SetUpTUN(dev, 1500, kernel4, kernel6); err != nil {
		link.Close()
		t.Fatal(err)
	}
	s, err := gvisorhost.New(link, gvisorhost.Options{IPv6: true, ModerateReceiveBuffer: true}, stack4, stack6)
	if err != nil {
		link.Close()
		t.Fatal(err)
	}
	defer s.Destroy() // closes the link

	up, down := pattern(gsoBytes, 0), pattern(gsoBytes, 0x5a)
	for _, addr := range []netip.Addr{stack4.Addr(), stack6.Addr()} {
		before := link.Stats().GSOIn.Load()
		beforeOut := link.Stats().GSOOut.Load()
		exchange(t, s, netip.AddrPortFrom(addr, 7000), up, down)
		st := link.Stats()
		t.Logf("%v: link: %d packets in (%d large), %d out (%d large)", addr,
			st.PacketsIn.Load(), st.GSOIn.Load(), st.PacketsOut.Load(), st.GSOOut.Load())
		if st.GSOIn.Load() == before || st.GSOOut.Load() == beforeOut {
			t.Errorf("%v: no large packets both ways: %d in, %d out", addr, st.GSOIn.Load()-before, st.GSOOut.Load()-beforeOut)
		}
	}
	st := link.Stats()
	if n := st.Dropped.Load() + st.BadChecksum.Load() + st.WriteErrors.Load() + st.ReadErrors.Load(); n != 0 {
		t.Errorf("link dropped %d, bad checksums %d, write errors %d, read errors %d",
			st.Dropped.Load(), st.BadChecksum.Load(), st.WriteErrors.Load(), st.ReadErrors.Load())
	}
}

// exchange has the kernel dial gVisor at ap and send up; gVisor reads it
// to the end and answers down; both check what they got.
func exchange(t *testing.T, st *stack.Stack, ap netip.AddrPort, up, down []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ln, err := gvisorhost.Listen(st, ap, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan [32]byte, 1)
	served := make(chan error, 1)
	go func() {
		c, err := ln.Accept(ctx)
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Minute))
		h := sha256.New()
		if _, err := io.Copy(h, c); err != nil {
			served <- err
			return
		}
		got <- [32]byte(h.Sum(nil))
		_, err = c.Write(down)
		served <- err
	}()
	c, err := net.DialTimeout("tcp", ap.String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := c.Write(up); err != nil {
		t.Fatalf("kernel write: %v", err)
	}
	c.(*net.TCPConn).CloseWrite()
	back, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("kernel read: %v", err)
	}
	if err := <-served; err != nil {
		t.Fatalf("gVisor side: %v", err)
	}
	if sum := <-got; sum != sha256.Sum256(up) {
		t.Error("gVisor received other bytes than the kernel sent")
	}
	if !bytes.Equal(back, down) {
		t.Errorf("kernel received %d bytes, not the %d gVisor sent", len(back), len(down))
	}
}
