package engine

import (
	"net/netip"
	"syscall"
	"time"
)

// The net.Conn path: a connected socket that a net.Conn stands on (Hold)
// keeps its connection for life (connect on it fails with EISCONN, even
// after a reset), so its Read and Write take that connection's shard's
// lock alone. Deadlines are the net.Conn's (two net.Conns may stand on one
// socket, through a dup'ed descriptor), each guarded by the lock of what
// it cuts off: the connection's shard's, or ctl for a listener's.

// ConnRef is a connected socket with its connection, as a net.Conn holds
// it: the connection is the socket's for life, so the reference stays
// good after the socket closes (its calls then fail with EBADF).
type ConnRef struct {
	sk *Socket
	ep *endpoint
}

// Hold returns the reference a net.Conn keeps to the socket's
// connection; ENOTCONN unless connect or accept saw it established.
func (sk *Socket) Hold() (ConnRef, error) {
	var l locks
	defer sk.h.releaseCtl(&l)
	if err := sk.lock(sockLocks, &l); err != nil {
		return ConnRef{}, err
	}
	if sk.ep == nil || sk.state != ssConnected {
		return ConnRef{}, syscall.ENOTCONN
	}
	return ConnRef{sk, sk.ep}, nil
}

// lock takes the lock of the connection's shard.
func (c ConnRef) lock() locks {
	l := locks{sh: c.ep.sh}
	c.sk.h.acquire(&l)
	return l
}

// Addrs returns the connection's addresses (unmapped), which never
// change: no lock.
func (c ConnRef) Addrs() (local, remote netip.AddrPort) { return c.ep.local, c.ep.remote }

// Read is a net.Conn's Read: Recv on the connection, blocking, cut off by
// the deadline rd (ErrCanceled). A zero-length read returns at once,
// ErrCanceled if the deadline has passed.
func (c ConnRef) Read(p []byte, rd *Deadline) (int, error) {
	s := c.sk.h
	l := c.lock()
	defer s.release(&l)
	if len(p) == 0 {
		if rd.passedLocked() {
			return 0, ErrCanceled
		}
		return 0, nil
	}
	cancel := rd.acquireLocked(s.chansFor(&l))
	n, err := c.sk.recvLocked(p, false, false, cancel, &l)
	rd.releaseLocked(s.chansFor(&l))
	return n, err
}

// Write is a net.Conn's Write: Send on the connection, blocking, cut off
// by the deadline wd (ErrCanceled, with what was written). A long write
// lets other calls in between its pieces.
func (c ConnRef) Write(p []byte, wd *Deadline) (int, error) {
	s := c.sk.h
	l := c.lock()
	defer s.release(&l)
	cancel := wd.acquireLocked(s.chansFor(&l))
	defer wd.releaseLocked(s.chansFor(&l))
	n := 0
	for {
		k, err := c.sk.sendLocked(p[n:], SendFlags{}, cancel, &l)
		n += k
		if err != nil || n == len(p) {
			return n, err
		}
		s.release(&l)
		s.acquire(&l)
	}
}

// SetDeadline sets the deadlines ds of the connection's net.Conn to t on
// the host's clock: the zero time means none.
func (c ConnRef) SetDeadline(t time.Time, ds ...*Deadline) {
	l := c.lock()
	defer c.sk.h.release(&l)
	for _, d := range ds {
		d.setLocked(c.sk.h.clock, t)
	}
}

// CloseDeadline cuts off, for good, the calls the deadlines ds cut off:
// the net.Conn's Close.
func (c ConnRef) CloseDeadline(ds ...*Deadline) {
	l := c.lock()
	defer c.sk.h.release(&l)
	for _, d := range ds {
		d.closeLocked()
	}
}

// AcceptConn is a net.Listener's Accept: Accept, blocking, cut off by the
// deadline d (ErrCanceled).
func (sk *Socket) AcceptConn(d *Deadline) (*Socket, error) {
	var l locks
	defer sk.h.releaseCtl(&l)
	if err := sk.lock(ctlOnly, &l); err != nil {
		return nil, err
	}
	nsk, _, err := sk.acceptLocked(false, d.waitLocked(), &l)
	return nsk, err
}

// SetAcceptDeadline sets the deadline d of AcceptConn (the zero time: none).
func (sk *Socket) SetAcceptDeadline(d *Deadline, t time.Time) {
	sk.h.ctl.Lock()
	defer sk.h.ctl.Unlock()
	d.setLocked(sk.h.clock, t)
}

// CloseAcceptDeadline cuts off, for good, the AcceptConn calls that d
// cuts off: the net.Listener's Close.
func (sk *Socket) CloseAcceptDeadline(d *Deadline) {
	sk.h.ctl.Lock()
	defer sk.h.ctl.Unlock()
	d.closeLocked()
}
