package synstack

import (
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/synstack/synstack/internal/engine"
)

// Msghdr is a message of Sendmsg and Recvmsg, Linux's struct msghdr in Go
// terms: the address, the buffers (iovecs) and the control messages.
type Msghdr struct {
	// Name is, for Sendmsg on a UDP socket, the destination (the zero
	// AddrPort: the connected peer; ignored on TCP, as Linux ignores it).
	// Recvmsg sets it to a datagram's source, or, reading the error
	// queue, to the destination of the datagram an ICMP error is about.
	Name netip.AddrPort
	// Iov are the buffers, filled (Recvmsg) or sent (Sendmsg) in order.
	// At most UIO_MAXIOV (1024), else EMSGSIZE.
	Iov [][]byte
	// Control are the control messages: those Recvmsg reports (it
	// replaces the slice). Sendmsg takes none (EINVAL for any): the
	// stack has no per-call option a control message would set.
	Control []ControlMessage
	// Flags is set by Recvmsg: MSG_TRUNC (a datagram, or an error-queue
	// report, did not fit), MSG_ERRQUEUE (the message came from the error
	// queue).
	Flags int
}

// UIO_MAXIOV is the most buffers a message may have (Linux's).
const UIO_MAXIOV = 1024

// Message flags of Sendmsg and Recvmsg beyond Send's and Recv's, Linux's
// values.
const (
	MSG_OOB      = 0x1       // urgent data (TCP): send marks the last byte urgent; recv reads the urgent byte (see Recv)
	MSG_EOR      = 0x80      // send: the data ends a record; no segment joins it with later data
	MSG_CTRUNC   = 0x8       // recvmsg flags: control messages did not fit (never set here)
	MSG_ERRQUEUE = 0x2000    // recv: read the error queue
	MSG_MORE     = 0x8000    // send: more follows; hold a partial segment (as TCP_CORK) until a send without it
	MSG_ZEROCOPY = 0x4000000 // send (with SO_ZEROCOPY): report completion on the error queue
	msgSendKnown = MSG_DONTWAIT | MSG_NOSIGNAL | MSG_EOR | MSG_MORE | MSG_ZEROCOPY
)

// Control message levels and types, Linux's values.
const (
	SOL_IP           = 0  // level of IPv4 control messages
	SOL_IPV6         = 41 // level of IPv6 control messages
	SCM_TIMESTAMPING = 37 // SOL_SOCKET: software timestamps (SO_TIMESTAMPING)
	TCP_CM_INQ       = 36 // IPPROTO_TCP: bytes left to read (TCP_INQ)
)

// ControlMessage is a control message Recvmsg reports: one Go type per
// message the stack makes (SockExtendedErr in an ExtendedErr,
// Timestamping, TCPInq).
type ControlMessage interface {
	// CmsgLevel and CmsgType are the message's cmsg_level and cmsg_type.
	CmsgLevel() int
	CmsgType() int
}

// SockExtendedErr is Linux's struct sock_extended_err: a report of the
// error queue (see ExtendedErr).
type SockExtendedErr = engine.SockExtendedErr

// Origins of an extended error (SockExtendedErr.Origin), and the codes and
// kinds its other fields take, Linux's values.
const (
	SO_EE_ORIGIN_NONE            = engine.SO_EE_ORIGIN_NONE
	SO_EE_ORIGIN_LOCAL           = engine.SO_EE_ORIGIN_LOCAL
	SO_EE_ORIGIN_ICMP            = engine.SO_EE_ORIGIN_ICMP
	SO_EE_ORIGIN_ICMP6           = engine.SO_EE_ORIGIN_ICMP6
	SO_EE_ORIGIN_TIMESTAMPING    = engine.SO_EE_ORIGIN_TIMESTAMPING
	SO_EE_ORIGIN_ZEROCOPY        = engine.SO_EE_ORIGIN_ZEROCOPY
	SO_EE_CODE_ZEROCOPY_COPIED   = engine.SO_EE_CODE_ZEROCOPY_COPIED
	SCM_TSTAMP_SND               = engine.SCM_TSTAMP_SND
	SCM_TSTAMP_SCHED             = engine.SCM_TSTAMP_SCHED
	SCM_TSTAMP_ACK               = engine.SCM_TSTAMP_ACK
	SOF_TIMESTAMPING_TX_SOFTWARE = engine.SOF_TIMESTAMPING_TX_SOFTWARE
	SOF_TIMESTAMPING_RX_SOFTWARE = engine.SOF_TIMESTAMPING_RX_SOFTWARE
	SOF_TIMESTAMPING_SOFTWARE    = engine.SOF_TIMESTAMPING_SOFTWARE
	SOF_TIMESTAMPING_OPT_ID      = engine.SOF_TIMESTAMPING_OPT_ID
	SOF_TIMESTAMPING_TX_SCHED    = engine.SOF_TIMESTAMPING_TX_SCHED
	SOF_TIMESTAMPING_TX_ACK      = engine.SOF_TIMESTAMPING_TX_ACK
	SOF_TIMESTAMPING_OPT_TSONLY  = engine.SOF_TIMESTAMPING_OPT_TSONLY
	SOF_TIMESTAMPING_OPT_STATS   = engine.SOF_TIMESTAMPING_OPT_STATS
	SOF_TIMESTAMPING_OPT_ID_TCP  = 1 << 15
)

// ExtendedErr is the IP_RECVERR (IPV6_RECVERR on an AF_INET6 socket)
// control message of an error-queue report: the extended error and, for
// an ICMP error, who sent it (SO_EE_OFFENDER).
type ExtendedErr struct {
	SockExtendedErr
	Offender netip.Addr
	v6       bool
}

// CmsgLevel is SOL_IP, or SOL_IPV6 on an AF_INET6 socket.
func (e *ExtendedErr) CmsgLevel() int { return pick(e.v6, SOL_IPV6, SOL_IP) }

// CmsgType is IP_RECVERR, or IPV6_RECVERR on an AF_INET6 socket.
func (e *ExtendedErr) CmsgType() int { return pick(e.v6, IPV6_RECVERR, IP_RECVERR) }

// Timestamping is the SCM_TIMESTAMPING control message: the software
// timestamp (struct scm_timestamping's first entry; the stack has no
// hardware ones), on the stack's clock.
type Timestamping struct {
	Software time.Time
}

// CmsgLevel is SOL_SOCKET.
func (*Timestamping) CmsgLevel() int { return SOL_SOCKET }

// CmsgType is SCM_TIMESTAMPING.
func (*Timestamping) CmsgType() int { return SCM_TIMESTAMPING }

// TCPInq is the TCP_CM_INQ control message (with TCP_INQ): the bytes left
// to read after the call, plus one once the peer's FIN has come.
type TCPInq struct {
	Bytes int
}

// CmsgLevel is IPPROTO_TCP.
func (*TCPInq) CmsgLevel() int { return IPPROTO_TCP }

// CmsgType is TCP_CM_INQ.
func (*TCPInq) CmsgType() int { return TCP_CM_INQ }

// iovLen checks a message's buffers and returns their total length.
func iovLen(iov [][]byte) (int, error) {
	if len(iov) > UIO_MAXIOV {
		return 0, syscall.EMSGSIZE
	}
	n := 0
	for _, b := range iov {
		n += len(b)
	}
	return n, nil
}

// onlyBuffer returns the one non-empty buffer of iov (nil if none), and
// whether there is at most one: then a call can use it in place.
func onlyBuffer(iov [][]byte) ([]byte, bool) {
	var only []byte
	for _, b := range iov {
		if len(b) > 0 {
			if only != nil {
				return nil, false
			}
			only = b
		}
	}
	return only, true
}

// gather returns the buffers as one: the only non-empty one itself, or a
// copy of them all.
func gather(iov [][]byte, total int) []byte {
	if only, ok := onlyBuffer(iov); ok {
		return only
	}
	p := make([]byte, 0, total)
	for _, b := range iov {
		p = append(p, b...)
	}
	return p
}

// scatter copies p into the buffers, in order.
func scatter(iov [][]byte, p []byte) {
	for _, b := range iov {
		if len(p) == 0 {
			return
		}
		p = p[copy(b, p):]
	}
}

// Sendmsg sends the message's buffers as one send: on TCP as Send (Name
// ignored), on UDP as one datagram to Name (Sendto). Flags beyond Send's:
// MSG_MORE (TCP: a partial segment waits for more, as under TCP_CORK,
// until a send without the flag, an ACK that lets it go, or one
// retransmission timeout), MSG_EOR (TCP: no segment joins this data with
// what a later send writes), MSG_ZEROCOPY (with SO_ZEROCOPY: a completion
// report on the error queue once the data is acknowledged, or for UDP
// sent; the data is copied all the same). Errors as Linux: EMSGSIZE for
// more than UIO_MAXIOV buffers, EOPNOTSUPP for MSG_OOB on UDP (on TCP it
// marks the last byte urgent, as Send), EINVAL for
// control messages, EFAULT for a nil m; buffers of total length 0 send
// nothing on TCP and return 0 (an empty datagram on UDP).
func (t *Sockets) Sendmsg(fd int, m *Msghdr, flags int) (int, error) {
	sk, nonblock, err := t.get(fd)
	if err != nil {
		return 0, err
	}
	if m == nil {
		return 0, syscall.EFAULT // as Linux for a NULL msghdr
	}
	total, err := iovLen(m.Iov)
	switch {
	case err != nil:
		return 0, err
	case flags&MSG_OOB != 0 && sk.UDP():
		return 0, syscall.EOPNOTSUPP
	case len(m.Control) > 0:
		return 0, syscall.EINVAL
	}
	p := gather(m.Iov, total)
	if sk.UDP() {
		n, err := sk.SendTo(p, m.Name)
		if err == nil && flags&MSG_ZEROCOPY != 0 {
			sk.ZeroCopySent()
		}
		return n, err
	}
	if flags&MSG_FASTOPEN != 0 {
		// As sendto: the data goes in the SYN to m.Name (Fast Open).
		return sk.SendFastOpen(p, m.Name, sendFlags(nonblock, flags), nil)
	}
	f := sendFlags(nonblock, flags)
	if f.ZeroCopy && len(m.Iov) > maxSkbFrags {
		if zc, err := engine.GetOption(sk, func(c optCtx) bool { return c.O.ZeroCopy }); err == nil && zc {
			f.Breaks = zcFragBreaks(m.Iov)
		}
	}
	if total == 0 {
		// As Linux, an empty send still fails on a socket that cannot
		// send; otherwise it returns 0 and sends nothing.
		_, err := sk.SendMsg(nil, f, nil)
		return 0, err
	}
	return sk.SendMsg(p, f, nil)
}

// Recvmsg receives into the message's buffers, as Recvfrom, and reports
// in m what comes beside the bytes: Name (a datagram's source), Flags
// (MSG_TRUNC when a datagram did not fit) and Control (TCPInq with
// TCP_INQ on; Timestamping on a UDP socket with SO_TIMESTAMPING's
// SOF_TIMESTAMPING_RX_SOFTWARE|SOF_TIMESTAMPING_SOFTWARE). With
// MSG_ERRQUEUE it reads the error queue instead: one report, never
// waiting (EAGAIN when there is none), its bytes in the buffers, Name the
// destination an ICMP error is about, Control a Timestamping (for a
// timestamp report, with SOF_TIMESTAMPING_SOFTWARE) and the ExtendedErr,
// Flags MSG_ERRQUEUE (and MSG_TRUNC if the bytes did not fit). MSG_OOB
// reads the urgent byte into the first buffer, as Recv (Flags MSG_OOB);
// EMSGSIZE for more than
// UIO_MAXIOV buffers, EFAULT for a nil m.
func (t *Sockets) Recvmsg(fd int, m *Msghdr, flags int) (int, error) {
	sk, nonblock, err := t.get(fd)
	if err != nil {
		return 0, err
	}
	if m == nil {
		return 0, syscall.EFAULT
	}
	total, err := iovLen(m.Iov)
	switch {
	case err != nil:
		return 0, err
	case flags&MSG_OOB != 0:
		n, err := recvUrgent(sk, gatherTarget(m.Iov), flags)
		if err == nil {
			m.Control, m.Flags, m.Name = m.Control[:0], MSG_OOB, netip.AddrPort{}
		}
		return n, err
	}
	m.Control, m.Flags, m.Name = m.Control[:0], 0, netip.AddrPort{}
	if flags&MSG_ERRQUEUE != 0 {
		return t.recvErrQueue(sk, m, total)
	}
	p, direct := recvBuf(m.Iov, total)
	nonblock = nonblock || flags&MSG_DONTWAIT != 0
	ri, err := sk.RecvMsg(p, flags&MSG_PEEK != 0, nonblock, nil)
	if err != nil {
		return 0, err
	}
	if !direct {
		scatter(m.Iov, p[:ri.N])
	}
	n := ri.N
	if sk.UDP() {
		m.Name = ri.From
		if ri.Full > ri.N {
			m.Flags |= MSG_TRUNC
		}
		if flags&MSG_TRUNC != 0 {
			n = ri.Full
		}
	}
	if !ri.Stamp.IsZero() {
		m.Control = append(m.Control, &Timestamping{Software: ri.Stamp})
	}
	if ri.HasInq {
		m.Control = append(m.Control, &TCPInq{Bytes: ri.Inq})
	}
	return n, nil
}

// recvBuf returns the buffer a receive fills: the only non-empty one of
// the message itself (direct), or a new one to scatter from.
func recvBuf(iov [][]byte, total int) (p []byte, direct bool) {
	if only, ok := onlyBuffer(iov); ok {
		return only, true
	}
	return make([]byte, total), false
}

// ErrQueueWakes counts the reports queued on fd's error queue, or merged
// into the last one (MSG_ZEROCOPY completions), since the socket was
// made. Each wakes the socket's pollers with POLLERR, as Linux's
// sk_error_report: an edge-triggered poller (epoll's EPOLLET) reports
// POLLERR again when the count moves, even if the queue was not empty.
func (t *Sockets) ErrQueueWakes(fd int) (uint64, error) {
	sk, _, err := t.get(fd)
	if err != nil {
		return 0, err
	}
	return sk.ErrQueueWakes(), nil
}

// recvErrQueue is Recvmsg with MSG_ERRQUEUE.
func (t *Sockets) recvErrQueue(sk *engine.Socket, m *Msghdr, total int) (int, error) {
	e, err := sk.ReadErrQueue()
	if err != nil {
		return 0, err
	}
	p := make([]byte, min(total, len(e.Data)))
	n := copy(p, e.Data)
	scatter(m.Iov, p)
	m.Flags = MSG_ERRQUEUE
	if len(e.Data) > total {
		m.Flags |= MSG_TRUNC
	}
	m.Name = e.Name
	if !e.Stamp.IsZero() {
		tsf, err := engine.GetOption(sk, func(c optCtx) int { return c.O.Timestamping })
		if err == nil && tsf&SOF_TIMESTAMPING_SOFTWARE != 0 {
			m.Control = append(m.Control, &Timestamping{Software: e.Stamp})
		}
	}
	m.Control = append(m.Control, &ExtendedErr{SockExtendedErr: e.Err, Offender: e.Offender,
		v6: sk.Family() == AF_INET6})
	return n, nil
}

// setTimestamping sets SO_TIMESTAMPING: EINVAL for flags Linux does not
// know, and for OPT_ID turned on on a TCP socket that is closed or
// listening (its keys count from the connection's sequence numbers).
func setTimestamping(c optCtx, v optValue) error {
	if v.n&^engine.SOF_TIMESTAMPING_MASK != 0 || v.n < 0 {
		return syscall.EINVAL
	}
	newID := v.n&SOF_TIMESTAMPING_OPT_ID != 0 && c.O.Timestamping&SOF_TIMESTAMPING_OPT_ID == 0
	if newID && !c.UDP {
		if c.Conn == nil || c.Listening {
			return syscall.EINVAL
		}
		c.StartTSKeys(v.n&SOF_TIMESTAMPING_OPT_ID_TCP != 0)
	} else if newID {
		c.StartTSKeys(false)
	}
	c.O.Timestamping = v.n
	return nil
}

// sendFlags are a TCP send's flags as the engine takes them.
// maxSkbFrags is Linux's MAX_SKB_FRAGS (its default, 17): the page
// fragments one send buffer holds.
const maxSkbFrags = 17

// fragPage is the page size zcFragBreaks counts fragments in.
const fragPage = 4096

// zcFragBreaks returns where Linux ends a send buffer of a MSG_ZEROCOPY
// sendmsg for lack of fragment slots: it pins the pages of each buffer of
// the iovec, each a fragment of its own, and once a send buffer holds
// maxSkbFrags it marks it for push and starts another. Each buffer is
// counted as starting on a page (a buffer of up to 4096 bytes is one
// fragment); Linux counts the pages it really spans.
func zcFragBreaks(iov [][]byte) []int {
	var breaks []int
	off, frags := 0, 0
	for _, b := range iov {
		for rest := len(b); rest > 0; {
			if frags == maxSkbFrags {
				breaks = append(breaks, off)
				frags = 0
			}
			k := min(rest, fragPage)
			frags++
			off += k
			rest -= k
		}
	}
	return breaks
}

func sendFlags(nonblock bool, flags int) engine.SendFlags {
	return engine.SendFlags{
		NonBlock: nonblock || flags&MSG_DONTWAIT != 0,
		More:     flags&MSG_MORE != 0,
		EOR:      flags&MSG_EOR != 0,
		ZeroCopy: flags&MSG_ZEROCOPY != 0,
		OOB:      flags&MSG_OOB != 0,
	}
}

// ReadErrQueue takes the oldest report of the socket's error queue
// (recvmsg with MSG_ERRQUEUE) in Go terms: the bytes that come with it in
// b (the payload of the datagram an ICMP error quotes), the extended
// error, and the destination that datagram went to. The queue fills with
// IP_RECVERR (IPV6_RECVERR) or SO_ZEROCOPY set through Control. It never
// waits: with nothing queued the error wraps EAGAIN. ReadMsgUDPAddrPort
// reports no control messages (Linux's byte layout of them is no Go
// user's); this is where the error queue meets a UDPConn, and
// Sockets.Recvmsg gives every control message as a Go value.
func (c *UDPConn) ReadErrQueue(b []byte) (n int, e ExtendedErr, dst netip.AddrPort, err error) {
	if c.closed.Load() {
		return 0, e, dst, c.opErr("read", net.ErrClosed, dst)
	}
	m, err := c.sk.ReadErrQueue()
	if err != nil {
		return 0, e, dst, c.opErr("read", err, dst)
	}
	e = ExtendedErr{SockExtendedErr: m.Err, Offender: m.Offender, v6: c.sk.Family() == AF_INET6}
	return copy(b, m.Data), e, m.Name, nil
}
