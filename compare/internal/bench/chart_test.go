package bench

import (
	"bytes"
	"encoding/xml"
	"io"
	"testing"
)

// The charts are well-formed XML with one line per kind, and nothing is
// drawn from a report without points.
func TestCharts(t *testing.T) {
	r := &Report{
		BulkByMTU:   []Point{{Synstack, 1500, 300}, {GVisor, 1500, 250}, {Synstack, 65535, 900}, {GVisor, 65535, 1600}, {Kernel, KernelMTU, 4000}},
		HeapByConns: []Point{{Synstack, 1000, 5300}, {GVisor, 1000, 11500}, {Synstack, 50000, 5100}, {GVisor, 50000, 11200}},
	}
	for name, svg := range map[string][]byte{"bulk": BulkChart(r), "heap": HeapChart(r)} {
		d := xml.NewDecoder(bytes.NewReader(svg))
		lines := 0
		for {
			tok, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v\n%s", name, err, svg)
			}
			if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
				lines++
			}
		}
		if lines != 2 {
			t.Errorf("%s: %d lines, want 2", name, lines)
		}
	}
	if BulkChart(&Report{}) != nil || HeapChart(&Report{}) != nil {
		t.Error("a chart without points")
	}
}
