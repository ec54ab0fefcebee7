//go:build linux

package main

// synstack forward against the Linux kernel over TUN, in a network
// namespace of its own (see tun_test.go): the kernel routes a test subnet
// into the device and its curl, to any address there, reaches an upstream
// on the namespace's loopback through the forwarder.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/synstack/synstack/forward"
	"github.com/synstack/synstack/internal/kernelnet"
)

const (
	fwdSubnet   = "198.18.0.0/24" // RFC 2544 benchmarking range, routed into the device only inside the namespace
	fwdUpstream = "127.0.0.1:8080"
	fwdFar      = "198.18.0.7" // in the test subnet, on a far namespace's loopback (farNetns)
)

// forwardStats asks a forward process for its counters (SIGUSR1) and
// returns the forwarder's, the "forward" member of its stats line.
func (p *proc) forwardStats() forward.Stats {
	p.t.Helper()
	st := p.stats()
	if st.Forward == nil {
		p.t.Fatalf("%s printed a stats line without the forwarder's counters:\n%s", p.what, p.log.String())
	}
	return *st.Forward
}

// Issue 7: with a route for a test subnet into the TUN device, the
// kernel's curl to several addresses in that subnet reaches the upstream
// through synstack forward (deferred handshake), byte-exact, and the
// forwarder counts each connection.
func TestTunForwardCurl(t *testing.T) {
	ns := newNetns(t, "curl")

	// The upstream: a net/http server on the namespace's loopback, serving
	// a deterministic 8 MiB body and noting the Host each request names
	// (curl's, so the original destination).
	const size = 8 << 20
	body := make([]byte, size)
	rand.NewChaCha8([32]byte{'f', 'w', 'd'}).Read(body)
	sum := sha256.Sum256(body)
	want := hex.EncodeToString(sum[:])
	var (
		mu    sync.Mutex
		hosts []string
	)
	var ln net.Listener
	if err := ns.in(func() (err error) {
		ln, err = net.Listen("tcp", fwdUpstream)
		return err
	}); err != nil {
		t.Fatalf("upstream listen in the namespace: %v", err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hosts = append(hosts, r.Host)
		mu.Unlock()
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.Write(body)
	})}
	served := make(chan struct{})
	go func() {
		defer close(served)
		hs.Serve(ln)
	}()
	t.Cleanup(func() {
		hs.Close()
		<-served
	})

	fwd := ns.start("main", "forward", "--tun", nsDev, "--addr", nsStack+"/24", "--host-addr", nsKernel+"/24",
		"--route", fwdSubnet, "--to", fwdUpstream, "--deferred")
	fwd.waitLog("forwarding every TCP connection into "+nsDev+" to "+fwdUpstream+" (deferred handshake)", 10*time.Second)
	fwd.waitLog("kernel side of "+nsDev+" is up", 10*time.Second)
	if !strings.Contains(fwd.log.String(), "route "+fwdSubnet+" into "+nsDev) {
		t.Fatalf("forward did not say it added the route:\n%s", fwd.log.String())
	}
	if out := ns.run("ip", "route", "show", fwdSubnet); !strings.Contains(out, "dev "+nsDev) {
		t.Fatalf("no route for %s into %s in the namespace:\n%s", fwdSubnet, nsDev, out)
	}

	dests := []string{"198.18.0.1", "198.18.0.77", "198.18.0.200"}
	start := time.Now()
	for _, d := range dests {
		url := "http://" + d + "/body"
		got, n, err := ns.curl(url, 15*time.Second)
		if err != nil {
			t.Fatalf("%v\nforward:\n%s", err, fwd.log.String())
		}
		if n != size || got != want {
			t.Fatalf("curl %s: %d bytes, sha256 %s; want %d bytes, sha256 %s", url, n, got, size, want)
		}
	}
	el := time.Since(start)
	t.Logf("curl: %d × %d MiB from %v through forward to %s byte-exact in %v", len(dests), size>>20, dests, fwdUpstream, el.Round(time.Millisecond))

	mu.Lock()
	gotHosts := append([]string(nil), hosts...)
	mu.Unlock()
	if strings.Join(gotHosts, " ") != strings.Join(dests, " ") {
		t.Errorf("the upstream saw requests for %q, want %q", gotHosts, dests)
	}

	// The forwarder's counters: 3 requests, 3 relayed, none failed, every
	// byte of the bodies (and headers) went down; the relays end.
	var st forward.Stats
	for end := time.Now().Add(time.Minute); ; { // a hang guard, not a timing
		st = fwd.forwardStats()
		if st.Active == 0 || time.Now().After(end) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("forward stats: %+v", st)
	if st.Requests != 3 || st.Forwarded != 3 {
		t.Errorf("forwarder counted %d requests, %d forwarded; want 3 and 3", st.Requests, st.Forwarded)
	}
	if st.Refused != 0 || st.Unreachable != 0 || st.Timeouts != 0 || st.AcceptFails != 0 || st.Resets != 0 || st.Idle != 0 {
		t.Errorf("forwarder counted failures: %+v", st)
	}
	if st.Active != 0 {
		t.Errorf("%d relays still active after every curl finished", st.Active)
	}
	if st.BytesDown < 3*size || st.BytesUp == 0 {
		t.Errorf("forwarder moved %d bytes down, %d up; want at least %d down", st.BytesDown, st.BytesUp, 3*size)
	}

	fwd.stop()
	log := fwd.log.String()
	if !strings.Contains(log, "device "+nsDev+" removed") {
		t.Errorf("forward did not say it removed the device:\n%s", log)
	}
	if strings.Contains(log, "removing route") {
		t.Errorf("forward could not remove its route:\n%s", log)
	}
	if out, err := ns.command(context.Background(), "ip", "link", "show", nsDev).CombinedOutput(); err == nil {
		t.Errorf("device %s still there after forward exited:\n%s", nsDev, out)
	}
	if out := ns.run("ip", "route", "show", fwdSubnet); strings.TrimSpace(out) != "" {
		t.Errorf("route for %s left after forward exited:\n%s", fwdSubnet, out)
	}
	// The stack's last counters (printed at exit): 3 forwarded handshakes.
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(nil, 1<<20)
	var last statsLine
	for sc.Scan() {
		if l := sc.Bytes(); bytes.HasPrefix(l, []byte(`{"stats":`)) {
			if err := json.Unmarshal(l, &last); err != nil {
				t.Fatalf("stats line %q: %v", l, err)
			}
		}
	}
	if last.Stats.SynstackForwardRequests != 3 || last.Stats.SynstackForwarded != 3 {
		t.Errorf("stack counted %d forward requests, %d forwarded; want 3 and 3", last.Stats.SynstackForwardRequests, last.Stats.SynstackForwarded)
	}
}

// Issue 14: forward never makes a loop. With a route for a test subnet
// into the device, a client connecting to the stack's own address (a port
// without a listener) and to an address the kernel routes back into the
// device is refused at once (RST: the connect fails with ECONNREFUSED, in
// immediate mode too, so no handshake was completed), counted as a loop,
// and no relay is made: with --direct and --direct --deferred, and with
// --to pointing back into the device. Beside them, a destination the
// host's dial reaches elsewhere is relayed: --to an upstream on the
// namespace's loopback, and --direct with --mark 7 and a policy rule that
// sends marked dials over a veth to a second namespace, where the
// destination lives (the loop check asks the routing with the mark).
func TestTunForwardNoLoop(t *testing.T) {
	own := nsStack + ":1234"
	for _, tc := range []struct {
		name  string
		args  []string
		loops []string // destinations that must be refused as loops
		good  string   // a destination that must be relayed (empty: none)
		mark  bool
	}{
		{"direct", []string{"--direct"}, []string{own, "198.18.0.5:80"}, "", false},
		{"direct-deferred", []string{"--direct", "--deferred"}, []string{own, "198.18.0.5:80"}, "", false},
		{"to-loop", []string{"--to", "198.18.0.50:80"}, []string{own, "198.18.0.5:80"}, "", false},
		{"to-loop-deferred", []string{"--to", "198.18.0.50:80", "--deferred"}, []string{own, "198.18.0.5:80"}, "", false},
		{"to-loopback", []string{"--to", fwdUpstream}, nil, "198.18.0.7:80", false},
		{"direct-marked", []string{"--direct", "--mark", "7"}, []string{own}, "198.18.0.7:8080", true},
		{"direct-marked-deferred", []string{"--direct", "--deferred", "--mark", "7"}, []string{own}, "198.18.0.7:8080", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := newNetns(t)
			if tc.mark {
				upstreamEcho(t, farNetns(t, ns))
			} else {
				upstreamEcho(t, ns)
			}
			args := append([]string{"forward", "--tun", nsDev, "--addr", nsStack + "/24", "--host-addr", nsKernel + "/24",
				"--route", fwdSubnet}, tc.args...)
			fwd := ns.start("main", args...)
			fwd.waitLog("kernel side of "+nsDev+" is up", 10*time.Second)
			fwd.waitLog("route "+fwdSubnet+" into "+nsDev, 10*time.Second)

			for _, dst := range tc.loops {
				var c net.Conn
				err := ns.in(func() (err error) {
					c, err = net.DialTimeout("tcp", dst, 10*time.Second)
					return err
				})
				if err == nil {
					c.Close()
				}
				if !errors.Is(err, syscall.ECONNREFUSED) {
					t.Errorf("connect to %s: %v, want ECONNREFUSED at once\n%s", dst, err, fwd.log.String())
				}
			}
			want := uint64(0)
			if tc.good != "" {
				want = 1
				var c net.Conn
				if err := ns.in(func() (err error) {
					c, err = net.DialTimeout("tcp", tc.good, 10*time.Second)
					return err
				}); err != nil {
					t.Fatalf("connect to %s: %v\n%s", tc.good, err, fwd.log.String())
				}
				echoCheck(t, c, 100000)
				c.Close()
			}
			st := fwd.forwardStats()
			t.Logf("forward stats: %+v", st)
			// The stack itself may refuse a SYN to its own address before
			// the forwarder sees it; what the forwarder sees of the loops,
			// it refuses as loops, and it relays nothing else.
			if (len(tc.loops) > 0 && st.Loops < uint64(len(tc.loops)-1)) || st.Loops != st.Requests-want ||
				st.Forwarded != want || st.Refused+st.Unreachable+st.Timeouts != 0 {
				t.Errorf("forwarder: %d requests, %d loops, %d forwarded; want every request but %d a loop, %d forwarded",
					st.Requests, st.Loops, st.Forwarded, want, want)
			}
			if s := fwd.stats().Stats; s.SynstackForwarded != want {
				t.Errorf("the stack completed %d forwarded handshakes, want %d", s.SynstackForwarded, want)
			}
			fwd.stop()
			if log := fwd.log.String(); (st.Loops > 0) != strings.Contains(log, "connections that would have looped") {
				t.Errorf("forward's exit line about loops (%d loops):\n%s", st.Loops, log)
			}
		})
	}
}

// farNetns makes a second namespace that has 198.18.0.7 (fwdFar), joined
// to ns by a veth: ns's dials marked 7 to the test subnet leave by it (a
// policy rule), so that forward --direct --mark 7 reaches the far side
// while the kernel's own traffic to the subnet goes into the device.
func farNetns(t *testing.T, ns *netns) *netns {
	t.Helper()
	far := newNetns(t)
	ns.run("ip", "link", "add", "vfwd0", "type", "veth", "peer", "name", "vfwd1", "netns", far.name)
	ns.run("ip", "addr", "add", "192.0.2.1/24", "dev", "vfwd0")
	ns.run("ip", "link", "set", "vfwd0", "up")
	far.run("ip", "addr", "add", "192.0.2.2/24", "dev", "vfwd1")
	far.run("ip", "addr", "add", fwdFar+"/32", "dev", "lo")
	far.run("ip", "link", "set", "vfwd1", "up")
	ns.run("ip", "rule", "add", "fwmark", "7", "lookup", "100")
	ns.run("ip", "route", "add", fwdSubnet, "via", "192.0.2.2", "dev", "vfwd0", "table", "100")
	return far
}

// upstreamEcho runs an echo server on every address of the namespace,
// port 8080 (fwdUpstream among them), until the test ends.
func upstreamEcho(t *testing.T, ns *netns) {
	t.Helper()
	var ln net.Listener
	if err := ns.in(func() (err error) {
		ln, err = net.Listen("tcp", ":8080")
		return err
	}); err != nil {
		t.Fatalf("upstream listen in the namespace: %v", err)
	}
	kernelnet.ServeListener(t, ln, kernelnet.Echo)
}
