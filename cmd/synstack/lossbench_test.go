//go:build linux

package main

// TestLossBench: goodput of one bulk transfer over 10 ms of delay and 1 %
// loss each way, for the kernel's TCP (cubic and bbr) and synstack's (CUBIC
// and BBR), on the same impaired path in the same run. Root only, not run
// by default (docs/loss-benchmark.md):
//
//	go test -run TestLossBench -synstack.lossbench -v ./cmd/synstack/
//
// The test makes three network namespaces and re-runs this test binary in
// the first (H), where it opens two TUN devices, moves one into namespace A
// and the other into B, and joins them with sim.Bridge: the code of
// synstack impair. The receiver is always the kernel in B. A kernel arm's
// sender is the kernel in A, its packets crossing A's device, the bridge
// and B's device; a synstack arm's sender is a stack in H whose link is a
// sim pair with the same options, its far end on B's device. Every arm
// sends for a fixed time, then closes; the receiver reports the bytes it
// got and the time from accept to end of stream.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/link/sim"
	"github.com/synstack/synstack/link/tun"
)

var (
	lossBench      = flag.Bool("synstack.lossbench", false, "run TestLossBench: kernel and synstack TCP over 10 ms + 1 % loss each way (root)")
	lossBenchTime  = flag.Duration("synstack.lossbench.time", 15*time.Second, "how long each arm sends")
	lossBenchReps  = flag.Int("synstack.lossbench.reps", 3, "runs of each arm (the median counts)")
	lossBenchRate  = flag.String("synstack.lossbench.rate", "100mbit", "the path's bottleneck rate each way (0: none)")
	lossBenchQueue = flag.Int("synstack.lossbench.queue", 250, "packets the bottleneck queues, at most")
	lossBenchDelay = flag.Duration("synstack.lossbench.delay", 10*time.Millisecond, "one-way delay")
	lossBenchLoss  = flag.String("synstack.lossbench.loss", "1%", "loss each way")
)

const (
	lossBenchChild = "SYNSTACK_LOSSBENCH_CHILD" // value: "NS_A NS_B"
	lbSink         = "10.98.1.2:5001"
	lbDevA, lbDevB = "lba0", "lbb0"
)

// The test binary as the benchmark's programs: lbsink (in B) and lbsend
// (a kernel sender in A).
func init() {
	switch os.Getenv("SYNSTACK_TEST_EXEC") {
	case "lbsink":
		lbRunSink(os.Args[1])
	case "lbsend":
		secs, _ := time.ParseDuration(os.Args[3])
		lbRunKernelSender(os.Args[1], os.Args[2], secs)
	default:
		return
	}
	os.Exit(0)
}

// lbRunSink accepts one connection at a time, reads it to the end and
// answers "BYTES NANOS": what arrived, and the time from accept to EOF.
func lbRunSink(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lbsink:", err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "lbsink: listening")
	buf := make([]byte, 256<<10)
	for {
		c, err := ln.Accept()
		if err != nil {
			os.Exit(1)
		}
		start := time.Now()
		var n int64
		for {
			k, err := c.Read(buf)
			n += int64(k)
			if err != nil {
				break
			}
		}
		fmt.Fprintf(c, "%d %d\n", n, time.Since(start).Nanoseconds())
		c.Close()
	}
}

// lbSend writes to c for d, half-closes it and returns the receiver's
// report.
func lbSend(c net.Conn, closeWrite func() error, d time.Duration) (bytes, nanos int64, err error) {
	chunk := make([]byte, 64<<10)
	c.SetWriteDeadline(time.Now().Add(d))
	for {
		if _, err := c.Write(chunk); err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				return 0, 0, err
			}
			break
		}
	}
	c.SetWriteDeadline(time.Time{})
	if err := closeWrite(); err != nil {
		return 0, 0, err
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Minute))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return 0, 0, fmt.Errorf("the receiver's report: %w", err)
	}
	_, err = fmt.Sscanf(line, "%d %d", &bytes, &nanos)
	return bytes, nanos, err
}

// lbRunKernelSender is one kernel arm: prints "result BYTES NANOS RETRANS"
// or "unavailable WHY".
func lbRunKernelSender(addr, cc string, d time.Duration) {
	var serr error
	dl := net.Dialer{Timeout: 30 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { serr = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, cc) })
	}}
	c, err := dl.Dial("tcp", addr)
	if serr != nil {
		fmt.Printf("unavailable %v\n", serr)
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lbsend:", err)
		os.Exit(1)
	}
	defer c.Close()
	tc := c.(*net.TCPConn)
	rc, _ := tc.SyscallConn()
	var got string
	rc.Control(func(fd uintptr) { got, _ = unix.GetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION) })
	if got != cc {
		fmt.Printf("unavailable TCP_CONGESTION is %q after setting %q\n", got, cc)
		return
	}
	n, ns, err := lbSend(c, tc.CloseWrite, d)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lbsend:", err)
		os.Exit(1)
	}
	var retrans uint32
	rc.Control(func(fd uintptr) {
		if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			retrans = info.Total_retrans
		}
	})
	fmt.Printf("result %d %d %d\n", n, ns, retrans)
}

func TestLossBench(t *testing.T) {
	if v := os.Getenv(lossBenchChild); v != "" {
		ns := strings.Fields(v)
		runLossBench(t, ns[0], ns[1])
		return
	}
	if !*lossBench {
		t.Skip("skipped: a benchmark over TUN; run with -synstack.lossbench (needs root, ip)")
	}
	h := newNetns(t)
	a, b := newNetns(t), newNetns(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	args := []string{"netns", "exec", h.name, h.exe, "-test.run", "^TestLossBench$", "-test.v", "-test.timeout", "1h"}
	flag.Visit(func(f *flag.Flag) {
		if strings.HasPrefix(f.Name, "synstack.lossbench") {
			args = append(args, "-"+f.Name+"="+f.Value.String())
		}
	})
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Env = append(os.Environ(), lossBenchChild+"="+a.name+" "+b.name)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("benchmark in namespace %s: %v", h.name, err)
	}
}

// lbArm is one sender: its runs' goodputs, or why it cannot run.
type lbArm struct {
	name, cc    string
	kernel      bool
	unavailable string
	mbps        []float64
	retrans     []int
}

func runLossBench(t *testing.T, nsA, nsB string) {
	loss, err := parseProb(*lossBenchLoss)
	if err != nil {
		t.Fatal(err)
	}
	rate, err := parseRate(*lossBenchRate)
	if err != nil {
		t.Fatal(err)
	}
	opts := sim.Options{Delay: *lossBenchDelay, Loss: loss, Bandwidth: rate, QueueLen: *lossBenchQueue}
	ta, err := tun.Open(tun.Options{Name: lbDevA, NoOffload: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ta.Close()
	tb, err := tun.Open(tun.Options{Name: lbDevB, NoOffload: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	ip("link", "set", lbDevA, "netns", nsA)
	ip("link", "set", lbDevB, "netns", nsB)
	ip("-n", nsA, "addr", "add", "10.98.0.1/24", "dev", lbDevA)
	ip("-n", nsA, "link", "set", lbDevA, "up")
	ip("-n", nsA, "route", "add", "10.98.1.0/24", "dev", lbDevA)
	ip("-n", nsB, "addr", "add", "10.98.1.2/24", "dev", lbDevB)
	ip("-n", nsB, "link", "set", lbDevB, "up")
	ip("-n", nsB, "route", "add", "10.98.0.0/24", "dev", lbDevB)
	// No connection may start from what an earlier one learned
	// (ssthresh cached per destination).
	for _, ns := range []string{nsA, nsB} {
		ip("netns", "exec", ns, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/tcp_no_metrics_save")
	}
	exe, _ := os.Executable()
	sink := exec.Command("ip", "netns", "exec", nsB, exe)
	sink.Env = append(os.Environ(), "SYNSTACK_TEST_EXEC=lbsink")
	sink.Args = append(sink.Args, lbSink)
	var sinkLog logBuffer
	sink.Stderr = &sinkLog
	if err := sink.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sink.Process.Kill(); sink.Wait() }()
	for end := time.Now().Add(20 * time.Second); !strings.Contains(sinkLog.String(), "listening"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the receiver did not start: %s", sinkLog.String())
		}
	}

	arms := []*lbArm{
		{name: "kernel cubic", cc: "cubic", kernel: true},
		{name: "kernel bbr", cc: "bbr", kernel: true},
		{name: "synstack cubic", cc: "cubic"},
		{name: "synstack bbr", cc: "bbr"},
	}
	for rep := 1; rep <= *lossBenchReps; rep++ {
		o := opts
		o.Seed = uint64(rep) // every arm of a run meets the same losses, packet for packet
		for _, arm := range arms {
			if arm.unavailable != "" {
				continue
			}
			var n, ns int64
			var retrans int
			if arm.kernel {
				n, ns, retrans = lbKernelArm(t, arm, ta, tb, o, nsA, exe)
			} else {
				n, ns, retrans = lbSynstackArm(t, arm, tb, o)
			}
			if arm.unavailable != "" {
				t.Logf("%s: not available: %s", arm.name, arm.unavailable)
				continue
			}
			mbps := float64(n) * 8 / (float64(ns) / 1e9) / 1e6
			arm.mbps = append(arm.mbps, mbps)
			arm.retrans = append(arm.retrans, retrans)
			t.Logf("run %d, %s: %d bytes in %v: %.2f Mbit/s, %d retransmitted segments", rep, arm.name, n, time.Duration(ns), mbps, retrans)
		}
	}
	fmt.Print(lbTable(arms, opts))
}

// lbKernelArm runs one kernel sender in A, through the bridge.
func lbKernelArm(t *testing.T, arm *lbArm, ta, tb *tun.Endpoint, o sim.Options, nsA, exe string) (int64, int64, int) {
	br := sim.NewBridge(ta, tb, o, o)
	defer br.Close()
	cmd := exec.Command("ip", "netns", "exec", nsA, exe)
	cmd.Args = append(cmd.Args, lbSink, arm.cc, lossBenchTime.String())
	cmd.Env = append(os.Environ(), "SYNSTACK_TEST_EXEC=lbsend")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v: %s", arm.name, err, stderr.String())
	}
	s := strings.TrimSpace(string(out))
	if why, ok := strings.CutPrefix(s, "unavailable "); ok {
		arm.unavailable = why
		return 0, 0, 0
	}
	var n, ns int64
	var retrans int
	if _, err := fmt.Sscanf(s, "result %d %d %d", &n, &ns, &retrans); err != nil {
		t.Fatalf("%s: output %q: %v", arm.name, s, err)
	}
	return n, ns, retrans
}

type lbDispatch func([]byte)

func (f lbDispatch) DeliverPacket(p []byte) { f(p) }

// lbSynstackArm runs one synstack sender in this process, its link a sim
// pair whose far end is B's device.
func lbSynstackArm(t *testing.T, arm *lbArm, tb *tun.Endpoint, o sim.Options) (int64, int64, int) {
	o.MTU = tb.MTU()
	la, lb := sim.PairWith(o, o)
	lb.Attach(lbDispatch(func(p []byte) { tb.WritePacket(p) }))
	tb.Attach(lbDispatch(func(p []byte) { lb.WritePacket(p) }))
	defer func() {
		tb.Attach(nil)
		lb.Close()
	}()
	st, err := synstack.New(synstack.Config{Link: la, Addrs: []netip.Prefix{netip.MustParsePrefix("10.98.0.3/24")}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var serr error
	d := synstack.Dialer{Stack: st, Timeout: 30 * time.Second, Control: func(_, _ string, s *synstack.Sockets, fd int) error {
		serr = s.SetsockoptString(fd, synstack.IPPROTO_TCP, synstack.TCP_CONGESTION, arm.cc)
		return serr // ENOENT: this synstack has no such algorithm
	}}
	c, err := d.Dial("tcp", lbSink)
	if serr != nil {
		arm.unavailable = fmt.Sprintf("TCP_CONGESTION %q: %v", arm.cc, serr)
		return 0, 0, 0
	}
	if err != nil {
		t.Fatalf("%s: %v", arm.name, err)
	}
	defer c.Close()
	tc := c.(*synstack.TCPConn)
	n, ns, err := lbSend(c, tc.CloseWrite, *lossBenchTime)
	if err != nil {
		t.Fatalf("%s: %v", arm.name, err)
	}
	retrans := 0
	tc.Control(func(s *synstack.Sockets, fd int) {
		if info, err := s.GetsockoptTCPInfo(fd); err == nil {
			retrans = info.TotalRetrans
		}
	})
	return n, ns, retrans
}

func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// lbTable is the result: each arm's median goodput, its runs, and its
// ratio to each kernel arm.
func lbTable(arms []*lbArm, o sim.Options) string {
	var b strings.Builder
	rate := "no bottleneck"
	if o.Bandwidth > 0 {
		rate = fmt.Sprintf("bottleneck %g Mbit/s with a %d-packet queue", float64(o.Bandwidth)/1e6, o.QueueLen)
	}
	fmt.Fprintf(&b, "\nloss benchmark: %v delay and %g%% loss each way, %s; each arm sends for %v, %d runs, median\n\n",
		o.Delay, o.Loss*100, rate, *lossBenchTime, *lossBenchReps)
	fmt.Fprintf(&b, "| sender | goodput, Mbit/s | runs | retransmitted segments | / kernel cubic | / kernel bbr |\n")
	fmt.Fprintf(&b, "|---|---:|---|---|---:|---:|\n")
	ref := map[string]float64{}
	for _, a := range arms {
		if a.kernel && len(a.mbps) > 0 {
			ref[a.cc] = median(a.mbps)
		}
	}
	for _, a := range arms {
		if len(a.mbps) == 0 {
			why := a.unavailable
			if why == "" {
				why = "no run"
			}
			fmt.Fprintf(&b, "| %s | not available (%s) | | | | |\n", a.name, why)
			continue
		}
		m := median(a.mbps)
		runs := make([]string, len(a.mbps))
		for i, v := range a.mbps {
			runs[i] = strconv.FormatFloat(v, 'f', 1, 64)
		}
		ratio := func(cc string) string {
			if r, ok := ref[cc]; ok && r > 0 {
				return fmt.Sprintf("%.2f", m/r)
			}
			return "-"
		}
		fmt.Fprintf(&b, "| %s | %.1f | %s | %s | %s | %s |\n", a.name, m, strings.Join(runs, ", "),
			strings.Trim(fmt.Sprint(a.retrans), "[]"), ratio("cubic"), ratio("bbr"))
	}
	return b.String()
}
