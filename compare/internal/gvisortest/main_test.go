package gvisortest_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine, synstack's or
// gVisor's, outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
