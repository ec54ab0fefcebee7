package synstack

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// test closes its stacks, and a closed stack leaves nothing running.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
