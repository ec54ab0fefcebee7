package script

import (
	"fmt"
	"time"
)

// epoll, as scripts use it: epoll_create, epoll_ctl (EPOLL_CTL_ADD, MOD,
// DEL; EPOLLET, EPOLLONESHOT, EPOLLEXCLUSIVE) and epoll_wait, over the
// stack's poll. The runner keeps the epoll instances; their descriptors
// are the runner's own (from epollFdBase), mapped from the script's
// numbers as the stack's are.
//
// Level-triggered items report the events the socket has now. An
// edge-triggered item reports them only when something woke it since it
// last reported, as Linux's ready list: being added, an event bit that
// was clear and is set (the socket became writable again, a connection
// or a FIN arrived...), new data received even if unread data was
// already there, or a report queued on (or merged into) the error
// queue, read or not, as Linux's sk_error_report. The runner looks for those wake-ups after every event
// and clock step (epollSample), so a wake-up between two looks that
// leaves no trace (data arriving and read in between) is not seen.

// epollFdBase is the first live descriptor of an epoll instance: far
// above the stack's.
const epollFdBase = 1 << 24

// Linux's epoll values.
const (
	epollCtlAdd       = 1
	epollCtlDel       = 2
	epollCtlMod       = 3
	epollIn           = 0x1
	epollOut          = 0x4
	epollErr          = 0x8
	epollHup          = 0x10
	epollRdHup        = 0x2000
	epollExclusive    = 1 << 28
	epollOneShot      = 1 << 30
	epollET           = 1 << 31
	epollLevelBits    = 0x7fff // the poll bits of an event mask
	epollAlwaysEvents = epollErr | epollHup
)

// epollItem is a descriptor registered with an epoll instance.
type epollItem struct {
	fd       int   // live descriptor
	events   int64 // as registered, flags included
	data     int64 // what epoll_wait returns with it (the fd, or ptr)
	pending  bool  // woken since it last reported (edge-triggered)
	disabled bool  // EPOLLONESHOT: reported, until EPOLL_CTL_MOD
	prev     int16 // the poll bits at the last look
	rcvd     uint64
	errWakes uint64 // error-queue reports at the last look
}

// errWaker is the stack's count of error-queue reports (Sockets'
// ErrQueueWakes): each wakes an edge-triggered item with EPOLLERR.
type errWaker interface {
	ErrQueueWakes(fd int) (uint64, error)
}

// errWakes is fd's count of error-queue reports (0 if the stack has none).
func (r *runner) errWakes(fd int) uint64 {
	w, ok := r.st.(errWaker)
	if !ok {
		return 0
	}
	n, _ := w.ErrQueueWakes(fd)
	return n
}

// epollSet is an epoll instance: its items in the order they were added.
type epollSet struct{ items []*epollItem }

// pollBits returns fd's poll bits now.
func (r *runner) pollBits(fd int) int16 {
	p := []pollFd{{fd: fd, events: -1}}
	if _, err := r.st.Poll(p); err != nil {
		return 0
	}
	return p[0].revents
}

// bytesReceived is fd's tcpi_bytes_received (0 without a connection).
func (r *runner) bytesReceived(fd int) uint64 {
	info, err := r.st.GetsockoptTCPInfo(fd)
	if err != nil {
		return 0
	}
	return info.BytesReceived
}

// epollSample looks for the wake-ups of edge-triggered items.
func (r *runner) epollSample() {
	if r.st == nil {
		return
	}
	for _, ep := range r.epolls {
		for _, it := range ep.items {
			cur := r.pollBits(it.fd)
			rcvd, ew := r.bytesReceived(it.fd), r.errWakes(it.fd)
			if cur&^it.prev != 0 || rcvd > it.rcvd || ew > it.errWakes {
				it.pending = true
			}
			it.prev, it.rcvd, it.errWakes = cur, rcvd, ew
		}
	}
}

// epollEvent reads a struct epoll_event: {events=E, fd=N}, or ptr, u32 or
// u64 for the data.
func (r *runner) epollEvent(x *expr) (events, data int64, hasData bool, err error) {
	f, ok := fields(x)
	if !ok || f["events"] == nil {
		return 0, 0, false, fmt.Errorf("expected {events=..., fd=...}, got %s", describeExpr(x))
	}
	if events, err = r.evalInt(f["events"]); err != nil {
		return 0, 0, false, err
	}
	for _, k := range []string{"fd", "ptr", "u32", "u64"} {
		if f[k] != nil {
			if data, err = r.evalInt(f[k]); err != nil {
				return 0, 0, false, err
			}
			hasData = true
		}
	}
	return events, data, hasData, nil
}

// epoll_create(SIZE), epoll_create1(FLAGS).
func (r *runner) callEpollCreate(c *callArgs) (*callOp, error) {
	if c.e.syscall.name == "epoll_create" {
		size, err := r.evalInt(c.a[0])
		if err != nil {
			return r.bad(c, err)
		}
		if size <= 0 {
			return errCall(func() error { return errnos["EINVAL"] }, nil), nil
		}
	}
	return &callOp{fdResult: true,
		try: func() (bool, callResult) {
			if r.epolls == nil {
				r.epolls = map[int]*epollSet{}
			}
			fd := epollFdBase + len(r.epolls)
			r.epolls[fd] = &epollSet{}
			return true, res(fd, nil)
		},
		finish: func(res callResult) error { r.newFd(c.e.syscall, res); return nil },
	}, nil
}

// epoll_ctl(EPFD, OP, FD, {events=E, fd=N} | {events=E, ptr=P} | NULL).
func (r *runner) callEpollCtl(c *callArgs) (*callOp, error) {
	ep := r.epolls[c.fd]
	op, err := r.evalInt(c.a[1])
	if err != nil {
		return r.bad(c, err)
	}
	fd, err := r.fd(c.a[2])
	if err != nil {
		return r.bad(c, err)
	}
	var events, data int64
	if !isNull(c.a[3]) || op != epollCtlDel {
		if events, data, _, err = r.epollEvent(c.a[3]); err != nil {
			return r.bad(c, err)
		}
	}
	return &callOp{try: func() (bool, callResult) {
		if ep == nil {
			return true, res(0, errnos["EBADF"])
		}
		if _, err := r.st.Fcntl(fd, linuxFGetFL, 0); err != nil {
			return true, res(0, err)
		}
		i := -1
		for k, it := range ep.items {
			if it.fd == fd {
				i = k
			}
		}
		switch {
		case op == epollCtlAdd && i >= 0:
			return true, res(0, errnos["EEXIST"])
		case op != epollCtlAdd && i < 0:
			return true, res(0, errnos["ENOENT"])
		case op == epollCtlMod && (events&epollExclusive != 0 || ep.items[i].events&epollExclusive != 0):
			return true, res(0, errnos["EINVAL"]) // as Linux: EXCLUSIVE only with ADD
		case op == epollCtlAdd || op == epollCtlMod:
			// Both look at the socket at once: ready now, it reports.
			it := &epollItem{fd: fd, events: events, data: data, pending: true,
				prev: r.pollBits(fd), rcvd: r.bytesReceived(fd), errWakes: r.errWakes(fd)}
			if i < 0 {
				ep.items = append(ep.items, it)
			} else {
				ep.items[i] = it
			}
		case op == epollCtlDel:
			ep.items = append(ep.items[:i], ep.items[i+1:]...)
		default:
			return true, res(0, errnos["EINVAL"])
		}
		return true, res(0, nil)
	}}, nil
}

// epoll_wait(EPFD, {events=E, fd=N} | {events=0, ptr=0}, MAXEVENTS,
// TIMEOUT_MS): the count must match, and the first event returned the
// struct (a ptr field matches the data registered).
func (r *runner) callEpollWait(c *callArgs) (*callOp, error) {
	ep := r.epolls[c.fd]
	wantEv, wantData, hasData, err := r.epollEvent(c.a[1])
	if err != nil {
		return r.bad(c, err)
	}
	checkData := hasData && wantEv != 0
	maxEvents, err := r.evalInt(c.a[2])
	if err != nil {
		return r.bad(c, err)
	}
	timeout, err := r.evalInt(c.a[3])
	if err != nil {
		return r.bad(c, err)
	}
	start := r.now()
	var gotEv, gotData int64
	op := &callOp{}
	if timeout > 0 {
		op.wakeAfter = time.Duration(timeout) * time.Millisecond
	}
	op.try = func() (bool, callResult) {
		if ep == nil {
			return true, res(0, errnos["EBADF"])
		}
		if maxEvents <= 0 {
			return true, res(0, errnos["EINVAL"])
		}
		r.epollSample()
		n := 0
		for _, it := range ep.items {
			if n >= int(maxEvents) {
				break
			}
			if it.disabled || it.events&epollET != 0 && !it.pending {
				continue
			}
			ev := int64(r.pollBits(it.fd)) & (it.events&epollLevelBits | epollAlwaysEvents)
			if ev == 0 {
				continue
			}
			it.pending = false
			if it.events&epollOneShot != 0 {
				it.disabled = true
			}
			if n == 0 {
				gotEv, gotData = ev, it.data
			}
			n++
		}
		if n == 0 && timeout != 0 && (timeout < 0 || r.now() < start+time.Duration(timeout)*time.Millisecond) {
			return false, callResult{}
		}
		return true, res(n, nil)
	}
	op.finish = func(res callResult) error {
		if res.err != nil || res.val == 0 {
			return nil
		}
		if gotEv != wantEv || checkData && gotData != wantData {
			return r.errf(c.e.line, "expected %s; got {events=%s, data=%d}", c.e.text, pollNames(int16(gotEv)), gotData)
		}
		return nil
	}
	return op, nil
}
