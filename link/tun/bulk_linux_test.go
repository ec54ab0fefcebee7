package tun

import (
	"flag"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/synstack/synstack"
)

var bulkBench = flag.Bool("tun.bulk", false, "run TestBulkTSO: 1 GiB each way between the kernel and synstack over TUN, with TSO and without, alternated (root)")

// noTSO is an endpoint that does not say it cuts segments: a stack on it
// sends MSS-sized segments, which the endpoint coalesces.
type noTSO struct{ *Endpoint }

func (noTSO) SegmentOffload() int { return 0 }

// bulkSize is what each direction of TestBulkTSO moves.
const bulkSize = 1 << 30

// TestBulkTSO measures one stack over a TUN device of MTU 1500 with
// offloads, with TSO (link.SegmentOffloader) and with it hidden, in 3
// alternated rounds: a kernel socket in the test's namespace downloads
// bulkSize bytes from the stack, then uploads as many to it. It is a
// benchmark, not run by default (docs/performance.md, "TSO"):
//
//	go test ./link/tun/ -run TestBulkTSO -v -tun.bulk
func TestBulkTSO(t *testing.T) {
	if !*bulkBench {
		t.Skip("skipped: a benchmark over TUN; run with -tun.bulk (root)")
	}
	enterNewNetns(t)
	var figs [2][2][]float64 // TSO on, off; download, upload
	for round := 1; round <= 3; round++ {
		for i, tso := range []bool{true, false} {
			down, up := bulkOnce(t, tso)
			t.Logf("round %d, TSO %-5v: download (stack sends) %4.0f MiB/s, upload (kernel sends) %4.0f MiB/s", round, tso, down, up)
			figs[i][0], figs[i][1] = append(figs[i][0], down), append(figs[i][1], up)
		}
	}
	for i, name := range []string{"with TSO", "without"} {
		t.Logf("medians %s: download %.0f MiB/s, upload %.0f MiB/s", name, median3(figs[i][0]), median3(figs[i][1]))
	}
}

// median3 is the median of three figures.
func median3(x []float64) float64 {
	a, b, c := x[0], x[1], x[2]
	return max(min(a, b), min(max(a, b), c))
}

// bulkStack opens a device of MTU 1500 with offloads and a stack on it
// (its SegmentOffloader hidden unless tso), waits for the kernel's side,
// and returns the device, a listener of the stack's on port 7, and what
// closes them all.
func bulkStack(t *testing.T, name string, tso bool) (*Endpoint, net.Listener, func()) {
	t.Helper()
	ep, err := Open(Options{Name: name, MTU: 1500, HostAddrs: []netip.Prefix{hostAddr}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := synstack.Config{Link: ep, Addrs: []netip.Prefix{stackAddr}}
	if !tso {
		cfg.Link = noTSO{ep}
	}
	st, err := synstack.New(cfg)
	if err != nil {
		ep.Close()
		t.Fatal(err)
	}
	if ok, err := ep.KernelReady(stackAddr.Addr()); !ok || err != nil {
		st.Close()
		t.Fatalf("kernel side not ready: %v %v", ok, err)
	}
	ln, err := st.Listen("tcp", ":7")
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	return ep, ln, func() { ln.Close(); st.Close() }
}

// bulkOnce opens a device and a stack on it (its SegmentOffloader hidden
// unless tso) and returns the download and upload rates, MiB/s.
func bulkOnce(t *testing.T, tso bool) (down, up float64) {
	ep, ln, closeAll := bulkStack(t, "tunbulk0", tso)
	defer closeAll()
	srv := make(chan error, 2)
	go func() {
		buf := make([]byte, 1<<20)
		for i := 0; i < 2; i++ {
			c, err := ln.Accept()
			if err != nil {
				srv <- err
				return
			}
			if i == 0 { // the download: send bulkSize bytes
				for n := 0; n < bulkSize && err == nil; n += len(buf) {
					_, err = c.Write(buf)
				}
			} else { // the upload: take all
				_, err = io.Copy(io.Discard, c)
			}
			c.Close()
			srv <- err
		}
	}()
	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(stackAddr.Addr().String(), "7"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(2 * time.Minute))
		return c
	}
	c := dial()
	start := time.Now()
	n, err := io.Copy(io.Discard, c)
	c.Close()
	if err != nil || n != bulkSize {
		t.Fatalf("download: %d bytes, %v", n, err)
	}
	down = bulkSize / (1 << 20) / time.Since(start).Seconds()
	if err := <-srv; err != nil {
		t.Fatal(err)
	}
	s := ep.Stats()
	t.Logf("TSO %-5v, the download: %d packets from the stack, %d large segments written whole, %d coalesced, %d writes, %d dropped (queue full)",
		tso, s.PacketsOut, s.TSOOut, s.GSOOut, s.WritesOut, s.DropQueueFull)
	c = dial()
	start = time.Now()
	buf := make([]byte, 1<<20)
	for n := 0; n < bulkSize; n += len(buf) {
		if _, err := c.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	c.(*net.TCPConn).CloseWrite()
	io.Copy(io.Discard, c) // the stack closes once it has read all
	c.Close()
	if err := <-srv; err != nil {
		t.Fatal(err)
	}
	up = bulkSize / (1 << 20) / time.Since(start).Seconds()
	if s := ep.Stats(); tso != (s.TSOOut > 0) || s.DropBad != 0 {
		t.Errorf("TSO %v: %+v", tso, s)
	}
	return down, up
}
