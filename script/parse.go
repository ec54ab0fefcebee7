package script

import (
	"strconv"
	"strings"
	"time"

	"github.com/synstack/synstack/wire"
)

// parser builds a script from tokens, following packetdrill's grammar
// (parser.y) for the subset synstack runs: TCP packets, and inbound ICMP
// errors about the connection under test (icmp.go). Constructs of
// packetdrill that synstack does not run (UDP, outbound ICMP, GRE, MPLS,
// SCTP, TOS checks, explicit ports, fuzzing) are refused by name.
type parser struct {
	file string
	src  string
	lex  *lexer
	tok  token // the current token
	// prevEnd is the end offset of the last consumed token.
	prevEnd int
	err     *Error
}

// parse parses a whole script. Errors read "file:line: message".
func parse(file string, src []byte) (s *script, err error) {
	return parseDefines(file, src, nil)
}

// parseDefines parses with packetdrill's -D definitions; a script's own
// --define=NAME=VALUE header options add to them.
func parseDefines(file string, src []byte, defines map[string]string) (s *script, err error) {
	p := &parser{file: file, src: string(src)}
	p.lex = newLexer(file, p.src)
	p.lex.defines = map[string]string{}
	for k, v := range defines {
		p.lex.defines[k] = v
	}
	p.tok = p.lex.next()
	s = p.script()
	if p.lex.err != nil {
		return nil, p.lex.err
	}
	if p.err != nil {
		return nil, p.err
	}
	return s, nil
}

// next moves to the next token.
func (p *parser) next() {
	p.prevEnd = p.tok.end
	p.tok = p.lex.next()
}

// failf records the first error and returns false, so that callers can
// write "return p.failf(...)"; once an error is recorded parsing stops.
func (p *parser) failf(line int, format string, args ...any) bool {
	if p.err == nil && p.lex.err == nil {
		p.err = errorf(p.file, line, format, args...)
	}
	return false
}

// unexpected reports a parse error at the current token.
func (p *parser) unexpected(what string) bool {
	return p.failf(p.tok.line, "parse error at %s: expected %s", p.tok.describe(), what)
}

func (p *parser) ok() bool { return p.err == nil && p.lex.err == nil }

// expectPunct consumes the punctuation c or fails.
func (p *parser) expectPunct(c byte) bool {
	if !p.tok.is(c) {
		return p.unexpected("'" + string(c) + "'")
	}
	p.next()
	return true
}

// expectInt consumes an integer and returns it.
func (p *parser) expectInt(what string) (int64, bool) {
	if p.tok.kind != tInt {
		return 0, p.unexpected(what)
	}
	v := p.tok.ival
	p.next()
	return v, true
}

// expectUint consumes an integer in [0, max].
func (p *parser) expectUint(what string, max int64) (int64, bool) {
	line := p.tok.line
	v, ok := p.expectInt(what)
	if !ok {
		return 0, false
	}
	if v < 0 || v > max {
		return 0, p.failf(line, "semantic error: %s out of range", what)
	}
	return v, true
}

// script = options [command] events [command]
func (p *parser) script() *script {
	s := &script{}
	for p.ok() && p.tok.kind == tOption {
		s.options = append(s.options, p.headerOption())
	}
	for p.ok() && p.tok.kind != tEOF {
		if p.tok.kind == tBackquote {
			// An init command before the first event, or a cleanup
			// command after the last one, carries no time.
			last := len(s.events) > 0
			e := &event{line: p.tok.line, kind: evCommand, command: p.tok.text, noTime: true,
				text: "`" + p.tok.text + "`"}
			p.next()
			if last && p.tok.kind != tEOF {
				p.failf(e.line, "parse error: a command between events needs a time")
				break
			}
			s.events = append(s.events, e)
			continue
		}
		if p.tok.kind == tOption {
			p.failf(p.tok.line, "parse error: option --%s after the first event", p.tok.text)
			break
		}
		e := p.event()
		if !p.ok() {
			break
		}
		s.events = append(s.events, e)
	}
	return s
}

// headerOption = --name[=value]. The value is taken verbatim up to the next
// white space, so that "--ip_version=ipv4-mapped-ipv6" reads as one value.
func (p *parser) headerOption() headerOption {
	o := headerOption{line: p.tok.line, name: p.tok.text}
	end := p.tok.end
	if end < len(p.src) && p.src[end] == '=' {
		i := end + 1
		for i < len(p.src) && !strings.ContainsRune(" \t\r\n", rune(p.src[i])) {
			i++
		}
		o.value, o.hasValue = p.src[end+1:i], true
		p.lex.advance(i)
		if name, value, ok := strings.Cut(o.value, "="); ok && o.name == "define" {
			p.lex.defines[name] = value
		}
	}
	p.next()
	return o
}

// parseTime converts a time token (seconds, as "1", "0.100" or ".1") to a
// duration, exactly (packetdrill converts through a double; a microsecond
// of difference is far below any tolerance).
func (p *parser) parseTime() (time.Duration, bool) {
	t := p.tok
	if t.kind != tInt && t.kind != tFloat {
		return 0, p.unexpected("a time")
	}
	p.next()
	text := t.text
	if strings.HasPrefix(text, "-") {
		return 0, p.failf(t.line, "semantic error: negative time")
	}
	whole, frac, _ := strings.Cut(text, ".")
	var d time.Duration
	for i := 0; i < len(whole); i++ {
		d = d*10 + time.Duration(whole[i]-'0')
		if d > 1e9 {
			return 0, p.failf(t.line, "semantic error: time %s too large", text)
		}
	}
	d *= time.Second
	scale := 100 * time.Millisecond
	for i := 0; i < len(frac) && scale > 0; i++ {
		d += time.Duration(frac[i]-'0') * scale
		scale /= 10
	}
	return d, true
}

// event = time action
func (p *parser) event() *event {
	e := &event{line: p.tok.line}
	switch {
	case p.tok.is('*'):
		e.timeKind = timeAny
		p.next()
	case p.tok.is('+'):
		p.next()
		e.timeKind = timeRelative
		e.at, _ = p.parseTime()
		if p.ok() && p.tok.is('~') {
			p.next()
			if !p.tok.is('+') {
				p.unexpected("'+' (a relative range is written +T1~+T2)")
				return e
			}
			p.next()
			e.timeKind = timeRelativeRng
			e.end, _ = p.parseTime()
		}
	case p.tok.kind == tInt || p.tok.kind == tFloat:
		e.timeKind = timeAbsolute
		e.at, _ = p.parseTime()
		if p.ok() && p.tok.is('~') {
			p.next()
			e.timeKind = timeAbsoluteRng
			e.end, _ = p.parseTime()
		}
	default:
		p.unexpected("an event time (0.100, +0.1, * or T1~T2)")
		return e
	}
	if !p.ok() {
		return e
	}
	if (e.timeKind == timeAbsoluteRng || e.timeKind == timeRelativeRng) && e.end < e.at {
		p.failf(e.line, "semantic error: time range is backwards")
		return e
	}
	start := p.tok.pos
	switch {
	case (p.tok.is('<') || p.tok.is('>')) && p.icmpFollows():
		e.kind = evPacket
		e.packet = p.icmpPacket()
	case p.tok.is('<') || p.tok.is('>'):
		e.kind = evPacket
		e.packet = p.packet()
	case p.tok.kind == tEllipsis || p.tok.kind == tWord:
		e.kind = evSyscall
		e.syscall = p.syscall()
	case p.tok.kind == tBackquote:
		e.kind = evCommand
		e.command = p.tok.text
		p.next()
	case p.tok.kind == tCode:
		e.kind = evCode
		e.code = p.tok.text
		p.next()
	default:
		p.unexpected("a packet, a system call, a `command` or %{ code }%")
		return e
	}
	if !p.ok() {
		return e
	}
	if e.kind == evSyscall {
		start = e.syscall.textStart
	}
	e.text = strings.Join(strings.Fields(stripComments(p.src[start:p.prevEnd])), " ")
	if e.kind == evCode {
		e.text = "%{ " + strings.Join(strings.Fields(e.code), " ") + " }%"
	}
	if e.timeKind == timeAny || e.timeKind == timeAbsoluteRng || e.timeKind == timeRelativeRng {
		if e.kind != evPacket || e.packet.inbound {
			what := "event time <star>"
			if e.timeKind != timeAny {
				what = "event time range"
			}
			p.failf(e.line, "semantic error: %s can only be used with outbound packets", what)
		}
	}
	return e
}

// stripComments removes // and /* */ comments from the text of an event
// that spans lines (outside string literals).
func stripComments(s string) string {
	if !strings.Contains(s, "/") {
		return s
	}
	var sb strings.Builder
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' && i+1 < len(s) {
				sb.WriteByte(c)
				i++
				c = s[i]
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '`':
			quote = c
		case strings.HasPrefix(s[i:], "//"):
			j := strings.IndexByte(s[i:], '\n')
			if j < 0 {
				return sb.String()
			}
			i += j
			c = ' '
		case strings.HasPrefix(s[i:], "/*"):
			j := strings.Index(s[i+2:], "*/")
			if j < 0 {
				return sb.String()
			}
			i += 2 + j + 1
			c = ' '
		}
		sb.WriteByte(c)
	}
	return sb.String()
}

// flagBits maps packetdrill's flag characters to TCP flags.
var flagBits = map[byte]wire.TCPFlags{
	'F': wire.FlagFIN, 'S': wire.FlagSYN, 'R': wire.FlagRST, 'P': wire.FlagPSH,
	'.': wire.FlagACK, 'E': wire.FlagECE, 'W': wire.FlagCWR, 'U': wire.FlagURG,
}

// packet = ('<'|'>') flags seq [ack N] [win N] [urg N] [<options>]
func (p *parser) packet() *packetSpec {
	ps := &packetSpec{inbound: p.tok.is('<'), win: -1, ecn: ecnUnset}
	line := p.tok.line
	p.next()
	if !p.packetECN(ps) || !p.tcpOnly() || !p.packetFlags(ps) || !p.packetSeq(ps) || !p.packetOptions(ps) {
		return ps
	}
	if p.tok.is('{') {
		p.failf(p.tok.line, "unsupported: packet fuzzing ({mut ...})")
		return ps
	}
	if ps.inbound && ps.win < 0 {
		p.failf(line, "semantic error: window must be specified for inbound packets")
	}
	return ps
}

// packetECN parses an optional IP ECN mark before the flags, as
// packetdrill writes it: [noecn], [ect0], [ect1], [ect01] or [ce].
func (p *parser) packetECN(ps *packetSpec) bool {
	if !p.tok.is('[') {
		return true
	}
	line := p.tok.line
	p.next()
	marks := map[string]int8{"noecn": 0, "ect1": 1, "ect0": 2, "ce": 3, "ect01": ecnEither}
	v, ok := marks[p.tok.text]
	if p.tok.kind != tWord || !ok {
		p.failf(line, "unsupported: IP ECN mark [%s] (want noecn, ect0, ect1, ect01 or ce)", p.tok.text)
		return false
	}
	p.next()
	if !p.tok.is(']') {
		p.failf(line, "syntax error: expected ']' after the ECN mark")
		return false
	}
	p.next()
	if ps.inbound && v == ecnEither {
		p.failf(line, "semantic error: [ect01] is for outbound packets; an inbound one needs one mark")
		return false
	}
	ps.ecn = v
	return true
}

// tcpOnly refuses, with a clear message, what may follow a packet's
// direction that the runner does not check: IP fields, other protocols,
// ports.
func (p *parser) tcpOnly() bool {
	switch {
	case p.tok.is('[') || p.tok.is('('):
		p.failf(p.tok.line, "unsupported: IP ECN/TOS/flow label/TTL checks ([ect0], (tos 0x1)...)")
		return false
	case p.tok.isWord("udp") || p.tok.isWord("icmp") || p.tok.isWord("gre") ||
		p.tok.isWord("mpls") || p.tok.isWord("ipv4") || p.tok.isWord("ipv6") || p.tok.isWord("sctp"):
		p.failf(p.tok.line, "unsupported: %s packets (synstack scripts are TCP only)", p.tok.text)
		return false
	case p.tok.kind == tInt:
		p.failf(p.tok.line, "unsupported: explicit ports (SRC>DST) on a packet")
		return false
	}
	return true
}

// packetFlags parses a packet's TCP flags.
func (p *parser) packetFlags(ps *packetSpec) bool {
	// Flags: a word with an optional '.', a lone '.', or '-'.
	flagLine := p.tok.line
	var letters string
	switch {
	case p.tok.is('.'):
		letters = "."
		p.next()
	case p.tok.is('-'):
		p.next()
	case p.tok.kind == tWord:
		letters = p.tok.text
		p.next()
		if p.tok.is('.') {
			letters += "."
			p.next()
		}
	case p.tok.kind == tFloat:
		p.failf(flagLine, "unsupported: AccECN ACE flags (%s)", p.tok.text)
		return false
	default:
		p.unexpected("TCP flags (S, S., ., F., P., R, -...)")
		return false
	}
	if p.tok.kind == tFloat {
		p.failf(flagLine, "unsupported: AccECN ACE flags (%s%s)", letters, p.tok.text)
		return false
	}
	for i := 0; i < len(letters); i++ {
		c := letters[i]
		bit, ok := flagBits[c]
		if !ok {
			if c == 'A' || isDigit(c) {
				p.failf(flagLine, "unsupported: AccECN flag '%c'", c)
			} else {
				p.failf(flagLine, "semantic error: Invalid TCP flag: '%c'", c)
			}
			return false
		}
		ps.flags |= bit
	}
	return true
}

// packetSeq parses START:END(LEN) and the ack, win and urg that may follow.
func (p *parser) packetSeq(ps *packetSpec) bool {
	// seq = START:END(LEN)
	seqLine := p.tok.line
	start, ok := p.expectUint("TCP start sequence number", 1<<32-1)
	if !ok || !p.expectPunct(':') {
		return false
	}
	end, ok := p.expectUint("TCP end sequence number", 1<<32-1)
	if !ok || !p.expectPunct('(') {
		return false
	}
	n, ok := p.expectUint("TCP payload size", 1<<16-1)
	if !ok || !p.expectPunct(')') {
		return false
	}
	if uint32(end) != uint32(start+n) {
		p.failf(seqLine, "semantic error: inconsistent TCP sequence numbers and payload size")
		return false
	}
	ps.seq, ps.end, ps.length = uint32(start), uint32(end), int(n)
	return p.optionalUint("ack", "TCP ack sequence number", 1<<32-1, func(v int64) { ps.ack = uint32(v) }) &&
		p.optionalUint("win", "TCP window value", 1<<16-1, func(v int64) { ps.win = int(v) }) &&
		p.optionalUint("urg", "urg_ptr value", 1<<16-1, func(v int64) { ps.urg = int(v) })
}

// optionalUint consumes "word N", N in [0, max], if the next token is
// word, and hands N to set. It returns false if N does not parse.
func (p *parser) optionalUint(word, what string, max int64, set func(int64)) bool {
	if !p.tok.isWord(word) {
		return true
	}
	p.next()
	v, ok := p.expectUint(what, max)
	if ok {
		set(v)
	}
	return ok
}

// packetOptions parses the TCP options, <...> or <opt, opt...>, if any.
func (p *parser) packetOptions(ps *packetSpec) bool {
	if !p.tok.is('<') {
		return true
	}
	optLine := p.tok.line
	p.next()
	if p.tok.kind == tEllipsis {
		p.next()
		if !p.expectPunct('>') {
			return false
		}
		ps.anyOptions = true
		if ps.inbound {
			p.failf(optLine, "semantic error: <...> for TCP options can only be used with outbound packets")
			return false
		}
	} else {
		for {
			o, ok := p.tcpOption()
			if !ok {
				return false
			}
			ps.options = append(ps.options, o)
			if p.tok.is(',') {
				p.next()
				continue
			}
			if !p.expectPunct('>') {
				return false
			}
			break
		}
		n := optionsLen(ps.options)
		if n%4 != 0 {
			p.failf(optLine, "semantic error: TCP options are not padded correctly to ensure TCP header is a multiple of 4 bytes: %d excess bytes", n%4)
			return false
		}
		if n > wire.TCPMaxOptionsLen {
			p.failf(optLine, "semantic error: TCP option list too long")
			return false
		}
	}
	return true
}

// tcpOption parses one option of a <...> list.
func (p *parser) tcpOption() (option, bool) {
	t := p.tok
	if t.kind != tWord {
		return option{}, p.unexpected("a TCP option (nop, eol, mss N, wscale N, sackOK, sack A:B, TS val X ecr Y)")
	}
	p.next()
	switch t.text {
	case "nop":
		return option{kind: wire.OptNOP}, true
	case "eol":
		return option{kind: wire.OptEOL}, true
	case "sackOK":
		return option{kind: wire.OptSACKPermitted}, true
	case "mss":
		v, ok := p.expectUint("mss value", 1<<16-1)
		return option{kind: wire.OptMSS, mss: uint16(v)}, ok
	case "wscale":
		v, ok := p.expectUint("window scale shift count", 255)
		return option{kind: wire.OptWScale, wscale: uint8(v)}, ok
	case "TS":
		if !p.tok.isWord("val") {
			return option{}, p.unexpected("'val'")
		}
		p.next()
		val, ok := p.expectUint("ts val", 1<<32-1)
		if !ok {
			return option{}, false
		}
		if !p.tok.isWord("ecr") {
			return option{}, p.unexpected("'ecr'")
		}
		p.next()
		ecr, ok := p.expectUint("ecr val", 1<<32-1)
		return option{kind: wire.OptTimestamp, tsVal: uint32(val), tsEcr: uint32(ecr)}, ok
	case "sack":
		o := option{kind: wire.OptSACK}
		for p.tok.kind == tInt {
			l, ok := p.expectUint("TCP SACK left sequence number", 1<<32-1)
			if !ok || !p.expectPunct(':') {
				return o, false
			}
			r, ok := p.expectUint("TCP SACK right sequence number", 1<<32-1)
			if !ok {
				return o, false
			}
			o.sack = append(o.sack, wire.SACKBlock{Left: uint32(l), Right: uint32(r)})
		}
		if len(o.sack) == 0 {
			return o, p.unexpected("a SACK block A:B")
		}
		return o, true
	case "FO", "FOEXP":
		return p.fastOpenOption(t)
	case "md5":
		return p.md5Option(t)
	}
	return option{}, p.failf(t.line, "parse error at '%s': unknown TCP option", t.text)
}

// optionLen is the encoded length of o in bytes.
func optionLen(o option) int {
	switch o.kind {
	case wire.OptNOP, wire.OptEOL:
		return 1
	case wire.OptMSS:
		return 4
	case wire.OptWScale:
		return 3
	case wire.OptSACKPermitted:
		return 2
	case wire.OptTimestamp:
		return 10
	case wire.OptSACK:
		return 2 + 8*len(o.sack)
	}
	return 2 + len(o.raw)
}

func optionsLen(list []option) int {
	n := 0
	for _, o := range list {
		n += optionLen(o)
	}
	return n
}

// syscall = [... END] name(args) = result [ERRNO] [(note)]
func (p *parser) syscall() *syscallSpec {
	sc := &syscallSpec{}
	if p.tok.kind == tEllipsis {
		p.next()
		sc.blocking = true
		d, ok := p.parseTime()
		if !ok {
			return sc
		}
		sc.end = d
	}
	if p.tok.kind != tWord {
		p.unexpected("a system call name")
		return sc
	}
	sc.name, sc.textStart = p.tok.text, p.tok.pos
	p.next()
	if !p.expectPunct('(') {
		return sc
	}
	if !p.tok.is(')') {
		for {
			x := p.expr()
			if !p.ok() {
				return sc
			}
			sc.args = append(sc.args, x)
			if p.tok.is(',') {
				p.next()
				continue
			}
			break
		}
	}
	if !p.expectPunct(')') || !p.expectPunct('=') {
		return sc
	}
	sc.result = p.expr()
	if !p.ok() {
		return sc
	}
	if p.tok.kind == tWord {
		sc.errno = p.tok.text
		p.next()
	}
	if p.tok.is('(') {
		// The note is free text up to the closing parenthesis.
		open := p.tok
		i := strings.IndexByte(p.src[open.end:], ')')
		if i < 0 {
			p.failf(open.line, "parse error: unterminated (note)")
			return sc
		}
		sc.note = strings.Join(strings.Fields(p.src[open.end:open.end+i]), " ")
		p.lex.advance(open.end + i + 1)
		p.tok = p.lex.next()
		p.prevEnd = open.end + i + 1
	}
	return sc
}

// expr = unary { '|' unary }
func (p *parser) expr() *expr { return p.exprDepth(0) }

// maxExprDepth bounds nesting of [...] and {...}, so that no input can
// exhaust the stack.
const maxExprDepth = 64

// unaryDepth = ... | INT | "str"+ [...] | WORD [= expr | (args)] | [list] | {list}
func (p *parser) unaryDepth(depth int) *expr {
	t := p.tok
	x := &expr{line: t.line}
	if depth > maxExprDepth {
		p.failf(t.line, "parse error: expression nested too deeply")
		return x
	}
	switch {
	case t.kind == tEllipsis:
		x.kind = exEllipsis
		p.next()
	case t.kind == tInt:
		x.kind, x.ival = exInt, t.ival
		p.next()
	case t.kind == tString:
		x.kind = exString
		var sb strings.Builder
		for p.tok.kind == tString {
			sb.WriteString(unescape(p.tok.text))
			p.next()
		}
		x.word = sb.String()
		if p.tok.kind == tEllipsis {
			x.ellipsis = true
			p.next()
		}
	case t.kind == tWord:
		p.next()
		x.kind, x.word = exWord, t.text
		switch {
		case p.tok.is('='):
			p.next()
			x.kind = exAssign
			v := p.exprDepth(depth + 1)
			x.args = []*expr{v}
		case p.tok.is('('):
			p.next()
			x.kind = exCall
			x.args = p.listDepth(')', depth+1)
			if p.ok() && p.tok.is('=') {
				// A struct field with its length, as packetdrill writes
				// a msghdr's: msg_iov(1)=[...]. The value is args[0],
				// the length expression args[1].
				p.next()
				v := p.exprDepth(depth + 1)
				x.args = []*expr{v, {kind: exCall, line: x.line, word: x.word, args: x.args}}
				x.kind = exAssign
			}
		}
	case t.is('['):
		p.next()
		x.kind = exList
		x.args = p.listDepth(']', depth+1)
	case t.is('{'):
		p.next()
		x.kind = exStruct
		x.args = p.listDepth('}', depth+1)
	default:
		p.unexpected("an expression")
	}
	return x
}

// exprDepth = unary { '|' unary }, at a nesting depth.
func (p *parser) exprDepth(depth int) *expr {
	x := p.unaryDepth(depth)
	for p.ok() && p.tok.is('|') {
		line := p.tok.line
		p.next()
		y := p.unaryDepth(depth)
		x = &expr{kind: exOr, line: line, args: []*expr{x, y}}
	}
	return x
}

// listDepth parses "a, b, c" up to the closing character (consumed).
func (p *parser) listDepth(closing byte, depth int) []*expr {
	var list []*expr
	if p.tok.is(closing) {
		p.next()
		return list
	}
	for p.ok() {
		list = append(list, p.exprDepth(depth))
		if !p.ok() {
			break
		}
		if p.tok.is(',') {
			p.next()
			continue
		}
		p.expectPunct(closing)
		break
	}
	return list
}

// unescape interprets the C escapes of a string literal.
func unescape(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			sb.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case 'n':
			sb.WriteByte('\n')
		case 't':
			sb.WriteByte('\t')
		case 'r':
			sb.WriteByte('\r')
		case '0':
			sb.WriteByte(0)
		case 'x':
			// \xHH: one byte (TCP_FASTOPEN_KEY's raw key bytes).
			if v, err := strconv.ParseUint(s[i+1:min(i+3, len(s))], 16, 8); err == nil && i+3 <= len(s) {
				sb.WriteByte(byte(v))
				i += 2
				continue
			}
			sb.WriteByte(s[i])
		default:
			sb.WriteByte(s[i])
		}
	}
	return sb.String()
}
