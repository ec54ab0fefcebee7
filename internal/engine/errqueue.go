package engine

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/tcp/seq"
)

// The error queue (Linux's sk_error_queue) is where a socket's
// out-of-band reports wait for recvmsg(MSG_ERRQUEUE): ICMP errors on a
// datagram socket with IP_RECVERR, MSG_ZEROCOPY completions, and transmit
// timestamps (SO_TIMESTAMPING). Each report is an ErrMsg: Linux's struct
// sock_extended_err, with what comes beside it (the ICMP sender, a
// software timestamp, the bytes looped back).
//
// The queue is made at its first use: a UDP socket points at it
// (udpSock.eq), a TCP socket finds it in Host.errQueues (Socket.hasEQ
// says it is there: a TCP socket, of which there may be millions, does
// not grow by a pointer for it). It has a mutex of its own, a leaf taken after any other lock: the ICMP
// path adds to it under ctl, the TCP path under the connection's shard
// lock, a reader under nothing else. Its size is bounded by the socket's
// receive buffer, as Linux charges an error skb to sk_rmem_alloc: a report
// that does not fit is dropped (errQueue.dropped counts them).

// Origins of an extended error (ee_origin), Linux's values.
const (
	SO_EE_ORIGIN_NONE         = 0
	SO_EE_ORIGIN_LOCAL        = 1
	SO_EE_ORIGIN_ICMP         = 2
	SO_EE_ORIGIN_ICMP6        = 3
	SO_EE_ORIGIN_TIMESTAMPING = 4
	SO_EE_ORIGIN_ZEROCOPY     = 5
)

// SO_EE_CODE_ZEROCOPY_COPIED is the ee_code of a zerocopy completion
// whose data was copied after all (always, here).
const SO_EE_CODE_ZEROCOPY_COPIED = 1

// Kinds of transmit timestamp (ee_info of an SO_EE_ORIGIN_TIMESTAMPING
// report), Linux's values.
const (
	SCM_TSTAMP_SND   = 0 // the segment left the stack
	SCM_TSTAMP_SCHED = 1 // the segment was handed to the output path
	SCM_TSTAMP_ACK   = 2 // the peer acknowledged it
)

// SO_TIMESTAMPING flags, Linux's values.
const (
	SOF_TIMESTAMPING_TX_SOFTWARE = 1 << 1
	SOF_TIMESTAMPING_RX_SOFTWARE = 1 << 3
	SOF_TIMESTAMPING_SOFTWARE    = 1 << 4
	SOF_TIMESTAMPING_OPT_ID      = 1 << 7
	SOF_TIMESTAMPING_TX_SCHED    = 1 << 8
	SOF_TIMESTAMPING_TX_ACK      = 1 << 9
	SOF_TIMESTAMPING_OPT_TSONLY  = 1 << 11
	SOF_TIMESTAMPING_OPT_STATS   = 1 << 12
	SOF_TIMESTAMPING_MASK        = 1<<17 - 1 // SOF_TIMESTAMPING_LAST*2-1 of Linux 6.x

	// sofTX are the flags that ask for transmit timestamps.
	sofTX = SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_TX_SCHED | SOF_TIMESTAMPING_TX_ACK
)

// SockExtendedErr is Linux's struct sock_extended_err.
type SockExtendedErr struct {
	Errno  uint32 // ee_errno: the error (ENOMSG for a timestamp, 0 for a zerocopy completion)
	Origin uint8  // ee_origin: SO_EE_ORIGIN_*
	Type   uint8  // ee_type: the ICMP type
	Code   uint8  // ee_code: the ICMP code, or SO_EE_CODE_ZEROCOPY_COPIED
	Info   uint32 // ee_info: the MTU of a "too big", SCM_TSTAMP_*, or a zerocopy range's first id
	Data   uint32 // ee_data: a timestamp's key, or a zerocopy range's last id
}

// ErrMsg is one report of the error queue.
type ErrMsg struct {
	Err SockExtendedErr
	// Offender is who sent the ICMP error (SO_EE_OFFENDER); invalid for
	// other reports.
	Offender netip.Addr
	// Name is the destination of the datagram an ICMP error is about
	// (recvmsg's msg_name); invalid for other reports.
	Name netip.AddrPort
	// Stamp is the software timestamp (SCM_TIMESTAMPING) of a transmit
	// timestamp report; zero for others.
	Stamp time.Time
	// Data are the bytes that come with the report: the payload of the
	// datagram an ICMP error quotes, or the data a timestamp is about
	// (without SOF_TIMESTAMPING_OPT_TSONLY).
	Data []byte
}

// errMsgCost is what a report costs beyond its bytes, against the
// receive buffer (an skb's truesize, as udpDatagramCost).
const errMsgCost = 256

// errQueue is a socket's error queue, and the state that makes its
// reports: the zerocopy ids and timestamp keys in flight.
type errQueue struct {
	mu      sync.Mutex
	msgs    []ErrMsg
	bytes   int
	dropped uint64 // reports the bound turned away
	// wakes counts the reports queued or merged into the last one: each
	// wakes the socket's pollers with POLLERR, as Linux's sk_error_report
	// (an edge-triggered epoll reports it again, read or not).
	wakes uint64

	// zcNext is the id the next MSG_ZEROCOPY send takes (sk_zckey);
	// zcWait are the sends in flight, oldest first.
	zcNext uint32
	zcWait []zcSend
	// tsBase is what OPT_ID keys count from (sk_tskey: SND.UNA when the
	// option was set); tsWait are the timestamps to come, oldest first.
	tsBase seq.Value
	tsWait []tsWant
}

// zcSend is a MSG_ZEROCOPY send in flight: its id, and the sequence
// number after its last byte (it completes once that is acknowledged).
type zcSend struct {
	id  uint32
	end seq.Value
}

// tsWant is a transmit timestamp to come: the sequence number of the
// write's last byte, which stamps are still owed, its key, and the data
// the report carries.
type tsWant struct {
	last   seq.Value
	flags  int // the SOF_TIMESTAMPING_TX_* still owed; SCHED and SOFTWARE go together
	key    uint32
	tsonly bool
	data   []byte
}

// Bounds of the tracking state: past them a send takes no id or stamp
// (never reached by a sane writer: each entry is one send call whose data
// is still in the send buffer).
const (
	maxZCWait   = 4096
	maxTSWait   = 4096
	tsDataLimit = 256 // bytes of a write looped back with its timestamp
)

// errq returns the socket's error queue, making it at the first use.
// Under the socket's locks (TCP: its connection's shard lock).
func (sk *Socket) errq() *errQueue {
	if u := sk.udp; u != nil {
		if q := u.eq.Load(); q != nil {
			return q
		}
		u.eq.CompareAndSwap(nil, &errQueue{})
		return u.eq.Load()
	}
	if q := sk.lookupEQ(); q != nil {
		return q
	}
	v, _ := sk.h.errQueues.LoadOrStore(sk, &errQueue{})
	sk.hasEQ = true
	return v.(*errQueue)
}

// lookupEQ returns the socket's error queue, or nil if it has none; for
// TCP under the connection's shard lock.
func (sk *Socket) lookupEQ() *errQueue {
	if u := sk.udp; u != nil {
		return u.eq.Load()
	}
	if !sk.hasEQ {
		return nil
	}
	return sk.findEQ()
}

// findEQ returns the socket's error queue, or nil, without a lock.
func (sk *Socket) findEQ() *errQueue {
	if u := sk.udp; u != nil {
		return u.eq.Load()
	}
	v, ok := sk.h.errQueues.Load(sk)
	if !ok {
		return nil
	}
	return v.(*errQueue)
}

// errQueueLen is the number of reports waiting; for TCP under the
// connection's shard lock.
func (sk *Socket) errQueueLen() int {
	q := sk.lookupEQ()
	if q == nil {
		return 0
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.msgs)
}

// rcvBufLimit is the bound of the socket's error queue: its receive
// buffer.
func (sk *Socket) rcvBufLimit() int {
	if u := sk.udp; u != nil {
		u.mu.Lock()
		defer u.mu.Unlock()
		return u.rcvBuf
	}
	if n := sk.opts.RcvBuf; n > 0 {
		return n
	}
	return max(sk.h.tcpDefaults.RcvBuf, 1<<16)
}

// pushLocked queues m, unless the queue is full (as Linux's
// sock_queue_err_skb, which fails once sk_rmem_alloc reaches
// sk_rcvbuf). Under q.mu.
func (q *errQueue) pushLocked(m ErrMsg, limit int) bool {
	cost := errMsgCost + len(m.Data)
	if q.bytes+cost > limit {
		q.dropped++
		return false
	}
	q.msgs = append(q.msgs, m)
	q.bytes += cost
	q.wakes++
	return true
}

// popLocked takes the oldest report; the queue is not empty. Under q.mu.
func (q *errQueue) popLocked() ErrMsg {
	m := q.msgs[0]
	q.msgs[0] = ErrMsg{}
	q.msgs = q.msgs[1:]
	if len(q.msgs) == 0 {
		q.msgs = nil
	}
	q.bytes -= errMsgCost + len(m.Data)
	return m
}

// zerocopyDoneLocked queues the completion of zerocopy ids lo..hi, merged
// into the last report if that one ends at lo-1, as Linux coalesces
// completions the user has not read yet. Under q.mu.
func (q *errQueue) zerocopyDoneLocked(lo, hi uint32, limit int) {
	if n := len(q.msgs); n > 0 {
		t := &q.msgs[n-1].Err
		if t.Origin == SO_EE_ORIGIN_ZEROCOPY && t.Data+1 == lo && hi-t.Info >= hi-lo {
			t.Data = hi
			q.wakes++
			return
		}
	}
	q.pushLocked(ErrMsg{Err: SockExtendedErr{Origin: SO_EE_ORIGIN_ZEROCOPY,
		Code: SO_EE_CODE_ZEROCOPY_COPIED, Info: lo, Data: hi}}, limit)
}

// ReadErrQueue takes the oldest report of the socket's error queue
// (recvmsg with MSG_ERRQUEUE); EAGAIN when there is none (the call never
// blocks, as Linux's). Taking a report leaves as the socket's pending
// error that of the next, if it is an ICMP error (Linux's
// sock_dequeue_err_skb), else none.
func (sk *Socket) ReadErrQueue() (ErrMsg, error) {
	if sk.usableNow() != nil {
		return ErrMsg{}, syscall.EBADF
	}
	q := sk.findEQ()
	if q == nil {
		return ErrMsg{}, syscall.EAGAIN
	}
	q.mu.Lock()
	if len(q.msgs) == 0 {
		q.mu.Unlock()
		return ErrMsg{}, syscall.EAGAIN
	}
	m := q.popLocked()
	var next syscall.Errno
	if len(q.msgs) > 0 {
		if o := q.msgs[0].Err.Origin; o == SO_EE_ORIGIN_ICMP || o == SO_EE_ORIGIN_ICMP6 || o == SO_EE_ORIGIN_LOCAL {
			next = syscall.Errno(q.msgs[0].Err.Errno)
		}
	}
	q.mu.Unlock()
	if u := sk.udp; u != nil && (m.Err.Origin == SO_EE_ORIGIN_ICMP || m.Err.Origin == SO_EE_ORIGIN_ICMP6) {
		u.mu.Lock()
		u.err = next
		u.mu.Unlock()
	}
	return m, nil
}

// ErrQueueWakes counts the reports queued on the socket's error queue or
// merged into its last one since it was made: each is a wake-up with
// POLLERR, which an edge-triggered poller sees even while the queue was
// not empty (Linux's sk_error_report).
func (sk *Socket) ErrQueueWakes() uint64 {
	q := sk.findEQ()
	if q == nil {
		return 0
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.wakes
}

// usableNow returns EBADF once the socket or the host is closed, read
// without a lock (a hint: the calls that follow check again).
func (sk *Socket) usableNow() error {
	if isDone(sk.h.done) {
		return syscall.EBADF
	}
	return nil
}

// SendFlags are what a send call asks beyond its bytes.
type SendFlags struct {
	NonBlock bool
	More     bool // MSG_MORE: more data follows, hold a partial segment
	EOR      bool // MSG_EOR: no later data joins this write's last segment
	ZeroCopy bool // MSG_ZEROCOPY (with SO_ZEROCOPY): a completion on the error queue
	OOB      bool // MSG_OOB: the last byte is urgent (tcp/urgent.go)
	// Breaks are offsets in the data, ascending, where Linux would end a
	// send buffer and mark it for push because a MSG_ZEROCOPY send's
	// pinned pages filled its fragment slots (zcFragBreaks in the socket
	// layer): no segment crosses one.
	Breaks []int
}

// noteSendLocked records what a TCP send of data at [start, end) owes the
// error queue: a zerocopy id, transmit timestamps for its last byte (p is
// what the call has written so far). more says the call wrote before:
// then the id and the stamps it took move to the new end. It runs under
// the connection's shard lock, between the write and afterLocked.
func (sk *Socket) noteSendLocked(start, end seq.Value, p []byte, f SendFlags, more bool) {
	o := sk.opts
	zc := f.ZeroCopy && o.ZeroCopy
	ts := o.Timestamping&sofTX != 0
	if (!zc && !ts) || start == end {
		return
	}
	q := sk.errq()
	q.mu.Lock()
	defer q.mu.Unlock()
	if zc {
		q.zeroCopySendLocked(end, more)
	}
	if ts && more && len(q.tsWait) > 0 {
		q.tsWait = q.tsWait[:len(q.tsWait)-1]
	}
	if ts && len(q.tsWait) < maxTSWait {
		w := tsWant{last: end - 1, flags: o.Timestamping & sofTX,
			tsonly: o.Timestamping&SOF_TIMESTAMPING_OPT_TSONLY != 0}
		if o.Timestamping&SOF_TIMESTAMPING_OPT_ID != 0 {
			w.key = uint32(w.last.Sub(q.tsBase))
		}
		if !w.tsonly {
			w.data = append([]byte(nil), p[max(0, len(p)-tsDataLimit):]...)
		}
		q.tsWait = append(q.tsWait, w)
	}
}

// zeroCopySendLocked gives a MSG_ZEROCOPY send whose data ends at end
// the next id (Linux's sk_zckey), or, more, moves the end of the last
// send's id there: the call wrote before. Under q.mu.
func (q *errQueue) zeroCopySendLocked(end seq.Value, more bool) {
	if more && len(q.zcWait) > 0 {
		q.zcWait[len(q.zcWait)-1].end = end
	} else if len(q.zcWait) < maxZCWait {
		q.zcWait = append(q.zcWait, zcSend{id: q.zcNext, end: end})
		q.zcNext++
	}
}

// noteZeroCopyLocked is noteSendLocked for the zerocopy id alone: a
// MSG_FASTOPEN|MSG_ZEROCOPY send whose data (some of it in the SYN) now
// ends at end. Under the connection's shard lock.
func (sk *Socket) noteZeroCopyLocked(end seq.Value, f SendFlags, more bool) {
	if !f.ZeroCopy || !sk.opts.ZeroCopy {
		return
	}
	q := sk.errq()
	q.mu.Lock()
	q.zeroCopySendLocked(end, more)
	q.mu.Unlock()
}

// txProgressLocked turns what the connection has sent and had
// acknowledged into reports: transmit timestamps (SCHED and SND when the
// segment holding a write's last byte first leaves, ACK when it is
// acknowledged) and zerocopy completions (when a send's data is all
// acknowledged, or the connection is gone). Under the connection's shard
// lock (afterLocked).
func (sk *Socket) txProgressLocked(c *tcp.Conn) {
	q := sk.lookupEQ()
	if q == nil {
		return
	}
	una, sent := c.SendProgress()
	gone := c.State() == tcp.Closed
	limit := sk.rcvBufLimit()
	now := sk.h.clock.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	changed := false
	kept := q.tsWait[:0]
	for i := range q.tsWait {
		w := q.tsWait[i]
		if w.flags&(SOF_TIMESTAMPING_TX_SCHED|SOF_TIMESTAMPING_TX_SOFTWARE) != 0 && w.last.LessThan(sent) {
			if w.flags&SOF_TIMESTAMPING_TX_SCHED != 0 {
				changed = q.stampLocked(&w, SCM_TSTAMP_SCHED, now, limit) || changed
			}
			if w.flags&SOF_TIMESTAMPING_TX_SOFTWARE != 0 {
				changed = q.stampLocked(&w, SCM_TSTAMP_SND, now, limit) || changed
			}
			w.flags &^= SOF_TIMESTAMPING_TX_SCHED | SOF_TIMESTAMPING_TX_SOFTWARE
		}
		if w.flags&SOF_TIMESTAMPING_TX_ACK != 0 && w.last.LessThan(una) {
			changed = q.stampLocked(&w, SCM_TSTAMP_ACK, now, limit) || changed
			w.flags &^= SOF_TIMESTAMPING_TX_ACK
		}
		if w.flags != 0 && !gone {
			kept = append(kept, w)
		}
	}
	clear(q.tsWait[len(kept):])
	q.tsWait = kept
	n := 0
	for n < len(q.zcWait) && (gone || q.zcWait[n].end.LessThanEq(una)) {
		n++
	}
	if n > 0 {
		// Consecutive ids complete as one range.
		lo := q.zcWait[0].id
		q.zerocopyDoneLocked(lo, q.zcWait[n-1].id, limit)
		q.zcWait = q.zcWait[n:]
		changed = true
	}
	if changed {
		sk.wake()
	}
}

// stampLocked queues a transmit timestamp of kind for w. Under q.mu.
func (q *errQueue) stampLocked(w *tsWant, kind uint32, now time.Time, limit int) bool {
	return q.pushLocked(ErrMsg{Err: SockExtendedErr{Errno: uint32(syscall.ENOMSG),
		Origin: SO_EE_ORIGIN_TIMESTAMPING, Info: kind, Data: w.key},
		Stamp: now, Data: w.data}, limit)
}

// setTSBaseLocked starts OPT_ID keys from the connection's SND.UNA (or,
// fromWrite, the end of what was written), as Linux does when the option
// is turned on. Under the socket's locks.
func (sk *Socket) setTSBaseLocked(fromWrite bool) {
	q := sk.errq()
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case sk.ep == nil:
		q.tsBase = 0
	case fromWrite:
		q.tsBase = sk.ep.conn.WriteEnd()
	default:
		q.tsBase, _ = sk.ep.conn.SendProgress()
	}
}

// stampDatagram queues the transmit timestamps SO_TIMESTAMPING asks of a
// datagram just sent: SCHED and SND at once (TX_ACK means nothing
// without acknowledgements), keyed with OPT_ID by a count of the
// datagrams sent since the option was set, as Linux's UDP, with the
// datagram's bytes unless OPT_TSONLY. Under no lock of the socket's.
func (sk *Socket) stampDatagram(p []byte) {
	var l locks
	defer sk.h.releaseCtl(&l)
	if err := sk.lock(ctlOnly, &l); err != nil {
		return
	}
	flags := sk.opts.Timestamping
	q := sk.errq()
	limit := sk.rcvBufLimit()
	now := sk.h.clock.Now()
	q.mu.Lock()
	w := tsWant{flags: flags}
	if flags&SOF_TIMESTAMPING_OPT_ID != 0 {
		w.key = uint32(q.tsBase)
		q.tsBase++
	}
	if flags&SOF_TIMESTAMPING_OPT_TSONLY == 0 {
		w.data = append([]byte(nil), p[max(0, len(p)-tsDataLimit):]...)
	}
	if flags&SOF_TIMESTAMPING_TX_SCHED != 0 {
		q.stampLocked(&w, SCM_TSTAMP_SCHED, now, limit)
	}
	if flags&SOF_TIMESTAMPING_TX_SOFTWARE != 0 {
		q.stampLocked(&w, SCM_TSTAMP_SND, now, limit)
	}
	q.mu.Unlock()
	u := sk.udp
	u.mu.Lock()
	sk.wake()
	u.mu.Unlock()
}

// ZeroCopySent reports a datagram sent with MSG_ZEROCOPY (on a socket with
// SO_ZEROCOPY): its completion goes on the error queue at once, the data
// having been copied (Linux's UDP completes when the packet leaves).
func (sk *Socket) ZeroCopySent() {
	var l locks
	defer sk.h.releaseCtl(&l)
	if err := sk.lock(ctlOnly, &l); err != nil || !sk.opts.ZeroCopy {
		return
	}
	q := sk.errq()
	limit := sk.rcvBufLimit()
	q.mu.Lock()
	id := q.zcNext
	q.zcNext++
	q.zerocopyDoneLocked(id, id, limit)
	q.mu.Unlock()
	if u := sk.udp; u != nil {
		u.mu.Lock()
		sk.wake()
		u.mu.Unlock()
	}
}

// queueICMPError puts an ICMP error about a datagram the socket sent to
// name on its error queue (IP_RECVERR). Under u.mu or none.
func (sk *Socket) queueICMPError(m ErrMsg) {
	q := sk.errq()
	limit := sk.rcvBufLimit()
	q.mu.Lock()
	q.pushLocked(m, limit)
	q.mu.Unlock()
}

// errQueueHolder is the part of Socket the error queue needs: a pointer,
// made at the first use.
type errQueueHolder = atomic.Pointer[errQueue]
