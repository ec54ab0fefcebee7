package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/synstack/synstack/compare/internal/bench"
)

// synstack-bench --quick --json F runs, and F has every figure with its
// unit, the values of the kinds each applies to, and the versions.
func TestBenchQuickJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every benchmark for a short while (about 10 s)")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "bench.json")
	var out, errOut bytes.Buffer
	if err := runBench(&out, &errOut, []string{"--quick", "--idle", "400", "--json", file, "--svg", dir}); err != nil {
		t.Fatalf("%v\nstdout (the failed measurements are listed under the table):\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var r bench.Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	// The kernel has no Go heap per connection and no Go segments.
	noKernel := map[string]bool{"allocs_per_segment": true, "idle_heap_per_conn": true, "idle_heap_per_endpoint": true, "idle_used_heap_per_endpoint": true, "idle_heap_total": true, "idle_setup": true}
	for _, name := range []string{
		"bulk_mtu1500", "bulk_mtu1500_gbit", "bulk_mtu65535", "bulk_mtu65535_gbit",
		"connsetup_1", "connsetup_8", "pingpong",
		"idle_heap_per_conn", "idle_heap_per_endpoint", "idle_used_heap_per_endpoint", "idle_heap_total", "idle_setup", "allocs_per_segment",
		"udp_64b_1flow", "udp_64b_8flow", "udp_1400b_1flow", "udp_1400b_8flow",
	} {
		f := r.Figure(name)
		if f == nil {
			t.Errorf("no figure %s in\n%s", name, b)
			continue
		}
		if f.Unit == "" || f.What == "" {
			t.Errorf("%s: unit %q, what %q", name, f.Unit, f.What)
		}
		if f.Synstack == nil || f.GVisor == nil || f.SynstackOverGVisor == nil {
			t.Errorf("%s: a value or ratio is missing: %+v", name, f)
		}
		if (f.Kernel == nil) != noKernel[name] {
			t.Errorf("%s: kernel value %v", name, f.Kernel)
		}
		if name != "allocs_per_segment" && f.Synstack != nil && *f.Synstack <= 0 {
			t.Errorf("%s: synstack %v", name, *f.Synstack)
		}
	}
	if r.Versions.Go == "" || r.Versions.GVisor == "" || r.Versions.Kernel == "" {
		t.Errorf("versions: %+v", r.Versions)
	}
	if !strings.Contains(out.String(), "synstack/gvisor") || !strings.Contains(out.String(), "connsetup_8") {
		t.Errorf("table:\n%s", out.String())
	}
	if !strings.Contains(errOut.String(), "bench: pingpong kernel") {
		t.Errorf("no progress on stderr:\n%s", errOut.String())
	}
	for _, name := range []string{"bulk-mtu.svg", "idle-heap.svg"} {
		svg, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Error(err)
			continue
		}
		if !bytes.HasPrefix(svg, []byte("<svg ")) || !bytes.Contains(svg, []byte("<polyline")) {
			t.Errorf("%s is not a chart:\n%s", name, svg)
		}
	}
}

func TestBenchBadFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := runBench(&out, &errOut, []string{"--only", "nosuch"}); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("--only nosuch: %v", err)
	}
	if err := runBench(&out, &errOut, []string{"extra"}); err == nil {
		t.Error("a stray argument was accepted")
	}
}
