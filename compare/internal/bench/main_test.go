package bench

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine, synstack's, gVisor's
// or the harness's, outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
