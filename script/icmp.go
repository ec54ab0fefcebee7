package script

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/synstack/synstack/wire"
)

// Inbound ICMP errors, as packetdrill writes them:
//
//	< icmp TYPE [CODE] [mtu N] [START:END(LEN)]
//
// TYPE and CODE are packetdrill's names (unreachable frag_needed,
// packet_too_big, unreachable host_unreachable...); the message quotes
// the IP header and TCP header of a packet of the connection under test
// from the stack to the peer, whose sequence number is START (in the
// stack's script numbers; 0 if absent) and whose IP length counts LEN
// octets of data. The runner checks no outbound ICMP.

// icmpSpec is an inbound ICMP line.
type icmpSpec struct {
	typ, code string
	mtu       uint32
	seq       uint32
	length    int
}

// icmpFollows reports whether the packet line at the direction token is
// an ICMP one.
func (p *parser) icmpFollows() bool {
	rest := strings.TrimLeft(p.src[p.tok.end:], " \t")
	word, _, _ := strings.Cut(rest, " ")
	return strings.TrimSpace(word) == "icmp"
}

// icmpPacket parses an ICMP packet line from its direction on.
func (p *parser) icmpPacket() *packetSpec {
	ps := &packetSpec{inbound: p.tok.is('<'), win: -1}
	p.next()
	p.icmpMessage(ps)
	return ps
}

// icmpMessage parses an icmp packet line from its "icmp" word on.
func (p *parser) icmpMessage(ps *packetSpec) {
	line := p.tok.line
	if !ps.inbound {
		p.failf(line, "unsupported: outbound icmp packets (the runner checks the stack's TCP packets only)")
		return
	}
	p.next()
	if p.tok.kind != tWord {
		p.unexpected("ICMP type (unreachable, packet_too_big, time_exceeded...)")
		return
	}
	ic := &icmpSpec{typ: p.tok.text}
	p.next()
	if p.tok.kind == tWord && p.tok.text != "mtu" {
		ic.code = p.tok.text
		p.next()
	}
	if !p.optionalUint("mtu", "ICMP MTU", 1<<32-1, func(v int64) { ic.mtu = uint32(v) }) {
		return
	}
	if p.tok.is('[') {
		p.next()
		start, ok := p.expectUint("TCP start sequence number", 1<<32-1)
		if !ok || !p.expectPunct(':') {
			return
		}
		end, ok := p.expectUint("TCP end sequence number", 1<<32-1)
		if !ok || !p.expectPunct('(') {
			return
		}
		n, ok := p.expectUint("TCP payload size", 1<<16-1)
		if !ok || !p.expectPunct(')') || !p.expectPunct(']') {
			return
		}
		if uint32(end) != uint32(start+n) {
			p.failf(line, "semantic error: inconsistent TCP sequence numbers and payload size")
			return
		}
		ic.seq, ic.length = uint32(start), int(n)
	}
	ps.icmp = ic
}

// ICMP types and codes by packetdrill's names, for IPv4 and IPv6.
var (
	icmpv4Types = map[string]uint8{"unreachable": wire.ICMPv4DestUnreachable, "time_exceeded": wire.ICMPv4TimeExceeded,
		"source_quench": 4, "redirect": 5, "parameter_problem": 12}
	icmpv4Codes = map[string]uint8{"net_unreachable": 0, "host_unreachable": 1, "protocol_unreachable": 2,
		"port_unreachable": 3, "frag_needed": wire.ICMPv4FragNeeded, "source_route_failed": 5, "net_unknown": 6,
		"host_unknown": 7, "source_host_isolated": 8, "net_prohibited": 9, "host_prohibited": 10,
		"net_unreachable_for_tos": 11, "host_unreachable_for_tos": 12, "packet_filtered": 13,
		"precedence_violation": 14, "precedence_cutoff": 15}
	icmpv6Types = map[string]uint8{"unreachable": wire.ICMPv6DestUnreachable, "packet_too_big": wire.ICMPv6PacketTooBig,
		"time_exceeded": wire.ICMPv6TimeExceeded, "parameter_problem": wire.ICMPv6ParamProblem}
	icmpv6Codes = map[string]uint8{"no_route": 0, "admin_prohibited": 1, "beyond_scope": 2,
		"address_unreachable": 3, "port_unreachable": 4}
)

// icmpCodeDefault is what an undefined CODE reads as: packetdrill's
// run_all.py defines CODE=host_unreachable for its IPv4 runs.
const icmpCodeDefault = "host_unreachable"

// icmpTypeCode resolves the names of ic for the script's IP version.
func icmpTypeCode(ic *icmpSpec, v6 bool) (typ, code uint8, err error) {
	types, codes := icmpv4Types, icmpv4Codes
	if v6 {
		types, codes = icmpv6Types, icmpv6Codes
	}
	typ, ok := types[ic.typ]
	if !ok {
		return 0, 0, fmt.Errorf("unknown ICMP type %s", ic.typ)
	}
	name := ic.code
	if name == "CODE" && !v6 {
		name = icmpCodeDefault
	}
	if name != "" {
		if code, ok = codes[name]; !ok {
			return 0, 0, fmt.Errorf("unknown ICMP code %s", ic.code)
		}
	}
	return typ, code, nil
}

// injectICMP sends an inbound ICMP error about the connection under test
// to the stack: from the peer's address, quoting a packet the stack sent
// it.
func (r *runner) injectICMP(e *event) error {
	ic := e.packet.icmp
	s := r.sutFor()
	v6 := r.localIP.Is6()
	typ, code, err := icmpTypeCode(ic, v6)
	if err != nil {
		return r.errf(e.line, "%v", err)
	}
	local, remote := s.local, s.remote
	if !local.Addr().IsValid() {
		local = netip.AddrPortFrom(r.localIP, local.Port())
	}
	_, localOff := s.offsets(false)
	t := wire.TCP{SrcPort: local.Port(), DstPort: remote.Port(), Seq: ic.seq + localOff, Flags: wire.FlagACK}
	quoted, err := quotedPacket(t, local, remote, ic.length)
	if err != nil {
		return r.errf(e.line, "cannot build packet: %v", err)
	}
	h := wire.ICMP{Type: typ, Code: code, Rest: ic.mtu}
	msg := make([]byte, wire.ICMPHeaderLen+len(quoted))
	src, dst := remote.Addr(), local.Addr()
	var pkt []byte
	if v6 {
		if _, err = h.EmitV6(msg, quoted, src, dst); err == nil {
			ip := wire.IPv6{NextHeader: wire.ProtoICMPv6, HopLimit: 64, Src: src, Dst: dst}
			pkt = make([]byte, wire.IPv6HeaderLen+len(msg))
			_, err = ip.Emit(pkt, len(msg))
		}
	} else {
		if _, err = h.EmitV4(msg, quoted); err == nil {
			ip := wire.IPv4{TTL: 64, Protocol: wire.ProtoICMP, Src: src, Dst: dst}
			pkt = make([]byte, wire.IPv4HeaderLen+len(msg))
			_, err = ip.Emit(pkt, len(msg))
		}
	}
	if err != nil {
		return r.errf(e.line, "cannot build packet: %v", err)
	}
	copy(pkt[len(pkt)-len(msg):], msg)
	r.lnk.deliver(pkt)
	return nil
}

// quotedPacket is what an ICMP error quotes of a packet from local to
// remote: its IP header, whose length counts n octets of data after the
// TCP header, and the TCP header t.
func quotedPacket(t wire.TCP, local, remote netip.AddrPort, n int) ([]byte, error) {
	th := make([]byte, t.HeaderLen())
	if _, err := t.Emit(th); err != nil {
		return nil, err
	}
	src, dst := local.Addr(), remote.Addr()
	var b []byte
	var err error
	if src.Is4() {
		ip := wire.IPv4{TTL: 64, Protocol: wire.ProtoTCP, Src: src, Dst: dst}
		b = make([]byte, wire.IPv4HeaderLen+len(th))
		_, err = ip.Emit(b, len(th)+n)
	} else {
		ip := wire.IPv6{NextHeader: wire.ProtoTCP, HopLimit: 64, Src: src, Dst: dst}
		b = make([]byte, wire.IPv6HeaderLen+len(th))
		_, err = ip.Emit(b, len(th)+n)
	}
	copy(b[len(b)-len(th):], th)
	return b, err
}
