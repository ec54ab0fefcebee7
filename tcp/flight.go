package tcp

// flightState is what a connection needs only while it has data in
// flight: the transmit records (txrec.go), RACK's newest delivered segment
// and its reordering timer (rack.go), and the pacing of the current burst
// (pacing.go). A connection borrows one from its Scratch when it sends data
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
	ep   episode
	use  cwndUse
	// bufRuns are the buffers Linux would cut the send queue into
	// (sendbufs.go); kept while data waits unsent.
	bufRuns []bufRun
	// memRuns are the buffers Linux's sk_wmem_queued would count
	// (sndmem.go); kept while data is queued.
	memRuns []bufRun
}

// maxSpareFlights bounds the idle flight states a Scratch keeps, and
// maxSpareRecs the records of their rings in all (512 KiB): enough that
// connections taking turns at exchanges, short or of a few hundred
// segments, reuse them without allocating, while a scratch never holds
// much for connections that no longer need it. (The package keeps no pool
// of its own: the memory it reuses lives in what the caller gives it.)
const (
	maxSpareFlights = 64
	maxSpareRecs    = 8192
)

// borrowFlight returns c's flight state, borrowing one if it has none.
func (c *Conn) borrowFlight() *flightState {
	if c.fl == nil {
		if k := len(c.sc.flights); k > 0 {
			c.fl = c.sc.flights[k-1]
			c.sc.flights[k-1] = nil
			c.sc.flights = c.sc.flights[:k-1]
			c.sc.spareRecs -= len(c.fl.txq.buf)
		} else {
			c.fl = new(flightState)
		}
	}
	return c.fl
}

// returnFlight gives c's flight state back when nothing is in flight and
// none of its timers is armed: no record, no loss recovery, no RACK or
// pacing timer, no D-SACK awaited for an undo (undo.go); or when the
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
		if fl.txq.n > 0 || c.cc.loss != lossNone || !fl.rack.at.IsZero() ||
			!fl.pace.at.IsZero() || fl.ep.undoPending(now) ||
			(len(fl.bufRuns) > 0 && c.queuedFrom(c.snd.nxt) > 0) {
			return
		}
	}
	c.fl = nil
	if len(c.sc.flights) >= maxSpareFlights {
		return
	}
	buf := fl.txq.buf
	if len(buf) > txQueueKeep || c.sc.spareRecs+len(buf) > maxSpareRecs {
		buf = nil
	}
	runs, mem := fl.bufRuns[:0], fl.memRuns[:0]
	*fl = flightState{}
	fl.txq.buf = buf
	fl.bufRuns, fl.memRuns = runs, mem
	c.sc.spareRecs += len(buf)
	c.sc.flights = append(c.sc.flights, fl)
}

// recs is the number of transmit records: segments in flight.
func (c *Conn) recs() int {
	if c.fl == nil {
		return 0
	}
	return c.fl.txq.n
}
