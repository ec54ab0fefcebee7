package frag

import (
	"net/netip"
	"slices"
	"sort"
	"time"

	"github.com/synstack/synstack/wire"
)

// Defaults of Config, Linux's where Linux has the limit.
const (
	// DefaultHighThresh is the most bytes the fragments held may take,
	// as net.ipv4.ipfrag_high_thresh's default (4 MiB).
	DefaultHighThresh = 4 << 20
	// DefaultTimeout is how long a datagram may take to complete, from
	// its first fragment received, as net.ipv4.ipfrag_time (30 s).
	DefaultTimeout = 30 * time.Second
	// DefaultMaxDatagrams is the most datagrams in reassembly at once.
	// Linux bounds them by memory alone; here a flood of tiny fragments,
	// about 600 bytes charged each, would fit 7,000 datagrams in
	// DefaultHighThresh, and a map that size.
	DefaultMaxDatagrams = 4096
	// DefaultMaxFragments is the most fragments one datagram may have:
	// enough for a 65,535-byte datagram cut for a 576-byte MTU (119
	// fragments). Linux bounds them by memory alone.
	DefaultMaxFragments = 128
)

// MaxDatagramLen is the largest datagram reassembly gives: an IPv4 total
// length, or an IPv6 payload length, of 65,535 bytes.
const MaxDatagramLen = 0xffff

// Memory charged besides the data's buffer (see bufCap), as Linux charges
// an skb's truesize: a fragment's record, and a datagram's queue.
const (
	fragmentOverhead = 64
	datagramOverhead = 256
)

// Config holds the Reassembler's limits; a zero field takes its default.
type Config struct {
	// HighThresh is the most bytes the held fragments may take, data
	// and bookkeeping; a fragment that would pass it is dropped
	// (ipfrag_high_thresh).
	HighThresh int
	// Timeout is how long a datagram has to complete from its first
	// fragment received (ipfrag_time).
	Timeout time.Duration
	// MaxDatagrams is the most datagrams in reassembly at once.
	MaxDatagrams int
	// MaxFragments is the most fragments one datagram may have.
	MaxFragments int
}

func (c *Config) setDefaults() {
	if c.HighThresh <= 0 {
		c.HighThresh = DefaultHighThresh
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxDatagrams <= 0 {
		c.MaxDatagrams = DefaultMaxDatagrams
	}
	if c.MaxFragments <= 0 {
		c.MaxFragments = DefaultMaxFragments
	}
}

// key identifies a datagram: (src, dst, protocol, ID) for IPv4 (RFC 791),
// (src, dst, ID) for IPv6 (RFC 8200 4.5), where proto is 0.
type key struct {
	src, dst netip.Addr
	id       uint32
	proto    uint8
}

// fragment is data held: bytes off..end of the datagram's data.
type fragment struct {
	off, end int
	data     []byte
}

// datagram is one datagram in reassembly (Linux's struct ipq and
// frag_queue).
type datagram struct {
	key        key
	fam        family
	deadline   time.Time
	prev, next *datagram // in deadline order, which is creation order

	frags  []fragment // sorted by off, none overlapping
	length int        // the end of the data: known once lastIn, else the highest end seen
	meat   int        // data bytes held
	held   int        // bytes charged to Reassembler.held
	// firstIn and lastIn: the fragments at offset 0 and without MF/M
	// arrived.
	firstIn, lastIn bool

	// From the first fragment: its header bytes (IPv4 with options; IPv6
	// up to the end of the Fragment header), and for IPv6 where the
	// Fragment header starts, the Next Header field that names it and
	// the Next Header field of the Fragment header.
	hdr     []byte
	h4      wire.IPv4
	fragAt  int
	nextAt  int
	nextHdr uint8

	ecn                ecnSet
	maxSize, maxDFSize int // IPv4: largest fragment, largest with DF
}

// family indexes per-family counters.
type family uint8

const (
	ipv4 family = iota
	ipv6
)

// reasmStats are one family's reassembly counters.
type reasmStats struct {
	reqds, oks, fails, timeout, overlaps, dups uint64
}

// Reassembler puts IP fragments back together, IPv4 and IPv6, with
// Linux's rules and limits (see the package comment). It does no I/O and
// reads no clock: each call brings the time. The caller serialises the
// calls.
type Reassembler struct {
	cfg            Config
	queues         map[key]*datagram
	oldest, newest *datagram
	held           int
	stats          [2]reasmStats
	out            []byte // the last reassembled or expired packet
	freeBufs       [len(bufClasses)][][]byte
	freeDatagrams  []*datagram
}

// NewReassembler returns a Reassembler with the limits of cfg.
func NewReassembler(cfg Config) *Reassembler {
	cfg.setDefaults()
	return &Reassembler{cfg: cfg, queues: make(map[key]*datagram)}
}

// Memory returns the bytes held: fragments' data and bookkeeping. It never
// exceeds Config.HighThresh.
func (r *Reassembler) Memory() int { return r.held }

// Datagrams returns how many datagrams are in reassembly.
func (r *Reassembler) Datagrams() int { return len(r.queues) }

// Deadline returns when the oldest datagram in reassembly expires, and
// false if there is none: the caller calls Expire then. Input expires
// nothing: a fragment arriving after its datagram's deadline but before
// Expire joins the datagram.
func (r *Reassembler) Deadline() (time.Time, bool) {
	if r.oldest == nil {
		return time.Time{}, false
	}
	return r.oldest.deadline, true
}

// Expire drops every datagram whose deadline (its first fragment's arrival
// plus Config.Timeout) is at or before now, counting each in ReasmTimeout
// and ReasmFails, and calls fn for each, oldest first (fn may be nil).
func (r *Reassembler) Expire(now time.Time, fn func(Expired)) {
	for q := r.oldest; q != nil && !now.Before(q.deadline); q = r.oldest {
		st := &r.stats[q.fam]
		st.timeout++
		st.fails++
		if fn != nil {
			e := Expired{IPv6: q.fam == ipv6, Src: q.key.src, Dst: q.key.dst}
			if q.firstIn {
				r.out = append(append(r.out[:0], q.hdr...), q.frags[0].data...)
				e.First = r.out
			}
			fn(e)
		}
		r.remove(q)
	}
}

// Input takes one received IP packet. A fragment is held, completes its
// datagram (Done), or is dropped; anything else passes (see Verdict).
// pkt is not kept: what is held is copied, once.
func (r *Reassembler) Input(pkt []byte, now time.Time) Result {
	if len(pkt) == 0 {
		return Result{Verdict: Pass, Err: wire.ErrTruncated}
	}
	switch pkt[0] >> 4 {
	case 4:
		return r.input4(pkt, now)
	case 6:
		return r.input6(pkt, now)
	}
	return Result{Verdict: Pass, Err: wire.ErrBadVersion}
}

// arrival is a fragment being taken, both families alike.
type arrival struct {
	fam      family
	key      key
	off, end int
	more     bool
	data     []byte // trimmed to end-off
	ecn      uint8  // the ECN field
	// For the first fragment: what datagram keeps of it.
	hdr     []byte
	h4      wire.IPv4
	fragAt  int
	nextAt  int
	nextHdr uint8
	size    int // IPv4: the fragment's length, and whether DF is set
	df      bool
}

func (r *Reassembler) input4(pkt []byte, now time.Time) Result {
	h, data, err := wire.ParseIPv4(pkt)
	if err != wire.ErrFragment {
		return Result{Verdict: Pass, Err: err}
	}
	r.stats[ipv4].reqds++
	a := arrival{
		fam:  ipv4,
		key:  key{src: h.Src, dst: h.Dst, id: uint32(h.ID), proto: h.Protocol},
		off:  int(h.FragOffset),
		more: h.MoreFragments,
		ecn:  h.TOS & ecnMask,
		hdr:  pkt[:h.HeaderLen],
		h4:   h,
		size: int(h.TotalLen),
		df:   h.DontFragment,
	}
	a.end = a.off + len(data)
	if a.more {
		// Linux's ip_frag_queue: a non-last fragment's data is cut
		// to a multiple of 8.
		a.end &^= 7
	}
	if a.end > a.off {
		a.data = data[:a.end-a.off]
	}
	// No datagram over 65,535 bytes (RFC 791's total length). Linux
	// finds out when the last piece arrives; such a datagram can never
	// complete, so it goes at once.
	if h.HeaderLen+a.end > MaxDatagramLen {
		return r.discard(a.fam, a.key, ReasonTooBig, nil)
	}
	return r.take(&a, now)
}

func (r *Reassembler) input6(pkt []byte, now time.Time) Result {
	h, p, err := wire.ParseIPv6(pkt)
	if err != wire.ErrFragment {
		return Result{Verdict: Pass, Err: err}
	}
	st := &r.stats[ipv6]
	st.reqds++
	fh, data, err := wire.ParseIPv6Fragment(p)
	if err != nil { // ParseIPv6 made sure it fits
		st.fails++
		return Result{Verdict: Dropped, Err: err}
	}
	fragAt := wire.IPv6HeaderLen + int(h.PayloadLen) - len(p)
	if fh.Atomic() {
		// RFC 6946: an atomic fragment is a whole packet,
		// reassembled apart from any other fragment with its ID.
		// Linux counts it in Ip6ReasmOKs.
		nextAt, _ := ipv6NextAt(pkt, fragAt)
		st.oks++
		return Result{Verdict: Done, Packet: r.build6(pkt[:fragAt+wire.IPv6FragmentLen], fragAt, nextAt, fh.NextHeader, data, 0, false)}
	}
	a := arrival{
		fam:     ipv6,
		key:     key{src: h.Src, dst: h.Dst, id: fh.ID},
		off:     int(fh.FragOffset),
		more:    fh.MoreFragments,
		data:    data,
		ecn:     h.TrafficClass & ecnMask,
		hdr:     pkt[:fragAt+wire.IPv6FragmentLen],
		fragAt:  fragAt,
		nextHdr: fh.NextHeader,
	}
	a.end = a.off + len(data)
	if a.off == 0 {
		if !fullChain(fh.NextHeader, data) {
			// RFC 8200 4.5 and RFC 7112: a first fragment must
			// hold the whole header chain; Parameter Problem,
			// code 3. Linux (ipv6_frag_thdr_truncated) counts
			// it in Ip6InHdrErrors alone, before any datagram
			// is looked up.
			return Result{Verdict: Dropped, Reason: ReasonIncompleteChain, ParamProblem: &ParamProblem{Code: 3}}
		}
		a.nextAt, _ = ipv6NextAt(pkt, fragAt)
	}
	if a.more && len(data)%8 != 0 {
		// RFC 8200 4.5: the length of a fragment with M set must be
		// a multiple of 8; Parameter Problem, code 0, at Payload
		// Length. Recent Linux discards the datagram too.
		return r.discard(ipv6, a.key, ReasonNotMultipleOf8, &ParamProblem{Code: 0, Pointer: 4})
	}
	if a.end > MaxDatagramLen {
		// RFC 8200 4.5: a fragment that would make the payload
		// pass 65,535 bytes: Parameter Problem, code 0, at the
		// Fragment Offset field (Linux compares the end to it, as
		// here, and discards the datagram).
		return r.discard(ipv6, a.key, ReasonTooBig, &ParamProblem{Code: 0, Pointer: uint32(fragAt + 2)})
	}
	return r.take(&a, now)
}

// ipv6NextAt returns the offset in pkt of the Next Header field that names
// the Fragment header at fragAt.
func ipv6NextAt(pkt []byte, fragAt int) (int, error) {
	_, at, _, err := wire.SkipIPv6ExtHeaders(pkt[6], pkt[wire.IPv6HeaderLen:fragAt])
	if at < 0 {
		return 6, err
	}
	return wire.IPv6HeaderLen + at, err
}

// fullChain reports whether data, the first fragment's data after its
// Fragment header naming next, holds the extension headers and the
// upper-layer header: 20 bytes for TCP, 8 for UDP and ICMPv6, one byte of
// anything else (Linux's ipv6_frag_thdr_truncated).
func fullChain(next uint8, data []byte) bool {
	nh, _, rest, err := wire.SkipIPv6ExtHeaders(next, data)
	if err != nil {
		return false
	}
	need := 1
	switch nh {
	case wire.ProtoTCP:
		need = wire.TCPHeaderLen
	case wire.ProtoUDP:
		need = wire.UDPHeaderLen
	case wire.ProtoICMPv6:
		need = wire.ICMPHeaderLen
	case wire.ProtoNoNext, wire.ProtoFragment:
		need = 0
	}
	return len(rest) >= need
}

// take files the fragment a in its datagram: Linux's inet_frag_find and
// ip_frag_queue (ip6_frag_queue), in their order.
func (r *Reassembler) take(a *arrival, now time.Time) Result {
	st := &r.stats[a.fam]
	q := r.queues[a.key]
	cost := bufCap(len(a.data)) + fragmentOverhead
	if a.off == 0 {
		cost += len(a.hdr)
	}
	need := cost
	if q == nil {
		need += datagramOverhead
	}
	if r.held+need > r.cfg.HighThresh {
		st.fails++
		return Result{Verdict: Dropped, Reason: ReasonMemory}
	}
	if q == nil {
		if len(r.queues) >= r.cfg.MaxDatagrams {
			st.fails++
			return Result{Verdict: Dropped, Reason: ReasonTooManyDatagrams}
		}
		q = r.create(a, now)
	}
	if !a.more {
		// The last fragment: it must not end before data held, nor
		// elsewhere than an earlier last fragment.
		if a.end < q.length || (q.lastIn && a.end != q.length) {
			return r.discard(a.fam, a.key, ReasonBadEnd, nil)
		}
		q.lastIn, q.length = true, a.end
	} else if a.end > q.length {
		// Data past the last fragment's end.
		if q.lastIn {
			return r.discard(a.fam, a.key, ReasonBadEnd, nil)
		}
		q.length = a.end
	}
	if a.end == a.off {
		return r.discard(a.fam, a.key, ReasonEmpty, nil)
	}
	// Where it goes: frags[i] is the first that ends after it starts.
	i := sort.Search(len(q.frags), func(i int) bool { return q.frags[i].end > a.off })
	if i < len(q.frags) && q.frags[i].off < a.end {
		if covered(q.frags[i:], a.off, a.end) {
			st.dups++
			return Result{Verdict: Dropped, Reason: ReasonDuplicate}
		}
		st.overlaps++
		return r.discard(a.fam, a.key, ReasonOverlap, nil)
	}
	if len(q.frags) >= r.cfg.MaxFragments {
		return r.discard(a.fam, a.key, ReasonTooManyFragments, nil)
	}
	q.frags = slices.Insert(q.frags, i, fragment{off: a.off, end: a.end, data: r.copyIn(a.data)})
	q.meat += a.end - a.off
	q.held += cost
	r.held += cost
	q.ecn = q.ecn.add(a.ecn)
	if a.off == 0 {
		q.firstIn = true
		q.hdr, q.h4 = append(q.hdr[:0], a.hdr...), a.h4
		q.fragAt, q.nextAt, q.nextHdr = a.fragAt, a.nextAt, a.nextHdr
	}
	if a.size > q.maxSize {
		q.maxSize = a.size
	}
	if a.df && a.size > q.maxDFSize {
		q.maxDFSize = a.size
	}
	if q.firstIn && q.lastIn && q.meat == q.length {
		return r.reassemble(q)
	}
	return Result{Verdict: Held}
}

// covered reports whether frags, from the first, hold every byte of
// off..end without a gap: the new fragment is then a duplicate of data
// held. Linux asks it of one run of fragments that arrived in order.
func covered(frags []fragment, off, end int) bool {
	if frags[0].off > off {
		return false
	}
	pos := frags[0].end
	for _, f := range frags[1:] {
		if pos >= end || f.off != pos {
			break
		}
		pos = f.end
	}
	return pos >= end
}

// Fragments' buffers: data of up to 256 bytes goes in a buffer of 256,
// up to 2048 (a fragment of an Ethernet MTU) in a buffer of 2048, reused;
// larger data in a buffer of its size. A fragment is charged its buffer's
// size, as Linux charges an skb's truesize. Up to maxFreeBufs buffers of
// each class and maxFreeDatagrams datagrams wait for reuse (about 150 KiB
// at most, not charged), so that reassembly in steady state allocates
// nothing.
var bufClasses = [...]int{256, 2048}

const (
	maxFreeBufs      = 64
	maxFreeDatagrams = 16
)

// bufClass returns the class of the buffer that holds n bytes of data, or
// -1 for a buffer of n bytes.
func bufClass(n int) int {
	for i, c := range bufClasses {
		if n <= c {
			return i
		}
	}
	return -1
}

// bufCap returns the size of the buffer that holds n bytes of data.
func bufCap(n int) int {
	if c := bufClass(n); c >= 0 {
		return bufClasses[c]
	}
	return n
}

// copyIn returns a copy of data in a buffer of its own: the one copy of a
// fragment's data.
func (r *Reassembler) copyIn(data []byte) []byte {
	c := bufClass(len(data))
	if c < 0 {
		return append(make([]byte, 0, len(data)), data...)
	}
	var b []byte
	if free := r.freeBufs[c]; len(free) > 0 {
		b, r.freeBufs[c] = free[len(free)-1], free[:len(free)-1]
	} else {
		b = make([]byte, 0, bufClasses[c])
	}
	return append(b, data...)
}

// recycle keeps q and its buffers for reuse, as far as the free lists have
// room.
func (r *Reassembler) recycle(q *datagram) {
	for _, f := range q.frags {
		if c := bufClass(cap(f.data)); c >= 0 && cap(f.data) == bufClasses[c] && len(r.freeBufs[c]) < maxFreeBufs {
			r.freeBufs[c] = append(r.freeBufs[c], f.data[:0])
		}
	}
	if len(r.freeDatagrams) >= maxFreeDatagrams {
		return
	}
	clear(q.frags)
	*q = datagram{frags: q.frags[:0], hdr: q.hdr[:0]}
	r.freeDatagrams = append(r.freeDatagrams, q)
}

func (r *Reassembler) create(a *arrival, now time.Time) *datagram {
	var q *datagram
	if n := len(r.freeDatagrams); n > 0 {
		q, r.freeDatagrams = r.freeDatagrams[n-1], r.freeDatagrams[:n-1]
	} else {
		q = new(datagram)
	}
	q.key, q.fam, q.deadline, q.prev = a.key, a.fam, now.Add(r.cfg.Timeout), r.newest
	q.held = datagramOverhead
	r.held += datagramOverhead
	if r.newest != nil {
		r.newest.next = q
	} else {
		r.oldest = q
	}
	r.newest = q
	r.queues[a.key] = q
	return q
}

func (r *Reassembler) remove(q *datagram) {
	if q.prev != nil {
		q.prev.next = q.next
	} else {
		r.oldest = q.next
	}
	if q.next != nil {
		q.next.prev = q.prev
	} else {
		r.newest = q.prev
	}
	r.held -= q.held
	delete(r.queues, q.key)
	r.recycle(q)
}

// discard drops the fragment and its datagram, if there is one, counting a
// failure (Linux's discard_qp: inet_frag_kill and ReasmFails).
func (r *Reassembler) discard(fam family, k key, why Reason, pp *ParamProblem) Result {
	r.stats[fam].fails++
	res := Result{Verdict: Dropped, Reason: why, ParamProblem: pp}
	if q := r.queues[k]; q != nil {
		r.remove(q)
		res.Discarded = true
	}
	return res
}

// reassemble builds the datagram q into r.out and lets it go.
func (r *Reassembler) reassemble(q *datagram) Result {
	ce, ok := q.ecn.combine()
	if !ok {
		return r.discard(q.fam, q.key, ReasonECN, nil)
	}
	var pkt []byte
	if q.fam == ipv4 {
		pkt = r.build4(q, ce)
	} else if pkt = r.build6(q.hdr, q.fragAt, q.nextAt, q.nextHdr, nil, q.length, ce); pkt != nil {
		r.copyData(q, pkt[q.fragAt:])
	}
	if pkt == nil {
		return r.discard(q.fam, q.key, ReasonTooBig, nil)
	}
	r.stats[q.fam].oks++
	r.remove(q)
	return Result{Verdict: Done, Packet: pkt}
}

// copyData writes q's data into dst, len q.length.
func (r *Reassembler) copyData(q *datagram, dst []byte) {
	for _, f := range q.frags {
		copy(dst[f.off:f.end], f.data)
	}
}

// build4 writes the reassembled IPv4 datagram: the first fragment's header
// with its options, no fragment fields, DF if the largest fragment had it
// (Linux's ip_frag_reasm, so a forwarder refragments alike), CE if a
// fragment had it. It returns nil if the datagram would pass 65,535 bytes
// (Linux's ip_frag_reasm: "Oversized IP packet").
func (r *Reassembler) build4(q *datagram, ce bool) []byte {
	h := q.h4
	h.MoreFragments, h.FragOffset = false, 0
	h.DontFragment = q.maxDFSize == q.maxSize
	if ce {
		h.TOS |= ecnCE
	}
	hl := len(q.hdr)
	if hl+q.length > MaxDatagramLen {
		// Later fragments had shorter headers than the first.
		return nil
	}
	r.out = grow(r.out, hl+q.length)
	pkt := r.out
	if _, err := h.EmitWithOptions(pkt, q.hdr[wire.IPv4HeaderLen:], q.length); err != nil {
		return nil // not reached: the options came from a parsed header
	}
	r.copyData(q, pkt[hl:])
	return pkt
}

// build6 writes an IPv6 packet from hdr (a fragment's headers through its
// Fragment header at fragAt) without the Fragment header: the Next Header
// field at nextAt takes next, the payload length is recomputed, and the
// data (data, or n bytes the caller writes at the end) follows. It returns
// nil if the payload would pass 65,535 bytes (Linux's ip6_frag_reasm).
func (r *Reassembler) build6(hdr []byte, fragAt, nextAt int, next uint8, data []byte, n int, ce bool) []byte {
	if data != nil {
		n = len(data)
	}
	plen := fragAt - wire.IPv6HeaderLen + n
	if plen > MaxDatagramLen {
		return nil
	}
	r.out = grow(r.out, fragAt+n)
	pkt := r.out
	copy(pkt, hdr[:fragAt])
	pkt[nextAt] = next
	copy(pkt[fragAt:], data)
	pkt[4], pkt[5] = byte(plen>>8), byte(plen)
	if ce {
		pkt[1] |= ecnCE << 4 // the traffic class straddles bytes 0 and 1
	}
	return pkt
}

// ECN codepoints (RFC 3168), the low two bits of the TOS or traffic class.
const (
	ecnMask   = 0x03
	ecnNotECT = 0x00
	ecnCE     = 0x03
)

// ecnSet is the set of ECN codepoints a datagram's fragments carried.
type ecnSet uint8

func (s ecnSet) add(ecn uint8) ecnSet { return s | 1<<ecn }

// combine applies RFC 3168 section 5.3 as Linux's ip_frag_ecn_table: if
// any fragment is CE the datagram is CE, unless another is Not-ECT, which
// is an invalid mix and fails the datagram.
func (s ecnSet) combine() (ce, ok bool) {
	if s&(1<<ecnCE) == 0 {
		return false, true
	}
	return true, s&(1<<ecnNotECT) == 0
}

// grow returns b resized to n bytes, reusing its array when it can.
func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}
