package script

import (
	"strings"
	"testing"
)

// TestShellAlternatives: "a || b" runs b only when a fails, a command the
// runner cannot run counting as a failure (as a sysctl Linux lacks fails
// there); a command that succeeds leaves b unrun.
func TestShellAlternatives(t *testing.T) {
	r, err := command(t, Options{}, "sysctl -q net.ipv4.no_such_sysctl=1 || sysctl -q net.ipv4.tcp_timestamps=0")
	if err != nil || !r.tcpCfg.NoTimestamps {
		t.Errorf("the alternative did not run: %v, %+v", err, r.tcpCfg.NoTimestamps)
	}
	r, err = command(t, Options{}, "sysctl -q net.ipv4.tcp_sack=0 || sysctl -q net.ipv4.tcp_timestamps=0")
	if err != nil || !r.tcpCfg.NoSACK || r.tcpCfg.NoTimestamps {
		t.Errorf("after a command that succeeded: %v, NoSACK %v, NoTimestamps %v", err, r.tcpCfg.NoSACK, r.tcpCfg.NoTimestamps)
	}
	if _, err := command(t, Options{}, "sysctl -q net.ipv4.no_such=1 || sysctl -q net.ipv4.no_such_either=1"); err == nil || !strings.Contains(err.Error(), "no_such_either") {
		t.Errorf("both failing: %v", err)
	}
}
