package script

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/synstack/synstack/wire"
)

// mustParse parses src or fails the test.
func mustParse(t *testing.T, src string) *script {
	t.Helper()
	s, err := parse("t.pkt", []byte(src))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return s
}

// one parses a single event.
func one(t *testing.T, src string) *event {
	t.Helper()
	s := mustParse(t, src)
	if len(s.events) != 1 {
		t.Fatalf("got %d events, want 1", len(s.events))
	}
	return s.events[0]
}

func TestParseTimes(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		src      string
		kind     timeKind
		at, end  time.Duration
		blocking bool
		bend     time.Duration
	}{
		{"0 close(3) = 0", timeAbsolute, 0, 0, false, 0},
		{"0.100 close(3) = 0", timeAbsolute, 100 * ms, 0, false, 0},
		{"+.1 close(3) = 0", timeRelative, 100 * ms, 0, false, 0},
		{"+1 close(3) = 0", timeRelative, time.Second, 0, false, 0},
		{"+0.0005 close(3) = 0", timeRelative, 500 * time.Microsecond, 0, false, 0},
		{"* > . 1:1(0) ack 1", timeAny, 0, 0, false, 0},
		{"0.1~0.3 > . 1:1(0) ack 1", timeAbsoluteRng, 100 * ms, 300 * ms, false, 0},
		{"+0.1~+0.3 > . 1:1(0) ack 1", timeRelativeRng, 100 * ms, 300 * ms, false, 0},
		{"+0...0.200 accept(3, ..., ...) = 4", timeRelative, 0, 0, true, 200 * ms},
		{"0.1...0.3 read(4, ..., 10) = 10", timeAbsolute, 100 * ms, 0, true, 300 * ms},
		{"+.1...0.200 connect(3, ..., ...) = 0", timeRelative, 100 * ms, 0, true, 200 * ms},
	} {
		e := one(t, tc.src)
		if e.timeKind != tc.kind || e.at != tc.at || e.end != tc.end {
			t.Errorf("%q: time %v %v~%v, want %v %v~%v", tc.src, e.timeKind, e.at, e.end, tc.kind, tc.at, tc.end)
		}
		if e.kind == evSyscall && (e.syscall.blocking != tc.blocking || e.syscall.end != tc.bend) {
			t.Errorf("%q: blocking %v until %v, want %v until %v", tc.src, e.syscall.blocking, e.syscall.end, tc.blocking, tc.bend)
		}
	}
}

func TestParsePackets(t *testing.T) {
	e := one(t, "+0 < S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop,nop,wscale 7>")
	p := e.packet
	if !p.inbound || p.flags != wire.FlagSYN || p.seq != 0 || p.end != 0 || p.length != 0 || p.win != 32792 {
		t.Errorf("SYN parsed as %+v", p)
	}
	if got := formatOptions(p.options); got != "<mss 1000,sackOK,nop,nop,nop,wscale 7>" {
		t.Errorf("options %s", got)
	}
	if e.text != "< S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop,nop,wscale 7>" {
		t.Errorf("text %q", e.text)
	}

	p = one(t, "+.1 > P. 1:1001(1000) ack 1 <nop,nop,TS val 100 ecr 7>").packet
	if p.inbound || p.flags != wire.FlagPSH|wire.FlagACK || p.seq != 1 || p.end != 1001 ||
		p.length != 1000 || p.ack != 1 || p.win != -1 || p.anyOptions {
		t.Errorf("data parsed as %+v", p)
	}
	if len(p.options) != 3 || p.options[2].tsVal != 100 || p.options[2].tsEcr != 7 {
		t.Errorf("TS option parsed as %+v", p.options)
	}

	p = one(t, "0 > S. 0:0(0) ack 1 <...>").packet
	if !p.anyOptions || p.flags != wire.FlagSYN|wire.FlagACK {
		t.Errorf("<...> parsed as %+v", p)
	}
	p = one(t, "0 > R 2:2(0)").packet
	if p.flags != wire.FlagRST || len(p.options) != 0 || p.anyOptions {
		t.Errorf("RST parsed as %+v", p)
	}
	p = one(t, "0 < - 1:1(0) win 0").packet
	if p.flags != 0 {
		t.Errorf("- parsed as flags %v", p.flags)
	}
	p = one(t, "0 < FP. 1:11(10) ack 1 win 257 urg 3").packet
	if p.flags != wire.FlagFIN|wire.FlagPSH|wire.FlagACK || p.urg != 3 {
		t.Errorf("FP. parsed as %+v", p)
	}
	p = one(t, "0 < SEW 0:0(0) win 1000").packet
	if p.flags != wire.FlagSYN|wire.FlagECE|wire.FlagCWR {
		t.Errorf("SEW parsed as %v", p.flags)
	}
	p = one(t, "0 < . 1:1(0) ack 1 win 257 <nop,nop,sack 1001:2001 3001:4001>").packet
	if len(p.options) != 3 || len(p.options[2].sack) != 2 || p.options[2].sack[1] != (wire.SACKBlock{Left: 3001, Right: 4001}) {
		t.Errorf("SACK parsed as %+v", p.options)
	}
	// An event may span lines, as in packetdrill; comments inside are
	// not part of its text.
	e = one(t, "0 < S 0:0(0) // the SYN\n  win 1000 /* window */\n  <mss 1460,nop,wscale 7>")
	if e.packet.win != 1000 || len(e.packet.options) != 3 || e.text != "< S 0:0(0) win 1000 <mss 1460,nop,wscale 7>" {
		t.Errorf("multi-line packet parsed as %+v, text %q", e.packet, e.text)
	}
}

func TestParseSyscalls(t *testing.T) {
	e := one(t, "+0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0")
	sc := e.syscall
	if sc.name != "setsockopt" || len(sc.args) != 5 || sc.args[3].kind != exList || sc.args[3].args[0].ival != 1 {
		t.Fatalf("setsockopt parsed as %+v", sc)
	}
	sc = one(t, "0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)").syscall
	if sc.args[1].kind != exEllipsis || sc.result.ival != -1 || sc.errno != "EINPROGRESS" || sc.note != "Operation now in progress" {
		t.Errorf("connect parsed as %+v", sc)
	}
	sc = one(t, "0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0").syscall
	if sc.args[2].kind != exOr || sc.args[2].args[1].word != "O_NONBLOCK" {
		t.Errorf("fcntl parsed as %+v", sc.args[2])
	}
	sc = one(t, "0 fcntl(3, F_GETFL) = 0x802 (flags O_RDWR|O_NONBLOCK)").syscall
	if sc.result.ival != 0x802 || sc.errno != "" || sc.note != "flags O_RDWR|O_NONBLOCK" {
		t.Errorf("fcntl F_GETFL parsed as %+v", sc)
	}
	sc = one(t, "0 setsockopt(4, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, 8) = 0").syscall
	if f, ok := fields(sc.args[3]); !ok || f["onoff"].ival != 1 || f["linger"].ival != 0 {
		t.Errorf("linger parsed as %s", describeExpr(sc.args[3]))
	}
	sc = one(t, "0 poll([{fd=3, events=POLLIN|POLLOUT, revents=POLLOUT}], 1, 0) = 1").syscall
	f, ok := fields(sc.args[0].args[0])
	if !ok || f["events"].kind != exOr || f["revents"].word != "POLLOUT" {
		t.Errorf("poll parsed as %s", describeExpr(sc.args[0]))
	}
	sc = one(t, `0 write(4, "hello" " world"..., 11) = 11`).syscall
	if sc.args[1].kind != exString || sc.args[1].word != "hello world" || !sc.args[1].ellipsis {
		t.Errorf("string parsed as %+v", sc.args[1])
	}
	sc = one(t, "0 getsockopt(3, SOL_SOCKET, SO_ERROR, [ECONNREFUSED], [4]) = 0").syscall
	if sc.args[3].args[0].word != "ECONNREFUSED" {
		t.Errorf("getsockopt parsed as %s", describeExpr(sc.args[3]))
	}
	sc = one(t, `0 bind(3, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("192.168.0.1")}, 16) = 0`).syscall
	if f, ok := fields(sc.args[1]); !ok || f["sin_port"].kind != exCall || f["sin_addr"].args[0].word != "192.168.0.1" {
		t.Errorf("sockaddr parsed as %s", describeExpr(sc.args[1]))
	}
}

func TestParseOther(t *testing.T) {
	s := mustParse(t, `// A comment.
--ip_version=ipv4-mapped-ipv6
--tolerance_usecs=10000
/* A C comment
   over lines. */
`+"`../common/defaults.sh`"+`
0 `+"`sysctl -q net.ipv4.tcp_timestamps=0`"+`
+0 %{ assert tcpi_state == TCP_ESTABLISHED, tcpi_state }%
`+"`echo cleanup`"+`
`)
	if len(s.options) != 2 || s.options[0].name != "ip_version" || s.options[0].value != "ipv4-mapped-ipv6" ||
		s.options[1].value != "10000" {
		t.Errorf("options %+v", s.options)
	}
	if len(s.events) != 4 {
		t.Fatalf("%d events", len(s.events))
	}
	if e := s.events[0]; !e.noTime || e.kind != evCommand || e.command != "../common/defaults.sh" || e.line != 6 {
		t.Errorf("init command %+v", e)
	}
	if e := s.events[1]; e.noTime || e.command != "sysctl -q net.ipv4.tcp_timestamps=0" || e.line != 7 {
		t.Errorf("timed command %+v", e)
	}
	if e := s.events[2]; e.kind != evCode || e.code != "assert tcpi_state == TCP_ESTABLISHED, tcpi_state" {
		t.Errorf("code %+v", e)
	}
	if e := s.events[3]; !e.noTime || e.command != "echo cleanup" {
		t.Errorf("cleanup command %+v", e)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"0 < S 0:0(0) <mss 1460>", "t.pkt:1: semantic error: window must be specified for inbound packets"},
		{"0 < S 0:1(0) win 1", "t.pkt:1: semantic error: inconsistent TCP sequence numbers and payload size"},
		{"\n\n0 > S. 0:0(0) <mss 1460,nop>", "t.pkt:3: semantic error: TCP options are not padded correctly"},
		{"0 < . 1:1(0) ack 1 win 1 <...>", "t.pkt:1: semantic error: <...> for TCP options can only be used with outbound packets"},
		{"* close(3) = 0", "t.pkt:1: semantic error: event time <star> can only be used with outbound packets"},
		{"0.3~0.1 > . 1:1(0)", "t.pkt:1: semantic error: time range is backwards"},
		{"0 > X 0:0(0)", "t.pkt:1: semantic error: Invalid TCP flag: 'X'"},
		{"0 > S 0:0(0) <FO abc,nop>", "t.pkt:1: parse error: bad FO cookie 'abc'"},
		{"0 > S 0:0(0) <FOEXP 0102", "t.pkt:1: parse error: unterminated FOEXP option"},
		{"0 < [ect9] S 0:0(0) win 1", "t.pkt:1: unsupported: IP ECN mark [ect9]"},
		{"0 < [ect01] S 0:0(0) win 1", "t.pkt:1: semantic error: [ect01] is for outbound packets"},
		{"0 > (tos 0x1) S 0:0(0)", "t.pkt:1: unsupported: IP ECN/TOS"},
		{"0 close(3) = 0\n+0 close(", "t.pkt:2: parse error at end of file: expected an expression"},
		{"0 close(3)", "t.pkt:1: parse error at end of file: expected '='"},
		{"0 write(4, \"abc, 3) = 3", "t.pkt:1: unterminated \" string"},
		{"0 close(3) = 0 /* never ends", "t.pkt:1: unterminated /* comment"},
		{"0 close(3) = 0\n--tolerance_usecs=1", "t.pkt:2: parse error: option --tolerance_usecs after the first event"},
		{"0 read(4, ..., 99999999999999999999) = 1", "t.pkt:1: number out of range"},
	} {
		_, err := parse("t.pkt", []byte(tc.src))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want prefix %q", tc.src, err, tc.want)
		}
		var se *Error
		if err != nil && !errors.As(err, &se) {
			t.Errorf("%q: error is %T, want *Error", tc.src, err)
		}
	}
}

func TestLexNumbers(t *testing.T) {
	l := newLexer("t", "0...0.3 +.1 -1 0x1F 1abc 192.0.2.1 1:1001(1000)")
	var got []string
	for tok := l.next(); tok.kind != tEOF; tok = l.next() {
		got = append(got, tok.text)
	}
	want := "0|...|0.3|+|.1|-1|0x1F|1abc|192.0.2.1|1|:|1001|(|1000|)"
	if strings.Join(got, "|") != want {
		t.Errorf("tokens %s, want %s", strings.Join(got, "|"), want)
	}
}

func TestPython(t *testing.T) {
	r := &runner{name: "t.pkt", res: &Result{}}
	for _, tc := range []struct {
		code string
		ok   bool
	}{
		{"assert 1 + 2 * 3 == 7", true},
		{"assert 10 // 3 == 3 and 10 % 3 == 1", true},
		{"assert 1 < 2 < 3, 'chained'", true},
		{"assert 1 < 3 < 2", false},
		{"assert not (2 ** 3 != 8)", true},
		{"assert TCP_ESTABLISHED == 1; assert TCPI_OPT_SACK | TCPI_OPT_WSCALE == 6", true},
		{"print(42)\nassert True", true},
		{"assert 0x10 == 16 or False", true},
	} {
		err := r.code(&event{code: tc.code, line: 1})
		if (err == nil) != tc.ok {
			t.Errorf("%q: error %v, want ok=%v", tc.code, err, tc.ok)
		}
	}
	for _, code := range []string{"x += 1", "assert tcpi_no_such == 0", "assert foo(1)"} {
		r.opts.SkipUnknown = false
		if err := r.code(&event{code: code, line: 1}); err == nil || !strings.Contains(err.Error(), "unsupported") {
			t.Errorf("%q: error %v, want unsupported", code, err)
		}
	}
}

// run runs an inline script and returns the result, logging a verbose trace
// when it does not end as wanted.
func run(t *testing.T, src string, wantPass bool) Result {
	t.Helper()
	var trace bytes.Buffer
	res := Run("t.pkt", []byte(src), Options{Verbose: &trace, Strict: true})
	if res.Passed != wantPass {
		t.Errorf("passed=%v, want %v; err: %v\ntrace:\n%s", res.Passed, wantPass, res.Err, trace.String())
	}
	return res
}

// wantErr checks a failure message.
func wantErr(t *testing.T, res Result, want string) {
	t.Helper()
	if res.Err == nil || !strings.Contains(res.Err.Error(), want) {
		t.Errorf("error %v\nwant it to contain %q", res.Err, want)
	}
}

const listen = `
0   socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0  setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0  bind(3, ..., ...) = 0
+0  listen(3, 1) = 0
`

const handshake = listen + `
+0  < S 0:0(0) win 65535 <mss 1000,sackOK,nop,nop,nop,wscale 7>
+0  > S. 0:0(0) ack 1 <mss 1460,nop,nop,sackOK,nop,wscale 8>
+.1 < . 1:1(0) ack 1 win 257
+0  accept(3, ..., ...) = 4
`

func TestRunPassiveOpenDataClose(t *testing.T) {
	res := run(t, handshake+`
+.1 < P. 1:101(100) ack 1 win 257
+0  > . 1:1(0) ack 101
+0  read(4, ..., 100) = 100
+0  write(4, ..., 10) = 10
+0  > P. 1:11(10) ack 101
+.1 < . 101:101(0) ack 11 win 257
+0  close(4) = 0
+0  > F. 11:11(0) ack 101
+.1 < F. 101:101(0) ack 12 win 257
+0  > . 12:12(0) ack 102
`, true)
	if res.Duration < 300*time.Millisecond {
		t.Errorf("virtual duration %v", res.Duration)
	}
}

func TestRunActiveOpen(t *testing.T) {
	run(t, `
0   socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0  fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0
+0  connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
+0  > S 0:0(0) <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 8>
+.1 < S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val 700 ecr 100,nop,wscale 7>
+0  > . 1:1(0) ack 1 <nop,nop,TS val 200 ecr 700>
+0  write(3, ..., 100) = 100
+0  > P. 1:101(100) ack 1 <...>
+.1 < . 1:1(0) ack 101 win 257 <nop,nop,TS val 800 ecr 200>
`, true)
}

// TestRunRelativeSeq: a SYN's sequence number is absolute (its ISN), every
// later one relative to the ISN, as in packetdrill; the stack's own ISN is
// learned from its SYN-ACK whatever the script writes there.
func TestRunRelativeSeq(t *testing.T) {
	run(t, listen+`
+0  < S 1000000:1000000(0) win 65535 <mss 1000,sackOK,nop,nop,nop,wscale 7>
+0  > S. 5000:5000(0) ack 1000001 <mss 1460,nop,nop,sackOK,nop,wscale 8>
+.1 < . 1:1(0) ack 1 win 257
+0  accept(3, ..., ...) = 4
+0  < P. 1:11(10) ack 1 win 257
+0  > . 1:1(0) ack 11
`, true)
}

func TestRunUnexpectedPacket(t *testing.T) {
	res := run(t, handshake+`
+.1 close(4) = 0
`, false)
	wantErr(t, res, "t.pkt:12: unexpected packet: got > F. 1:1(0) ack 1 ")
	wantErr(t, res, "at 0.200, +0.000 after the last line's time (the script expects no more packets)")

	// Segments sent together after the last line are described as the
	// packet a line would have to expect.
	res = run(t, handshake+`
+.1 write(4, ..., 2000) = 2000
`, false)
	wantErr(t, res, "got > P. 1:2001(2000) ack 1 win 251 [2 segments sent together] at 0.200")

	// One sent before the last line's time says so.
	res = run(t, handshake+`
+.1 write(4, ..., 10) = 10
+.1 < . 1:1(0) ack 1 win 257
`, false)
	wantErr(t, res, "got > P. 1:11(10) ack 1 win 251 at 0.200, 0.100 before the last line's time")

	// A different packet than the line expects.
	res = run(t, handshake+`
+.1 close(4) = 0
+0  > . 1:1(0) ack 1
`, false)
	wantErr(t, res, "t.pkt:13: expected > . 1:1(0) ack 1 at 0.200; got > F. 1:1(0) ack 1 at 0.200")

	// By default (as packetdrill), a packet after the last ">" line is
	// ignored, with a warning.
	res = Run("t.pkt", []byte(handshake+"+.1 close(4) = 0\n"), Options{})
	if !res.Passed {
		t.Errorf("default: %v", res.Err)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "t.pkt:11: ignored a packet sent after the last outbound line: > F. 1:1(0) ack 1") {
		t.Errorf("default: warnings %q", res.Warnings)
	}
	// Before a ">" line, an unexpected packet still makes it mismatch.
	res = Run("t.pkt", []byte(handshake+"+.1 close(4) = 0\n+.1 < . 1:1(0) ack 2 win 257\n+0 > . 1:1(0) ack 1\n"), Options{})
	wantErr(t, res, "t.pkt:13: expected > . 1:1(0) ack 1 at 0.300; got > F. 1:1(0) ack 1 at 0.200")
}

func TestRunMissingPacket(t *testing.T) {
	res := run(t, handshake+`
+.1 > F. 1:1(0) ack 1
`, false)
	wantErr(t, res, "t.pkt:12: expected > F. 1:1(0) ack 1 at 0.200; got no packet by 0.212500")
}

func TestRunTiming(t *testing.T) {
	res := run(t, listen+`
+0  < S 0:0(0) win 65535 <mss 1000,sackOK,nop,nop,nop,wscale 7>
+.1 > S. 0:0(0) ack 1 <mss 1460,nop,nop,sackOK,nop,wscale 8>
`, false)
	// The tolerance is 12.5% of the 100 ms since the last event.
	wantErr(t, res, "t.pkt:8: expected > S. 0:0(0) ack 1 <mss 1460,nop,nop,sackOK,nop,wscale 8> at 0.100; "+
		"got > S. 0:0(0) ack 1 <mss 1460,nop,nop,sackOK,nop,wscale 8> at 0.000 (outside the tolerance of 0.012500 s)")

	// Within the tolerance is fine.
	run(t, listen+`
+0     < S 0:0(0) win 65535 <mss 1000,sackOK,nop,nop,nop,wscale 7>
+.003  > S. 0:0(0) ack 1 <...>
+.1    < . 1:1(0) ack 1 win 257
`, true)
}

func TestRunBlockingAccept(t *testing.T) {
	run(t, listen+`
+0...0.200 accept(3, ..., ...) = 4
+.1 < S 0:0(0) win 65535 <mss 1000,sackOK,nop,nop,nop,wscale 7>
+0  > S. 0:0(0) ack 1 <...>
+.1 < . 1:1(0) ack 1 win 257
+0  write(4, ..., 10) = 10
+0  > P. 1:11(10) ack 1
`, true)

	// Returning at another time than the script says fails.
	res := run(t, listen+`
+0...0.300 accept(3, ..., ...) = 4
+.1 < S 0:0(0) win 65535 <mss 1000,sackOK,nop,nop,nop,wscale 7>
+0  > S. 0:0(0) ack 1 <...>
+.1 < . 1:1(0) ack 1 win 257
`, false)
	wantErr(t, res, "t.pkt:7: timing error: expected accept(3, ..., ...) = 4 to return at 0.300 sec but it returned at 0.200 sec; tolerance 0.037500 sec")

	// Never returning fails.
	res = run(t, listen+`
+0...0.100 accept(3, ..., ...) = 4
`, false)
	wantErr(t, res, "t.pkt:7: expected accept(3, ..., ...) = 4 to return at 0.100; still blocked at 0.112500")

	// Without "...", a call on a blocking socket must return at its
	// time; packets injected at the same time may complete it.
	run(t, listen+`
+0  < S 0:0(0) win 65535 <mss 1000,sackOK,nop,nop,nop,wscale 7>
+0  > S. 0:0(0) ack 1 <...>
+.1 accept(3, ..., ...) = 4
+0  < . 1:1(0) ack 1 win 257
`, true)
}

func TestRunMisc(t *testing.T) {
	run(t, handshake+`
// dup: the socket lives on through the second descriptor.
+0  dup(4) = 5
+0  close(4) = 0
+0  write(5, ..., 10) = 10
+0  > P. 1:11(10) ack 1
+0  poll([{fd=5, events=POLLIN}], 1, 0) = 0
+.1 < P. 1:101(100) ack 11 win 257
// An ACK sometime within a window, then at any time.
+0~+0.05 > . 11:11(0) ack 101
+0  poll([{fd=5, events=POLLIN|POLLOUT, revents=POLLIN|POLLOUT}], 1, 0) = 1
+0  read(5, ..., 1000) = 100
// A blocking read returns when data comes.
+0...0.100 read(5, ..., 1000) = 50
+.1 < P. 101:151(50) ack 11 win 257
*   > . 11:11(0) ack 151
+0  getsockopt(5, SOL_SOCKET, SO_ERROR, [0], [4]) = 0
+0  setsockopt(5, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, 8) = 0
+0  getsockopt(5, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, [8]) = 0
+0  close(5) = 0
+0  > R. 11:11(0) ack 151
+0  close(5) = -1 EBADF (Bad file descriptor)
`, true)
}

func TestRunSyscallResult(t *testing.T) {
	res := run(t, listen+`
+0  accept(3, ..., ...) = -1 EAGAIN (Resource temporarily unavailable)
`, false)
	wantErr(t, res, "t.pkt:7: expected accept(3, ..., ...) = -1 EAGAIN (Resource temporarily unavailable) to return at 0.000; "+
		"still blocked at 0.004 (the socket is blocking: set O_NONBLOCK to get EAGAIN)")

	res = run(t, `
0   socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0  listen(3, 1) = 0
+0  fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0
+0  accept(3, ..., ...) = 4
`, false)
	wantErr(t, res, "t.pkt:5: expected accept(3, ..., ...) = 4; got -1 EAGAIN")
}

func TestRunSyntaxErrorAndUnknown(t *testing.T) {
	res := Run("bad.pkt", []byte("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 > S 0:0(0"), Options{})
	if res.Passed || res.Err == nil || !strings.HasPrefix(res.Err.Error(), "bad.pkt:2: parse error") {
		t.Errorf("syntax error: %v", res.Err)
	}
	src := "--fancy_option=1\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 tee(3, 4, 1, 0) = 0\n+0 `tc qdisc add`\n"
	res = Run("u.pkt", []byte(src), Options{})
	if res.Passed || !strings.Contains(res.Err.Error(), "u.pkt:1: unsupported: option --fancy_option") {
		t.Errorf("unknown option: %v", res.Err)
	}
	res = Run("u.pkt", []byte(src), Options{SkipUnknown: true})
	if !res.Passed || len(res.Warnings) != 3 {
		t.Errorf("SkipUnknown: passed=%v err=%v warnings=%q", res.Passed, res.Err, res.Warnings)
	}
}

// moduleRoot walks up from the working directory to the go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}

// TestScripts runs every *.pkt under testdata/scripts and script/testdata,
// with Strict and AllConnections on: the project's scripts list every
// packet the stack sends, of every connection.
func TestScripts(t *testing.T) {
	root := moduleRoot(t)
	n := 0
	for _, dir := range []string{filepath.Join(root, "testdata", "scripts"), filepath.Join(root, "script", "testdata")} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if d.IsDir() || filepath.Ext(path) != ".pkt" {
				return nil
			}
			rel, _ := filepath.Rel(root, path)
			n++
			t.Run(rel, func(t *testing.T) {
				src, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				res := Run(rel, src, Options{Strict: true, AllConnections: true})
				for _, w := range res.Warnings {
					t.Log(w)
				}
				if !res.Passed {
					var trace bytes.Buffer
					Run(rel, src, Options{Verbose: &trace, Strict: true, AllConnections: true})
					t.Errorf("%v\ntrace:\n%s", res.Err, trace.String())
				}
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n == 0 {
		t.Error("no scripts found")
	}
}

// FuzzParse checks that no input makes the parser, or the runner, panic or
// hang. Seeds are in testdata/fuzz/FuzzParse and the starter scripts.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"passive-open.pkt", "active-open.pkt", "refused.pkt"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(handshake))
	f.Fuzz(func(t *testing.T, src []byte) {
		s, err := parse("f.pkt", src)
		if err != nil {
			var se *Error
			if !errors.As(err, &se) || se.Line < 0 {
				t.Fatalf("error %v is not a located *Error", err)
			}
			return
		}
		if len(src) > 4096 || len(s.events) > 64 {
			return // keep runs short
		}
		res := Run("f.pkt", src, Options{SkipUnknown: true})
		if res.Err != nil && strings.Contains(res.Err.Error(), "internal error") {
			t.Fatalf("runner: %v", res.Err)
		}
	})
}

// TestRunCompatConstructs covers what real packetdrill scripts use that the
// runner maps: --mss, --local_ip and friends, set_sysctls.py, TSO sysctls,
// a NULL buffer, and the named refusal of ioctl.
func TestRunCompatConstructs(t *testing.T) {
	// Header options of the kernel selftests' IPv4 run, and --mss.
	src := "--ip_version=ipv4\n--local_ip=192.168.7.9\n--gateway_ip=192.168.0.1\n--netmask_ip=255.255.0.0\n--remote_ip=192.0.2.5/24\n--mss=1000\n" + handshake
	res := run(t, src, true)
	_ = res
	// A remote address equal to the local one is refused.
	res = Run("t.pkt", []byte("--local_ip=192.0.2.1\n"+handshake), Options{})
	wantErr(t, res, "--local_ip and --remote_ip are the same address")
	res = Run("t.pkt", []byte("--netmask_ip=255.0.255.0\n"+handshake), Options{})
	wantErr(t, res, "bad --netmask_ip")

	// set_sysctls.py maps to sysctl; tcp_tso_win_divisor and the
	// restore script are ignored with warnings; a shell comment is
	// dropped. tcp_min_tso_segs=10 sizes GSO packets: the initial window
	// of ten goes as two packets of five (half the window each), PSH on
	// each packet's last segment; at Linux's 2, 1:5001 would end on the
	// first segment of a packet of two, without PSH.
	res = run(t, "`./set_sysctls.py /proc/sys/net/ipv4/tcp_timestamps=0 # no TS\n./set_sysctls.py /proc/sys/net/ipv4/tcp_min_tso_segs=10 /proc/sys/net/ipv4/tcp_tso_win_divisor=3`\n"+handshake+
		"+0 write(4, ..., 10000) = 10000\n+0 > P. 1:5001(5000) ack 1\n+0 > P. 5001:10001(5000) ack 1\n"+
		"+0 `/tmp/sysctl_restore_${PPID}.sh`\n", true)
	if len(res.Warnings) != 2 || !strings.Contains(res.Warnings[0], "tcp_tso_win_divisor=3") || !strings.Contains(res.Warnings[1], "restores the sysctls") {
		t.Errorf("warnings %q", res.Warnings)
	}
	res = Run("t.pkt", []byte("`./set_sysctls.py /proc/sys/net/ipv4/tcp_tw_reuse=1`\n"+handshake), Options{})
	wantErr(t, res, "unsupported: sysctl net.ipv4.tcp_tw_reuse")

	// NULL buffers: EFAULT, as the kernel's copy from user memory; EBADF
	// first for a bad descriptor.
	run(t, handshake+`
+0 write(4, NULL, 1000) = -1 EFAULT (Bad address)
+0 send(4, NULL, 1000, 0) = -1 EFAULT (Bad address)
+0 read(4, NULL, 1000) = -1 EFAULT (Bad address)
+0 recv(9, NULL, 1000, 0) = -1 EBADF (Bad file descriptor)
+0 write(4, NULL, 0) = 0
`, true)

	// ioctl: the queue sizes; another request is ENOTTY, one the
	// runner has no number for is refused by name.
	run(t, handshake+"+0 ioctl(4, SIOCINQ, [0]) = 0\n+0 ioctl(3, SIOCOUTQ, [0]) = -1 EINVAL (Invalid argument)\n"+
		"+0 ioctl(4, 0x5401, [0]) = -1 ENOTTY (Inappropriate ioctl for device)\n", true)
	res = Run("t.pkt", []byte(handshake+"+0 ioctl(4, SIOCGSTAMP, [0]) = 0\n"), Options{})
	wantErr(t, res, "t.pkt:11: unsupported: ioctl with symbol SIOCGSTAMP")
}

// An IP ECN mark before the flags is parsed, and an outbound packet's
// mark is compared with it ([ect01] takes either ECT).
func TestECNMarks(t *testing.T) {
	for src, want := range map[string]int8{
		"0 > [ect0] P. 1:2(1) ack 1": 2, "0 < [ce] . 1:2(1) ack 1 win 9": 3,
		"0 > [ect01] . 1:2(1) ack 1": ecnEither, "0 > . 1:2(1) ack 1": ecnUnset,
	} {
		sc, err := parse("t.pkt", []byte(src))
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		if got := sc.events[0].packet.ecn; got != want {
			t.Errorf("%q: mark %d, want %d", src, got, want)
		}
	}
	for _, tc := range []struct {
		want int8
		got  uint8
		ok   bool
	}{{ecnUnset, 3, true}, {2, 2, true}, {2, 1, false}, {ecnEither, 1, true}, {ecnEither, 2, true}, {ecnEither, 0, false}, {0, 2, false}} {
		if ok := ecnMismatch(tc.want, tc.got) == ""; ok != tc.ok {
			t.Errorf("want %d, got %d: match %v, expected %v (%s)", tc.want, tc.got, ok, tc.ok, ecnMismatch(tc.want, tc.got))
		}
	}
}
