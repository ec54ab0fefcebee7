package wgtest_test

import (
	"testing"
	"time"

	"github.com/synstack/synstack/contrib/wireguard/wgtest"
)

// TestEndToEndSynstack: wireguard-go on a kernel TUN device and
// wireguard-go on synstack (CreateNetTUN), peers over loopback UDP in a
// namespace of the test's own. The kernel's curl fetches 256 MiB
// (wgtest.FetchSize: 16 MiB with -short or -race) byte-exact from an HTTP
// server on synstack; synstack resolves a name from a DNS server on the
// kernel's side; dig (if installed) resolves one from a DNS server on
// synstack; ping (if installed) gets synstack's echo replies.
func TestEndToEndSynstack(t *testing.T) {
	if err := wgtest.NeedTools(); err != nil {
		t.Skip("skipped: ", err)
	}
	if !wgtest.InNamespace(t, 10*time.Minute, wgtest.ChildArgs()...) {
		return
	}
	wgtest.EndToEnd(t, wgtest.Synstack, wgtest.FetchSize())
}
