package admin_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: the
// stacks, the HTTP servers, the event streams and Chromium's client all end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
