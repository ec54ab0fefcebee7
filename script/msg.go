package script

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"time"

	synstack "github.com/synstack/synstack"
)

// sendmsg and recvmsg, with packetdrill's struct syntax for the msghdr:
//
//	sendmsg(FD, {msg_name(...)=..., msg_iov(N)=[{..., LEN}, ...], msg_flags=0}, FLAGS)
//	recvmsg(FD, {msg_name(...)=..., msg_iov(1)=[{..., LEN}], msg_flags=EXPECTED,
//	             msg_control=[{cmsg_level=L, cmsg_type=T, cmsg_data=D}, ...]}, FLAGS)
//
// In a recvmsg the msg_flags and msg_control written are what the call
// must report: the flags as they are, each control message by level, type
// and the data fields written (an int, {scm_sec=, scm_nsec=} for a
// timestamp on the script's clock, {ee_errno=, ee_origin=...} for an
// extended error).

// msgSockets are the message calls of the stack's socket layer.
type msgSockets interface {
	Recvmsg(fd int, m *synstack.Msghdr, flags int) (int, error)
	Sendmsg(fd int, m *synstack.Msghdr, flags int) (int, error)
}

// msgSymbols are the constants of the message calls, Linux's values.
var msgSymbols = map[string]int64{
	"MSG_CTRUNC": 0x8, "MSG_ERRQUEUE": 0x2000, "MSG_ZEROCOPY": 0x4000000,
	"SO_TIMESTAMPING": 37, "SCM_TIMESTAMPING": 37, "SO_ZEROCOPY": 60,
	"TCP_INQ": 36, "TCP_CM_INQ": 36, "IP_RECVERR": 11, "IPV6_RECVERR": 25,
	"SOL_IP": 0, "SOL_IPV6": 41,
	"SOF_TIMESTAMPING_TX_HARDWARE": 1 << 0, "SOF_TIMESTAMPING_TX_SOFTWARE": 1 << 1,
	"SOF_TIMESTAMPING_RX_HARDWARE": 1 << 2, "SOF_TIMESTAMPING_RX_SOFTWARE": 1 << 3,
	"SOF_TIMESTAMPING_SOFTWARE": 1 << 4, "SOF_TIMESTAMPING_SYS_HARDWARE": 1 << 5,
	"SOF_TIMESTAMPING_RAW_HARDWARE": 1 << 6, "SOF_TIMESTAMPING_OPT_ID": 1 << 7,
	"SOF_TIMESTAMPING_TX_SCHED": 1 << 8, "SOF_TIMESTAMPING_TX_ACK": 1 << 9,
	"SOF_TIMESTAMPING_OPT_CMSG": 1 << 10, "SOF_TIMESTAMPING_OPT_TSONLY": 1 << 11,
	"SOF_TIMESTAMPING_OPT_STATS": 1 << 12, "SOF_TIMESTAMPING_OPT_ID_TCP": 1 << 15,
	"SO_EE_ORIGIN_NONE": 0, "SO_EE_ORIGIN_LOCAL": 1, "SO_EE_ORIGIN_ICMP": 2,
	"SO_EE_ORIGIN_ICMP6": 3, "SO_EE_ORIGIN_TIMESTAMPING": 4, "SO_EE_ORIGIN_TXSTATUS": 4,
	"SO_EE_ORIGIN_ZEROCOPY": 5, "SO_EE_CODE_ZEROCOPY_COPIED": 1,
	"SCM_TSTAMP_SND": 0, "SCM_TSTAMP_SCHED": 1, "SCM_TSTAMP_ACK": 2,
}

// msgInt evaluates an integer of a message: the message symbols, the
// control message level and type that follow the script's family
// (CMSG_LEVEL_IP, CMSG_TYPE_RECVERR), else as evalInt.
func (r *runner) msgInt(x *expr) (int64, error) {
	if x.kind == exWord {
		v6 := r.domain == linuxAFInet6
		switch {
		case x.word == "CMSG_LEVEL_IP" && v6:
			return msgSymbols["SOL_IPV6"], nil
		case x.word == "CMSG_LEVEL_IP":
			return msgSymbols["SOL_IP"], nil
		case x.word == "CMSG_TYPE_RECVERR" && v6:
			return msgSymbols["IPV6_RECVERR"], nil
		case x.word == "CMSG_TYPE_RECVERR":
			return msgSymbols["IP_RECVERR"], nil
		}
		if v, ok := msgSymbols[x.word]; ok {
			return v, nil
		}
	}
	if x.kind == exOr {
		a, err := r.msgInt(x.args[0])
		if err != nil {
			return 0, err
		}
		b, err := r.msgInt(x.args[1])
		return a | b, err
	}
	if x.kind == exList && len(x.args) == 1 {
		return r.msgInt(x.args[0])
	}
	return r.evalInt(x)
}

// msghdr is a msghdr argument: its buffers' lengths (and contents, for a
// sendmsg of strings), and the flags and control messages written.
type msghdr struct {
	iov     [][]byte
	flags   *expr // msg_flags, nil if not written
	control *expr // msg_control's list, nil if not written
}

// parseMsghdr reads a {msg_name..., msg_iov..., msg_flags..., msg_control...} argument.
func (r *runner) parseMsghdr(x *expr) (*msghdr, error) {
	if x.kind != exStruct {
		return nil, fmt.Errorf("expected a msghdr {msg_iov(N)=[...], ...}, got %s", describeExpr(x))
	}
	m := &msghdr{}
	for _, f := range x.args {
		if f.kind != exAssign {
			return nil, fmt.Errorf("bad msghdr field %s", describeExpr(f))
		}
		v := f.args[0]
		switch f.word {
		case "msg_name", "msg_namelen":
			// The default address, as packetdrill's "...".
		case "msg_iov":
			if v.kind != exList {
				return nil, fmt.Errorf("msg_iov: expected a list, got %s", describeExpr(v))
			}
			total := int64(0)
			for _, b := range v.args {
				if b.kind != exStruct || len(b.args) != 2 {
					return nil, fmt.Errorf("msg_iov: expected {..., LEN}, got %s", describeExpr(b))
				}
				n, err := r.msgInt(b.args[1])
				if err != nil {
					return nil, err
				}
				if total += n; n < 0 || total > 1<<26 {
					return nil, fmt.Errorf("msg_iov: bad length %d", n)
				}
				buf := make([]byte, n)
				if b.args[0].kind == exString {
					copy(buf, b.args[0].word)
				}
				m.iov = append(m.iov, buf)
			}
		case "msg_flags":
			m.flags = v
		case "msg_control", "msg_controllen":
			if f.word == "msg_control" {
				if v.kind != exList && v.kind != exEllipsis {
					return nil, fmt.Errorf("msg_control: expected a list, got %s", describeExpr(v))
				}
				m.control = v
			}
		default:
			return nil, fmt.Errorf("unknown msghdr field %s", f.word)
		}
	}
	return m, nil
}

// callSendmsg is sendmsg(FD, MSGHDR, FLAGS): the buffers are sent as one
// write (a blocking one waits for room, as write).
func (r *runner) callSendmsg(c *callArgs) (*callOp, error) {
	m, err := r.parseMsghdr(c.a[1])
	if err != nil {
		return r.bad(c, err)
	}
	if m.control != nil && m.control.kind == exList && len(m.control.args) > 0 {
		return nil, r.unsupported(c.e.line, "sendmsg with control messages")
	}
	flags, err := r.msgInt(c.a[2])
	if err != nil {
		return r.bad(c, err)
	}
	var buf []byte
	for _, b := range m.iov {
		buf = append(buf, b...)
	}
	if buf == nil {
		buf = []byte{}
	}
	if flags&symbols["MSG_FASTOPEN"] != 0 {
		// As sendto(MSG_FASTOPEN), to the script's remote address.
		return r.fastOpenSender(c.fd, buf, flags, netip.AddrPortFrom(r.connectAddr, r.connectPort)), nil
	}
	ms, ok := r.st.(msgSockets)
	if !ok || len(m.iov) < 2 {
		return &callOp{try: r.sender(c.fd, buf, flags)}, nil
	}
	// The buffers as the script gave them: how a MSG_ZEROCOPY send
	// fills Linux's send buffers depends on them.
	fd := c.fd
	send := func(off, f int) (int, error) {
		return ms.Sendmsg(fd, &synstack.Msghdr{Iov: iovFrom(m.iov, off)}, f)
	}
	return &callOp{try: r.senderFunc(fd, len(buf), flags, send)}, nil
}

// iovFrom is iov without its first off bytes.
func iovFrom(iov [][]byte, off int) [][]byte {
	for len(iov) > 0 && off >= len(iov[0]) {
		off -= len(iov[0])
		iov = iov[1:]
	}
	if len(iov) == 0 || off == 0 {
		return iov
	}
	return append([][]byte{iov[0][off:]}, iov[1:]...)
}

// callRecvmsg is recvmsg(FD, MSGHDR, FLAGS), checking what the call
// reports against the msghdr's msg_flags and msg_control.
func (r *runner) callRecvmsg(c *callArgs) (*callOp, error) {
	ms, ok := r.st.(msgSockets)
	if !ok {
		return nil, r.unsupported(c.e.line, "recvmsg")
	}
	m, err := r.parseMsghdr(c.a[1])
	if err != nil {
		return r.bad(c, err)
	}
	flags, err := r.msgInt(c.a[2])
	if err != nil {
		return r.bad(c, err)
	}
	fd := c.fd
	got := &synstack.Msghdr{}
	op := &callOp{}
	op.try = func() (bool, callResult) {
		nb := flags&(linuxMsgDontwait|0x2000) != 0 || r.nonblocking(fd)
		f := int(flags)
		if !nb {
			f |= linuxMsgDontwait
		}
		got.Iov = m.iov
		n, err := ms.Recvmsg(fd, got, f)
		if err != nil && !nb && errors.Is(err, syscall.EAGAIN) {
			return false, callResult{}
		}
		return true, res(n, err)
	}
	op.finish = func(res callResult) error {
		if res.err != nil {
			return nil
		}
		if err := r.checkMsgFlags(m.flags, got.Flags); err != nil {
			return r.errf(c.e.line, "expected %s; %v", c.e.text, err)
		}
		if m.control != nil && m.control.kind == exList {
			if err := r.checkControl(m.control.args, got.Control); err != nil {
				return r.errf(c.e.line, "expected %s; %v", c.e.text, err)
			}
		}
		return nil
	}
	return op, nil
}

// checkMsgFlags compares the flags a recvmsg reported with msg_flags.
func (r *runner) checkMsgFlags(want *expr, got int) error {
	if want == nil || want.kind == exEllipsis {
		return nil
	}
	w, err := r.msgInt(want)
	if err != nil {
		return err
	}
	if int(w) != got {
		return fmt.Errorf("got msg_flags=%#x", got)
	}
	return nil
}

// checkControl compares the control messages a recvmsg reported with
// those written.
func (r *runner) checkControl(want []*expr, got []synstack.ControlMessage) error {
	if len(want) != len(got) {
		return fmt.Errorf("got %d control messages (%s)", len(got), describeCmsgs(got))
	}
	for i, w := range want {
		f, ok := fields(w)
		if !ok {
			return fmt.Errorf("bad control message %s", describeExpr(w))
		}
		g := got[i]
		for name, x := range f {
			var err error
			switch name {
			case "cmsg_len":
				// The length follows from the type.
			case "cmsg_level":
				err = r.wantInt(name, x, int64(g.CmsgLevel()))
			case "cmsg_type":
				err = r.wantInt(name, x, int64(g.CmsgType()))
			case "cmsg_data":
				err = r.checkCmsgData(x, g)
			default:
				err = fmt.Errorf("unknown control message field %s", name)
			}
			if err != nil {
				return fmt.Errorf("control message %d: %v (got %s)", i+1, err, describeCmsgs(got[i:i+1]))
			}
		}
	}
	return nil
}

// wantInt checks that a field written as x has the value got.
func (r *runner) wantInt(name string, x *expr, got int64) error {
	if x.kind == exEllipsis {
		return nil
	}
	w, err := r.msgInt(x)
	if err != nil {
		return err
	}
	if w != got {
		return fmt.Errorf("%s=%d, want %d", name, got, w)
	}
	return nil
}

// checkCmsgData compares a control message's data with cmsg_data.
func (r *runner) checkCmsgData(x *expr, g synstack.ControlMessage) error {
	if x.kind == exEllipsis {
		return nil
	}
	switch m := g.(type) {
	case *synstack.TCPInq:
		return r.wantInt("cmsg_data", x, int64(m.Bytes))
	case *synstack.Timestamping:
		f, ok := fields(x)
		if !ok {
			return fmt.Errorf("bad timestamp %s", describeExpr(x))
		}
		var want time.Duration
		for name, v := range f {
			n, err := r.msgInt(v)
			if err != nil {
				return err
			}
			switch name {
			case "scm_sec":
				want += time.Duration(n) * time.Second
			case "scm_nsec":
				want += time.Duration(n)
			default:
				return fmt.Errorf("unknown timestamp field %s", name)
			}
		}
		at := m.Software.Sub(r.start)
		if d := at - want; d > r.tol || d < -r.tol {
			return fmt.Errorf("timestamp %s sec, want %s sec (tolerance %s)", fmtTime(at), fmtTime(want), fmtTime(r.tol))
		}
		return nil
	case *synstack.ExtendedErr:
		f, ok := fields(x)
		if !ok {
			return fmt.Errorf("bad sock_extended_err %s", describeExpr(x))
		}
		e := m.SockExtendedErr
		vals := map[string]int64{"ee_errno": int64(e.Errno), "ee_origin": int64(e.Origin),
			"ee_type": int64(e.Type), "ee_code": int64(e.Code), "ee_info": int64(e.Info),
			"ee_data": int64(e.Data), "ee_pad": 0}
		for name, v := range f {
			got, ok := vals[name]
			if !ok {
				return fmt.Errorf("unknown sock_extended_err field %s", name)
			}
			if err := r.wantInt(name, v, got); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("no syntax for control message %T", g)
}

// describeCmsgs prints control messages for failures.
func describeCmsgs(ms []synstack.ControlMessage) string {
	s := ""
	for i, m := range ms {
		if i > 0 {
			s += ", "
		}
		switch m := m.(type) {
		case *synstack.TCPInq:
			s += fmt.Sprintf("TCP_CM_INQ %d", m.Bytes)
		case *synstack.ExtendedErr:
			s += fmt.Sprintf("RECVERR %+v", m.SockExtendedErr)
		case *synstack.Timestamping:
			s += fmt.Sprintf("SCM_TIMESTAMPING %v", m.Software)
		default:
			s += fmt.Sprintf("%d/%d", m.CmsgLevel(), m.CmsgType())
		}
	}
	return "[" + s + "]"
}

// init adds the message calls and their constants to the runner's tables.
func init() {
	sysCalls["sendmsg"] = sysCall{min: 3, max: 3, build: (*runner).callSendmsg}
	sysCalls["recvmsg"] = sysCall{min: 3, max: 3, build: (*runner).callRecvmsg}
	for k, v := range msgSymbols {
		if _, ok := symbols[k]; !ok {
			symbols[k] = v
		}
	}
	if _, ok := errnos["ENOMSG"]; !ok {
		errnos["ENOMSG"] = syscall.ENOMSG
	}
}
