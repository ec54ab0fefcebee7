package wgtest_test

import (
	"flag"
	"testing"
	"time"

	"github.com/synstack/synstack/contrib/wireguard/wgtest"
)

// fetchSize is the size curl fetches; -short fetches 16 MiB.
var fetchSize = flag.Int64("wgtest.size", 256<<20, "bytes the kernel's curl fetches through the tunnel (-short: 16 MiB unless set)")

// TestEndToEndSynstack: wireguard-go on a kernel TUN device and
// wireguard-go on synstack (CreateNetTUN), peers over loopback UDP in a
// namespace of the test's own. The kernel's curl fetches 256 MiB (16 MiB
// with -short) byte-exact from an HTTP server on synstack; synstack
// resolves a name from a DNS server on the kernel's side; dig (if
// installed) resolves one from a DNS server on synstack.
func TestEndToEndSynstack(t *testing.T) {
	if err := wgtest.NeedTools(); err != nil {
		t.Skip("skipped: ", err)
	}
	size := *fetchSize
	if testing.Short() && !flagSet("wgtest.size") {
		size = 16 << 20
	}
	var args []string
	if testing.Short() {
		args = append(args, "-test.short")
	}
	if flagSet("wgtest.size") {
		args = append(args, "-wgtest.size", flag.Lookup("wgtest.size").Value.String())
	}
	if !wgtest.InNamespace(t, 10*time.Minute, args...) {
		return
	}
	wgtest.EndToEnd(t, wgtest.Synstack, size)
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(name string) (set bool) {
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
