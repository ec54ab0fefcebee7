package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine is left running.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The demo must show a connection passing through every state of an
// ordinary life, on both sides.
func TestDemoTour(t *testing.T) {
	var out bytes.Buffer
	if err := runDemo(&out, nil); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{
		"client 10.0.0.2: CLOSED -> SYN_SENT -> ESTABLISHED -> FIN_WAIT_1 -> FIN_WAIT_2 -> TIME_WAIT -> CLOSED",
		"server 10.0.0.1: CLOSED -> LISTEN -> SYN_RCVD -> ESTABLISHED -> CLOSE_WAIT -> LAST_ACK -> CLOSED",
		"S 0:0(0)", "S. 0:0(0) ack 1", "F. ",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q:\n%s", want, s)
		}
	}
}

func TestScriptCommandCounts(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.pkt")
	bad := filepath.Join(dir, "bad.pkt")
	os.WriteFile(good, []byte("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 close(3) = 0\n"), 0o644)
	os.WriteFile(bad, []byte("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 close(3) = -1 EBADF (Bad file descriptor)\n"), 0o644)
	var out bytes.Buffer
	failed, err := runScripts(&out, []string{good, bad})
	if err != nil {
		t.Fatal(err)
	}
	if !failed || !strings.HasSuffix(out.String(), "1 passed, 1 failed\n") {
		t.Fatalf("failed=%v, output:\n%s", failed, out.String())
	}
	if !strings.Contains(out.String(), "bad.pkt:2:") {
		t.Fatalf("failure does not name the line:\n%s", out.String())
	}
}
