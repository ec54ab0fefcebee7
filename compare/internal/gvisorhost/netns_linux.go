package gvisorhost

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"
)

// netnsChild is set in the environment of the copy of a test binary that
// InNamespace runs inside the namespace, to the test's name.
const netnsChild = "GVISORHOST_NETNS_CHILD"

// InNamespace runs the calling test in a network namespace of its own. In
// the test binary started by go test it creates the namespace (ip netns
// add), runs this test binary again inside it (ip netns exec) with
// -test.run matching t's name and args, for at most timeout, deletes the
// namespace and returns false: the caller returns. In that second copy it
// brings lo up and returns true: the caller runs the test's body, whose
// TUN devices, sockets and packets all stay in the namespace.
//
// It skips t, with the reason, without root, TUN support, ip (iproute2)
// or a namespace.
func InNamespace(t *testing.T, timeout time.Duration, args ...string) bool {
	t.Helper()
	if os.Getenv(netnsChild) == t.Name() {
		if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			t.Fatalf("ip link set lo up: %v: %s", err, out)
		}
		return true
	}
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root, to create a network namespace and TUN devices in it")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("skipped: no TUN device support: %v", err)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipped: needs ip (apt-get install -y iproute2)")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Skipf("skipped: cannot find the test binary: %v", err)
	}
	ns := fmt.Sprintf("gvisorhost-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("skipped: cannot create a network namespace: %v: %s", err, out)
	}
	defer func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns, err, out)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	argv := append([]string{"netns", "exec", ns, exe, "-test.run", "^" + regexp.QuoteMeta(t.Name()) + "$",
		"-test.v", "-test.timeout", timeout.String()}, args...)
	cmd := exec.CommandContext(ctx, "ip", argv...)
	cmd.Env = append(os.Environ(), netnsChild+"="+t.Name())
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s in namespace %s: %v", t.Name(), ns, err)
	}
	return false
}
