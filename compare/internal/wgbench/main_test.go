package wgbench_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine, synstack's,
// gVisor's or wireguard-go's, outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
