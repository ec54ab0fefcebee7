package frag

import "net/netip"

// Verdict says what became of a packet given to Reassembler.Input.
type Verdict uint8

const (
	// Pass: the packet is no fragment (or no IP packet this package can
	// parse: Result.Err says why). The caller processes it as usual;
	// nothing was counted.
	Pass Verdict = iota
	// Held: the fragment is kept until its datagram completes.
	Held
	// Done: Result.Packet is the whole datagram.
	Done
	// Dropped: the fragment was dropped (Result.Reason), and with it
	// its datagram if Result.Discarded.
	Dropped
)

var verdictNames = [...]string{"pass", "held", "done", "dropped"}

func (v Verdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return "unknown"
}

// Reason says why a fragment was dropped.
type Reason uint8

// Reasons for a drop. Each but ReasonDuplicate and ReasonIncompleteChain
// counts in ReasmFails.
const (
	ReasonNone Reason = iota
	// ReasonMemory: the fragment would take the held bytes past
	// Config.HighThresh (Linux: inet_frag_find fails over
	// ipfrag_high_thresh).
	ReasonMemory
	// ReasonTooManyDatagrams: a new datagram while Config.MaxDatagrams
	// are in reassembly.
	ReasonTooManyDatagrams
	// ReasonTooManyFragments: the datagram would have more than
	// Config.MaxFragments fragments; it is discarded.
	ReasonTooManyFragments
	// ReasonTooBig: the datagram would pass MaxDatagramLen.
	ReasonTooBig
	// ReasonBadEnd: the fragment disagrees with the datagram's end: a
	// last fragment short of data already held or with another end, or
	// data past the last fragment's end (Linux's ip_frag_queue); the
	// datagram is discarded.
	ReasonBadEnd
	// ReasonEmpty: the fragment holds no data (after an IPv4 non-last
	// fragment is cut to a multiple of 8); the datagram is discarded,
	// as Linux does.
	ReasonEmpty
	// ReasonOverlap: the fragment overlaps data held without lying
	// within it; the datagram is discarded (RFC 5722 for IPv6, and
	// Linux for IPv4 too since 4.19's FragmentSmack fixes).
	ReasonOverlap
	// ReasonDuplicate: the fragment lies within data held; it is
	// dropped, the datagram kept (Linux's IPFRAG_DUP). Not a failure.
	ReasonDuplicate
	// ReasonNotMultipleOf8: an IPv6 fragment with M set whose length is
	// no multiple of 8 (RFC 8200 4.5: Parameter Problem, code 0,
	// pointing at the Payload Length); the datagram is discarded.
	ReasonNotMultipleOf8
	// ReasonIncompleteChain: an IPv6 first fragment without the whole
	// header chain up to the upper-layer header (RFC 8200 4.5, RFC
	// 7112: Parameter Problem, code 3). Counted in Ip6InHdrErrors by the
	// caller, not in Ip6ReasmFails, as Linux.
	ReasonIncompleteChain
	// ReasonECN: fragments both Not-ECT and CE (RFC 3168 5.3); the
	// datagram is discarded, as Linux's ip_frag_ecn_table says.
	ReasonECN
)

var reasonNames = [...]string{"none", "memory", "too many datagrams", "too many fragments",
	"too big", "bad end", "empty", "overlap", "duplicate", "not a multiple of 8",
	"incomplete header chain", "ECN"}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "unknown"
}

// ParamProblem asks the caller to send an ICMPv6 Parameter Problem for the
// fragment dropped (RFC 8200 section 4.5, as Linux's ipv6_frag_rcv).
type ParamProblem struct {
	// Code is the ICMPv6 code: 0 (erroneous header field) or 3 (first
	// fragment has an incomplete header chain).
	Code uint8
	// Pointer is the offset in the fragment of the field at fault.
	Pointer uint32
}

// Result is what Reassembler.Input did with a packet.
type Result struct {
	// Verdict is what became of the packet.
	Verdict Verdict
	// Packet, when Verdict is Done, is the reassembled IP packet: the
	// first fragment's header (IPv4 options included; for IPv6 the
	// headers before the Fragment header, which is taken out) with the
	// lengths and fragment fields of a whole datagram, and all the data.
	// It is valid until the next call to the Reassembler.
	Packet []byte
	// Reason says why the packet was dropped.
	Reason Reason
	// Discarded reports that the fragment's datagram was dropped whole
	// with it.
	Discarded bool
	// ParamProblem, if not nil, is the ICMPv6 error owed for the drop;
	// the caller also counts the fragment in Ip6InHdrErrors, as Linux.
	ParamProblem *ParamProblem
	// Err is the parse error of a packet that passed.
	Err error
}

// Expired describes a datagram that did not complete in time.
type Expired struct {
	// IPv6 is the family.
	IPv6 bool
	// Src and Dst are the datagram's addresses.
	Src, Dst netip.Addr
	// First is the first fragment as received (header and data) if it
	// was received, else nil: the caller then sends ICMP Time Exceeded,
	// "fragment reassembly time exceeded" (ICMPv4 type 11 code 1, ICMPv6
	// type 3 code 1) quoting it, as Linux does (RFC 792, RFC 8200 4.5).
	// It is valid during the callback only.
	First []byte
}
