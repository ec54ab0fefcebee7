package synstack

import (
	"sync"
	"time"

	"github.com/synstack/synstack/clock"
)

// deadline is one deadline of a net.Conn or net.Listener, as net.Pipe has
// them: a timer on the stack's clock closes a channel when the deadline
// passes. A blocked call waits on that channel along with its socket, so a
// deadline also cuts off calls already blocked, and a deadline moved while a
// call waits takes effect at once.
type deadline struct {
	mu    sync.Mutex
	timer clock.Timer // closes cancel at the deadline; nil when none is pending
	// cancel is closed when the deadline has passed. It is made when a
	// call first waits or a deadline is first set, so a connection that
	// never does either holds no channel.
	cancel chan struct{}
	final  bool // closed for good by the connection's Close
}

// expired is a channel closed from the start, for a deadline that passed
// before anyone waited on it.
var expired = func() chan struct{} { ch := make(chan struct{}); close(ch); return ch }()

// set moves the deadline to t; the zero time means none.
func (d *deadline) set(clk clock.Clock, t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
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
			d.cancel = make(chan struct{})
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
// for its function to close the channel.
func (d *deadline) stopLocked() {
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel
	}
	d.timer = nil
}

// close expires the deadline for good: the connection is closed, and every
// call waiting on the channel must return.
func (d *deadline) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
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

// wait returns the channel that closes when the deadline passes.
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cancel == nil {
		d.cancel = make(chan struct{})
	}
	return d.cancel
}
