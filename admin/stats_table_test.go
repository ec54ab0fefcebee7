package admin

import (
	"reflect"
	"testing"

	"github.com/synstack/synstack"
)

// TestEveryStatHasHelp: every synstack.Stats field has its row in the
// stats table (a HELP text of its own, and whether it is a gauge), and the
// table names no field that is gone.
func TestEveryStatHasHelp(t *testing.T) {
	fields := map[string]bool{}
	typ := reflect.TypeOf(synstack.Stats{})
	for i := range typ.NumField() {
		name := typ.Field(i).Name
		fields[name] = true
		if _, ok := stats[name]; !ok {
			t.Errorf("Stats.%s has no row in admin's stats table", name)
		}
	}
	for name := range stats {
		if !fields[name] {
			t.Errorf("the stats table names %s, which Stats does not have", name)
		}
	}
}
