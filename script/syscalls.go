package script

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/synstack/synstack/clock"
	"github.com/synstack/synstack/nstat"
	"github.com/synstack/synstack/tcp"
)

// pollFd is one entry of a poll call (Linux's struct pollfd).
type pollFd struct {
	fd              int
	events, revents int16
}

// sockets is what the runner needs of the stack's socket layer: the root
// package's Sockets, bound in binding.go (with Poll never waiting).
type sockets interface {
	Socket(domain, typ, proto int) (int, error)
	Bind(fd int, addr netip.AddrPort) error
	Listen(fd, backlog int) error
	Accept(fd int) (int, netip.AddrPort, error)
	Connect(fd int, addr netip.AddrPort) error
	Recv(fd int, p []byte, flags int) (int, error)
	// ReadToMark reads as splice(2) reads a socket: never past the
	// urgent mark (pipe.go).
	ReadToMark(fd int, p []byte, flags int) (int, error)
	Send(fd int, p []byte, flags int) (int, error)
	Sendto(fd int, p []byte, flags int, addr netip.AddrPort) (int, error)
	Shutdown(fd, how int) error
	Close(fd int) error
	Dup(fd int) (int, error)
	Fcntl(fd, cmd, arg int) (int, error)
	SetsockoptInt(fd, level, opt, v int) error
	GetsockoptInt(fd, level, opt int) (int, error)
	SetsockoptLinger(fd int, l syscall.Linger) error
	GetsockoptLinger(fd int) (syscall.Linger, error)
	SetsockoptString(fd, level, opt int, v string) error
	GetsockoptString(fd, level, opt int) (string, error)
	GetsockoptTCPInfo(fd int) (tcp.Info, error)
	// Ioctl runs SIOCINQ, SIOCOUTQ or SIOCOUTQNSD and returns the value.
	Ioctl(fd, req int) (int, error)
	// Poll polls without waiting and fills in revents.
	Poll(fds []pollFd) (int, error)
	// SetWriterWaiting marks a blocking write that waits for the
	// handshake (Linux's sk_write_pending).
	SetWriterWaiting(fd int, waiting bool) error
}

// stackHandle is a running stack: its sockets and a way to stop it.
type stackHandle interface {
	sockets
	shutdown() error
	// setFastOpen sets net.ipv4.tcp_fastopen on the running stack.
	setFastOpen(mode int)
	// stats are the stack's counters (nstat checks).
	stats() nstat.Counters
	// updateTCP changes the tcp defaults of connections made from now
	// on (a sysctl written after the stack started).
	updateTCP(f func(c *tcp.Config))
	// flushFastOpenCache forgets the client's Fast Open cookies.
	flushFastOpenCache()
}

// stackConfig is what the runner gives the stack.
type stackConfig struct {
	link  *testLink
	addrs []netip.Prefix
	clock *clock.Virtual
	seed  uint64
	tcp   tcp.Config
	tfo   fastOpenConfig
}

// callResult is what a system call returned.
type callResult struct {
	val int64
	err error
	// revents are a poll's results.
	revents []int16
	// intVal and linger are a getsockopt's value.
	intVal int
	linger syscall.Linger
}

// callOp is a system call ready to run. try makes one attempt without
// blocking: done is false when the call would block (it is then kept
// pending and tried again later). finish checks the result against the
// script and records its effects (new file descriptors...).
type callOp struct {
	try    func() (done bool, res callResult)
	finish func(res callResult) error
	// fdResult marks calls that return a new file descriptor: any
	// non-negative value matches the script's and names it.
	fdResult bool
	// wakeAfter is set for a poll with a timeout: when it times out.
	wakeAfter time.Duration
}

// syscall runs a system call line.
func (r *runner) syscall(e *event, at, end, tol time.Duration) error {
	sc := e.syscall
	op, err := r.prepare(e)
	if err != nil {
		return err
	}
	if op == nil {
		return nil // skipped
	}
	done, res := op.try()
	if !done {
		pc := &pendingCall{e: e, op: op, start: at, end: at, tol: tol}
		if sc.blocking {
			pc.end = end
			pc.tol = r.tolerance(end, at, true)
		}
		pc.deadline = pc.end + pc.tol
		if op.wakeAfter > 0 {
			pc.wakeAt = r.now() + op.wakeAfter
		}
		r.pending = append(r.pending, pc)
		return nil
	}
	btol := tol
	if sc.blocking {
		btol = r.tolerance(end, at, true)
	}
	return r.complete(e, op, res, at, end, btol)
}

// complete checks a finished call: its return time (for a blocking call)
// and its result.
func (r *runner) complete(e *event, op *callOp, res callResult, start, end, tol time.Duration) error {
	now := r.now()
	if e.syscall.blocking && (now < end-tol || now > end+tol) {
		return r.errf(e.line, "timing error: expected %s to return at %s sec but it returned at %s sec; tolerance %s sec",
			e.text, fmtTime(end), fmtTime(now), fmtTime(tol))
	}
	if now != start || e.syscall.blocking {
		r.verbosef("%s %s returned %s", fmtTime(now), e.text, describeResult(res))
	}
	if err := r.checkResult(e, op, res); err != nil {
		return err
	}
	if op.finish != nil {
		return op.finish(res)
	}
	return nil
}

// describeResult prints a result as a script writes it.
func describeResult(res callResult) string {
	if res.err != nil {
		var errno syscall.Errno
		if errors.As(res.err, &errno) {
			return fmt.Sprintf("-1 %s (%s)", errnoName(errno), errno.Error())
		}
		return "error: " + res.err.Error()
	}
	return strconv.FormatInt(res.val, 10)
}

// checkResult compares a call's result with "= RESULT [ERRNO]".
func (r *runner) checkResult(e *event, op *callOp, res callResult) error {
	sc := e.syscall
	if sc.result.kind == exEllipsis {
		return nil
	}
	want, err := r.evalInt(sc.result)
	if err != nil {
		return r.errf(e.line, "bad result: %v", err)
	}
	fail := func() error {
		return r.errf(e.line, "expected %s; got %s", e.text, describeResult(res))
	}
	if res.err != nil {
		var errno syscall.Errno
		if !errors.As(res.err, &errno) || want != -1 {
			return fail()
		}
		if sc.errno == "" {
			return nil // "= -1" alone: any errno, as packetdrill
		}
		wantErrno, ok := errnos[sc.errno]
		if !ok {
			return r.errf(e.line, "unknown errno %s", sc.errno)
		}
		if wantErrno != errno {
			return fail()
		}
		return nil
	}
	if sc.errno != "" {
		return fail()
	}
	if op.fdResult && want >= 0 && res.val >= 0 {
		return nil
	}
	if want != res.val {
		return fail()
	}
	return nil
}

// evalInt evaluates an integer argument: a number, a symbol, an errno name,
// a | of those, [N], or htons(N).
func (r *runner) evalInt(x *expr) (int64, error) {
	switch x.kind {
	case exInt:
		return x.ival, nil
	case exWord:
		if v, ok := symbols[x.word]; ok {
			return v, nil
		}
		if v, ok := linuxTCPStates[x.word]; ok {
			return v, nil
		}
		if v, ok := errnos[x.word]; ok {
			return int64(v), nil
		}
		return 0, unknownSymbol(x.word)
	case exOr:
		a, err := r.evalInt(x.args[0])
		if err != nil {
			return 0, err
		}
		b, err := r.evalInt(x.args[1])
		return a | b, err
	case exList:
		if len(x.args) == 1 {
			return r.evalInt(x.args[0])
		}
	case exCall:
		if (x.word == "htons" || x.word == "htonl" || x.word == "ntohs" || x.word == "ntohl") && len(x.args) == 1 {
			return r.evalInt(x.args[0])
		}
	}
	return 0, fmt.Errorf("expected an integer, got %s", describeExpr(x))
}

// unknownSymbol is the error of a symbol the runner has no value for
// (a Linux socket option it does not implement, say).
type unknownSymbol string

func (u unknownSymbol) Error() string { return "unknown symbol " + string(u) }

// callError reports an argument error of a call; a call using an unknown
// symbol is unsupported (skipped under SkipUnknown).
func (r *runner) callError(e *event, err error) (*callOp, error) {
	var u unknownSymbol
	if errors.As(err, &u) {
		if err := r.unsupported(e.line, "%s with symbol %s", e.syscall.name, string(u)); err != nil {
			return nil, err
		}
		return nil, nil
	}
	return nil, r.errf(e.line, "%s: %v", e.syscall.name, err)
}

// describeExpr renders an argument for messages.
func describeExpr(x *expr) string {
	switch x.kind {
	case exInt:
		return strconv.FormatInt(x.ival, 10)
	case exEllipsis:
		return "..."
	case exWord:
		return x.word
	case exString:
		return strconv.Quote(x.word)
	case exOr:
		return describeExpr(x.args[0]) + "|" + describeExpr(x.args[1])
	case exAssign:
		return x.word + "=" + describeExpr(x.args[0])
	}
	var parts []string
	for _, a := range x.args {
		parts = append(parts, describeExpr(a))
	}
	switch x.kind {
	case exList:
		return "[" + strings.Join(parts, ", ") + "]"
	case exStruct:
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return x.word + "(" + strings.Join(parts, ", ") + ")"
}

// fields returns the name=value fields of a {...} argument.
func fields(x *expr) (map[string]*expr, bool) {
	if x.kind != exStruct {
		return nil, false
	}
	m := map[string]*expr{}
	for _, a := range x.args {
		if a.kind != exAssign {
			return nil, false
		}
		m[a.word] = a.args[0]
	}
	return m, true
}

// fd maps a script file descriptor to the live one. An fd the script never
// got is passed as is (the stack answers EBADF).
func (r *runner) fd(x *expr) (int, error) {
	v, err := r.evalInt(x)
	if err != nil {
		return 0, err
	}
	if live, ok := r.fds[int(v)]; ok {
		return live, nil
	}
	return int(v), nil
}

// nonblocking reports whether fd has O_NONBLOCK (an unknown fd counts as
// non-blocking: the call runs once and fails).
func (r *runner) nonblocking(fd int) bool {
	fl, err := r.st.Fcntl(fd, linuxFGetFL, 0)
	return err != nil || fl&linuxONonblock != 0
}

// withNonblock runs f with O_NONBLOCK temporarily set on fd.
func (r *runner) withNonblock(fd int, f func()) {
	fl, err := r.st.Fcntl(fd, linuxFGetFL, 0)
	if err == nil {
		_, _ = r.st.Fcntl(fd, linuxFSetFL, fl|linuxONonblock)
	}
	f()
	if err == nil {
		_, _ = r.st.Fcntl(fd, linuxFSetFL, fl)
	}
}

func isErrno(err error, e syscall.Errno) bool {
	var errno syscall.Errno
	return errors.As(err, &errno) && errno == e
}

// res builds a result from a call's value and error.
func res(v int, err error) callResult {
	if err != nil {
		return callResult{val: -1, err: err}
	}
	return callResult{val: int64(v)}
}

// sockaddr evaluates an address argument: "..." is the default address
// (def), or {sa_family=..., sin_port=htons(P), sin_addr=inet_addr("A")}.
func (r *runner) sockaddr(x *expr, def netip.AddrPort) (netip.AddrPort, error) {
	if x.kind == exEllipsis {
		return def, nil
	}
	f, ok := fields(x)
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("bad address %s", describeExpr(x))
	}
	port := int64(def.Port())
	if p, ok := f["sin_port"]; ok {
		v, err := r.evalInt(p)
		if err != nil {
			return netip.AddrPort{}, err
		}
		port = v
	}
	addr := def.Addr()
	if a, ok := f["sin_addr"]; ok {
		if a.kind != exCall || len(a.args) != 1 || a.args[0].kind != exString ||
			(a.word != "inet_addr" && a.word != "inet6_addr") {
			return netip.AddrPort{}, fmt.Errorf("bad sin_addr %s", describeExpr(a))
		}
		ip, err := netip.ParseAddr(a.args[0].word)
		if err != nil {
			return netip.AddrPort{}, err
		}
		addr = ip
		if r.domain == linuxAFInet6 && ip.Is4() {
			addr = netip.AddrFrom16(ip.As16())
		}
	}
	return netip.AddrPortFrom(addr, uint16(port)), nil
}

// args checks the argument count.
func (r *runner) args(e *event, min, max int) error {
	n := len(e.syscall.args)
	if n < min || n > max {
		if min == max {
			return r.errf(e.line, "%s needs %d arguments, got %d", e.syscall.name, min, n)
		}
		return r.errf(e.line, "%s needs %d to %d arguments, got %d", e.syscall.name, min, max, n)
	}
	return nil
}

// isNull reports whether a buffer argument is the NULL pointer.
func isNull(x *expr) bool {
	return (x.kind == exWord && x.word == "NULL") || (x.kind == exInt && x.ival == 0)
}

// nullBuffer is a read or write of a NULL buffer: Linux fails the copy
// to or from user memory with EFAULT (after the descriptor lookup, EBADF).
// The Go socket layer takes slices and has no NULL, so the runner answers
// as the system call layer does, without calling the stack.
func (r *runner) nullBuffer(fd int) *callOp {
	st := r.st
	return &callOp{try: func() (bool, callResult) {
		if _, err := st.Fcntl(fd, linuxFGetFL, 0); err != nil {
			return true, res(0, err)
		}
		return true, res(0, syscall.EFAULT)
	}}
}

// newFd records the fd a call returned under the number the script gave it.
func (r *runner) newFd(sc *syscallSpec, res callResult) {
	if res.err != nil {
		return
	}
	if want, err := r.evalInt(sc.result); err == nil && want >= 0 {
		r.fds[int(want)] = int(res.val)
	}
	r.lastFd = int(res.val)
}

// setsockopt(FD, LEVEL, NAME, VALUE, LEN): VALUE an int, a string or
// a struct linger.
func (r *runner) setsockopt(c *callArgs) (*callOp, error) {
	a, fd, st := c.a, c.fd, r.st
	bad := func(err error) (*callOp, error) { return r.bad(c, err) }
	level, err := r.evalInt(a[1])
	if err != nil {
		return bad(err)
	}
	name, err := r.evalInt(a[2])
	if err != nil {
		return bad(err)
	}
	if f, ok := fields(a[3]); ok {
		l, err := r.linger(f)
		if err != nil {
			return bad(err)
		}
		return &callOp{try: func() (bool, callResult) { return true, res(0, st.SetsockoptLinger(fd, l)) }}, nil
	}
	if a[3].kind == exString {
		// TCP_CONGESTION and other string options: setsockopt(fd, SOL_TCP,
		// TCP_CONGESTION, "reno", 4).
		v := a[3].word
		return &callOp{try: func() (bool, callResult) {
			return true, res(0, st.SetsockoptString(fd, int(level), int(name), v))
		}}, nil
	}
	v, err := r.evalInt(a[3])
	if err != nil {
		return bad(err)
	}
	return &callOp{try: func() (bool, callResult) {
		return true, res(0, st.SetsockoptInt(fd, int(level), int(name), int(v)))
	}}, nil
}

// linger reads {onoff=1, linger=0} (packetdrill) or {l_onoff=1, l_linger=0}.
func (r *runner) linger(f map[string]*expr) (syscall.Linger, error) {
	var l syscall.Linger
	for name, x := range f {
		v, err := r.evalInt(x)
		if err != nil {
			return l, err
		}
		switch name {
		case "onoff", "l_onoff":
			l.Onoff = int32(v)
		case "linger", "l_linger":
			l.Linger = int32(v)
		default:
			return l, fmt.Errorf("unknown linger field %s", name)
		}
	}
	return l, nil
}

// getsockopt(FD, LEVEL, NAME, VALUE, LEN) checks the value read against
// VALUE: an int (or ... for any), a string or a struct linger.
func (r *runner) getsockopt(c *callArgs) (*callOp, error) {
	level, err := r.evalInt(c.a[1])
	if err != nil {
		return r.bad(c, err)
	}
	name, err := r.evalInt(c.a[2])
	if err != nil {
		return r.bad(c, err)
	}
	if level == linuxSolTCP && name == linuxTCPInfo {
		return nil, r.unsupported(c.e.line, "getsockopt TCP_INFO (use a %%{ assert tcpi_... }%% block)")
	}
	want := c.a[3]
	if want.kind == exString {
		// TCP_CONGESTION: getsockopt(fd, SOL_TCP, TCP_CONGESTION, "bbr", [4]).
		return r.getsockoptString(c, int(level), int(name), want.word), nil
	}
	if f, ok := fields(want); ok {
		wl, err := r.linger(f)
		if err != nil {
			return r.bad(c, err)
		}
		return r.getsockoptLinger(c, wl), nil
	}
	var wantV int64
	check := want.kind != exEllipsis
	if check {
		if wantV, err = r.evalInt(want); err != nil {
			return r.bad(c, err)
		}
	}
	return r.getsockoptInt(c, int(level), int(name), check, wantV), nil
}

// getsockoptString reads a string option and expects ws.
func (r *runner) getsockoptString(c *callArgs, level, name int, ws string) *callOp {
	fd, st := c.fd, r.st
	var got string
	return &callOp{
		try: func() (bool, callResult) {
			v, err := st.GetsockoptString(fd, level, name)
			got = v
			return true, res(0, err)
		},
		finish: func(res callResult) error {
			if res.err == nil && got != ws {
				return r.errf(c.e.line, "expected %s; got %q", c.e.text, got)
			}
			return nil
		},
	}
}

// getsockoptLinger reads SO_LINGER and expects wl.
func (r *runner) getsockoptLinger(c *callArgs, wl syscall.Linger) *callOp {
	fd, st := c.fd, r.st
	return &callOp{
		try: func() (bool, callResult) {
			l, err := st.GetsockoptLinger(fd)
			out := res(0, err)
			out.linger = l
			return true, out
		},
		finish: func(res callResult) error {
			if res.err == nil && ((res.linger.Onoff != 0) != (wl.Onoff != 0) || res.linger.Linger != wl.Linger) {
				return r.errf(c.e.line, "expected %s; got {onoff=%d, linger=%d}", c.e.text, res.linger.Onoff, res.linger.Linger)
			}
			return nil
		},
	}
}

// getsockoptInt reads an int option and, if check, expects wantV.
func (r *runner) getsockoptInt(c *callArgs, level, name int, check bool, wantV int64) *callOp {
	fd, st := c.fd, r.st
	return &callOp{
		try: func() (bool, callResult) {
			v, err := st.GetsockoptInt(fd, level, name)
			out := res(0, err)
			out.intVal = v
			return true, out
		},
		finish: func(res callResult) error {
			if res.err == nil && check && int64(res.intVal) != wantV {
				got := strconv.Itoa(res.intVal)
				if level == linuxSolSocket && name == linuxSoError && res.intVal != 0 {
					got = errnoName(syscall.Errno(res.intVal))
				}
				return r.errf(c.e.line, "expected %s; got value [%s]", c.e.text, got)
			}
			return nil
		},
	}
}

// poll([{fd=F, events=E, revents=R}, ...], N, TIMEOUT_MS)
func (r *runner) poll(c *callArgs) (*callOp, error) {
	e, a, st := c.e, c.a, r.st
	bad := func(err error) (*callOp, error) { return r.bad(c, err) }
	if a[0].kind != exList {
		return bad(fmt.Errorf("expected a list of {fd=..., events=..., revents=...}"))
	}
	var fds []pollFd
	var want []int16
	for _, x := range a[0].args {
		f, ok := fields(x)
		if !ok || f["fd"] == nil || f["events"] == nil {
			return bad(fmt.Errorf("bad pollfd %s", describeExpr(x)))
		}
		fd, err := r.fd(f["fd"])
		if err != nil {
			return bad(err)
		}
		ev, err := r.evalInt(f["events"])
		if err != nil {
			return bad(err)
		}
		var rev int64
		if f["revents"] != nil {
			if rev, err = r.evalInt(f["revents"]); err != nil {
				return bad(err)
			}
		}
		fds = append(fds, pollFd{fd: fd, events: int16(ev)})
		want = append(want, int16(rev))
	}
	timeout, err := r.evalInt(a[2])
	if err != nil {
		return bad(err)
	}
	start := r.now()
	op := &callOp{}
	if timeout > 0 {
		op.wakeAfter = time.Duration(timeout) * time.Millisecond
	}
	op.try = func() (bool, callResult) {
		p := append([]pollFd(nil), fds...)
		n, err := st.Poll(p)
		if err != nil {
			return true, res(0, err)
		}
		if n == 0 && timeout != 0 && (timeout < 0 || r.now() < start+time.Duration(timeout)*time.Millisecond) {
			return false, callResult{}
		}
		c := res(n, nil)
		for _, x := range p {
			c.revents = append(c.revents, x.revents)
		}
		return true, c
	}
	op.finish = func(c callResult) error {
		for i, rev := range c.revents {
			if i < len(want) && rev != want[i] {
				return r.errf(e.line, "expected %s; got revents=%s for fd %d", e.text, pollNames(rev), fds[i].fd)
			}
		}
		return nil
	}
	return op, nil
}

// pollNames prints poll bits by name: "POLLIN|POLLOUT".
func pollNames(v int16) string {
	if v == 0 {
		return "0"
	}
	names := []string{"POLLIN", "POLLPRI", "POLLOUT", "POLLERR", "POLLHUP", "POLLNVAL", "POLLRDNORM",
		"POLLRDBAND", "POLLWRNORM", "POLLWRBAND", "POLLMSG", "POLLRDHUP"}
	var out []string
	left := int64(uint16(v))
	for _, n := range names {
		if b := symbols[n]; left&b != 0 {
			out = append(out, n)
			left &^= b
		}
	}
	if left != 0 {
		out = append(out, fmt.Sprintf("%#x", left))
	}
	return strings.Join(out, "|")
}
