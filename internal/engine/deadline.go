package engine

import (
	"time"

	"github.com/synstack/synstack/clock"
)

// deadline is one deadline of a net.Conn or net.Listener, as net.Pipe has
// them: a timer on the stack's clock closes a channel when the deadline
// passes. A blocked call waits on that channel along with its socket, so a
// deadline also cuts off calls already blocked, and a deadline moved while a
// call waits takes effect at once. Its fields are guarded by the lock of
// what it belongs to: a TCPConn's by its connection's (TCPConn.lock), a
// TCPListener's by Host.lock. Every method is called with it held.
type Deadline struct {
	timer clock.Timer // closes cancel at the deadline; nil when none is pending
	// cancel is closed when the deadline has passed. A call borrows one
	// for its length (acquireLocked, releaseLocked) unless a deadline is pending, so
	// an idle connection with no deadline holds no channel.
	cancel chan struct{}
	final  bool // closed for good by the connection's Close
}

// expired is a channel closed from the start, for a deadline that passed
// before anyone waited on it.
var expired = func() chan struct{} { ch := make(chan struct{}); close(ch); return ch }()

// setLocked moves the deadline to t; the zero time means none.
func (d *Deadline) setLocked(clk clock.Clock, t time.Time) {
	if d.final {
		return
	}
	d.stopLocked()
	closed := isDone(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = nil
		}
		return
	}
	if dur := t.Sub(clk.Now()); dur > 0 {
		if closed || d.cancel == nil {
			d.cancel = make(chan struct{}, 1) // as chanPool's: it may go there (release)
		}
		ch := d.cancel
		d.timer = clk.AfterFunc(dur, func() { close(ch) })
		return
	}
	switch {
	case d.cancel == nil:
		d.cancel = expired
	case !closed:
		close(d.cancel)
	}
}

// stopLocked stops the pending timer; if it has already fired, it waits
// for its function to close the channel (which takes no lock: the wait is
// short, even with a lock of the stack held).
func (d *Deadline) stopLocked() {
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel
	}
	d.timer = nil
}

// closeLocked expires the deadline for good: the connection is closed, and every
// call waiting on the channel must return.
func (d *Deadline) closeLocked() {
	if d.final {
		return
	}
	d.final = true
	d.stopLocked()
	switch {
	case d.cancel == nil:
		d.cancel = expired
	case !isDone(d.cancel):
		close(d.cancel)
	}
}

// acquireLocked returns the channel that closes when the deadline passes,
// for one call: from p when there is none yet. The call gives it back
// with releaseLocked.
func (d *Deadline) acquireLocked(p *chanPool) <-chan struct{} {
	if d.cancel == nil {
		d.cancel = p.get()
	}
	return d.cancel
}

// releaseLocked gives the channel back to p once the call that acquired
// it is done, unless a deadline still needs it: a timer is pending, it
// has closed, or the connection is closed for good. Calls that use d must
// not overlap (the net.Conn serialises its Reads, and its Writes).
func (d *Deadline) releaseLocked(p *chanPool) {
	if d.cancel == nil || d.timer != nil || d.final || isDone(d.cancel) {
		return
	}
	p.put(d.cancel)
	d.cancel = nil
}

// passedLocked reports whether the deadline has passed (or the connection is
// closed for good).
func (d *Deadline) passedLocked() bool {
	return d.cancel != nil && isDone(d.cancel)
}

// waitLocked returns the channel that closes when the deadline passes.
func (d *Deadline) waitLocked() <-chan struct{} {
	if d.cancel == nil {
		d.cancel = make(chan struct{}, 1)
	}
	return d.cancel
}

// chanPool keeps open channels between uses, so that a call that needs one
// (to wait for a wake-up, or for a deadline) does not allocate: it holds
// as many as were ever in use at once. Each shard of a stack has its own,
// guarded by its lock, rather than sharing a global one, because a channel
// made in a testing/synctest bubble must stay in it.
type chanPool struct {
	free []chan struct{}
}

// get returns an open channel with room for one token and none in it.
func (p *chanPool) get() chan struct{} {
	if k := len(p.free); k > 0 {
		ch := p.free[k-1]
		p.free[k-1] = nil
		p.free = p.free[:k-1]
		return ch
	}
	return make(chan struct{}, 1)
}

// put keeps ch, which must be open and hold no token, for a later get.
func (p *chanPool) put(ch chan struct{}) {
	p.free = append(p.free, ch)
}
