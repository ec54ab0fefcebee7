package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/synstack/synstack/link/pcap"
	"github.com/synstack/synstack/trace"
	"github.com/synstack/synstack/wire"
)

// The scenarios the issue names, in order.
var wantScenarios = []string{
	"handshake", "refused", "connect-timeout", "simultaneous-open", "active-close",
	"passive-close", "simultaneous-close", "time-wait", "reuseaddr", "reuseport",
	"half-close", "shutdown-rd", "shutdown-rdwr", "close-vs-shutdown", "half-open",
	"syn-flood", "backlog-overflow", "retransmission", "zero-window",
}

func TestDemoList(t *testing.T) {
	var out bytes.Buffer
	if err := runDemo(&out, []string{"--list"}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(wantScenarios) {
		t.Fatalf("--list printed %d lines, want %d:\n%s", len(lines), len(wantScenarios), out.String())
	}
	for i, name := range wantScenarios {
		f := strings.Fields(lines[i])
		if len(f) < 4 || f[0] != name {
			t.Errorf("line %d: %q, want scenario %s and a sentence", i, lines[i], name)
		}
	}
}

// Key states each scenario must show, beyond its own keyStates: the ones
// the issue names.
var issueKeyStates = map[string][]string{
	"simultaneous-close": {"CLOSING"},
	"simultaneous-open":  {"SYN_RCVD"},
	"half-close":         {"CLOSE_WAIT"},
	"time-wait":          {"TIME_WAIT"},
	"passive-close":      {"CLOSE_WAIT"},
	"active-close":       {"FIN_WAIT_2", "TIME_WAIT"},
	"syn-flood":          {"SYN_RCVD"},
}

// Every scenario runs, succeeds, and shows its key states on the ladder, in
// the paths taken, and lit in the state diagram; its capture parses, and its
// drawing is well-formed XML. Nothing here times the run: the lab's clock is
// virtual, and how fast the machine is says nothing about the scenario.
func TestDemoScenarios(t *testing.T) {
	all := append([]*scenario{tour}, scenarios...)
	for _, sc := range all {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			var out, svg, capture bytes.Buffer
			err := runScenario(&out, sc, demoOptions{svg: &svg, pcap: &capture})
			if err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			text := out.String()
			want := append(append([]string(nil), sc.keyStates...), issueKeyStates[sc.name]...)
			for _, st := range want {
				if !regexp.MustCompile(`(-> |^|\s)` + st + `( |$)`).MatchString(text) {
					t.Errorf("output lacks state %s:\n%s", st, text)
				}
			}
			if sc != tour {
				paths := text[strings.Index(text, "Paths taken:"):]
				for _, st := range want {
					if !strings.Contains(paths, st) {
						t.Errorf("paths taken lack %s:\n%s", st, paths)
					}
				}
				if !strings.Contains(text, "== "+sc.name+": ") {
					t.Errorf("no title line")
				}
			}
			checkSVG(t, svg.Bytes(), want)
			checkCapture(t, capture.Bytes())

			// The capture, taken on the client's side of the link, holds
			// every packet sent, but those the server sent that the link
			// lost: the same count the JSON events give.
			var js, capture2 bytes.Buffer
			if err := runScenario(&js, sc, demoOptions{json: true, pcap: &capture2}); err != nil {
				t.Fatal(err)
			}
			sent := 0
			for _, line := range strings.Split(strings.TrimSpace(js.String()), "\n") {
				var r trace.Record
				if err := json.Unmarshal([]byte(line), &r); err != nil {
					t.Fatalf("not JSON: %s", line)
				}
				switch {
				case r.Kind == "packet-out":
					sent++
				case r.Kind == "drop" && r.Host == serverName:
					sent--
				}
			}
			recs, err := pcap.Read(bytes.NewReader(capture2.Bytes()))
			if err != nil || len(recs) != sent {
				t.Errorf("capture holds %d packets (%v), the events say %d", len(recs), err, sent)
			}
		})
	}
}

// checkSVG checks that the drawing is well-formed XML and that each state
// in lit has its box lit in the state diagram.
func checkSVG(t *testing.T, data []byte, lit []string) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(data))
	ids := map[string]string{} // id -> class
	root := ""
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = se.Name.Local
			}
			var id, class string
			for _, a := range se.Attr {
				switch a.Name.Local {
				case "id":
					id = a.Value
				case "class":
					class = a.Value
				}
			}
			if id != "" {
				ids[id] = class
			}
		}
	}
	if root != "svg" {
		t.Fatalf("root element %q", root)
	}
	for _, st := range lit {
		c1, c2 := ids["state-"+st], ids["state-"+st+"-end"]
		if !strings.Contains(c1, "lit") && !strings.Contains(c2, "lit") {
			t.Errorf("state %s is not lit in the state diagram (class %q)", st, c1)
		}
	}
	litEdges := 0
	for id, class := range ids {
		if strings.HasPrefix(id, "edge-") && strings.Contains(class, "lit") {
			litEdges++
		}
	}
	if litEdges == 0 {
		t.Errorf("no arrow of the state diagram is lit")
	}
}

// checkCapture parses every packet of a capture with package wire and
// verifies its checksums.
func checkCapture(t *testing.T, data []byte) {
	t.Helper()
	recs, err := pcap.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 {
		t.Fatal("empty capture")
	}
	for i, r := range recs {
		h, seg, err := wire.ParseIPv4(r.Data)
		if err != nil {
			t.Fatalf("packet %d: %v", i+1, err)
		}
		if wire.FoldChecksum(wire.Checksum(r.Data[:h.HeaderLen], 0)) != 0 {
			t.Errorf("packet %d: bad IPv4 header checksum", i+1)
		}
		if _, _, err := wire.ParseTCP(seg); err != nil {
			t.Errorf("packet %d: %v", i+1, err)
		}
		if !wire.TCPChecksumValid(seg, h.Src, h.Dst) {
			t.Errorf("packet %d: bad TCP checksum", i+1)
		}
		if _, err := trace.ParsePacket(r.Data); err != nil {
			t.Errorf("packet %d: %v", i+1, err)
		}
	}
}

// demo --pcap writes a file that our parser and, if installed, tshark
// read: every packet, no malformed packet, no bad checksum.
func TestDemoPcapFile(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"", "syn-flood", "half-open", "retransmission", "zero-window"} {
		file := filepath.Join(dir, "demo-"+name+".pcap")
		args := []string{"--pcap", file}
		if name != "" {
			args = append(args, name)
		}
		var out bytes.Buffer
		if err := runDemo(&out, args); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		checkCapture(t, data)
		recs, _ := pcap.Read(bytes.NewReader(data))
		tsharkCheck(t, file, len(recs))
	}
}

// tsharkCheck runs tshark on a capture when tshark is installed: it must
// read n packets, none malformed, none with a bad IP or TCP checksum.
func tsharkCheck(t *testing.T, file string, n int) {
	t.Helper()
	path, err := exec.LookPath("tshark")
	if err != nil {
		t.Log("tshark not installed: skipping the tshark check")
		return
	}
	run := func(args ...string) string {
		cmd := exec.Command(path, append([]string{"-r", file, "-n",
			"-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE"}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tshark %v: %v\n%s", args, err, stderr.String())
		}
		return strings.TrimSpace(string(out))
	}
	if got := len(strings.Split(run(), "\n")); got != n {
		t.Errorf("tshark read %d packets, want %d", got, n)
	}
	// Malformed packets and bad checksums; expert-info errors of TCP
	// analysis (a reassembly "overlap" on a retransmission to port 80,
	// read as HTTP) say nothing about the file.
	if bad := run("-Y", "_ws.malformed || ip.checksum.status == 0 || tcp.checksum.status == 0"); bad != "" {
		t.Errorf("tshark flags packets in %s:\n%s", filepath.Base(file), bad)
	}
	// Every checksum verified good (status 1), not merely not bad.
	if good := run("-Y", "ip.checksum.status == 1 && tcp.checksum.status == 1"); len(strings.Split(good, "\n")) != n {
		t.Errorf("tshark verified the checksums of %d packets of %d in %s", len(strings.Split(good, "\n")), n, filepath.Base(file))
	}
}

// demo --json prints one JSON object per line, with every kind of event of
// the tour.
func TestDemoJSON(t *testing.T) {
	var out bytes.Buffer
	if err := runDemo(&out, []string{"--json"}); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for i, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var r trace.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", i+1, err, line)
		}
		kinds[r.Kind]++
		if r.Kind == "packet-out" && (r.Packet == nil || r.Packet.Flags == "" || r.Packet.Summary == "") {
			t.Errorf("line %d: packet without headers: %s", i+1, line)
		}
		if r.Kind == "transition" && (r.From == "" || r.To == "" || r.Cause == "") {
			t.Errorf("line %d: transition without states or cause: %s", i+1, line)
		}
	}
	for _, k := range []string{"packet-out", "packet-in", "transition", "call", "note", "timer"} {
		if kinds[k] == 0 {
			t.Errorf("no %s event in the JSON lines (%v)", k, kinds)
		}
	}
}

// Flags may follow the scenario's name; unknown scenarios are refused.
func TestDemoArgs(t *testing.T) {
	dir := t.TempDir()
	svg := filepath.Join(dir, "x.svg")
	var out bytes.Buffer
	if err := runDemo(&out, []string{"refused", "--svg", svg}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(svg); err != nil || fi.Size() == 0 {
		t.Fatalf("no SVG written: %v", err)
	}
	if err := runDemo(&out, []string{"no-such-thing"}); err == nil {
		t.Fatal("unknown scenario accepted")
	}
	if err := runDemo(&out, []string{"refused", "handshake"}); err == nil {
		t.Fatal("two scenarios accepted")
	}
}

// The spoofed SYNs of the flood are well-formed, with valid checksums.
func TestSpoofedSYN(t *testing.T) {
	p, err := trace.ParsePacket(spoofedSYN(2, 1))
	if err != nil {
		t.Fatal(err)
	}
	if p.Src.Addr() != netip.MustParseAddr("10.0.0.102") || p.TCP.Flags != wire.FlagSYN || p.Dst.Port() != 80 {
		t.Fatalf("got %+v", p)
	}
	checkCapture(t, capture(t, spoofedSYN(0, 1), spoofedSYN(5, 2)))
}

func capture(t *testing.T, pkts ...[]byte) []byte {
	var buf bytes.Buffer
	w, err := pcap.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkts {
		w.WritePacket(time.Unix(0, 0), p)
	}
	return buf.Bytes()
}
