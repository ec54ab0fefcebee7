package frag

import (
	"bytes"
	"testing"
	"time"

	"github.com/synstack/synstack/wire"
)

// step is one packet into the Reassembler and what must become of it.
type step struct {
	pkt       []byte
	want      Verdict
	why       Reason
	discarded bool
	pp        *ParamProblem
}

// run feeds the steps at t0 and returns the Reassembler and the last
// packet reassembled (a copy).
func run(t *testing.T, cfg Config, steps []step) (*Reassembler, []byte) {
	t.Helper()
	r := NewReassembler(cfg)
	var done []byte
	for i, s := range steps {
		res := r.Input(s.pkt, t0)
		if res.Verdict != s.want || res.Reason != s.why || res.Discarded != s.discarded {
			t.Fatalf("step %d: verdict %v reason %v discarded %v (err %v); want %v %v %v",
				i, res.Verdict, res.Reason, res.Discarded, res.Err, s.want, s.why, s.discarded)
		}
		if (res.ParamProblem == nil) != (s.pp == nil) || (s.pp != nil && *res.ParamProblem != *s.pp) {
			t.Fatalf("step %d: param problem %+v, want %+v", i, res.ParamProblem, s.pp)
		}
		if res.Verdict == Done {
			done = bytes.Clone(res.Packet)
		}
		if r.Memory() > r.cfg.HighThresh {
			t.Fatalf("step %d: %d bytes held, bound %d", i, r.Memory(), r.cfg.HighThresh)
		}
	}
	return r, done
}

func TestReassembleIPv4(t *testing.T) {
	d := pattern(40)
	a := f4{id: 1, off: 0, more: true, data: d[:16]}
	b := f4{id: 1, off: 16, more: true, data: d[16:32]}
	c := f4{id: 1, off: 32, data: d[32:]}
	whole := whole4(t, 1, d)
	with := func(f f4, mod func(*f4)) f4 { mod(&f); return f }
	tests := []struct {
		name  string
		cfg   Config
		steps func(t *testing.T) []step
		done  []byte // the datagram reassembled last, if any
		stats Stats
		held  int // datagrams left
	}{
		{
			name: "in order",
			steps: func(t *testing.T) []step {
				return []step{{pkt: v4(t, a), want: Held}, {pkt: v4(t, b), want: Held}, {pkt: v4(t, c), want: Done}}
			},
			done:  whole,
			stats: Stats{IpReasmReqds: 3, IpReasmOKs: 1},
		},
		{
			name: "out of order",
			steps: func(t *testing.T) []step {
				return []step{{pkt: v4(t, c), want: Held}, {pkt: v4(t, a), want: Held}, {pkt: v4(t, b), want: Done}}
			},
			done:  whole,
			stats: Stats{IpReasmReqds: 3, IpReasmOKs: 1},
		},
		{
			// Linux's IPFRAG_DUP: the fragment is dropped, the
			// datagram kept; no failure counted.
			name: "exact duplicate",
			steps: func(t *testing.T) []step {
				return []step{{pkt: v4(t, a), want: Held}, {pkt: v4(t, a), want: Dropped, why: ReasonDuplicate},
					{pkt: v4(t, c), want: Held}, {pkt: v4(t, b), want: Done}}
			},
			done:  whole,
			stats: Stats{IpReasmReqds: 4, IpReasmOKs: 1, IpReasmDuplicates: 1},
		},
		{
			name: "duplicate within data held",
			steps: func(t *testing.T) []step {
				return []step{{pkt: v4(t, a), want: Held}, {pkt: v4(t, b), want: Held},
					{pkt: v4(t, f4{id: 1, off: 8, more: true, data: d[8:24]}), want: Dropped, why: ReasonDuplicate},
					{pkt: v4(t, c), want: Done}}
			},
			done:  whole,
			stats: Stats{IpReasmReqds: 4, IpReasmOKs: 1, IpReasmDuplicates: 1},
		},
		{
			// Since Linux 4.19 (FragmentSmack) an overlap drops the
			// whole IPv4 datagram too.
			name: "overlap discards the datagram",
			steps: func(t *testing.T) []step {
				return []step{{pkt: v4(t, a), want: Held},
					{pkt: v4(t, f4{id: 1, off: 8, more: true, data: d[8:24]}), want: Dropped, why: ReasonOverlap, discarded: true},
					// What follows starts a new datagram.
					{pkt: v4(t, b), want: Held}, {pkt: v4(t, c), want: Held}}
			},
			stats: Stats{IpReasmReqds: 4, IpReasmFails: 1, IpExtReasmOverlaps: 1},
			held:  1,
		},
		{
			name: "overlap with different bytes is not a duplicate",
			steps: func(t *testing.T) []step {
				return []step{{pkt: v4(t, b), want: Held},
					{pkt: v4(t, f4{id: 1, off: 8, more: true, data: d[8:32]}), want: Dropped, why: ReasonOverlap, discarded: true}}
			},
			stats: Stats{IpReasmReqds: 2, IpReasmFails: 1, IpExtReasmOverlaps: 1},
		},
		{
			// RFC 1858's tiny fragment attack: a fragment at
			// offset 0 rewriting a tiny first fragment's header.
			name: "tiny first fragment then a rewrite",
			steps: func(t *testing.T) []step {
				return []step{{pkt: v4(t, f4{id: 1, off: 0, more: true, data: d[:8]}), want: Held},
					{pkt: v4(t, f4{id: 1, off: 0, more: true, data: pattern(24)[:24]}), want: Dropped, why: ReasonOverlap, discarded: true}}
			},
			stats: Stats{IpReasmReqds: 2, IpReasmFails: 1, IpExtReasmOverlaps: 1},
		},
		{
			// A first fragment of 8 bytes is legal: Linux
			// reassembles it.
			name: "tiny first fragment reassembles",
			steps: func(t *testing.T) []step {
				return []step{{pkt: v4(t, f4{id: 1, off: 0, more: true, data: d[:8]}), want: Held},
					{pkt: v4(t, f4{id: 1, off: 8, data: d[8:]}), want: Done}}
			},
			done:  whole,
			stats: Stats{IpReasmReqds: 2, IpReasmOKs: 1},
		},
		{
			name: "a second last fragment with another end",
			steps: func(t *testing.T) []step {
				return []step{{pkt: v4(t, c), want: Held},
					{pkt: v4(t, f4{id: 1, off: 16, data: d[16:32]}), want: Dropped, why: ReasonBadEnd, discarded: true}}
			},
			stats: Stats{IpReasmReqds: 2, IpReasmFails: 1},
		},
		{
			name: "a last fragment short of data held",
			steps: func(t *testing.T) []step {
				return []step{{pkt: v4(t, b), want: Held},
					{pkt: v4(t, f4{id: 1, off: 8, data: d[8:16]}), want: Dropped, why: ReasonBadEnd, discarded: true}}
			},
			stats: Stats{IpReasmReqds: 2, IpReasmFails: 1},
		},
		{
			name: "data past the last fragment's end",
			steps: func(t *testing.T) []step {
				return []step{{pkt: v4(t, c), want: Held},
					{pkt: v4(t, f4{id: 1, off: 40, more: true, data: d[:8]}), want: Dropped, why: ReasonBadEnd, discarded: true}}
			},
			stats: Stats{IpReasmReqds: 2, IpReasmFails: 1},
		},
		{
			// Non-last fragments are cut to a multiple of 8; what
			// is left of this one is nothing, which discards.
			name: "empty after the cut",
			steps: func(t *testing.T) []step {
				return []step{{pkt: v4(t, a), want: Held},
					{pkt: v4(t, f4{id: 1, off: 16, more: true, data: d[16:21]}), want: Dropped, why: ReasonEmpty, discarded: true}}
			},
			stats: Stats{IpReasmReqds: 2, IpReasmFails: 1},
		},
		{
			name: "non-last fragment cut to a multiple of 8",
			steps: func(t *testing.T) []step {
				return []step{{pkt: v4(t, f4{id: 1, off: 0, more: true, data: append(bytes.Clone(d[:16]), 0xee, 0xee)}), want: Held},
					{pkt: v4(t, f4{id: 1, off: 16, data: d[16:]}), want: Done}}
			},
			done:  whole,
			stats: Stats{IpReasmReqds: 2, IpReasmOKs: 1},
		},
		{
			name: "too big",
			steps: func(t *testing.T) []step {
				return []step{{pkt: v4(t, a), want: Held},
					{pkt: v4(t, f4{id: 1, off: 65512, data: d[:8]}), want: Dropped, why: ReasonTooBig, discarded: true}}
			},
			stats: Stats{IpReasmReqds: 2, IpReasmFails: 1},
		},
		{
			// Each fragment fits, but the first's 40 bytes of
			// options make the whole too big (Linux's "Oversized IP
			// packet" at reassembly).
			name: "too big with the first header",
			steps: func(t *testing.T) []step {
				big := pattern(65472)
				return []step{
					{pkt: v4(t, f4{id: 1, off: 0, more: true, data: big, opts: bytes.Repeat([]byte{1}, 40)}), want: Held},
					{pkt: v4(t, f4{id: 1, off: 65472, data: d}), want: Dropped, why: ReasonTooBig, discarded: true}}
			},
			stats: Stats{IpReasmReqds: 2, IpReasmFails: 1},
		},
		{
			name: "too many fragments",
			cfg:  Config{MaxFragments: 2},
			steps: func(t *testing.T) []step {
				return []step{{pkt: v4(t, a), want: Held}, {pkt: v4(t, c), want: Held},
					{pkt: v4(t, b), want: Dropped, why: ReasonTooManyFragments, discarded: true}}
			},
			stats: Stats{IpReasmReqds: 3, IpReasmFails: 1},
		},
		{
			name: "too many datagrams",
			cfg:  Config{MaxDatagrams: 2},
			steps: func(t *testing.T) []step {
				return []step{{pkt: v4(t, a), want: Held}, {pkt: v4(t, with(a, func(f *f4) { f.id = 2 })), want: Held},
					{pkt: v4(t, with(a, func(f *f4) { f.id = 3 })), want: Dropped, why: ReasonTooManyDatagrams},
					// Existing datagrams still complete.
					{pkt: v4(t, c), want: Held}, {pkt: v4(t, b), want: Done}}
			},
			done:  whole,
			stats: Stats{IpReasmReqds: 5, IpReasmOKs: 1, IpReasmFails: 1},
			held:  1,
		},
		{
			// The key is (src, dst, protocol, ID): fragments
			// differing in one of them are other datagrams.
			name: "keys",
			steps: func(t *testing.T) []step {
				return []step{{pkt: v4(t, a), want: Held},
					{pkt: v4(t, with(b, func(f *f4) { f.proto = wire.ProtoTCP })), want: Held},
					{pkt: v4(t, with(b, func(f *f4) { f.src = dst4 })), want: Held},
					{pkt: v4(t, with(b, func(f *f4) { f.id = 9 })), want: Held},
					{pkt: v4(t, c), want: Held}}
			},
			stats: Stats{IpReasmReqds: 5},
			held:  4,
		},
		{
			name: "not a fragment passes",
			steps: func(t *testing.T) []step {
				return []step{{pkt: whole, want: Pass}, {pkt: []byte{0x45, 0}, want: Pass}, {pkt: nil, want: Pass}}
			},
		},
		{
			// RFC 3168 5.3, Linux's ip_frag_ecn_table.
			name: "ECN CE with Not-ECT",
			steps: func(t *testing.T) []step {
				return []step{{pkt: v4(t, with(a, func(f *f4) { f.tos = 3 })), want: Held}, {pkt: v4(t, b), want: Held},
					{pkt: v4(t, c), want: Dropped, why: ReasonECN, discarded: true}}
			},
			stats: Stats{IpReasmReqds: 3, IpReasmFails: 1},
		},
		{
			name: "ECN CE with ECT",
			steps: func(t *testing.T) []step {
				return []step{{pkt: v4(t, with(a, func(f *f4) { f.tos = 0xb8 | 2 })), want: Held},
					{pkt: v4(t, with(b, func(f *f4) { f.tos = 0xb8 | 3 })), want: Held},
					{pkt: v4(t, with(c, func(f *f4) { f.tos = 0xb8 | 2 })), want: Done}}
			},
			done:  v4(t, f4{id: 1, data: d, tos: 0xb8 | 3}),
			stats: Stats{IpReasmReqds: 3, IpReasmOKs: 1},
		},
		{
			name: "first fragment's options and DF kept",
			steps: func(t *testing.T) []step {
				lsrr := []byte{0x83, 7, 4, 10, 0, 0, 1, 0}
				nops := []byte{1, 1, 1, 1, 1, 1, 1, 0}
				return []step{
					{pkt: v4(t, f4{id: 1, more: true, df: true, data: d[:16], opts: lsrr}), want: Held},
					{pkt: v4(t, f4{id: 1, off: 16, df: true, data: d[16:], opts: nops}), want: Done}}
			},
			done:  v4(t, f4{id: 1, df: true, data: d, opts: []byte{0x83, 7, 4, 10, 0, 0, 1, 0}}),
			stats: Stats{IpReasmReqds: 2, IpReasmOKs: 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, done := run(t, tc.cfg, tc.steps(t))
			checkOutcome(t, r, done, tc.done, tc.stats, tc.held)
		})
	}
}

// checkOutcome checks what a run of steps left: the datagram reassembled
// last, the counters, the datagrams held and their memory.
func checkOutcome(t *testing.T, r *Reassembler, done, wantDone []byte, stats Stats, held int) {
	t.Helper()
	if !bytes.Equal(done, wantDone) {
		t.Fatalf("reassembled\n%x\nwant\n%x", done, wantDone)
	}
	if got := r.Stats(); got != stats {
		t.Fatalf("stats\n%+v\nwant\n%+v", got, stats)
	}
	if r.Datagrams() != held {
		t.Fatalf("%d datagrams held, want %d", r.Datagrams(), held)
	}
	checkInvariants(t, r)
}

// checkMemory checks the bytes charged add up to what the datagrams hold.
func checkMemory(t *testing.T, r *Reassembler) {
	t.Helper()
	sum, n := 0, 0
	for q := r.oldest; q != nil; q = q.next {
		n++
		want := datagramOverhead + len(q.hdr)
		for _, f := range q.frags {
			want += bufCap(len(f.data)) + fragmentOverhead
		}
		if q.held != want {
			t.Fatalf("datagram %+v charged %d, holds %d", q.key, q.held, want)
		}
		sum += q.held
	}
	if sum != r.Memory() || n != r.Datagrams() {
		t.Fatalf("memory %d for %d datagrams, the list holds %d in %d", r.Memory(), r.Datagrams(), sum, n)
	}
}

func TestReassembleIPv6(t *testing.T) {
	d := pattern(48)
	a := f6{id: 7, off: 0, more: true, data: d[:16]}
	b := f6{id: 7, off: 16, more: true, data: d[16:32]}
	c := f6{id: 7, off: 32, data: d[32:]}
	whole := whole6(t, d, nil)
	withPre := func(f f6) f6 { f.pre = hbh; return f }
	tests := []struct {
		name  string
		steps func(t *testing.T) []step
		done  []byte
		stats Stats
		held  int
	}{
		{
			name: "in order",
			steps: func(t *testing.T) []step {
				return []step{{pkt: v6(t, a), want: Held}, {pkt: v6(t, b), want: Held}, {pkt: v6(t, c), want: Done}}
			},
			done:  whole,
			stats: Stats{Ip6ReasmReqds: 3, Ip6ReasmOKs: 1},
		},
		{
			name: "out of order",
			steps: func(t *testing.T) []step {
				return []step{{pkt: v6(t, b), want: Held}, {pkt: v6(t, c), want: Held}, {pkt: v6(t, a), want: Done}}
			},
			done:  whole,
			stats: Stats{Ip6ReasmReqds: 3, Ip6ReasmOKs: 1},
		},
		{
			// The headers before the Fragment header stay, the last
			// of them naming what the Fragment header named.
			name: "hop-by-hop kept",
			steps: func(t *testing.T) []step {
				return []step{{pkt: v6(t, withPre(c)), want: Held}, {pkt: v6(t, withPre(a)), want: Held},
					{pkt: v6(t, withPre(b)), want: Done}}
			},
			done:  whole6(t, d, []byte{wire.ProtoUDP, 0, 1, 4, 0, 0, 0, 0}),
			stats: Stats{Ip6ReasmReqds: 3, Ip6ReasmOKs: 1},
		},
		{
			name: "duplicate",
			steps: func(t *testing.T) []step {
				return []step{{pkt: v6(t, b), want: Held}, {pkt: v6(t, b), want: Dropped, why: ReasonDuplicate},
					{pkt: v6(t, a), want: Held}, {pkt: v6(t, c), want: Done}}
			},
			done:  whole,
			stats: Stats{Ip6ReasmReqds: 4, Ip6ReasmOKs: 1, Ip6ReasmDuplicates: 1},
		},
		{
			// RFC 5722: an overlap discards the whole packet.
			name: "overlap",
			steps: func(t *testing.T) []step {
				return []step{{pkt: v6(t, a), want: Held}, {pkt: v6(t, c), want: Held},
					{pkt: v6(t, f6{id: 7, off: 8, more: true, data: d[8:24]}), want: Dropped, why: ReasonOverlap, discarded: true}}
			},
			stats: Stats{Ip6ReasmReqds: 3, Ip6ReasmFails: 1, Ip6ReasmOverlaps: 1},
		},
		{
			// RFC 6946: an atomic fragment is processed alone, and
			// a packet in reassembly with its ID is left alone.
			name: "atomic fragment",
			steps: func(t *testing.T) []step {
				return []step{{pkt: v6(t, a), want: Held}, {pkt: v6(t, f6{id: 7, data: d}), want: Done}}
			},
			done:  whole,
			stats: Stats{Ip6ReasmReqds: 2, Ip6ReasmOKs: 1},
			held:  1,
		},
		{
			name: "atomic fragment after hop-by-hop",
			steps: func(t *testing.T) []step {
				return []step{{pkt: v6(t, f6{id: 7, data: d, pre: hbh}), want: Done}}
			},
			done:  whole6(t, d, []byte{wire.ProtoUDP, 0, 1, 4, 0, 0, 0, 0}),
			stats: Stats{Ip6ReasmReqds: 1, Ip6ReasmOKs: 1},
		},
		{
			// RFC 8200 4.5 and RFC 7112: the first fragment must
			// hold the upper-layer header (20 bytes for TCP).
			name: "first fragment without the whole header chain",
			steps: func(t *testing.T) []step {
				return []step{{pkt: v6(t, f6{id: 7, more: true, data: d[:16], next: wire.ProtoTCP}), want: Dropped,
					why: ReasonIncompleteChain, pp: &ParamProblem{Code: 3}}}
			},
			stats: Stats{Ip6ReasmReqds: 1},
		},
		{
			name: "first fragment whose extension header runs past it",
			steps: func(t *testing.T) []step {
				return []step{{pkt: v6(t, f6{id: 7, more: true, data: append([]byte{wire.ProtoUDP, 2}, d[:6]...), next: wire.ProtoDestOpts}),
					want: Dropped, why: ReasonIncompleteChain, pp: &ParamProblem{Code: 3}}}
			},
			stats: Stats{Ip6ReasmReqds: 1},
		},
		{
			name: "tiny first fragment with the whole chain",
			steps: func(t *testing.T) []step {
				return []step{{pkt: v6(t, f6{id: 7, more: true, data: d[:8]}), want: Held},
					{pkt: v6(t, f6{id: 7, off: 8, data: d[8:]}), want: Done}}
			},
			done:  whole,
			stats: Stats{Ip6ReasmReqds: 2, Ip6ReasmOKs: 1},
		},
		{
			name: "M set and not a multiple of 8",
			steps: func(t *testing.T) []step {
				return []step{{pkt: v6(t, a), want: Held}, {pkt: v6(t, f6{id: 7, off: 16, more: true, data: d[:12]}), want: Dropped,
					why: ReasonNotMultipleOf8, discarded: true, pp: &ParamProblem{Code: 0, Pointer: 4}}}
			},
			stats: Stats{Ip6ReasmReqds: 2, Ip6ReasmFails: 1},
		},
		{
			name: "too big points at the offset",
			steps: func(t *testing.T) []step {
				return []step{{pkt: v6(t, a), want: Held},
					{pkt: v6(t, f6{id: 7, off: 65528, data: d[:16]}), want: Dropped, why: ReasonTooBig, discarded: true,
						pp: &ParamProblem{Code: 0, Pointer: 42}}}
			},
			stats: Stats{Ip6ReasmReqds: 2, Ip6ReasmFails: 1},
		},
		{
			name: "ECN CE with ECT(1)",
			steps: func(t *testing.T) []step {
				return []step{{pkt: v6(t, f6{id: 7, more: true, data: d[:16], tc: 0x03}), want: Held},
					{pkt: v6(t, f6{id: 7, off: 16, data: d[16:], tc: 0x01}), want: Done}}
			},
			done: func() []byte {
				p := whole6(t, d, nil)
				p[1] |= 0x30
				return p
			}(),
			stats: Stats{Ip6ReasmReqds: 2, Ip6ReasmOKs: 1},
		},
		{
			name: "ECN CE with Not-ECT",
			steps: func(t *testing.T) []step {
				return []step{{pkt: v6(t, f6{id: 7, more: true, data: d[:16], tc: 0x03}), want: Held},
					{pkt: v6(t, f6{id: 7, off: 16, data: d[16:]}), want: Dropped, why: ReasonECN, discarded: true}}
			},
			stats: Stats{Ip6ReasmReqds: 2, Ip6ReasmFails: 1},
		},
		{
			name: "not a fragment passes",
			steps: func(t *testing.T) []step {
				return []step{{pkt: whole, want: Pass}, {pkt: whole[:39], want: Pass}, {pkt: []byte{0x70}, want: Pass}}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, done := run(t, Config{}, tc.steps(t))
			checkOutcome(t, r, done, tc.done, tc.stats, tc.held)
		})
	}
}

func TestReassemblyTimeout(t *testing.T) {
	d := pattern(40)
	r := NewReassembler(Config{})
	first := v4(t, f4{id: 1, more: true, data: d[:16]})
	r.Input(first, t0)
	r.Input(v4(t, f4{id: 2, off: 16, more: true, data: d[16:32]}), t0.Add(time.Second))
	r.Input(v6(t, f6{id: 3, more: true, data: d[:16]}), t0.Add(2*time.Second))
	// A later fragment does not push a datagram's deadline back (Linux
	// arms the timer when the queue is made).
	r.Input(v4(t, f4{id: 1, off: 32, data: d[32:]}), t0.Add(29*time.Second))

	if dl, ok := r.Deadline(); !ok || !dl.Equal(t0.Add(DefaultTimeout)) {
		t.Fatalf("Deadline = %v %v, want %v", dl, ok, t0.Add(DefaultTimeout))
	}
	var got []Expired
	collect := func(e Expired) {
		e.First = bytes.Clone(e.First)
		got = append(got, e)
	}
	r.Expire(t0.Add(30*time.Second-1), collect)
	if len(got) != 0 {
		t.Fatalf("expired early: %+v", got)
	}
	r.Expire(t0.Add(31*time.Second), collect)
	// Datagram 1 had its first fragment: the caller gets it to quote
	// in ICMP Time Exceeded. Datagram 2 had not: no ICMP (as Linux).
	if len(got) != 2 || !bytes.Equal(got[0].First, first) || got[1].First != nil || got[0].IPv6 ||
		got[0].Src != src4 || got[0].Dst != dst4 {
		t.Fatalf("expired %+v", got)
	}
	if r.Datagrams() != 1 {
		t.Fatalf("%d datagrams left, want 1", r.Datagrams())
	}
	r.Expire(t0.Add(32*time.Second), collect)
	if len(got) != 3 || !got[2].IPv6 || !bytes.Equal(got[2].First, v6(t, f6{id: 3, more: true, data: d[:16]})) {
		t.Fatalf("expired %+v", got)
	}
	if _, ok := r.Deadline(); ok || r.Datagrams() != 0 || r.Memory() != 0 {
		t.Fatalf("left: %d datagrams, %d bytes", r.Datagrams(), r.Memory())
	}
	want := Stats{IpReasmReqds: 3, IpReasmFails: 2, IpReasmTimeout: 2, Ip6ReasmReqds: 1, Ip6ReasmFails: 1, Ip6ReasmTimeout: 1}
	if s := r.Stats(); s != want {
		t.Fatalf("stats %+v\nwant %+v", s, want)
	}
	// A fragment of an expired datagram starts a new one.
	if res := r.Input(v4(t, f4{id: 1, off: 16, more: true, data: d[16:32]}), t0.Add(40*time.Second)); res.Verdict != Held {
		t.Fatalf("after expiry: %+v", res)
	}
}

func TestReassemblyMemoryBound(t *testing.T) {
	// A flood of first fragments that never complete: memory stays
	// under the bound, the excess is dropped and counted, and once they
	// expire there is room again.
	const bound = 64 << 10
	r := NewReassembler(Config{HighThresh: bound})
	data := pattern(1024)
	held, dropped := 0, 0
	for id := range 200 {
		res := r.Input(v4(t, f4{id: uint16(id), more: true, data: data}), t0)
		switch {
		case res.Verdict == Held:
			held++
		case res.Verdict == Dropped && res.Reason == ReasonMemory:
			dropped++
		default:
			t.Fatalf("fragment %d: %+v", id, res)
		}
		if r.Memory() > bound {
			t.Fatalf("%d bytes held, bound %d", r.Memory(), bound)
		}
	}
	perDatagram := datagramOverhead + fragmentOverhead + 2048 + wire.IPv4HeaderLen
	if held != bound/perDatagram || dropped != 200-held {
		t.Fatalf("held %d dropped %d, want %d held", held, dropped, bound/perDatagram)
	}
	if s := r.Stats(); s.IpReasmFails != uint64(dropped) || s.IpReasmReqds != 200 {
		t.Fatalf("stats %+v", s)
	}
	// A fragment for a datagram already held is refused too (Linux
	// refuses all fragments over the threshold).
	if res := r.Input(v4(t, f4{id: 0, off: 1024, data: data}), t0); res.Reason != ReasonMemory {
		t.Fatalf("fragment of a held datagram over the bound: %+v", res)
	}
	checkMemory(t, r)
	r.Expire(t0.Add(DefaultTimeout), nil)
	if r.Memory() != 0 {
		t.Fatalf("%d bytes held after expiry", r.Memory())
	}
	if res := r.Input(v4(t, f4{id: 1000, more: true, data: data}), t0.Add(DefaultTimeout)); res.Verdict != Held {
		t.Fatalf("after expiry: %+v", res)
	}
}

func TestReassembledPacketValidUntilNextCall(t *testing.T) {
	// The result lives in the Reassembler's buffer, reused.
	d := pattern(64)
	r := NewReassembler(Config{})
	r.Input(v4(t, f4{id: 1, more: true, data: d[:32]}), t0)
	res := r.Input(v4(t, f4{id: 1, off: 32, data: d[32:]}), t0)
	if res.Verdict != Done {
		t.Fatal(res)
	}
	h, p, err := wire.ParseIPv4(res.Packet)
	if err != nil || h.MoreFragments || h.FragOffset != 0 || !bytes.Equal(p, d) {
		t.Fatalf("reassembled %+v %v", h, err)
	}
}
