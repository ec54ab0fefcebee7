package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// `synstack bench` names the command the benchmark moved to, and fails.
func TestBenchMoved(t *testing.T) {
	var out, errOut bytes.Buffer
	err := runBench(&out, &errOut, []string{"--quick"})
	if err == nil || !strings.Contains(err.Error(), "cmd/synstack-bench") {
		t.Errorf("synstack bench: %v", err)
	}
	if out.Len() != 0 || errOut.Len() != 0 {
		t.Errorf("synstack bench wrote %q, %q: the error is the whole message", out.String(), errOut.String())
	}
}

// The synstack command does not link gVisor netstack: only
// cmd/synstack-bench and the tests do.
func TestNoGVisor(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skipf("skipped: no go command to list the dependencies: %v", err)
	}
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "gvisor.dev/") || strings.HasSuffix(p, "/internal/bench") || strings.HasSuffix(p, "/internal/gvisortest") {
			t.Errorf("synstack links %s", p)
		}
	}
}
