package script

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/synstack/synstack/tcp"
)

// Code blocks (%{ ... }%) are Python in packetdrill, run at the end of the
// script over snapshots of TCP_INFO taken when each block's time came. The
// runner has no Python: it understands the statements scripts use to check
// TCP_INFO, "assert EXPR[, message]", evaluating EXPR at the block's time
// over the TCP_INFO of the socket under test (or of the last fd a call
// used). EXPR may use tcpi_* fields, Linux's TCP_* state and TCPI_OPT_*
// constants, numbers, + - * / // % **, comparisons (chained), and, or, not.
// Other statements are refused by name (skipped with a warning under
// SkipUnknown); print statements are ignored.

// pyConstants are the names packetdrill's Python preamble defines, as far
// as they mean something to synstack.
var pyConstants = map[string]float64{
	"TCPI_OPT_TIMESTAMPS": 1, "TCPI_OPT_SACK": 2, "TCPI_OPT_WSCALE": 4, "TCPI_OPT_ECN": 8,
	"TCPI_OPT_ECN_SEEN": 16, "TCPI_OPT_SYN_DATA": 32,
	"TCP_CA_Open": 0, "TCP_CA_Disorder": 1, "TCP_CA_CWR": 2, "TCP_CA_Recovery": 3, "TCP_CA_Loss": 4,
	"True": 1, "False": 0,
}

// linuxState is Linux's tcpi_state number of a state.
func linuxState(s tcp.State) float64 {
	switch s {
	case tcp.Established:
		return 1
	case tcp.SynSent:
		return 2
	case tcp.SynRcvd:
		return 3
	case tcp.FinWait1:
		return 4
	case tcp.FinWait2:
		return 5
	case tcp.TimeWait:
		return 6
	case tcp.Closed:
		return 7
	case tcp.CloseWait:
		return 8
	case tcp.LastAck:
		return 9
	case tcp.Listen:
		return 10
	case tcp.Closing:
		return 11
	}
	return 0
}

// tcpiField returns the value of a tcpi_* name.
func tcpiField(info *tcp.Info, name string) (float64, bool) {
	us := func(d interface{ Microseconds() int64 }) float64 { return float64(d.Microseconds()) }
	switch name {
	case "tcpi_state":
		return linuxState(info.State), true
	case "tcpi_retransmits":
		return float64(info.Retransmits), true
	case "tcpi_backoff":
		return float64(info.Backoff), true
	case "tcpi_options":
		return float64(info.Options), true
	case "tcpi_snd_wscale":
		return float64(info.SndWScale), true
	case "tcpi_rcv_wscale":
		return float64(info.RcvWScale), true
	case "tcpi_rto":
		return us(info.RTO), true
	case "tcpi_rtt":
		return us(info.RTT), true
	case "tcpi_rttvar":
		return us(info.RTTVar), true
	case "tcpi_ca_state":
		return float64(info.CAState), true
	case "tcpi_advmss":
		return float64(info.AdvMSS), true
	case "tcpi_snd_mss":
		return float64(info.SndMSS), true
	case "tcpi_rcv_mss":
		return float64(info.RcvMSS), true
	case "tcpi_unacked":
		return float64(info.Unacked), true
	case "tcpi_snd_cwnd":
		return float64(info.Cwnd), true
	case "tcpi_snd_ssthresh":
		return float64(info.Ssthresh), true
	case "tcpi_snd_wnd":
		return float64(info.SndWnd), true
	case "tcpi_rcv_wnd":
		return float64(info.RcvWnd), true
	case "tcpi_total_retrans":
		return float64(info.TotalRetrans), true
	case "tcpi_bytes_acked":
		return float64(info.BytesAcked), true
	case "tcpi_bytes_received":
		return float64(info.BytesReceived), true
	case "tcpi_segs_out":
		return float64(info.SegsOut), true
	case "tcpi_segs_in":
		return float64(info.SegsIn), true
	case "tcpi_pacing_rate":
		return float64(info.PacingRate), true
	case "tcpi_delivery_rate":
		return float64(info.DeliveryRate), true
	case "tcpi_delivery_rate_app_limited":
		if info.DeliveryRateAppLimited {
			return 1, true
		}
		return 0, true
	case "tcpi_min_rtt":
		return us(info.MinRTT), true
	case "tcpi_total_rto":
		return float64(info.TotalRTO), true
	case "tcpi_dsack_dups":
		return float64(info.DSACKDups), true
	case "tcpi_fastopen_client_fail":
		return float64(info.FastOpenClientFail), true
	case "tcpi_probes":
		return float64(info.Probes), true
	case "tcpi_sacked":
		return float64(info.Sacked), true
	case "tcpi_lost":
		return float64(info.Lost), true
	case "tcpi_retrans":
		return float64(info.Retrans), true
	case "tcpi_reordering":
		return float64(info.Reordering), true
	case "tcpi_reord_seen":
		return float64(info.ReordSeen), true
	case "tcpi_delivered":
		return float64(info.Delivered), true
	case "tcpi_last_data_sent":
		return float64(info.LastDataSent.Milliseconds()), true
	case "tcpi_last_data_recv":
		return float64(info.LastDataRecv.Milliseconds()), true
	case "tcpi_last_ack_recv":
		return float64(info.LastAckRecv.Milliseconds()), true
	case "tcpi_busy_time":
		return us(info.BusyTime), true
	case "tcpi_rwnd_limited":
		return us(info.RwndLimited), true
	case "tcpi_sndbuf_limited":
		return us(info.SndbufLimited), true
	case "tcpi_notsent_bytes":
		return float64(info.NotsentBytes), true
	case "tcpi_rcv_rtt":
		return us(info.RcvRTT), true
	case "tcpi_rcv_space":
		return float64(info.RcvSpace), true
	case "tcpi_fackets", "tcpi_last_ack_sent", "tcpi_delivered_ce", "tcpi_rehash":
		// Always 0 in Linux 6.x (FACK is gone, last_ack_sent was never
		// set), and in synstack, which negotiates no ECN and never
		// rehashes a flow.
		return 0, true
	case "tcpi_max_pacing_rate":
		return math.MaxUint64, true // no SO_MAX_PACING_RATE: unlimited (~0ULL)
	}
	return tcpiCounter(info, name)
}

// tcpiCounter returns the value of tcp_info's path MTU, receive
// threshold, delayed-ACK timeout, data counters and RTO recovery fields.
func tcpiCounter(info *tcp.Info, name string) (float64, bool) {
	switch name {
	case "tcpi_pmtu":
		return float64(info.PMTU), true
	case "tcpi_rcv_ssthresh":
		return float64(info.RcvSsthresh), true
	case "tcpi_ato":
		return float64(info.ATO.Microseconds()), true
	case "tcpi_data_segs_in":
		return float64(info.DataSegsIn), true
	case "tcpi_data_segs_out":
		return float64(info.DataSegsOut), true
	case "tcpi_bytes_sent":
		return float64(info.BytesSent), true
	case "tcpi_bytes_retrans":
		return float64(info.BytesRetrans), true
	case "tcpi_rcv_ooopack":
		return float64(info.RcvOOOPack), true
	case "tcpi_total_rto_recoveries":
		return float64(info.TotalRTORecoveries), true
	case "tcpi_total_rto_time":
		return float64(info.TotalRTOTime.Milliseconds()), true
	}
	return 0, false
}

// code runs a %{ }% block.
func (r *runner) code(e *event) error {
	var info *tcp.Info
	getInfo := func() (*tcp.Info, error) {
		if info != nil {
			return info, nil
		}
		fd := r.lastFd
		if r.sut != nil && r.sut.fd >= 0 {
			fd = r.sut.fd
		}
		if fd < 0 || r.st == nil {
			return nil, fmt.Errorf("no socket to use for code")
		}
		i, err := r.st.GetsockoptTCPInfo(fd)
		if err != nil {
			return nil, fmt.Errorf("can't get TCP_INFO of fd %d: %v", fd, err)
		}
		info = &i
		return info, nil
	}
	for _, stmt := range pyStatements(e.code) {
		switch {
		case stmt == "" || strings.HasPrefix(stmt, "#") || stmt == "pass":
			continue
		case strings.HasPrefix(stmt, "print(") || strings.HasPrefix(stmt, "print "):
			continue
		case pyAssignment(stmt) != "":
			// NAME = EXPR: a name later statements (of this block or
			// a later one, as packetdrill runs them in one
			// interpreter) may use.
			name := pyAssignment(stmt)
			_, rhs, _ := strings.Cut(stmt, "=")
			v, _, err := r.pyExpr(e.line, stmt, rhs, getInfo)
			if err != nil || v == nil {
				return err
			}
			if r.pyVars == nil {
				r.pyVars = map[string]float64{}
			}
			r.pyVars[name] = *v
		case strings.HasPrefix(stmt, "assert ") || strings.HasPrefix(stmt, "assert("):
			cond, _ := splitTopComma(strings.TrimPrefix(stmt, "assert"))
			v, ev, err := r.pyExpr(e.line, stmt, cond, getInfo)
			if err != nil {
				return err
			}
			if v != nil && *v == 0 {
				return r.errf(e.line, "assertion failed: %s%s", strings.TrimSpace(cond), ev.describeUsed())
			}
		default:
			if err := r.unsupported(e.line, "Python statement %q in %%{ }%%", stmt); err != nil {
				return err
			}
		}
	}
	return nil
}

// pyExpr evaluates the expression src of statement stmt. It returns nil
// and no error for an expression skipped under SkipUnknown.
func (r *runner) pyExpr(line int, stmt, src string, info func() (*tcp.Info, error)) (*float64, *pyEval, error) {
	ev := &pyEval{src: src, info: info, used: map[string]float64{}, vars: r.pyVars}
	v, err := ev.eval()
	if err == nil {
		return &v, ev, nil
	}
	if uerr, ok := err.(pyUnsupported); ok {
		return nil, ev, r.unsupported(line, "in %%{ }%%: %s (in %q)", string(uerr), stmt)
	}
	return nil, ev, r.errf(line, "in %%{ }%%: %v (in %q)", err, stmt)
}

// pyAssignment returns NAME of a statement "NAME = EXPR", else "".
func pyAssignment(stmt string) string {
	name, rhs, ok := strings.Cut(stmt, "=")
	name = strings.TrimSpace(name)
	if !ok || strings.HasPrefix(rhs, "=") || name == "" || strings.HasPrefix(name, "tcpi_") {
		return ""
	}
	for i := 0; i < len(name); i++ {
		if !isWordChar(name[i]) || (i == 0 && isDigit(name[i])) {
			return ""
		}
	}
	return name
}

// pyStatements splits code into statements (lines and ;), comments dropped.
func pyStatements(code string) []string {
	var out []string
	code = strings.ReplaceAll(code, "\\\n", " ") // a backslash continues a line
	for _, line := range strings.Split(code, "\n") {
		if i := strings.Index(line, "#"); i >= 0 && !strings.ContainsAny(line[:i], "'\"") {
			line = line[:i]
		}
		for _, s := range strings.Split(line, ";") {
			out = append(out, strings.TrimSpace(s))
		}
	}
	return out
}

// splitTopComma splits "cond, message" at a comma outside brackets and
// strings.
func splitTopComma(s string) (string, string) {
	depth := 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '(' || c == '[' || c == '{':
			depth++
		case c == ')' || c == ']' || c == '}':
			depth--
		case c == ',' && depth == 0:
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

// pyUnsupported is an evaluation error naming something the runner cannot
// evaluate (as opposed to a malformed expression).
type pyUnsupported string

func (e pyUnsupported) Error() string { return string(e) }

// pyEval evaluates one Python expression.
type pyEval struct {
	src  string
	toks []string
	pos  int
	info func() (*tcp.Info, error)
	used map[string]float64
	vars map[string]float64 // names assigned by earlier statements
}

// describeUsed lists the tcpi_* values an expression read: " (tcpi_state = 7)".
func (p *pyEval) describeUsed() string {
	if len(p.used) == 0 {
		return ""
	}
	var names []string
	for n := range p.used {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		parts = append(parts, n+" = "+strconv.FormatFloat(p.used[n], 'f', -1, 64))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// pyTokens splits an expression into tokens.
func pyTokens(s string) ([]string, error) {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\\':
			i++
		case isDigit(c) || (c == '.' && i+1 < len(s) && isDigit(s[i+1])):
			j := i
			for j < len(s) && (isWordChar(s[j]) || s[j] == '.') {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		case isWordChar(c):
			j := i
			for j < len(s) && (isWordChar(s[j]) || s[j] == '.') {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		default:
			two := ""
			if i+1 < len(s) {
				two = s[i : i+2]
			}
			switch two {
			case "==", "!=", "<=", ">=", "//", "**", "<<", ">>":
				toks = append(toks, two)
				i += 2
				continue
			}
			if !strings.ContainsRune("+-*/%()<>&|^~", rune(c)) {
				return nil, pyUnsupported(fmt.Sprintf("syntax %q", string(c)))
			}
			toks = append(toks, string(c))
			i++
		}
	}
	return toks, nil
}

func (p *pyEval) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *pyEval) eval() (float64, error) {
	toks, err := pyTokens(p.src)
	if err != nil {
		return 0, err
	}
	p.toks = toks
	if len(toks) == 0 {
		return 0, fmt.Errorf("empty expression")
	}
	v, err := p.or(0)
	if err != nil {
		return 0, err
	}
	if p.pos != len(p.toks) {
		return 0, pyUnsupported(fmt.Sprintf("syntax at %q", p.peek()))
	}
	return v, nil
}

const maxPyDepth = 100

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (p *pyEval) or(d int) (float64, error) {
	v, err := p.and(d)
	for err == nil && p.peek() == "or" {
		p.pos++
		var w float64
		w, err = p.and(d)
		v = b2f(v != 0 || w != 0)
	}
	return v, err
}

func (p *pyEval) and(d int) (float64, error) {
	v, err := p.not(d)
	for err == nil && p.peek() == "and" {
		p.pos++
		var w float64
		w, err = p.not(d)
		v = b2f(v != 0 && w != 0)
	}
	return v, err
}

func (p *pyEval) not(d int) (float64, error) {
	if p.peek() == "not" {
		p.pos++
		if d > maxPyDepth {
			return 0, fmt.Errorf("expression too deep")
		}
		v, err := p.not(d + 1)
		return b2f(v == 0), err
	}
	return p.cmp(d)
}

func (p *pyEval) cmp(d int) (float64, error) {
	v, err := p.bitor(d)
	if err != nil {
		return 0, err
	}
	result, chained := 1.0, false
	for {
		op := p.peek()
		switch op {
		case "==", "!=", "<", "<=", ">", ">=":
		default:
			if chained {
				return result, nil
			}
			return v, nil
		}
		p.pos++
		w, err := p.bitor(d)
		if err != nil {
			return 0, err
		}
		var ok bool
		switch op {
		case "==":
			ok = v == w
		case "!=":
			ok = v != w
		case "<":
			ok = v < w
		case "<=":
			ok = v <= w
		case ">":
			ok = v > w
		case ">=":
			ok = v >= w
		}
		if !ok {
			result = 0
		}
		chained, v = true, w
	}
}

func (p *pyEval) bitor(d int) (float64, error) {
	v, err := p.arith(d)
	for err == nil {
		op := p.peek()
		if op != "|" && op != "&" && op != "^" && op != "<<" && op != ">>" {
			break
		}
		p.pos++
		var w float64
		w, err = p.arith(d)
		a, b := int64(v), int64(w)
		switch op {
		case "|":
			v = float64(a | b)
		case "&":
			v = float64(a & b)
		case "^":
			v = float64(a ^ b)
		case "<<":
			if b < 0 || b > 62 {
				return 0, fmt.Errorf("bad shift")
			}
			v = float64(a << b)
		case ">>":
			if b < 0 || b > 62 {
				return 0, fmt.Errorf("bad shift")
			}
			v = float64(a >> b)
		}
	}
	return v, err
}

func (p *pyEval) arith(d int) (float64, error) {
	v, err := p.term(d)
	for err == nil && (p.peek() == "+" || p.peek() == "-") {
		op := p.peek()
		p.pos++
		var w float64
		w, err = p.term(d)
		if op == "+" {
			v += w
		} else {
			v -= w
		}
	}
	return v, err
}

func (p *pyEval) term(d int) (float64, error) {
	v, err := p.unary(d)
	for err == nil {
		op := p.peek()
		if op != "*" && op != "/" && op != "//" && op != "%" {
			break
		}
		p.pos++
		var w float64
		w, err = p.unary(d)
		if err != nil {
			break
		}
		if op != "*" && w == 0 {
			return 0, fmt.Errorf("division by zero")
		}
		switch op {
		case "*":
			v *= w
		case "/":
			v /= w
		case "//":
			v = math.Floor(v / w)
		case "%":
			v -= w * math.Floor(v/w)
		}
	}
	return v, err
}

func (p *pyEval) unary(d int) (float64, error) {
	if d > maxPyDepth {
		return 0, fmt.Errorf("expression too deep")
	}
	switch p.peek() {
	case "-":
		p.pos++
		v, err := p.unary(d + 1)
		return -v, err
	case "+":
		p.pos++
		return p.unary(d + 1)
	case "~":
		p.pos++
		v, err := p.unary(d + 1)
		return float64(^int64(v)), err
	}
	v, err := p.atom(d)
	if err == nil && p.peek() == "**" {
		p.pos++
		var w float64
		w, err = p.unary(d + 1)
		v = math.Pow(v, w)
	}
	return v, err
}

func (p *pyEval) atom(d int) (float64, error) {
	t := p.peek()
	p.pos++
	switch {
	case t == "":
		return 0, fmt.Errorf("unexpected end of expression")
	case t == "(":
		v, err := p.or(d + 1)
		if err != nil {
			return 0, err
		}
		if p.peek() != ")" {
			return 0, fmt.Errorf("missing )")
		}
		p.pos++
		return v, nil
	case isDigit(t[0]) || t[0] == '.':
		if v, err := strconv.ParseInt(t, 0, 64); err == nil {
			return float64(v), nil
		}
		v, err := strconv.ParseFloat(t, 64)
		if err != nil {
			return 0, fmt.Errorf("bad number %q", t)
		}
		return v, nil
	case strings.HasPrefix(t, "tcpi_"):
		if _, ok := tcpiField(&tcp.Info{}, t); !ok {
			return 0, pyUnsupported("field " + t)
		}
		info, err := p.info()
		if err != nil {
			return 0, err
		}
		v, _ := tcpiField(info, t)
		p.used[t] = v
		return v, nil
	}
	if v, ok := p.vars[t]; ok {
		return v, nil
	}
	if v, ok := pyConstants[t]; ok {
		return v, nil
	}
	name := strings.Replace(t, "TCPI_", "TCP_", 1)
	if v, ok := linuxTCPStates[name]; ok {
		return float64(v), nil
	}
	if isWordChar(t[0]) {
		return 0, pyUnsupported("name " + t)
	}
	return 0, pyUnsupported(fmt.Sprintf("syntax at %q", t))
}
