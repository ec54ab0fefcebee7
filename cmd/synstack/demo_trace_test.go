package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// packetArrow matches the arrow of a packet that arrived in the demo's SVG
// (trace.SVG: class "packet", its flags, the sender's side, the ends).
var packetArrow = regexp.MustCompile(`<line class="packet" data-flags="([^"]*)" data-from="(left|right)" x1="(-?\d+)" y1="(-?\d+)" x2="(-?\d+)" y2="(-?\d+)"`)

// The sequence diagram draws each packet from its sending, on the sender's
// lifeline, to its arrival on the receiver's: the FINs of a simultaneous
// close cross, and so do the SYNs of a simultaneous open.
func TestDemoSVGArrowsCross(t *testing.T) {
	for _, c := range []struct{ scenario, flags string }{
		{"simultaneous-close", "F."},
		{"simultaneous-open", "S"},
	} {
		t.Run(c.scenario, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "x.svg")
			var out bytes.Buffer
			if err := runDemo(&out, []string{c.scenario, "--svg", file}); err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			ends := map[string][4]float64{} // side -> x1, y1, x2, y2
			for _, m := range packetArrow.FindAllStringSubmatch(string(data), -1) {
				if m[1] != c.flags {
					continue
				}
				if _, dup := ends[m[2]]; dup {
					t.Fatalf("two %s arrows from the %s", c.flags, m[2])
				}
				var e [4]float64
				for i := range e {
					e[i], _ = strconv.ParseFloat(m[3+i], 64)
				}
				ends[m[2]] = e
			}
			l, lok := ends["left"]
			r, rok := ends["right"]
			if !lok || !rok {
				t.Fatalf("want one %s arrow from each side, got %v", c.flags, ends)
			}
			// Solve l1 + s(l2-l1) = r1 + u(r2-r1) for s and u.
			dlx, dly, drx, dry := l[2]-l[0], l[3]-l[1], r[2]-r[0], r[3]-r[1]
			den := dlx*dry - dly*drx
			if den == 0 {
				t.Fatalf("the %s arrows are parallel: %v %v", c.flags, l, r)
			}
			s := ((r[0]-l[0])*dry - (r[1]-l[1])*drx) / den
			u := ((r[0]-l[0])*dly - (r[1]-l[1])*dlx) / den
			if s <= 0 || s >= 1 || u <= 0 || u >= 1 {
				t.Errorf("the %s arrows do not cross: left %v, right %v (they meet at s=%.2f, u=%.2f)", c.flags, l, r, s, u)
			} else {
				t.Logf("the %s arrows cross at (%.0f, %.0f)", c.flags, l[0]+s*dlx, l[1]+s*dly)
			}
		})
	}
}

// A listening socket has no peer: its transitions carry a local address
// and no remote field, never "invalid AddrPort".
func TestDemoJSONListenerRemote(t *testing.T) {
	var out bytes.Buffer
	if err := runDemo(&out, []string{"--json", "simultaneous-close"}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "invalid") {
		t.Errorf("an invalid address in the JSON lines:\n%s", out.String())
	}
	listeners := 0
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %s", line)
		}
		if m["kind"] != "transition" {
			continue
		}
		_, hasRemote := m["remote"]
		switch {
		case m["to"] == "LISTEN" && m["from"] == "CLOSED":
			listeners++
			if hasRemote || m["local"] != "10.0.0.1:80" {
				t.Errorf("listener's transition: %s", line)
			}
		case !hasRemote:
			t.Errorf("a connection's transition without its remote address: %s", line)
		}
	}
	if listeners != 1 {
		t.Errorf("%d CLOSED -> LISTEN transitions, want 1", listeners)
	}
}
