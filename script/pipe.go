package script

import (
	"fmt"
	"syscall"
)

// Pipes: pipe([R, W]) makes a pipe of the runner's own, in memory (never
// the host's), whose ends read, write, close and splice take; splice
// moves bytes between a pipe and a socket of the stack, reading the
// socket as Linux's splice does (Sockets.ReadToMark: never past the urgent
// mark, 0 at it). The pipe holds what a Linux pipe holds by default (16
// pages, 65536 bytes); its bytes are counted, not kept: the runner's data
// is zeros unless a string says otherwise, and only counts are checked.

// pipeFdBase is the first live descriptor of a pipe end: above the stack's,
// the epoll instances' and the open files'.
const pipeFdBase = 1 << 26

// pipeCap is a pipe's capacity (Linux's default, 16 pages).
const pipeCap = 65536

// splice's flags (Linux's values).
const (
	linuxSpliceNonblock = 0x2
	linuxSpliceKnown    = 0x1 | 0x2 | 0x4 | 0x8 // MOVE, NONBLOCK, MORE, GIFT
)

// runnerPipe is one pipe: the bytes it holds, and which ends are open.
type runnerPipe struct {
	n                  int
	readOpen, wrOpen   bool
	readerFd, writerFd int
}

// pipeEnd is one descriptor of a pipe.
type pipeEnd struct {
	p      *runnerPipe
	writer bool // the write end
}

func (e *pipeEnd) close() {
	if e.writer {
		e.p.wrOpen = false
	} else {
		e.p.readOpen = false
	}
}

// read takes up to len(buf) bytes: 0 at the end (writer closed), EAGAIN
// when empty (a blocking read on the runner's pipe could only wait for
// the script itself, so it is refused as a non-blocking one).
func (e *pipeEnd) read(buf []byte) (bool, callResult) {
	switch {
	case e.writer:
		return true, res(0, syscall.EBADF)
	case e.p.n == 0 && !e.p.wrOpen:
		return true, res(0, nil)
	case e.p.n == 0:
		return true, res(0, syscall.EAGAIN)
	}
	n := min(len(buf), e.p.n)
	clear(buf[:n])
	e.p.n -= n
	return true, res(n, nil)
}

// write adds up to n bytes: EPIPE without a reader, EAGAIN when full.
func (e *pipeEnd) write(n int) (bool, callResult) {
	switch {
	case !e.writer:
		return true, res(0, syscall.EBADF)
	case !e.p.readOpen:
		return true, res(0, syscall.EPIPE)
	case e.p.n == pipeCap && n > 0:
		return true, res(0, syscall.EAGAIN)
	}
	k := min(n, pipeCap-e.p.n)
	e.p.n += k
	return true, res(k, nil)
}

// pipe([R, W]): the script names the two descriptors.
func (r *runner) callPipe(c *callArgs) (*callOp, error) {
	a := c.a[0]
	if a.kind != exList || len(a.args) != 2 {
		return r.bad(c, fmt.Errorf("pipe: expected [READ_FD, WRITE_FD], got %s", describeExpr(a)))
	}
	var want [2]int64
	for i, x := range a.args {
		v, err := r.evalInt(x)
		if err != nil {
			return r.bad(c, err)
		}
		want[i] = v
	}
	return &callOp{
		try: func() (bool, callResult) {
			if r.pipes == nil {
				r.pipes = map[int]*pipeEnd{}
			}
			p := &runnerPipe{readOpen: true, wrOpen: true}
			p.readerFd = pipeFdBase + 2*len(r.pipes)
			p.writerFd = p.readerFd + 1
			for r.pipes[p.readerFd] != nil || r.pipes[p.writerFd] != nil {
				p.readerFd += 2
				p.writerFd += 2
			}
			r.pipes[p.readerFd] = &pipeEnd{p: p}
			r.pipes[p.writerFd] = &pipeEnd{p: p, writer: true}
			r.fds[int(want[0])], r.fds[int(want[1])] = p.readerFd, p.writerFd
			return true, res(0, nil)
		},
	}, nil
}

// splice(IN, OFF_IN, OUT, OFF_OUT, LEN, FLAGS): one end a pipe, the other
// a socket of the stack; the offsets must be NULL (ESPIPE otherwise, as
// for a pipe or socket on Linux).
func (r *runner) callSplice(c *callArgs) (*callOp, error) {
	out, err := r.fd(c.a[2])
	if err != nil {
		return r.bad(c, err)
	}
	n, err := r.evalInt(c.a[4])
	if err != nil {
		return r.bad(c, err)
	}
	flags, err := r.evalInt(c.a[5])
	if err != nil {
		return r.bad(c, err)
	}
	in, st := c.fd, r.st
	inPipe, outPipe := r.pipes[in], r.pipes[out]
	fail := func(e syscall.Errno) (*callOp, error) { return errCall(func() error { return e }, nil), nil }
	switch {
	case !isNull(c.a[1]) || !isNull(c.a[3]):
		return fail(syscall.ESPIPE)
	case flags&^linuxSpliceKnown != 0 || n < 0:
		return fail(syscall.EINVAL)
	case inPipe != nil && outPipe != nil:
		return nil, r.unsupported(c.e.line, "splice between two pipes")
	case inPipe == nil && outPipe == nil:
		return fail(syscall.EINVAL) // as Linux: one end must be a pipe
	}
	nonblock := flags&linuxSpliceNonblock != 0
	if outPipe != nil {
		// Socket to pipe: what the pipe has room for.
		return &callOp{try: func() (bool, callResult) {
			p := outPipe.p
			switch {
			case !outPipe.writer:
				return true, res(0, syscall.EBADF)
			case !p.readOpen:
				return true, res(0, syscall.EPIPE)
			}
			room := min(int(n), pipeCap-p.n)
			if room == 0 && n > 0 {
				return true, res(0, syscall.EAGAIN)
			}
			buf := make([]byte, room)
			f := 0
			if nonblock || r.nonblocking(in) {
				f = linuxMsgDontwait
			}
			var k int
			var err error
			r.withNonblock(in, func() { k, err = st.ReadToMark(in, buf, f|linuxMsgDontwait) })
			if err != nil && isErrno(err, syscall.EAGAIN) && f == 0 {
				return false, callResult{}
			}
			if err == nil {
				p.n += k
			}
			return true, res(k, err)
		}}, nil
	}
	// Pipe to socket: what the pipe holds, sent as one write.
	return &callOp{try: func() (bool, callResult) {
		p := inPipe.p
		if inPipe.writer {
			return true, res(0, syscall.EBADF)
		}
		k := min(int(n), p.n)
		if k == 0 {
			if !p.wrOpen {
				return true, res(0, nil)
			}
			return true, res(0, syscall.EAGAIN)
		}
		done, out := r.sender(out, make([]byte, k), 0)()
		if done && out.err == nil {
			p.n -= int(out.val)
		}
		return done, out
	}}, nil
}
