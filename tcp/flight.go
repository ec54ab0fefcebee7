package tcp

import "sync"

// flightState is what a connection needs only while it has data in
// flight: the transmit records (txrec.go), RACK's newest delivered segment
// and its reordering timer (rack.go), and the pacing of the current burst
// (pacing.go). A connection borrows one from flightPool when it sends data
// and gives it back once everything it sent is acknowledged and its timers
// are idle (returnFlight), so an idle connection carries none, as it
// carries no queue buffer. What must outlast a flight lives in the Conn:
// RACK's reordering-window state (reo), the count of paced segments, the
// pacing clock (paceNext), the delivery-rate counters, the congestion
// control.
type flightState struct {
	txq  txQueue
	rack rackState
	pace paceState
}

// flightPool holds idle flightStates, each keeping its record ring's
// memory for the next flight.
var flightPool = sync.Pool{New: func() any { return new(flightState) }}

// borrowFlight returns c's flight state, borrowing one if it has none.
func (c *Conn) borrowFlight() *flightState {
	if c.fl == nil {
		c.fl = flightPool.Get().(*flightState)
	}
	return c.fl
}

// returnFlight gives c's flight state back when nothing is in flight and
// none of its timers is armed: no record, no loss recovery, no RACK or
// pacing timer; or when the
// connection has ended (CLOSED, TIME_WAIT, or back in LISTEN). It is
// called at the end of Input and Tick, the calls that empty a flight,
// never in the middle of one: a caller may hold the state.
func (c *Conn) returnFlight(now instant) {
	fl := c.fl
	if fl == nil {
		return
	}
	switch c.state {
	case Closed, TimeWait, Listen:
	default:
		if fl.txq.n > 0 || c.loss != lossNone || !fl.rack.at.IsZero() ||
			!fl.pace.at.IsZero() {
			return
		}
	}
	c.fl = nil
	buf := fl.txq.buf
	if len(buf) > txQueueKeep {
		buf = nil
	}
	*fl = flightState{}
	fl.txq.buf = buf
	flightPool.Put(fl)
}

// recs is the number of transmit records: segments in flight.
func (c *Conn) recs() int {
	if c.fl == nil {
		return 0
	}
	return c.fl.txq.n
}
