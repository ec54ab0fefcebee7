package script

import (
	"fmt"
	"strings"
	"testing"
)

// TestSysCallTable walks the table of system calls: every row builds,
// and a call with one argument too many or too few is refused with the
// count the row gives.
func TestSysCallTable(t *testing.T) {
	for name, call := range sysCalls {
		if call.build == nil {
			t.Errorf("%s: no build", name)
			continue
		}
		if call.max < 0 {
			continue
		}
		if call.min > call.max {
			t.Errorf("%s: %d to %d arguments", name, call.min, call.max)
			continue
		}
		for _, n := range []int{call.min - 1, call.max + 1} {
			if n < 0 {
				continue
			}
			args := strings.TrimSuffix(strings.Repeat("3, ", n), ", ")
			res := Run("t.pkt", []byte(fmt.Sprintf("0 %s(%s) = 0\n", name, args)), Options{})
			want := fmt.Sprintf("%s needs %d to %d arguments, got %d", name, call.min, call.max, n)
			if call.min == call.max {
				want = fmt.Sprintf("%s needs %d arguments, got %d", name, call.min, n)
			}
			if res.Err == nil || !strings.Contains(res.Err.Error(), want) {
				t.Errorf("%s with %d arguments: %v, want %q", name, n, res.Err, want)
			}
		}
	}
}
