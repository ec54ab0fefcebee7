package frag

// Stats are the counters of a Reassembler or a Fragmenter, named as
// Linux's nstat names them (/proc/net/snmp, netstat and snmp6), except
// those marked as synstack's own. A Reassembler fills the Reasm fields, a
// Fragmenter the Frag fields.
type Stats struct {
	// IpReasmReqds counts IPv4 fragments received for reassembly.
	IpReasmReqds uint64
	// IpReasmOKs counts IPv4 datagrams reassembled.
	IpReasmOKs uint64
	// IpReasmFails counts failures: fragments dropped (not duplicates)
	// and datagrams discarded or expired.
	IpReasmFails uint64
	// IpReasmTimeout counts IPv4 datagrams that expired.
	IpReasmTimeout uint64
	// IpExtReasmOverlaps counts IPv4 datagrams discarded for an overlap.
	IpExtReasmOverlaps uint64
	// IpReasmDuplicates counts IPv4 fragments dropped as duplicates of
	// data held (synstack's own: Linux counts none).
	IpReasmDuplicates uint64

	// Ip6ReasmReqds counts IPv6 fragments received, atomic ones too.
	Ip6ReasmReqds uint64
	// Ip6ReasmOKs counts IPv6 packets reassembled, atomic fragments too.
	Ip6ReasmOKs uint64
	// Ip6ReasmFails is IpReasmFails for IPv6.
	Ip6ReasmFails uint64
	// Ip6ReasmTimeout is IpReasmTimeout for IPv6.
	Ip6ReasmTimeout uint64
	// Ip6ReasmOverlaps counts IPv6 packets discarded for an overlap
	// (synstack's own name: Linux counts it in IpExtReasmOverlaps).
	Ip6ReasmOverlaps uint64
	// Ip6ReasmDuplicates is IpReasmDuplicates for IPv6 (synstack's own).
	Ip6ReasmDuplicates uint64

	// IpFragOKs counts IPv4 datagrams fragmented.
	IpFragOKs uint64
	// IpFragFails counts IPv4 datagrams that needed fragmenting and
	// could not be: DF set, or an MTU too small for a fragment.
	IpFragFails uint64
	// IpFragCreates counts IPv4 fragments created.
	IpFragCreates uint64
	// Ip6FragOKs is IpFragOKs for IPv6.
	Ip6FragOKs uint64
	// Ip6FragFails is IpFragFails for IPv6.
	Ip6FragFails uint64
	// Ip6FragCreates is IpFragCreates for IPv6.
	Ip6FragCreates uint64
}

// Stats returns the reassembly counters.
func (r *Reassembler) Stats() Stats {
	v4, v6 := &r.stats[ipv4], &r.stats[ipv6]
	return Stats{
		IpReasmReqds: v4.reqds, IpReasmOKs: v4.oks, IpReasmFails: v4.fails,
		IpReasmTimeout: v4.timeout, IpExtReasmOverlaps: v4.overlaps, IpReasmDuplicates: v4.dups,
		Ip6ReasmReqds: v6.reqds, Ip6ReasmOKs: v6.oks, Ip6ReasmFails: v6.fails,
		Ip6ReasmTimeout: v6.timeout, Ip6ReasmOverlaps: v6.overlaps, Ip6ReasmDuplicates: v6.dups,
	}
}
