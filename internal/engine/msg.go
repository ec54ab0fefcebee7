package engine

import (
	"net/netip"
	"time"
)

// RecvInfo is what a recvmsg learns beside the bytes: for a datagram its
// source, whole length and arrival stamp; for TCP with TCP_INQ the bytes
// left to read.
type RecvInfo struct {
	N    int            // bytes copied
	Full int            // the datagram's whole length (UDP)
	From netip.AddrPort // the datagram's source (UDP)
	// Stamp is the datagram's software receive timestamp, when
	// SO_TIMESTAMPING asks for one (SOF_TIMESTAMPING_RX_SOFTWARE and
	// SOF_TIMESTAMPING_SOFTWARE); zero otherwise.
	Stamp time.Time
	// Inq is TCP_INQ's count after the read (see tcp.Conn.Inq), valid
	// when HasInq.
	Inq    int
	HasInq bool
}

// RecvMsg is Recv (TCP) or RecvFrom (UDP) telling what recvmsg reports
// beside the bytes (RecvInfo).
func (sk *Socket) RecvMsg(p []byte, peek, nonblock bool, cancel <-chan struct{}) (RecvInfo, error) {
	if sk.udp != nil {
		return sk.recvDatagram(p, peek, nonblock, cancel)
	}
	var l locks
	defer sk.h.releaseCtl(&l)
	if err := sk.lock(sockLocks, &l); err != nil {
		return RecvInfo{}, err
	}
	n, err := sk.recvLocked(p, peek, nonblock, cancel, &l)
	ri := RecvInfo{N: n}
	if err == nil && sk.opts.RecvInq {
		ri.HasInq = true
		if sk.ep != nil {
			ri.Inq = sk.ep.conn.Inq() + sk.peekLen()
		}
	}
	return ri, err
}

// rxStampFlags are the SO_TIMESTAMPING flags that together ask for a
// software receive timestamp reported with the data.
const rxStampFlags = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE
