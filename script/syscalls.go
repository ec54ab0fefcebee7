package script

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/synstack/synstack/clock"
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
	Send(fd int, p []byte, flags int) (int, error)
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
	// Poll polls without waiting and fills in revents.
	Poll(fds []pollFd) (int, error)
}

// stackHandle is a running stack: its sockets and a way to stop it.
type stackHandle interface {
	sockets
	shutdown() error
}

// stackConfig is what the runner gives the stack.
type stackConfig struct {
	link  *testLink
	addrs []netip.Prefix
	clock *clock.Virtual
	seed  uint64
	tcp   tcp.Config
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
		if !errors.As(res.err, &errno) || sc.errno == "" || want != -1 {
			return fail()
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

// prepare builds the call of a system call line. It returns nil, nil for a
// call skipped under SkipUnknown.
func (r *runner) prepare(e *event) (*callOp, error) {
	sc := e.syscall
	a := sc.args
	bad := func(err error) (*callOp, error) { return r.callError(e, err) }
	var fd int
	if len(a) > 0 && sc.name != "socket" && sc.name != "poll" {
		var err error
		if fd, err = r.fd(a[0]); err != nil {
			return bad(err)
		}
		r.lastFd = fd
	}
	st := r.st
	switch sc.name {
	case "socket":
		if err := r.args(e, 3, 3); err != nil {
			return nil, err
		}
		domain := int64(r.domain)
		if a[0].kind != exEllipsis {
			v, err := r.evalInt(a[0])
			if err != nil {
				return bad(err)
			}
			domain = v
		}
		typ, err := r.evalInt(a[1])
		if err != nil {
			return bad(err)
		}
		proto, err := r.evalInt(a[2])
		if err != nil {
			return bad(err)
		}
		return &callOp{fdResult: true,
			try: func() (bool, callResult) {
				nfd, err := st.Socket(int(domain), int(typ), int(proto))
				return true, res(nfd, err)
			},
			finish: func(res callResult) error { r.newFd(sc, res); return nil },
		}, nil

	case "bind":
		if err := r.args(e, 3, 3); err != nil {
			return nil, err
		}
		addr, err := r.sockaddr(a[1], netip.AddrPortFrom(r.bindAddr, r.bindPort))
		if err != nil {
			return bad(err)
		}
		return &callOp{
			try: func() (bool, callResult) { return true, res(0, st.Bind(fd, addr)) },
			finish: func(res callResult) error {
				if res.err == nil {
					r.bound[fd] = addr.Port()
				}
				return nil
			},
		}, nil

	case "listen":
		if err := r.args(e, 2, 2); err != nil {
			return nil, err
		}
		backlog, err := r.evalInt(a[1])
		if err != nil {
			return bad(err)
		}
		return &callOp{
			try: func() (bool, callResult) { return true, res(0, st.Listen(fd, int(backlog))) },
			finish: func(res callResult) error {
				if res.err == nil {
					port, ok := r.bound[fd]
					if !ok {
						port = r.bindPort
					}
					r.sut = &sockUnderTest{listening: true, fd: fd,
						local: netip.AddrPortFrom(r.localIP, port), localKnown: true}
				}
				return nil
			},
		}, nil

	case "accept", "accept4":
		if err := r.args(e, 3, 4); err != nil {
			return nil, err
		}
		return &callOp{fdResult: true,
			try: func() (bool, callResult) {
				var nfd int
				var err error
				if r.nonblocking(fd) {
					nfd, _, err = st.Accept(fd)
					return true, res(nfd, err)
				}
				r.withNonblock(fd, func() { nfd, _, err = st.Accept(fd) })
				if isErrno(err, syscall.EAGAIN) {
					return false, callResult{}
				}
				return true, res(nfd, err)
			},
			finish: func(res callResult) error {
				r.newFd(sc, res)
				if res.err == nil && r.sut != nil && !r.sut.listening && r.sut.fd < 0 {
					r.sut.fd = int(res.val)
				}
				return nil
			},
		}, nil

	case "connect":
		if err := r.args(e, 3, 3); err != nil {
			return nil, err
		}
		addr, err := r.sockaddr(a[1], netip.AddrPortFrom(r.connectAddr, r.connectPort))
		if err != nil {
			return bad(err)
		}
		started := false
		return &callOp{
			try: func() (bool, callResult) {
				if !started {
					started = true
					// Only a connect that starts a handshake makes a new
					// socket under test; one that fails at once (EALREADY,
					// EISCONN...) leaves the current one, as packetdrill.
					prev := r.sut
					r.sut = &sockUnderTest{connecting: true, fd: fd,
						remote: netip.AddrPortFrom(r.remoteIP, addr.Port())}
					r.sut.rLive = remoteISNOffset
					var err error
					if r.nonblocking(fd) {
						err = st.Connect(fd, addr)
					} else {
						r.withNonblock(fd, func() { err = st.Connect(fd, addr) })
					}
					if !isErrno(err, syscall.EINPROGRESS) {
						r.sut = prev
						return true, res(0, err)
					}
					if r.nonblocking(fd) {
						return true, res(0, err)
					}
					return false, callResult{}
				}
				// A blocking connect returns once the socket is
				// writable, with the error SO_ERROR holds.
				p := []pollFd{{fd: fd, events: linuxPollOut}}
				if _, err := st.Poll(p); err != nil {
					return true, res(0, err)
				}
				if p[0].revents&(linuxPollOut|linuxPollErr|linuxPollHup) == 0 {
					return false, callResult{}
				}
				v, err := st.GetsockoptInt(fd, linuxSolSocket, linuxSoError)
				if err == nil && v != 0 {
					err = syscall.Errno(v)
				}
				return true, res(0, err)
			},
		}, nil

	case "read", "recv", "recvfrom":
		max := 3
		if sc.name == "recv" {
			max = 4
		} else if sc.name == "recvfrom" {
			max = 6
		}
		if err := r.args(e, 3, max); err != nil {
			return nil, err
		}
		count, err := r.evalInt(a[2])
		if err != nil {
			return bad(err)
		}
		if count < 0 || count > 1<<26 {
			return bad(fmt.Errorf("bad count %d", count))
		}
		flags := int64(0)
		if len(a) > 3 {
			if flags, err = r.evalInt(a[3]); err != nil {
				return bad(err)
			}
		}
		if isNull(a[1]) && count > 0 {
			return r.nullBuffer(fd), nil
		}
		buf := make([]byte, count)
		got := 0
		return &callOp{
			try: func() (bool, callResult) {
				nb := flags&linuxMsgDontwait != 0 || r.nonblocking(fd)
				waitAll := flags&0x100 != 0 && !nb
				for {
					f := int(flags)
					if !nb {
						f |= linuxMsgDontwait
					}
					n, err := st.Recv(fd, buf[got:], f)
					if errors.Is(err, io.EOF) {
						n, err = 0, nil
					}
					if err != nil {
						if !nb && isErrno(err, syscall.EAGAIN) {
							return false, callResult{}
						}
						if got > 0 {
							return true, res(got, nil)
						}
						return true, res(n, err)
					}
					got += n
					if !waitAll || n == 0 || got == len(buf) {
						return true, res(got, nil)
					}
				}
			},
		}, nil

	case "write", "send", "sendto":
		max := 3
		if sc.name == "send" {
			max = 4
		} else if sc.name == "sendto" {
			max = 6
		}
		if err := r.args(e, 3, max); err != nil {
			return nil, err
		}
		count, err := r.evalInt(a[2])
		if err != nil {
			return bad(err)
		}
		if count < 0 || count > 1<<26 {
			return bad(fmt.Errorf("bad count %d", count))
		}
		flags := int64(0)
		if len(a) > 3 {
			if flags, err = r.evalInt(a[3]); err != nil {
				return bad(err)
			}
		}
		if isNull(a[1]) && count > 0 {
			return r.nullBuffer(fd), nil
		}
		buf := make([]byte, count)
		if a[1].kind == exString {
			copy(buf, a[1].word)
		}
		sentN := 0
		blocked := false
		return &callOp{
			try: func() (bool, callResult) {
				nb := flags&linuxMsgDontwait != 0 || r.nonblocking(fd)
				if blocked && !nb {
					// A blocked writer wakes only when poll would say
					// POLLOUT (Linux's sk_stream_write_space: half the
					// queue drained), not whenever a byte of room opens.
					p := []pollFd{{fd: fd, events: linuxPollOut}}
					if _, err := st.Poll(p); err == nil && p[0].revents&(linuxPollOut|linuxPollErr|linuxPollHup) == 0 {
						return false, callResult{}
					}
				}
				for {
					f := int(flags)
					if !nb {
						f |= linuxMsgDontwait
					}
					n, err := st.Send(fd, buf[sentN:], f)
					if n > 0 {
						sentN += n
					}
					if err != nil {
						if !nb && isErrno(err, syscall.EAGAIN) {
							blocked = true
							return false, callResult{}
						}
						if sentN > 0 {
							return true, res(sentN, nil)
						}
						return true, res(0, err)
					}
					if nb || sentN >= len(buf) {
						return true, res(sentN, nil)
					}
				}
			},
		}, nil

	case "close":
		if err := r.args(e, 1, 1); err != nil {
			return nil, err
		}
		script := -1
		if v, err := r.evalInt(a[0]); err == nil {
			script = int(v)
		}
		return &callOp{
			try: func() (bool, callResult) { return true, res(0, st.Close(fd)) },
			finish: func(res callResult) error {
				if res.err == nil {
					delete(r.fds, script)
				}
				return nil
			},
		}, nil

	case "shutdown":
		if err := r.args(e, 2, 2); err != nil {
			return nil, err
		}
		how, err := r.evalInt(a[1])
		if err != nil {
			return bad(err)
		}
		return &callOp{try: func() (bool, callResult) { return true, res(0, st.Shutdown(fd, int(how))) }}, nil

	case "fcntl":
		if err := r.args(e, 2, 3); err != nil {
			return nil, err
		}
		cmd, err := r.evalInt(a[1])
		if err != nil {
			return bad(err)
		}
		arg := int64(0)
		if len(a) > 2 {
			if arg, err = r.evalInt(a[2]); err != nil {
				return bad(err)
			}
		}
		return &callOp{try: func() (bool, callResult) {
			v, err := st.Fcntl(fd, int(cmd), int(arg))
			return true, res(v, err)
		}}, nil

	case "dup":
		if err := r.args(e, 1, 1); err != nil {
			return nil, err
		}
		return &callOp{fdResult: true,
			try: func() (bool, callResult) {
				nfd, err := st.Dup(fd)
				return true, res(nfd, err)
			},
			finish: func(res callResult) error { r.newFd(sc, res); return nil },
		}, nil

	case "ioctl":
		what := "ioctl"
		if len(a) > 1 {
			what += " " + describeExpr(a[1])
		}
		if err := r.unsupported(e.line, "%s (synstack's socket layer has no ioctls: no count of queued bytes without reading them)", what); err != nil {
			return nil, err
		}
		return nil, nil
	case "setsockopt":
		return r.setsockopt(e, fd)
	case "getsockopt":
		return r.getsockopt(e, fd)
	case "poll":
		return r.poll(e)
	}
	if err := r.unsupported(e.line, "system call %s", sc.name); err != nil {
		return nil, err
	}
	return nil, nil
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

func (r *runner) setsockopt(e *event, fd int) (*callOp, error) {
	if err := r.args(e, 4, 5); err != nil {
		return nil, err
	}
	a := e.syscall.args
	st := r.st
	bad := func(err error) (*callOp, error) { return r.callError(e, err) }
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

func (r *runner) getsockopt(e *event, fd int) (*callOp, error) {
	if err := r.args(e, 4, 5); err != nil {
		return nil, err
	}
	a := e.syscall.args
	st := r.st
	bad := func(err error) (*callOp, error) { return r.callError(e, err) }
	level, err := r.evalInt(a[1])
	if err != nil {
		return bad(err)
	}
	name, err := r.evalInt(a[2])
	if err != nil {
		return bad(err)
	}
	if level == linuxSolTCP && name == linuxTCPInfo {
		if err := r.unsupported(e.line, "getsockopt TCP_INFO (use a %%{ assert tcpi_... }%% block)"); err != nil {
			return nil, err
		}
		return nil, nil
	}
	want := a[3]
	if want.kind == exString {
		// TCP_CONGESTION: getsockopt(fd, SOL_TCP, TCP_CONGESTION, "bbr", [4]).
		ws := want.word
		var got string
		return &callOp{
			try: func() (bool, callResult) {
				v, err := st.GetsockoptString(fd, int(level), int(name))
				got = v
				return true, res(0, err)
			},
			finish: func(c callResult) error {
				if c.err == nil && got != ws {
					return r.errf(e.line, "expected %s; got %q", e.text, got)
				}
				return nil
			},
		}, nil
	}
	if f, ok := fields(want); ok {
		wl, err := r.linger(f)
		if err != nil {
			return bad(err)
		}
		return &callOp{
			try: func() (bool, callResult) {
				l, err := st.GetsockoptLinger(fd)
				c := res(0, err)
				c.linger = l
				return true, c
			},
			finish: func(c callResult) error {
				if c.err == nil && ((c.linger.Onoff != 0) != (wl.Onoff != 0) || c.linger.Linger != wl.Linger) {
					return r.errf(e.line, "expected %s; got {onoff=%d, linger=%d}", e.text, c.linger.Onoff, c.linger.Linger)
				}
				return nil
			},
		}, nil
	}
	var wantV int64
	check := want.kind != exEllipsis
	if check {
		if wantV, err = r.evalInt(want); err != nil {
			return bad(err)
		}
	}
	return &callOp{
		try: func() (bool, callResult) {
			v, err := st.GetsockoptInt(fd, int(level), int(name))
			c := res(0, err)
			c.intVal = v
			return true, c
		},
		finish: func(c callResult) error {
			if c.err == nil && check && int64(c.intVal) != wantV {
				got := strconv.Itoa(c.intVal)
				if level == linuxSolSocket && name == linuxSoError && c.intVal != 0 {
					got = errnoName(syscall.Errno(c.intVal))
				}
				return r.errf(e.line, "expected %s; got value [%s]", e.text, got)
			}
			return nil
		},
	}, nil
}

// poll([{fd=F, events=E, revents=R}, ...], N, TIMEOUT_MS)
func (r *runner) poll(e *event) (*callOp, error) {
	if err := r.args(e, 3, 3); err != nil {
		return nil, err
	}
	a := e.syscall.args
	st := r.st
	bad := func(err error) (*callOp, error) { return r.callError(e, err) }
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
