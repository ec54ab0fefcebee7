package engine

import (
	"sync"
	"time"

	"github.com/synstack/synstack/clock"
	"github.com/synstack/synstack/internal/frag"
	"github.com/synstack/synstack/nstat"
	"github.com/synstack/synstack/wire"
)

// IP reassembly (RFC 791, RFC 8200 section 4.5, with Linux's limits and
// rules: internal/frag). Fragments take a branch off the receive path: the
// host's one Reassembler sits behind a mutex of its own, a leaf taken with
// no other lock held, and a datagram it completes goes back to the top of
// the path as if it had arrived whole. A clock timer expires datagrams
// that do not complete in time (30 s), answering each whose first fragment
// came with an ICMP time exceeded, as Linux does.
type reasmState struct {
	mu      sync.Mutex
	r       *frag.Reassembler
	timer   clock.Timer
	armedAt time.Time // when timer fires, if armed
	armed   bool
}

// reassemble gives a fragment to the Reassembler and returns the whole
// datagram if the fragment completed one, else nil; a fragment RFC 8200
// says to answer with an ICMPv6 Parameter Problem is answered (rate
// limited, as the host's other ICMP errors). It takes reasm.mu, then ctl
// for an answer.
func (s *Host) reassemble(p *rxPacket, now time.Time) []byte {
	st := &s.udp.stats
	st.ipInReceives.Add(1)
	s.packetHook("in", p.pkt)
	whole, pp := s.reassembleLocked(p, now)
	if pp != nil && s.udp.icmp.allow(p.src, now) {
		h := wire.ICMP{Type: wire.ICMPv6ParamProblem, Code: pp.Code, Rest: pp.Pointer}
		s.ctl.Lock()
		if !s.closed && s.sendICMPErrorLocked(p.dst, p.src, h, p.pkt) {
			s.g().stats.Icmp6OutParmProblems++
		}
		s.ctl.Unlock()
	}
	return whole
}

// reassembleLocked is reassemble's part under reasm.mu: the datagram
// completed, if any, and the Parameter Problem owed, if any.
func (s *Host) reassembleLocked(p *rxPacket, now time.Time) ([]byte, *frag.ParamProblem) {
	st := &s.udp.stats
	ra := &s.reasm
	ra.mu.Lock()
	defer ra.mu.Unlock()
	if ra.r == nil {
		ra.r = frag.NewReassembler(frag.Config{})
	}
	res := ra.r.Input(p.pkt, now)
	s.armReassemblyLocked()
	switch res.Verdict {
	case frag.Done:
		// A fresh buffer: the packet may be queued (UDP) after the lock
		// is gone.
		return append([]byte(nil), res.Packet...), nil
	case frag.Dropped:
		if res.ParamProblem != nil {
			st.ip6InHdrErrors.Add(1)
			pp := *res.ParamProblem
			return nil, &pp
		}
	case frag.Pass:
		st.ipInHdrErrors.Add(1) // not a fragment after all: malformed
	}
	return nil, nil
}

// armReassemblyLocked arms the timer for the Reassembler's next deadline.
// Under reasm.mu.
func (s *Host) armReassemblyLocked() {
	ra := &s.reasm
	at, ok := ra.r.Deadline()
	if !ok || ra.armed && !at.Before(ra.armedAt) {
		return
	}
	d := max(at.Sub(s.clock.Now()), 0)
	if ra.timer == nil {
		ra.timer = s.clock.AfterFunc(d, s.expireFragments)
	} else {
		ra.timer.Reset(d)
	}
	ra.armed, ra.armedAt = true, at
}

// expireFragments drops the datagrams whose time is up and answers each
// whose first fragment came with an ICMP time exceeded ("fragment
// reassembly time exceeded"), rate limited as the host's other ICMP errors.
func (s *Host) expireFragments() {
	now := s.clock.Now()
	ra := &s.reasm
	var firsts []frag.Expired
	ra.mu.Lock()
	ra.armed = false
	if ra.r != nil {
		ra.r.Expire(now, func(e frag.Expired) {
			if e.First != nil && len(firsts) < maxExpiredAnswers {
				e.First = append([]byte(nil), e.First...)
				firsts = append(firsts, e)
			}
		})
		s.armReassemblyLocked()
	}
	ra.mu.Unlock()
	for _, e := range firsts {
		if !s.udp.icmp.allow(e.Src, now) {
			continue
		}
		h := wire.ICMP{Type: wire.ICMPv4TimeExceeded, Code: icmpFragTimeExceeded}
		if e.IPv6 {
			h.Type = wire.ICMPv6TimeExceeded
		}
		s.ctl.Lock()
		if !s.closed && s.sendICMPErrorLocked(e.Dst, e.Src, h, e.First) {
			if e.IPv6 {
				s.g().stats.Icmp6OutTimeExcds++
			} else {
				s.g().stats.IcmpOutTimeExcds++
			}
		}
		s.ctl.Unlock()
	}
}

// icmpFragTimeExceeded is Time Exceeded's code 1, "fragment reassembly
// time exceeded", in ICMPv4 (RFC 792) and ICMPv6 (RFC 4443).
const icmpFragTimeExceeded = 1

// maxExpiredAnswers bounds the time exceeded messages one expiry sends
// (the rate limits bound them too).
const maxExpiredAnswers = 64

// addReasmStats adds the fragmentation and reassembly counters to st.
// Under ctl (the fragmenter's).
func (s *Host) addReasmStats(st *nstat.Counters) {
	ra := &s.reasm
	ra.mu.Lock()
	var rs frag.Stats
	if ra.r != nil {
		rs = ra.r.Stats()
	}
	ra.mu.Unlock()
	fs := s.fragmenter.Stats()
	st.IpReasmReqds += rs.IpReasmReqds
	st.IpReasmOKs += rs.IpReasmOKs
	st.IpReasmFails += rs.IpReasmFails
	st.IpReasmTimeout += rs.IpReasmTimeout
	st.IpExtReasmOverlaps += rs.IpExtReasmOverlaps
	st.Ip6ReasmReqds += rs.Ip6ReasmReqds
	st.Ip6ReasmOKs += rs.Ip6ReasmOKs
	st.Ip6ReasmFails += rs.Ip6ReasmFails
	st.Ip6ReasmTimeout += rs.Ip6ReasmTimeout
	st.IpFragOKs += fs.IpFragOKs
	st.IpFragFails += fs.IpFragFails
	st.IpFragCreates += fs.IpFragCreates
	st.Ip6FragOKs += fs.Ip6FragOKs
	st.Ip6FragFails += fs.Ip6FragFails
	st.Ip6FragCreates += fs.Ip6FragCreates
}
