package frag

import (
	"errors"

	"github.com/synstack/synstack/wire"
)

// Errors of a Fragmenter, besides the wire parse errors of a malformed
// packet and what the emit function returns.
var (
	// ErrDontFragment: an IPv4 packet with DF set is larger than the
	// MTU. The caller reports EMSGSIZE, or sends ICMP "fragmentation
	// needed" when forwarding (RFC 1191).
	ErrDontFragment = errors.New("frag: packet too big and DF set")
	// ErrMTU: the MTU leaves no room for 8 bytes of data after the
	// headers every fragment repeats.
	ErrMTU = errors.New("frag: MTU too small to fragment")
	// ErrFragmented: an IPv6 packet that already has a Fragment header
	// (only its source fragments an IPv6 packet, RFC 8200 4.5).
	ErrFragmented = errors.New("frag: IPv6 packet already fragmented")
)

// Emit is how a Fragmenter hands over each packet to send: the header it
// built and the data, a slice of the packet given. Neither is kept by the
// Fragmenter past the call, nor may the function keep them. An error stops
// the fragmentation and is returned.
type Emit func(hdr, data []byte) error

// Fragmenter cuts outgoing IP packets larger than the MTU into fragments.
// It does no I/O; the caller serialises the calls. The zero value is ready.
type Fragmenter struct {
	hdr   []byte // the fragment header being built
	opts  []byte // IPv4: the options of fragments after the first
	stats [2]fragStats
}

type fragStats struct{ oks, fails, creates uint64 }

// send hands a fragment whose header was built (with the error err) to
// emit, and counts it: created, or the datagram failed.
func (st *fragStats) send(emit Emit, hdr, data []byte, err error) error {
	if err == nil {
		err = emit(hdr, data)
	}
	if err != nil {
		st.fails++
		return err
	}
	st.creates++
	return nil
}

// Stats returns the fragmentation counters.
func (f *Fragmenter) Stats() Stats {
	v4, v6 := &f.stats[ipv4], &f.stats[ipv6]
	return Stats{
		IpFragOKs: v4.oks, IpFragFails: v4.fails, IpFragCreates: v4.creates,
		Ip6FragOKs: v6.oks, Ip6FragFails: v6.fails, Ip6FragCreates: v6.creates,
	}
}

// FragmentIPv4 sends the IPv4 packet pkt over a link with the given MTU: as
// it is (emit(pkt, nil)) if it fits, else in fragments (RFC 791): each
// carries up to the MTU, data at offsets that are multiples of 8, and the
// original's header with its options in the first fragment and only the
// copied options in the others, No Operations in place of the rest
// (wire.IPv4FragmentOptions, as Linux). A packet that is itself a fragment
// (a forwarder refragmenting) keeps its offset and its MF on the last
// piece. A packet with DF set that does not fit fails with ErrDontFragment
// and counts in IpFragFails.
func (f *Fragmenter) FragmentIPv4(pkt []byte, mtu int, emit Emit) error {
	h, data, err := wire.ParseIPv4(pkt)
	if err != nil && err != wire.ErrFragment {
		return err
	}
	pkt = pkt[:h.TotalLen]
	if len(pkt) <= mtu {
		return emit(pkt, nil)
	}
	st := &f.stats[ipv4]
	if h.DontFragment {
		st.fails++
		return ErrDontFragment
	}
	hl := h.HeaderLen
	chunk := (mtu - hl) &^ 7
	if chunk < 8 {
		st.fails++
		return ErrMTU
	}
	opts := pkt[wire.IPv4HeaderLen:hl]
	f.opts = grow(f.opts, len(opts))
	wire.IPv4FragmentOptions(f.opts, opts)
	f.hdr = grow(f.hdr, hl)
	fh := h
	for off := 0; off < len(data); off += chunk {
		n := min(chunk, len(data)-off)
		fh.FragOffset = h.FragOffset + uint16(off)
		fh.MoreFragments = off+n < len(data) || h.MoreFragments
		o := f.opts
		if off == 0 {
			o = opts
		}
		_, err := fh.EmitWithOptions(f.hdr, o, n) // cannot fail: the header was parsed
		if err := st.send(emit, f.hdr, data[off:off+n], err); err != nil {
			return err
		}
	}
	st.oks++
	return nil
}

// FragmentIPv6 sends the IPv6 packet pkt over a link with the given MTU: as
// it is (emit(pkt, nil)) if it fits, else in fragments (RFC 8200 4.5): each
// repeats the unfragmentable part (the IPv6 header, Hop-by-Hop and Routing
// headers) followed by a Fragment header with the identification id, and
// carries up to the MTU of the rest at offsets that are multiples of 8. The
// caller picks id (RFC 7739: hard to predict). A packet that already has a
// Fragment header fails with ErrFragmented.
func (f *Fragmenter) FragmentIPv6(pkt []byte, mtu int, id uint32, emit Emit) error {
	h, _, err := wire.ParseIPv6(pkt)
	if err == wire.ErrFragment {
		return ErrFragmented
	}
	if err != nil {
		return err
	}
	pkt = pkt[:wire.IPv6HeaderLen+int(h.PayloadLen)]
	if len(pkt) <= mtu {
		return emit(pkt, nil)
	}
	st := &f.stats[ipv6]
	unfrag, nextAt, err := wire.IPv6Unfragmentable(pkt)
	if err != nil {
		st.fails++
		return err
	}
	hl := unfrag + wire.IPv6FragmentLen
	chunk := (mtu - hl) &^ 7
	if chunk < 8 {
		st.fails++
		return ErrMTU
	}
	f.hdr = grow(f.hdr, hl)
	copy(f.hdr, pkt[:unfrag])
	fr := wire.IPv6Fragment{NextHeader: pkt[nextAt], ID: id}
	f.hdr[nextAt] = wire.ProtoFragment
	h.NextHeader = f.hdr[6]
	data := pkt[unfrag:]
	for off := 0; off < len(data); off += chunk {
		n := min(chunk, len(data)-off)
		fr.FragOffset = uint16(off)
		fr.MoreFragments = off+n < len(data)
		// Neither can fail: the addresses were parsed, the lengths
		// are under 65,535 and off a multiple of 8.
		_, err := h.Emit(f.hdr, hl-wire.IPv6HeaderLen+n)
		if err == nil {
			_, err = fr.Emit(f.hdr[unfrag:])
		}
		if err := st.send(emit, f.hdr, data[off:off+n], err); err != nil {
			return err
		}
	}
	st.oks++
	return nil
}
