package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// Run with Only runs those figures and no other, with ratios where both
// sides were measured, and the table names them.
func TestRunOnly(t *testing.T) {
	var progress bytes.Buffer
	r, err := Run(context.Background(), Options{Quick: true, Only: []string{NamePingPong}, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Figures) != 1 || r.Figures[0].Name != "pingpong" || len(r.Errors) > 0 {
		t.Fatalf("figures %v, errors %v", r.Figures, r.Errors)
	}
	f := r.Figures[0]
	if f.Synstack == nil || f.GVisor == nil || f.Kernel == nil || f.SynstackOverGVisor == nil || f.SynstackOverKernel == nil {
		t.Fatalf("%+v", f)
	}
	if *f.SynstackOverGVisor != *f.Synstack / *f.GVisor {
		t.Errorf("ratio %v of %v and %v", *f.SynstackOverGVisor, *f.Synstack, *f.GVisor)
	}
	var table bytes.Buffer
	if err := WriteTable(&table, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "pingpong") || !strings.Contains(progress.String(), "bench: pingpong synstack") {
		t.Errorf("table:\n%s\nprogress:\n%s", table.String(), progress.String())
	}
	if _, err := Run(context.Background(), Options{Only: []string{"nosuch"}}); err == nil {
		t.Error("an unknown figure was accepted")
	}
}

// A cancelled run stops and says so.
func TestRunCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r, err := Run(ctx, Options{Quick: true})
	if err == nil || r == nil {
		t.Fatalf("report %v, error %v", r, err)
	}
}
