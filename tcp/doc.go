// Package tcp is synstack's TCP state machine: one connection's
// transmission control block (RFC 9293) with everything that acts on it,
// loss recovery (RFC 6298, 5681, 6582, 6675, RACK-TLP of RFC 8985, PRR of
// RFC 6937, and the undo of a spurious recovery as Linux),
// congestion control (CUBIC of RFC 9438, Reno, BBR), timestamps and window
// scaling (RFC 7323), SACK and D-SACK (RFC 2018, 2883), the defences of RFC
// 5961, ECN (RFC 3168), keepalive, pacing and buffer autotuning.
//
// It does no I/O and starts no goroutine. A Conn takes the segments that
// arrive (Input), the user's calls (Connect, Write, Read, Shutdown, Close)
// and the time, each call bringing the current time; it hands the segments
// it sends, and its state changes, to its Host during the call; Deadline
// says when Tick must next run. The caller serialises the calls.
//
// There are two ways to make one. NewConn takes a Config by value, with
// the Output and OnTransition functions in it: the simple way, used by the
// tests and examples. Conn.Init sets up a Conn in place, typically embedded
// in the caller's own per-connection structure, with a Host interface
// instead of two closures and a *Config from PrepareConfig that any number
// of connections share: the way the stack makes them, so that a connection
// carries no copy of its tunables. Both behave alike.
//
// A connection's memory grows with its data, not with its existence: the
// send and receive queues borrow their buffers (Config.Buffers) while they
// hold data; the transmit records, RACK's state and the pacing of a burst
// are borrowed while data is in flight and given back once it is all
// acknowledged; the segment being built and the ACK's rate sample live in a
// Scratch shared by the connections that never run at once. An idle
// established Conn is 736 bytes (TestConnSize keeps it so).
//
// The Conn is the TCB in the parts RFC 9293 section 3.3.1 names, each a
// type with its meaning in its doc comment: the send and receive sequence
// spaces (sendSpace, recvSpace), the options negotiated (options), the
// round-trip estimate and retransmission (rtxState), the timers as one set
// of deadlines (timerSet), congestion control and loss recovery
// (congestion), the ACK policy (ackState), the queues (sendQueue,
// recvQueue), receive-buffer autotuning (rcvTune) and statistics
// (connStats).
//
// Package tcptest drives one Conn as a trace, for unit tests that read
// like packet scripts: c.In("S 0:0(0) <mss 1460>"), c.Out("S. 0:0(0) ack 1"),
// c.Advance(d).
package tcp
