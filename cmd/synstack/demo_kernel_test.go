package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDemoKernel runs demo --kernel against the Linux kernel in a network
// namespace of the command's own; it needs root and TUN devices.
func TestDemoKernel(t *testing.T) {
	if kernelAvailable() != nil {
		t.Skip("skipped: demo --kernel needs root and /dev/net/tun")
	}
	if _, err := exec.LookPath("ss"); err != nil {
		t.Log("no ss: the TIME_WAIT note will say so")
	}
	// The kernel runs on the real clock, and a scenario's steps wait fixed
	// times: stretch them tenfold, so that a loaded machine still fits the
	// packets and the /proc/net/tcp poll in them.
	defer func(old time.Duration) { kernelWaitScale = old }(kernelWaitScale)
	kernelWaitScale = 10
	for _, tc := range []struct {
		name string
		want []string // in the kernel run's ladder, in this order
	}{
		// The kernel's side reaches ESTABLISHED, from LISTEN or through a
		// SYN_RCVD the millisecond poll happened to catch.
		{"handshake", []string{"--- S 0:0(0)", "<----- S. 0:0(0) ack 1", "--- . 1:1(0) ack 1", "-> ESTABLISHED  (seen in /proc/net/tcp)"}},
		{"active-close", []string{"--- S 0:0(0)", "<----- S. 0:0(0) ack 1", "--- F. 1:1(0) ack 1", "<--", ". 1:1(0) ack 2", "F. 1:1(0) ack 2", ". 2:2(0) ack 2", "Linux keeps TIME_WAIT for 60 s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := runDemo(&out, []string{"--kernel", tc.name}); err != nil {
				t.Fatalf("demo --kernel %s: %v\n%s", tc.name, err, out.String())
			}
			_, kern, ok := strings.Cut(out.String(), "against the Linux kernel")
			if !ok {
				t.Fatalf("no kernel run in the output:\n%s", out.String())
			}
			rest := kern
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("kernel ladder lacks %q (in order):\n%s", w, kern)
				}
				rest = rest[i+len(w):]
			}
			if !strings.Contains(kern, "kernel 10.0.0.1") {
				t.Errorf("no kernel column:\n%s", kern)
			}
		})
	}
	// The namespace went with its thread: no device left here.
	if _, err := os.Stat("/sys/class/net/syndemo0"); err == nil {
		t.Errorf("device syndemo0 left in the test's namespace")
	}
}

func TestDemoKernelNotOffered(t *testing.T) {
	var out bytes.Buffer
	err := runDemo(&out, []string{"--kernel", "syn-flood"})
	if err == nil || !strings.Contains(err.Error(), "not offered") {
		t.Fatalf("demo --kernel syn-flood: %v, want not offered", err)
	}
}
