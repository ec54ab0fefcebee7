package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPlayKernel runs must-show sessions against the Linux kernel (host A
// in a network namespace, host B synstack on its TUN device): the calls
// return what they returned in the playground, the states are the same,
// and the page's API gives both ladders. It needs root and TUN devices.
func TestPlayKernel(t *testing.T) {
	if testing.Short() {
		t.Skip("runs on the real clock")
	}
	if err := kernelAvailable(); err != nil {
		t.Skipf("skipped: %v", err)
	}
	// The kernel runs on the real clock: give a loaded machine time to
	// answer each step (a test-only hook, as TestDemoKernel's).
	defer func(old time.Duration) { kernelWaitScale = old }(kernelWaitScale)
	kernelWaitScale = 4
	for _, s := range []struct{ name, session, want string }{
		{"handshake", playHandshakeSession, "ESTABLISHED"},
		{"half-close", playHalfCloseSession, "CLOSE_WAIT"},
		{"reuseaddr", playReuseSession, "TIME_WAIT"},
	} {
		t.Run(s.name, func(t *testing.T) {
			steps, err := parseSession(s.session)
			if err != nil {
				t.Fatal(err)
			}
			res, err := runKernel(steps)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Diffs) != 0 {
				t.Errorf("synstack and Linux differ:\n%s", strings.Join(res.Diffs, "\n"))
			}
			if a := statesReached(res.Linux, "A"); !slices.Contains(a, s.want) {
				t.Errorf("Linux's states: %s, want %s among them", a, s.want)
			}
			var calls int
			for _, ev := range res.Linux {
				if ev.Kind == "call" {
					calls++
				}
			}
			if calls != strings.Count(s.session, "A.")+strings.Count(s.session, "B.") {
				t.Errorf("%d calls run against Linux", calls)
			}
			if t.Failed() {
				for _, ev := range res.Linux {
					t.Logf("%5d %s %-10s %s", ev.Ms, ev.Host, ev.Kind, ev.Text)
				}
			}
		})
	}
}

// TestPlayKernelCompare: the comparison marks a call whose result
// differs and a host whose states differ.
func TestPlayKernelCompare(t *testing.T) {
	steps, _ := parseSession("A.socket,A.bind.3.80")
	res := &playKernelResult{
		Synstack: []playEvent{{Host: "A", Kind: "call", Text: "socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0) = 3"},
			{Host: "A", Kind: "call", Text: "bind(3, 10.0.0.1:80) = 0"}, {Host: "A", Kind: "transition", Text: ":80 CLOSED → LISTEN (call LISTEN)"}},
		Linux: []playEvent{{Host: "A", Kind: "call", Text: "socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0) = 3"},
			{Host: "A", Kind: "call", Text: "bind(3) = -1 EADDRINUSE (address already in use)"}},
	}
	res.compare(steps, []playResult{{Text: res.Linux[0].Text}, {Text: res.Linux[1].Text}})
	if len(res.Diffs) != 2 || res.Diffs[0] != "step 2 (A.bind.3.80): synstack = 0, Linux = -1 EADDRINUSE" ||
		res.Diffs[1] != "host A's :80 ends in LISTEN with synstack, no state with Linux" || len(res.Notes) != 1 {
		t.Errorf("diffs: %q, notes %q", res.Diffs, res.Notes)
	}
	if !res.Synstack[1].Differs || !res.Linux[1].Differs || res.Synstack[0].Differs {
		t.Errorf("marks: %+v %+v", res.Synstack, res.Linux)
	}
}
