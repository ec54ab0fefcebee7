package trace_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/synstack/synstack/trace"
	"github.com/synstack/synstack/wire"
)

var (
	t0  = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cli = netip.MustParseAddrPort("10.0.0.2:40000")
	srv = netip.MustParseAddrPort("10.0.0.1:80")
)

// pkt builds an IPv4 packet carrying a TCP segment.
func pkt(src, dst netip.AddrPort, flags wire.TCPFlags, seq, ack uint32, win uint16, opts wire.TCPOptions, data string) []byte {
	th := wire.TCP{SrcPort: src.Port(), DstPort: dst.Port(), Seq: seq, Ack: ack, Flags: flags, Window: win, Options: opts}
	b := make([]byte, wire.IPv4HeaderLen+th.HeaderLen()+len(data))
	n, err := th.Emit(b[wire.IPv4HeaderLen:])
	if err != nil {
		panic(err)
	}
	copy(b[wire.IPv4HeaderLen+n:], data)
	wire.SetTCPChecksum(b[wire.IPv4HeaderLen:], src.Addr(), dst.Addr())
	ih := wire.IPv4{TTL: 64, Protocol: wire.ProtoTCP, Src: src.Addr(), Dst: dst.Addr()}
	if _, err := ih.Emit(b, n+len(data)); err != nil {
		panic(err)
	}
	return b
}

var synOpts = wire.TCPOptions{MSS: 1460, SACKPermitted: true, HasTimestamp: true, TSVal: 123456789, HasWScale: true, WScale: 7}

// conversation is a short exchange with a lost and retransmitted segment,
// duplicate ACKs and a probe.
func conversation() []trace.Event {
	const ci, si = 1000, 5000
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ack := wire.FlagACK
	lost := pkt(cli, srv, wire.FlagPSH|ack, ci+1, si+1, 502, wire.TCPOptions{}, "hello")
	return []trace.Event{
		{Time: at(0), Host: "server", Kind: trace.Transition, From: "CLOSED", To: "LISTEN", Cause: "call LISTEN", Local: srv},
		{Time: at(0), Host: "client", Kind: trace.Call, Text: "connect(3, 10.0.0.1:80) = -1 EINPROGRESS"},
		{Time: at(0), Host: "client", Kind: trace.Transition, From: "CLOSED", To: "SYN_SENT", Cause: "call CONNECT", Local: cli, Remote: srv},
		{Time: at(0), Host: "client", Kind: trace.PacketOut, Packet: pkt(cli, srv, wire.FlagSYN, ci, 0, 65535, synOpts, "")},
		{Time: at(10), Host: "server", Kind: trace.PacketIn, Packet: pkt(cli, srv, wire.FlagSYN, ci, 0, 65535, synOpts, "")},
		{Time: at(10), Host: "server", Kind: trace.PacketOut, Packet: pkt(srv, cli, wire.FlagSYN|ack, si, ci+1, 65535, synOpts, "")},
		{Time: at(20), Host: "client", Kind: trace.PacketOut, Packet: pkt(cli, srv, ack, ci+1, si+1, 502, wire.TCPOptions{}, "")},
		{Time: at(30), Host: "client", Kind: trace.PacketOut, Packet: lost},
		{Time: at(30), Host: "client", Kind: trace.Drop, Packet: lost, Text: "lost"},
		{Time: at(30), Host: "client", Kind: trace.PacketOut, Packet: pkt(cli, srv, wire.FlagPSH|ack, ci+6, si+1, 502, wire.TCPOptions{}, "world")},
		{Time: at(40), Host: "server", Kind: trace.PacketOut, Packet: pkt(srv, cli, ack, si+1, ci+1, 501, wire.TCPOptions{}, "")},
		{Time: at(40), Host: "server", Kind: trace.PacketOut, Packet: pkt(srv, cli, ack, si+1, ci+1, 501,
			wire.TCPOptions{NumSACK: 1, SACK: [4]wire.SACKBlock{{Left: ci + 6, Right: ci + 11}}}, "")},
		{Time: at(250), Host: "client", Kind: trace.Timer, Text: "retransmission timeout (RTO)"},
		{Time: at(250), Host: "client", Kind: trace.PacketOut, Packet: lost},
		{Time: at(300), Host: "server", Kind: trace.Note, Text: "a note"},
		{Time: at(900), Host: "client", Kind: trace.PacketOut, Packet: pkt(cli, srv, ack, ci+10, si+1, 502, wire.TCPOptions{}, "")},
		{Time: at(950), Host: "client", Kind: trace.Drop, Packet: pkt(cli, srv, wire.FlagFIN|ack, ci+11, si+1, 502, wire.TCPOptions{}, "")},
	}
}

func TestLadder(t *testing.T) {
	var out bytes.Buffer
	l := trace.NewLadder(&out, "client", "server")
	for _, ev := range conversation() {
		l.Event(ev)
	}
	l.Flush()
	want := `    time  client                                                          server
          ------                                                          ------
   0.000                                         CLOSED -> LISTEN  (call LISTEN)
   0.000  connect(3, 10.0.0.1:80) = -1 EINPROGRESS
   0.000  CLOSED -> SYN_SENT  (call CONNECT)
   0.000  --------- S 0:0(0) win 65535 <mss 1460,sackOK,TS,wscale 7> --------->
   0.010  <----- S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS,wscale 7> ------
   0.020  ---------------------- . 1:1(0) ack 1 win 502 ---------------------->
   0.030  --------------------- P. 1:6(5) ack 1 win 502 --X
   0.030  --------------------- P. 6:11(5) ack 1 win 502 --------------------->
   0.040  <---------------------- . 1:1(0) ack 1 win 501 ----------------------
   0.040  <----------- . 1:1(0) ack 1 win 501 <sack 6:11> (dup ack) -----------
   0.250  (timer) retransmission timeout (RTO)
   0.250  ------------- P. 1:6(5) ack 1 win 502 (retransmission) ------------->
          # a note
   0.900  ----------------- . 10:10(0) ack 1 win 502 (probe) ----------------->
   0.950                    X lost: F. 11:11(0) ack 1 win 502
`
	if got := out.String(); got != want {
		t.Errorf("ladder:\n%s\nwant:\n%s", got, want)
	}
}

func TestLadderPorts(t *testing.T) {
	var out bytes.Buffer
	l := trace.NewLadder(&out, "client", "server")
	l.Ports = true
	l.Options = trace.OptionsNone
	for _, ev := range conversation()[:6] {
		l.Event(ev)
	}
	l.Flush()
	for _, want := range []string{"[:80] CLOSED -> LISTEN", "[40000>80] CLOSED -> SYN_SENT", "40000>80 S 0:0(0) win 65535 --", "80>40000 S. 0:0(0) ack 1 win 65535 --"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in\n%s", want, out.String())
		}
	}
}

// Summary keeps its historical form: all options, relative numbers.
func TestSummary(t *testing.T) {
	isn := map[trace.FlowKey]uint32{}
	syn := trace.Summary(pkt(cli, srv, wire.FlagSYN, 7, 0, 65535, synOpts, ""), isn)
	if syn != "S 0:0(0) win 65535 <mss 1460,sackOK,TS val 123456789 ecr 0,nop,wscale 7>" {
		t.Errorf("SYN: %s", syn)
	}
	if s := trace.Summary(pkt(cli, srv, wire.FlagACK, 8, 0, 100, wire.TCPOptions{}, "abc"), isn); s != ". 1:4(3) ack 0 win 100" {
		t.Errorf("data: %s", s)
	}
	if s := trace.Summary([]byte{0x45, 0}, nil); !strings.HasPrefix(s, "bad packet") {
		t.Errorf("garbage: %s", s)
	}
}

func TestFlowsTags(t *testing.T) {
	var f trace.Flows
	tag := func(b []byte) string {
		p, err := trace.ParsePacket(b)
		if err != nil {
			t.Fatal(err)
		}
		_, _, tag := f.Observe(&p)
		return tag
	}
	for i, c := range []struct {
		pkt  []byte
		want string
	}{
		{pkt(cli, srv, wire.FlagSYN, 100, 0, 65535, synOpts, ""), ""},
		{pkt(cli, srv, wire.FlagSYN, 100, 0, 65535, synOpts, ""), trace.TagRetransmission},
		// A simultaneous open: the SYN,ACK repeats the SYN's ISN.
		{pkt(cli, srv, wire.FlagSYN|wire.FlagACK, 100, 501, 65535, synOpts, ""), ""},
		{pkt(srv, cli, wire.FlagSYN|wire.FlagACK, 500, 101, 65535, synOpts, ""), ""},
		{pkt(cli, srv, wire.FlagACK, 101, 501, 500, wire.TCPOptions{}, "abcd"), ""},
		{pkt(srv, cli, wire.FlagACK, 501, 103, 500, wire.TCPOptions{}, ""), ""},
		{pkt(srv, cli, wire.FlagACK, 501, 103, 500, wire.TCPOptions{}, ""), trace.TagDupAck},
		{pkt(srv, cli, wire.FlagACK, 501, 103, 499, wire.TCPOptions{}, ""), ""}, // window update
		{pkt(cli, srv, wire.FlagACK|wire.FlagPSH, 103, 501, 500, wire.TCPOptions{}, "cd"), trace.TagRetransmission},
		{pkt(cli, srv, wire.FlagACK, 104, 501, 500, wire.TCPOptions{}, ""), trace.TagProbe},
		{pkt(cli, srv, wire.FlagRST, 105, 0, 0, wire.TCPOptions{}, ""), ""},
	} {
		if got := tag(c.pkt); got != c.want {
			t.Errorf("packet %d: tag %q, want %q", i, got, c.want)
		}
	}
}

func TestJSON(t *testing.T) {
	var out bytes.Buffer
	j := trace.NewJSON(&out)
	for _, ev := range conversation() {
		j.Event(ev)
	}
	if j.Err() != nil {
		t.Fatal(j.Err())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(conversation()) {
		t.Fatalf("%d lines for %d events", len(lines), len(conversation()))
	}
	var recs []trace.Record
	for _, line := range lines {
		var r trace.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		recs = append(recs, r)
	}
	syn := recs[3]
	if syn.Kind != "packet-out" || syn.Packet.Flags != "S" || syn.Packet.Seq != 1000 || syn.Packet.RelSeq != 0 ||
		syn.Packet.Src != "10.0.0.2:40000" || !strings.Contains(syn.Packet.Options, "TS val 123456789") {
		t.Errorf("SYN record: %+v", syn.Packet)
	}
	if in := recs[4]; in.Kind != "packet-in" || in.Host != "server" || in.Packet.Summary == "" {
		t.Errorf("packet-in record: %s", lines[4])
	}
	if tr := recs[2]; tr.From != "CLOSED" || tr.To != "SYN_SENT" || tr.Cause != "call CONNECT" || tr.Local != "10.0.0.2:40000" {
		t.Errorf("transition record: %s", lines[2])
	}
	if rtx := recs[13]; rtx.Packet.Tag != trace.TagRetransmission || rtx.T != 0.25 {
		t.Errorf("retransmission record: %s", lines[13])
	}
	if recs[12].Kind != "timer" || recs[8].Kind != "drop" {
		t.Errorf("kinds: %s, %s", recs[12].Kind, recs[8].Kind)
	}
}

func TestSVG(t *testing.T) {
	s := trace.NewSVG("demo x: a <test> & more", "client", "server")
	for _, ev := range conversation() {
		s.Event(ev)
	}
	s.Event(trace.Event{Time: t0.Add(time.Second), Host: "client", Kind: trace.Transition, From: "SYN_SENT", To: "ESTABLISHED", Local: cli, Remote: srv})
	s.Event(trace.Event{Time: t0.Add(time.Second), Host: "client", Kind: trace.Transition, From: "ESTABLISHED", To: "CLOSED", Cause: "rcv RST", Local: cli, Remote: srv})
	var out bytes.Buffer
	if _, err := s.WriteTo(&out); err != nil {
		t.Fatal(err)
	}
	classes := map[string]string{}
	d := xml.NewDecoder(&out)
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			var id, class string
			for _, a := range se.Attr {
				if a.Name.Local == "id" {
					id = a.Value
				}
				if a.Name.Local == "class" {
					class = a.Value
				}
			}
			classes[id] = class
		}
	}
	for id, want := range map[string]string{
		"state-SYN_SENT":                   "state lit left",
		"state-LISTEN":                     "state lit right",
		"state-CLOSED":                     "state lit left right",
		"state-CLOSED-end":                 "state lit left",
		"state-CLOSING":                    "state",
		"edge-CLOSED-SYN_SENT":             "edge lit left",
		"edge-CLOSED-LISTEN":               "edge lit right",
		"edge-SYN_SENT-ESTABLISHED":        "edge lit left",
		"edge-ESTABLISHED-CLOSED-end":      "edge lit left",
		"edge-FIN_WAIT_1-CLOSING":          "edge",
		"sequence":                         "",
		"states":                           "",
		"edge-ESTABLISHED-CLOSE_WAIT":      "edge",
		"edge-SYN_RCVD-LISTEN":             "edge",
		"edge-TIME_WAIT-CLOSED-end":        "edge",
		"edge-LAST_ACK-CLOSED-end":         "edge",
		"edge-FIN_WAIT_1-TIME_WAIT":        "edge",
		"edge-SYN_SENT-SYN_RCVD":           "edge",
		"edge-LISTEN-SYN_RCVD":             "edge",
		"edge-CLOSE_WAIT-LAST_ACK":         "edge",
		"edge-CLOSING-TIME_WAIT":           "edge",
		"edge-FIN_WAIT_2-TIME_WAIT":        "edge",
		"edge-FIN_WAIT_1-FIN_WAIT_2":       "edge",
		"edge-SYN_RCVD-FIN_WAIT_1":         "edge",
		"edge-ESTABLISHED-FIN_WAIT_1":      "edge",
		"edge-SYN_RCVD-ESTABLISHED":        "edge",
		"edge-LISTEN-SYN_SENT":             "edge",
		"edge-LISTEN-CLOSED":               "edge",
		"edge-SYN_SENT-CLOSED":             "edge",
		"state-ESTABLISHED":                "state lit left",
		"state-TIME_WAIT":                  "state",
		"state-FIN_WAIT_1":                 "state",
		"state-SYN_RCVD":                   "state",
		"state-LAST_ACK":                   "state",
		"state-CLOSE_WAIT":                 "state",
		"state-FIN_WAIT_2":                 "state",
		"edge-ESTABLISHED-CLOSED-end-none": "missing",
	} {
		got, ok := classes[id]
		if want == "missing" {
			if ok {
				t.Errorf("%s present", id)
			}
			continue
		}
		if !ok || got != want {
			t.Errorf("%s: class %q (present %v), want %q", id, got, ok, want)
		}
	}
}

func TestTracerSubscribe(t *testing.T) {
	var nilTracer *trace.Tracer
	if nilTracer.Enabled() {
		t.Fatal("nil tracer enabled")
	}
	nilTracer.Emit(trace.Event{}) // must not panic
	tr := trace.NewTracer(nil)
	if tr.Enabled() {
		t.Fatal("enabled without subscribers")
	}
	var a, b []trace.Event
	cancelA := tr.Subscribe(trace.Func(func(ev trace.Event) { a = append(a, ev) }))
	cancelB := tr.Subscribe(trace.Func(func(ev trace.Event) { b = append(b, ev) }))
	p := []byte{1, 2, 3}
	tr.PacketHook("h")("out", p)
	p[0] = 9
	trace.TransitionHook[state, string](tr, "h")(cli, srv, 1, 2, "rcv SYN")
	cancelA()
	tr.Packet("h", "in", p)
	cancelB()
	cancelB()
	if tr.Enabled() {
		t.Fatal("enabled after every cancel")
	}
	tr.Packet("h", "in", p)
	if len(a) != 2 || len(b) != 3 {
		t.Fatalf("a got %d, b got %d events", len(a), len(b))
	}
	if a[0].Kind != trace.PacketOut || a[0].Packet[0] != 1 || a[0].Time.IsZero() {
		t.Errorf("packet event %+v (the packet must be copied)", a[0])
	}
	if a[1].Kind != trace.Transition || a[1].From != "s1" || a[1].To != "s2" || a[1].Cause != "rcv SYN" {
		t.Errorf("transition event %+v", a[1])
	}
	if b[2].Kind != trace.PacketIn {
		t.Errorf("kind %v", b[2].Kind)
	}
}

type state uint8

func (s state) String() string { return "s" + string(rune('0'+s)) }

// With nobody listening, a hook costs no allocation.
func TestIdleHookAllocs(t *testing.T) {
	tr := trace.NewTracer(nil)
	hook := tr.PacketHook("h")
	th := trace.TransitionHook[state, string](tr, "h")
	p := make([]byte, 1500)
	if n := testing.AllocsPerRun(100, func() {
		hook("out", p)
		th(cli, srv, 1, 2, "x")
	}); n != 0 {
		t.Fatalf("idle hooks allocate %v times", n)
	}
}
