//go:build linux

package main

// synstack impair between two network namespaces: the command runs in a
// namespace of its own, creates its two TUN devices there, and the test
// moves each device into another namespace (ip link set DEV netns NS) while
// impair holds it open. The kernel in one namespace downloads a file from a
// kernel-side server in the other, across impair's delay and loss. Root
// only; every namespace is the test's own and deleted at the end.

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SYNSTACK_TEST_EXEC=tcprtt makes the test binary a probe: os.Args are
// binary ADDR N; it connects N times and prints each handshake's time in
// nanoseconds (connect returns once the SYN,ACK is back: one round trip).
func init() {
	if os.Getenv("SYNSTACK_TEST_EXEC") != "tcprtt" {
		return
	}
	n, _ := strconv.Atoi(os.Args[2])
	for range n {
		start := time.Now()
		c, err := net.DialTimeout("tcp", os.Args[1], 10*time.Second)
		d := time.Since(start)
		if err != nil {
			continue // a lost SYN: retried after 1 s, not a round trip
		}
		c.Close()
		fmt.Printf("rtt %d\n", d.Nanoseconds())
	}
	os.Exit(0)
}

func TestTunImpair(t *testing.T) {
	h := newNetns(t, "curl")
	a, b := newNetns(t), newNetns(t)
	const delay = 10 * time.Millisecond
	im := h.start("main", "impair", "--a", "impa0", "--b", "impb0", "--delay", delay.String(), "--loss", "2%", "--loss-ba", "3%", "--seed", "5")
	im.waitLog("bridging", 20*time.Second)
	// The devices change namespace under impair's open descriptors.
	h.run("ip", "link", "set", "impa0", "netns", a.name)
	h.run("ip", "link", "set", "impb0", "netns", b.name)
	a.run("ip", "addr", "add", "10.98.0.1/24", "dev", "impa0")
	a.run("ip", "link", "set", "impa0", "up")
	a.run("ip", "route", "add", "10.98.1.0/24", "dev", "impa0")
	b.run("ip", "addr", "add", "10.98.1.2/24", "dev", "impb0")
	b.run("ip", "link", "set", "impb0", "up")
	b.run("ip", "route", "add", "10.98.0.0/24", "dev", "impb0")

	dir := t.TempDir()
	const size = 8 << 20
	want := testFile(t, filepath.Join(dir, "file"), size)
	fs := b.start("fileserver", "10.98.1.2:8000", dir)
	fs.waitLog("listening", 20*time.Second)
	got, n, err := a.curl("http://10.98.1.2:8000/file", 2*time.Minute)
	if err != nil || got != want || n != size {
		t.Fatalf("download across impair: %d bytes, sha %s, %v; want %d bytes, sha %s", n, got, err, size, want)
	}

	// Every handshake crosses the delay twice: no round trip is shorter.
	probe := a.start("tcprtt", "10.98.1.2:8000", "10")
	select {
	case <-probe.done:
	case <-time.After(2 * time.Minute):
		t.Fatal("tcprtt did not finish")
	}
	rtts := 0
	for _, line := range strings.Split(probe.log.String(), "\n") {
		if ns, ok := strings.CutPrefix(line, "rtt "); ok {
			d, _ := strconv.ParseInt(ns, 10, 64)
			rtts++
			if time.Duration(d) < 2*delay {
				t.Errorf("a handshake took %v, less than the %v round trip impair adds", time.Duration(d), 2*delay)
			}
		}
	}
	if rtts == 0 {
		t.Fatalf("no handshake measured:\n%s", probe.log.String())
	}

	st := impairCounters(t, im)
	t.Logf("a>b %+v\nb>a %+v", st.AB, st.BA)
	for dir, s := range map[string]struct{ sent, lost, delivered uint64 }{
		"a>b": {st.AB.Sent, st.AB.Lost, st.AB.Delivered}, "b>a": {st.BA.Sent, st.BA.Lost, st.BA.Delivered},
	} {
		if s.lost == 0 || s.delivered == 0 || s.lost+s.delivered > s.sent {
			t.Errorf("%s: sent %d, lost %d, delivered %d: want some of each, no more than sent", dir, s.sent, s.lost, s.delivered)
		}
	}
	// The b>a direction carried the file: thousands of packets, about 3 %
	// of them lost (counts, not times: a loose check that the option took).
	if r := float64(st.BA.Lost) / float64(st.BA.Sent); st.BA.Sent < 5000 || r < 0.015 || r > 0.05 {
		t.Errorf("b>a lost %d of %d packets, want about 3 %%", st.BA.Lost, st.BA.Sent)
	}
	im.stop()
	if !strings.Contains(im.log.String(), "stopped") {
		t.Errorf("impair's log:\n%s", im.log.String())
	}
	// The devices impair created are gone, from the namespaces they moved to.
	for _, x := range []struct {
		ns  *netns
		dev string
	}{{a, "impa0"}, {b, "impb0"}} {
		if out, err := x.ns.command(t.Context(), "ip", "link", "show", x.dev).CombinedOutput(); err == nil {
			t.Errorf("%s still exists in %s after impair exited:\n%s", x.dev, x.ns.name, out)
		}
	}
}

// impairCounters asks impair for its counters (SIGUSR1).
func impairCounters(t *testing.T, p *proc) impairStats {
	t.Helper()
	before := strings.Count(p.log.String(), "\n{")
	if err := p.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatalf("SIGUSR1: %v", err)
	}
	end := time.Now().Add(10 * time.Second)
	for {
		s := p.log.String()
		if strings.Count(s, "\n{") > before {
			i := strings.LastIndex(s, "\n{")
			line, _, _ := strings.Cut(s[i+1:], "\n")
			var st impairStats
			if err := json.Unmarshal([]byte(line), &st); err != nil {
				t.Fatalf("counters line %q: %v", line, err)
			}
			return st
		}
		if time.Now().After(end) {
			t.Fatalf("no counters from impair:\n%s", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
