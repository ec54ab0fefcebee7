package script

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"syscall"
)

// sysCall is a system call the runner knows: the arguments it takes and
// how to build the call from them.
type sysCall struct {
	// min..max arguments, else a script error; max < 0: build checks.
	min, max int
	// noFD: the first argument is not a descriptor. For the others it is
	// mapped to the live one (callArgs.fd) before build runs.
	noFD  bool
	build func(r *runner, c *callArgs) (*callOp, error)
}

// callArgs is the system call line being prepared.
type callArgs struct {
	e  *event
	a  []*expr // the arguments
	fd int     // the first argument as a live descriptor (unless noFD)
}

// bad reports an argument error of the call (see callError).
func (r *runner) bad(c *callArgs, err error) (*callOp, error) { return r.callError(c.e, err) }

// intArg evaluates argument i, or is def when the call has fewer.
func (r *runner) intArg(c *callArgs, i int, def int64) (int64, error) {
	if i >= len(c.a) {
		return def, nil
	}
	return r.evalInt(c.a[i])
}

// sysCalls are the system calls a script may make, by name.
var sysCalls = map[string]sysCall{
	"socket":     {min: 3, max: 3, noFD: true, build: (*runner).callSocket},
	"bind":       {min: 3, max: 3, build: (*runner).callBind},
	"listen":     {min: 2, max: 2, build: (*runner).callListen},
	"accept":     {min: 3, max: 4, build: (*runner).callAccept},
	"accept4":    {min: 3, max: 4, build: (*runner).callAccept},
	"connect":    {min: 3, max: 3, build: (*runner).callConnect},
	"read":       {min: 3, max: 3, build: bufCall((*runner).receiver)},
	"recv":       {min: 3, max: 4, build: bufCall((*runner).receiver)},
	"recvfrom":   {min: 3, max: 6, build: bufCall((*runner).receiver)},
	"write":      {min: 3, max: 3, build: bufCall((*runner).handshakeSender)},
	"send":       {min: 3, max: 4, build: bufCall((*runner).handshakeSender)},
	"sendto":     {min: 3, max: 6, build: (*runner).callSendto},
	"close":      {min: 1, max: 1, build: (*runner).callClose},
	"shutdown":   {min: 2, max: 2, build: (*runner).callShutdown},
	"fcntl":      {min: 2, max: 3, build: (*runner).callFcntl},
	"dup":        {min: 1, max: 1, build: (*runner).callDup},
	"ioctl":      {min: 2, max: 3, build: (*runner).callIoctl},
	"setsockopt": {min: 4, max: 5, build: (*runner).setsockopt},
	"getsockopt": {min: 4, max: 5, build: (*runner).getsockopt},
	"poll":       {min: 3, max: 3, noFD: true, build: (*runner).poll},

	"epoll_create":  {min: 1, max: 1, noFD: true, build: (*runner).callEpollCreate},
	"epoll_create1": {min: 1, max: 1, noFD: true, build: (*runner).callEpollCreate},
	"epoll_ctl":     {min: 4, max: 4, build: (*runner).callEpollCtl},
	"epoll_wait":    {min: 4, max: 4, build: (*runner).callEpollWait},

	"open":     {min: 2, max: 3, noFD: true, build: (*runner).callOpen},
	"sendfile": {min: 4, max: 4, build: (*runner).callSendfile},
	"pipe":     {min: 1, max: 1, noFD: true, build: (*runner).callPipe},
	"splice":   {min: 6, max: 6, build: (*runner).callSplice},
}

// prepare builds the call of a system call line. It returns nil, nil for a
// call skipped under SkipUnknown.
func (r *runner) prepare(e *event) (*callOp, error) {
	sc := e.syscall
	call, known := sysCalls[sc.name]
	c := &callArgs{e: e, a: sc.args}
	if len(c.a) > 0 && !call.noFD {
		fd, err := r.fd(c.a[0])
		if err != nil {
			return r.bad(c, err)
		}
		c.fd = fd
		r.lastFd = fd
	}
	if !known {
		return nil, r.unsupported(e.line, "system call %s", sc.name)
	}
	if call.max >= 0 {
		if err := r.args(e, call.min, call.max); err != nil {
			return nil, err
		}
	}
	return call.build(r, c)
}

// errCall is a call that returns 0 or an error; ok (if any) runs when
// it succeeded.
func errCall(call func() error, ok func()) *callOp {
	op := &callOp{try: func() (bool, callResult) { return true, res(0, call()) }}
	if ok != nil {
		op.finish = func(res callResult) error {
			if res.err == nil {
				ok()
			}
			return nil
		}
	}
	return op
}

// socket(DOMAIN, TYPE, PROTO); a DOMAIN of ... is the script's family.
func (r *runner) callSocket(c *callArgs) (*callOp, error) {
	a, st := c.a, r.st
	domain := int64(r.domain)
	if a[0].kind != exEllipsis {
		v, err := r.evalInt(a[0])
		if err != nil {
			return r.bad(c, err)
		}
		domain = v
	}
	typ, err := r.evalInt(a[1])
	if err != nil {
		return r.bad(c, err)
	}
	proto, err := r.evalInt(a[2])
	if err != nil {
		return r.bad(c, err)
	}
	return &callOp{fdResult: true,
		try: func() (bool, callResult) {
			nfd, err := st.Socket(int(domain), int(typ), int(proto))
			return true, res(nfd, err)
		},
		finish: func(res callResult) error { r.newFd(c.e.syscall, res); return nil },
	}, nil
}

// bind(FD, ADDR, LEN); an ADDR of ... is the script's local address.
func (r *runner) callBind(c *callArgs) (*callOp, error) {
	fd, st := c.fd, r.st
	addr, err := r.sockaddr(c.a[1], netip.AddrPortFrom(r.bindAddr, r.bindPort))
	if err != nil {
		return r.bad(c, err)
	}
	return errCall(func() error { return st.Bind(fd, addr) },
		func() { r.bound[fd] = addr.Port() }), nil
}

// listen(FD, BACKLOG): the listener becomes the socket under test.
func (r *runner) callListen(c *callArgs) (*callOp, error) {
	fd, st := c.fd, r.st
	backlog, err := r.evalInt(c.a[1])
	if err != nil {
		return r.bad(c, err)
	}
	return errCall(func() error { return st.Listen(fd, int(backlog)) }, func() {
		port, ok := r.bound[fd]
		if !ok {
			port = r.bindPort
		}
		r.sut = &sockUnderTest{listening: true, fd: fd,
			local: netip.AddrPortFrom(r.localIP, port), localKnown: true}
	}), nil
}

// accept(FD, ADDR, LEN[, FLAGS]); a blocking one waits for a connection.
func (r *runner) callAccept(c *callArgs) (*callOp, error) {
	fd, st := c.fd, r.st
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
			r.newFd(c.e.syscall, res)
			if res.err == nil && r.sut != nil && !r.sut.listening && r.sut.fd < 0 {
				r.sut.fd = int(res.val)
			}
			return nil
		},
	}, nil
}

// connect(FD, ADDR, LEN); an ADDR of ... is the script's remote address.
func (r *runner) callConnect(c *callArgs) (*callOp, error) {
	addr, err := r.sockaddr(c.a[1], netip.AddrPortFrom(r.connectAddr, r.connectPort))
	if err != nil {
		return r.bad(c, err)
	}
	fd, st := c.fd, r.st
	started := false
	return &callOp{
		try: func() (bool, callResult) {
			if !started {
				started = true
				return r.startConnect(fd, addr)
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
}

// startConnect makes a connect's first attempt. Only a connect that
// starts a handshake makes a new socket under test; one that fails at
// once (EALREADY, EISCONN...) leaves the current one, as packetdrill.
func (r *runner) startConnect(fd int, addr netip.AddrPort) (bool, callResult) {
	st := r.st
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
	if err == nil {
		// Success at once: a TCP_FASTOPEN_CONNECT deferred to the
		// first write, which connects this socket under test.
		return true, res(0, nil)
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

// bufCall builds a read or a write, (FD, BUF, COUNT[, FLAGS...]), whose
// try is made by rw. BUF is COUNT bytes: those of BUF if it is a string,
// else zeros. A NULL BUF of a non-zero COUNT fails as Linux's
// (nullBuffer).
func bufCall(rw func(r *runner, fd int, buf []byte, flags int64) func() (bool, callResult)) func(*runner, *callArgs) (*callOp, error) {
	return func(r *runner, c *callArgs) (*callOp, error) {
		count, err := r.evalInt(c.a[2])
		if err != nil {
			return r.bad(c, err)
		}
		if count < 0 || count > 1<<26 {
			return r.bad(c, fmt.Errorf("bad count %d", count))
		}
		flags, err := r.intArg(c, 3, 0)
		if err != nil {
			return r.bad(c, err)
		}
		if isNull(c.a[1]) && count > 0 {
			return r.nullBuffer(c.fd), nil
		}
		buf := make([]byte, count)
		if c.a[1].kind == exString {
			copy(buf, c.a[1].word)
		}
		return &callOp{try: rw(r, c.fd, buf, flags)}, nil
	}
}

// receiver is the try of a read into buf; MSG_WAITALL waits for all of
// it (or the end of the stream).
func (r *runner) receiver(fd int, buf []byte, flags int64) func() (bool, callResult) {
	st := r.st
	got := 0
	if e := r.pipes[fd]; e != nil {
		return func() (bool, callResult) { return e.read(buf) }
	}
	return func() (bool, callResult) {
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
	}
}

// sender is the try of a write of buf: a blocking one writes it all,
// waiting for room.
func (r *runner) sender(fd int, buf []byte, flags int64) func() (bool, callResult) {
	if e := r.pipes[fd]; e != nil {
		return func() (bool, callResult) { return e.write(len(buf)) }
	}
	return r.senderFunc(fd, len(buf), flags, func(off, f int) (int, error) { return r.st.Send(fd, buf[off:], f) })
}

// senderFunc is sender over send, which sends the data from offset off
// with flags f (of total bytes in all).
func (r *runner) senderFunc(fd, total int, flags int64, send func(off, f int) (int, error)) func() (bool, callResult) {
	st := r.st
	sentN := 0
	blocked := false
	return func() (bool, callResult) {
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
			n, err := send(sentN, f)
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
			if nb || sentN >= total {
				return true, res(sentN, nil)
			}
		}
	}
}

// close(FD): the script's number for FD is free again.
func (r *runner) callClose(c *callArgs) (*callOp, error) {
	fd, st := c.fd, r.st
	script := -1
	if v, err := r.evalInt(c.a[0]); err == nil {
		script = int(v)
	}
	if _, ok := r.epolls[fd]; ok {
		return errCall(func() error { return nil }, func() { delete(r.epolls, fd); delete(r.fds, script) }), nil
	}
	if _, ok := r.openFiles[fd]; ok {
		return errCall(func() error { return nil }, func() { r.closeFile(fd); delete(r.fds, script) }), nil
	}
	if e, ok := r.pipes[fd]; ok {
		return errCall(func() error { return nil }, func() { e.close(); delete(r.pipes, fd); delete(r.fds, script) }), nil
	}
	return errCall(func() error { return st.Close(fd) }, func() { delete(r.fds, script) }), nil
}

// shutdown(FD, HOW).
func (r *runner) callShutdown(c *callArgs) (*callOp, error) {
	fd, st := c.fd, r.st
	how, err := r.evalInt(c.a[1])
	if err != nil {
		return r.bad(c, err)
	}
	return errCall(func() error { return st.Shutdown(fd, int(how)) }, nil), nil
}

// fcntl(FD, CMD[, ARG]).
func (r *runner) callFcntl(c *callArgs) (*callOp, error) {
	fd, st := c.fd, r.st
	cmd, err := r.evalInt(c.a[1])
	if err != nil {
		return r.bad(c, err)
	}
	arg, err := r.intArg(c, 2, 0)
	if err != nil {
		return r.bad(c, err)
	}
	return &callOp{try: func() (bool, callResult) {
		v, err := st.Fcntl(fd, int(cmd), int(arg))
		return true, res(v, err)
	}}, nil
}

// dup(FD).
func (r *runner) callDup(c *callArgs) (*callOp, error) {
	fd, st := c.fd, r.st
	return &callOp{fdResult: true,
		try: func() (bool, callResult) {
			nfd, err := st.Dup(fd)
			return true, res(nfd, err)
		},
		finish: func(res callResult) error { r.newFd(c.e.syscall, res); return nil },
	}, nil
}

// ioctl(FD, REQUEST[, [VALUE]]): SIOCINQ, SIOCOUTQ and SIOCOUTQNSD, whose
// value is checked as getsockopt's (... for any, or no third argument).
func (r *runner) callIoctl(c *callArgs) (*callOp, error) {
	req, err := r.evalInt(c.a[1])
	if err != nil {
		return r.bad(c, err)
	}
	// The two-argument form passes no value to check.
	var wantV int64
	check := len(c.a) == 3 && c.a[2].kind != exEllipsis
	if check {
		want := c.a[2]
		if wantV, err = r.evalInt(want); err != nil {
			return r.bad(c, err)
		}
	}
	fd, st := c.fd, r.st
	return &callOp{
		try: func() (bool, callResult) {
			v, err := st.Ioctl(fd, int(req))
			out := res(0, err)
			out.intVal = v
			return true, out
		},
		finish: func(res callResult) error {
			if res.err == nil && check && int64(res.intVal) != wantV {
				return r.errf(c.e.line, "expected %s; got value [%d]", c.e.text, res.intVal)
			}
			return nil
		},
	}, nil
}
