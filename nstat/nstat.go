// Package nstat holds a stack's counters, named as Linux's nstat names
// them (IpInReceives, TcpInSegs, TcpExtListenDrops...), so that a
// dashboard or a test reads synstack as it reads Linux. Counters Linux
// does not have are prefixed with Synstack. The engine counts into one
// Counters per shard; synstack.Stack.Stats sums them (synstack.Stats is
// this type).
package nstat

import "reflect"

// Counters are a stack's counters. Every field is a uint64: a counter,
// or a gauge where its comment says so.
type Counters struct {
	IpInReceives       uint64 // IP packets received
	IpInHdrErrors      uint64 // dropped: malformed IP header, bad header checksum
	IpInAddrErrors     uint64 // dropped: destination is not one of the stack's addresses
	IpInUnknownProtos  uint64 // dropped: neither TCP nor ICMP
	IpReasmReqds       uint64 // IPv4 fragments received for reassembly
	IpReasmOKs         uint64 // IPv4 datagrams reassembled
	IpReasmFails       uint64 // IPv4 reassembly failures: fragments dropped (not duplicates), datagrams discarded or expired
	IpReasmTimeout     uint64 // IPv4 datagrams whose fragments did not all come within 30 s
	IpExtReasmOverlaps uint64 // IPv4 datagrams discarded for overlapping fragments
	IpFragOKs          uint64 // IPv4 datagrams sent in fragments
	IpFragFails        uint64 // IPv4 datagrams that needed fragmenting and could not be
	IpFragCreates      uint64 // IPv4 fragments sent
	Ip6InHdrErrors     uint64 // IPv6 packets dropped for a bad header (a first fragment without its whole header chain)
	Ip6ReasmReqds      uint64 // IPv6 fragments received for reassembly
	Ip6ReasmOKs        uint64 // IPv6 datagrams reassembled
	Ip6ReasmFails      uint64 // as IpReasmFails, IPv6
	Ip6ReasmTimeout    uint64 // as IpReasmTimeout, IPv6
	Ip6FragOKs         uint64 // as IpFragOKs, IPv6
	Ip6FragFails       uint64 // as IpFragFails, IPv6
	Ip6FragCreates     uint64 // as IpFragCreates, IPv6
	IpInDelivers       uint64 // IP packets handed to TCP or ICMP
	IpOutRequests      uint64 // IP packets sent
	IpOutDiscards      uint64 // packets that could not be built or written

	TcpActiveOpens  uint64 // CLOSED -> SYN_SENT
	TcpPassiveOpens uint64 // LISTEN -> SYN_RCVD
	TcpAttemptFails uint64 // SYN_SENT/SYN_RCVD -> CLOSED, SYN_RCVD -> LISTEN
	TcpEstabResets  uint64 // ESTABLISHED/CLOSE_WAIT -> CLOSED
	TcpCurrEstab    uint64 // connections now in ESTABLISHED or CLOSE_WAIT (a gauge)
	TcpInSegs       uint64 // segments received (checksum verified)
	TcpOutSegs      uint64 // segments sent
	TcpRetransSegs  uint64 // segments retransmitted (timeouts, fast retransmit, tail loss probes)
	TcpInErrs       uint64 // segments dropped: bad checksum or malformed header
	TcpInCsumErrors uint64 // segments dropped: bad checksum
	TcpOutRsts      uint64 // segments sent with RST

	TcpExtListenOverflows        uint64 // SYN or handshake-completing ACK dropped: accept queue full
	TcpExtListenDrops            uint64 // SYN or ACK dropped at a listener for any reason
	TcpExtSyncookiesSent         uint64 // SYN,ACKs sent with a SYN cookie (SYN queue full)
	TcpExtSyncookiesRecv         uint64 // ACKs that returned a valid cookie: connections opened from it
	TcpExtSyncookiesFailed       uint64 // ACKs at a listener whose cookie did not check out
	TcpExtTCPAbortOnMemory       uint64 // connections reset on close because of MaxOrphans
	TcpExtTCPTimeouts            uint64 // retransmission timeouts, SYN and SYN,ACK ones included
	TcpExtTCPChallengeACK        uint64 // RFC 5961 challenge ACKs sent (in-window RST, SYN, implausible ACK)
	TcpExtTCPACKSkippedChallenge uint64 // challenge ACKs not sent: the per-connection rate limit (500 ms)
	TcpExtTCPACKSkippedSeq       uint64 // duplicate ACKs to out-of-window segments not sent: the same limit
	TcpExtTCPFullUndo            uint64 // recoveries undone at their end: every retransmission needless
	TcpExtTCPPartialUndo         uint64 // recoveries undone on a partial ACK a delayed original made
	TcpExtTCPDSACKUndo           uint64 // window reductions undone: D-SACKs showed every retransmission needless
	TcpExtTCPLossUndo            uint64 // retransmission timeouts undone
	TcpExtTCPLossProbeRecovery   uint64 // losses a tail loss probe repaired (each reduces the window)

	// TCP Fast Open (RFC 7413).
	TcpExtTCPFastOpenActive         uint64 // SYNs sent with data (a client's Fast Open)
	TcpExtTCPFastOpenActiveFail     uint64 // of those, ones whose data the SYN,ACK did not acknowledge, or that timed out and went again without it
	TcpExtTCPFastOpenPassive        uint64 // SYNs whose data a listener took (a good cookie, or none needed)
	TcpExtTCPFastOpenPassiveFail    uint64 // SYNs whose cookie did not check out: data dropped, a fresh cookie sent
	TcpExtTCPFastOpenListenOverflow uint64 // Fast Open SYNs beyond the listener's Fast Open queue (TCP_FASTOPEN): a normal handshake instead
	TcpExtTCPFastOpenCookieReqd     uint64 // SYNs asking for a cookie
	TcpExtTCPFastOpenPassiveAltKey  uint64 // SYNs whose cookie the backup key made

	TcpExtOutOfWindowIcmps uint64 // ICMP errors dropped: the quoted sequence number is not in flight (RFC 5927)

	// TCP MD5 signatures (RFC 2385): segments dropped.
	TcpExtTCPMD5NotFound   uint64 // unsigned segments for a socket that has a key for their sender
	TcpExtTCPMD5Unexpected uint64 // signed segments for a socket without a key for their sender
	TcpExtTCPMD5Failure    uint64 // signed segments whose digest is not the key's

	// Memory (Config.TCPMem, tcp.Memory).
	TcpExtPruneCalled        uint64 // arrivals a receive queue had no room for: over its buffer, or the budget's High
	TcpExtRcvPruned          uint64 // of those, ones that still had no room after out-of-order data was pruned
	TcpExtOfoPruned          uint64 // times a connection gave back its out-of-order data to make room
	TcpExtTCPRcvQDrop        uint64 // in-order segments (or their ends) dropped for want of room
	TcpExtTCPOFODrop         uint64 // out-of-order segments (or their ends) dropped for want of room
	TcpExtTCPMemoryPressures uint64 // times the stack's budget went above its Pressure mark
	SynstackTCPMemBytes      uint64 // bytes the connections' queues hold now, charged to the budget (a gauge; /proc/net/sockstat's "mem", in bytes)

	IcmpInMsgs           uint64 // ICMPv4 messages received (checksum errors included)
	IcmpInErrors         uint64 // ICMPv4 messages dropped: bad checksum, or an error quoting no connection of ours
	IcmpInEchos          uint64 // ICMPv4 echo requests
	IcmpInEchoReps       uint64 // ICMPv4 echo replies delivered to a ping socket
	IcmpOutEchos         uint64 // ICMPv4 echo requests sent (ping sockets)
	IcmpInDestUnreachs   uint64 // ICMPv4 destination unreachable (fragmentation needed included)
	IcmpInTimeExcds      uint64 // ICMPv4 time exceeded
	IcmpInParmProbs      uint64 // ICMPv4 parameter problem
	IcmpOutMsgs          uint64 // ICMPv4 messages sent
	IcmpOutEchoReps      uint64 // ICMPv4 echo replies sent
	IcmpOutTimeExcds     uint64 // ICMPv4 time exceeded sent (fragment reassembly time exceeded)
	Icmp6InMsgs          uint64 // ICMPv6 messages received (checksum errors included)
	Icmp6InErrors        uint64 // ICMPv6 messages dropped: bad checksum, or an error quoting no connection of ours
	Icmp6InEchos         uint64 // ICMPv6 echo requests
	Icmp6InEchoReplies   uint64 // ICMPv6 echo replies delivered to a ping socket
	Icmp6OutEchos        uint64 // ICMPv6 echo requests sent (ping sockets)
	Icmp6InDestUnreachs  uint64 // ICMPv6 destination unreachable
	Icmp6InPktTooBigs    uint64 // ICMPv6 packet too big
	Icmp6InTimeExcds     uint64 // ICMPv6 time exceeded
	Icmp6InParmProblems  uint64 // ICMPv6 parameter problem
	Icmp6OutMsgs         uint64 // ICMPv6 messages sent
	Icmp6OutEchoReplies  uint64 // ICMPv6 echo replies sent
	Icmp6OutTimeExcds    uint64 // ICMPv6 time exceeded sent (fragment reassembly time exceeded)
	Icmp6OutParmProblems uint64 // ICMPv6 parameter problem sent (a bad fragment, RFC 8200 4.5)

	UdpInDatagrams   uint64 // UDP datagrams delivered to a socket (IPv4)
	UdpNoPorts       uint64 // UDP datagrams for a port no socket has (IPv4; answered with ICMP port unreachable, rate limited)
	UdpInErrors      uint64 // UDP datagrams dropped: bad checksum or header, or a full receive queue (IPv4)
	UdpInCsumErrors  uint64 // UDP datagrams dropped: bad checksum (IPv4)
	UdpOutDatagrams  uint64 // UDP datagrams sent (IPv4)
	UdpRcvbufErrors  uint64 // UDP datagrams dropped: the socket's receive queue (SO_RCVBUF) or the host's UDP budget was full (IPv4)
	UdpSndbufErrors  uint64 // UDP datagrams that could not be sent (IPv4)
	Udp6InDatagrams  uint64 // as UdpInDatagrams, IPv6
	Udp6NoPorts      uint64 // as UdpNoPorts, IPv6
	Udp6InErrors     uint64 // as UdpInErrors, IPv6
	Udp6InCsumErrors uint64 // as UdpInCsumErrors, IPv6
	Udp6OutDatagrams uint64 // as UdpOutDatagrams, IPv6
	Udp6RcvbufErrors uint64 // as UdpRcvbufErrors, IPv6
	Udp6SndbufErrors uint64 // as UdpSndbufErrors, IPv6

	SynstackInCsumVerified uint64 // TCP segments and UDP datagrams whose checksum the stack verified
	SynstackInCsumTrusted  uint64 // TCP segments and UDP datagrams whose checksum the link vouched for (DATA_VALID, NEEDS_CSUM), not verified again

	SynstackNoSocket uint64 // segments that matched no connection or listener (answered by RST unless RST)

	SynstackTxThrottled uint64 // times a connection held its data because the link's transmit queue was full (link.Backpressure, as Linux's TCP Small Queues)

	SynstackConnLimitDrops uint64 // SYNs dropped and connects failed (ENOBUFS): Config.MaxConns or a listener's MaxConns reached

	// Martians (martian.go), dropped unanswered; Linux logs them (log_martians).
	SynstackInMartianSources      uint64 // packets from a broadcast, multicast, loopback, unspecified, IPv4-mapped or own address
	SynstackInMartianDestinations uint64 // packets to a broadcast, multicast, loopback, unspecified or IPv4-mapped address

	// Forwarding (Stack.SetForwarder, see forward.go).
	SynstackForwardRequests     uint64 // SYNs offered to the Forwarder (retransmissions of a pending one are not)
	SynstackForwarded           uint64 // forwarded connections whose handshake completed (ForwardRequest.Accept)
	SynstackForwardRefused      uint64 // requests answered with RST (Refuse, or Reject of a refused upstream)
	SynstackForwardUnreachables uint64 // requests answered with ICMP destination unreachable (timeouts not included)
	SynstackForwardTimeouts     uint64 // requests rejected because the upstream timed out (answered with ICMP host unreachable)
	SynstackForwardResets       uint64 // forwarded connections that ended with a RST, sent or received
	SynstackForwardPendingDrops uint64 // SYNs dropped: ForwardOptions.MaxPending requests already waiting, or MaxPendingPerSource from the client's address
	SynstackForwardSourceDrops  uint64 // of those, SYNs dropped for MaxPendingPerSource

	SynstackForwardPings         uint64 // echo requests for other addresses offered to the ping forwarder
	SynstackForwardPingDrops     uint64 // echo requests for other addresses dropped: too many waiting
	SynstackForwardUDPRequests   uint64 // UDP flows offered to the UDP forwarder (first datagrams of new 5-tuples)
	SynstackForwardUDPFlows      uint64 // UDP flows the forwarder accepted
	SynstackForwardUDPDrops      uint64 // datagrams for other addresses dropped: a flow pending a decision, no forwarder, or the bounds
	SynstackForwardUDPLimitDrops uint64 // of those, dropped for ForwardOptions.MaxUDPFlows or MaxUDPFlowsPerSource
	IcmpOutDestUnreachs          uint64 // ICMPv4 destination unreachable sent (ForwardRequest.Unreachable)
	Icmp6OutDestUnreachs         uint64 // ICMPv6 destination unreachable sent (ForwardRequest.Unreachable)
}

// Add adds every counter of b to c.
func (c *Counters) Add(b *Counters) {
	va, vb := reflect.ValueOf(c).Elem(), reflect.ValueOf(b).Elem()
	for i := range va.NumField() {
		f := va.Field(i)
		f.SetUint(f.Uint() + vb.Field(i).Uint())
	}
}
