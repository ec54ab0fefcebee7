package wire

import (
	"bytes"
	"crypto/md5"
	"net/netip"
	"testing"
)

// TestTCPMD5OptionEmitParse: Emit writes the MD5 option first, as Linux's
// tcp_options_write ("nop,nop,md5"), and ParseTCP reads it back; a wrong
// length is ignored, as Linux ignores it.
func TestTCPMD5OptionEmitParse(t *testing.T) {
	h := TCP{SrcPort: 1, DstPort: 2, Flags: FlagSYN, Options: TCPOptions{HasMD5: true, MSS: 1460, SACKPermitted: true, HasWScale: true, WScale: 7}}
	b := make([]byte, 60)
	n, err := h.Emit(b)
	if err != nil {
		t.Fatal(err)
	}
	if n != 20+20+4+4+4 {
		t.Fatalf("header length %d", n)
	}
	list, err := ParseTCPOptionList(b[20:n])
	if err != nil {
		t.Fatal(err)
	}
	const want = "nop,nop,md5 00000000000000000000000000000000,mss 1460,nop,nop,sackOK,nop,wscale 7"
	if got := FormatOptionList(list); got != want {
		t.Errorf("options %q, want %q", got, want)
	}
	p, _, err := ParseTCP(b[:n])
	if err != nil || !p.Options.HasMD5 {
		t.Fatalf("parse: %v, HasMD5 %v", err, p.Options.HasMD5)
	}
	for _, bad := range []string{"1311 00010203 04050607 08090a0b 0c0d0e 000000", "0202"} {
		opts := unhex(t, bad)
		if bad == "0202" {
			opts = []byte{OptMD5, 2, OptNOP, OptNOP}
		}
		p, _, err := ParseTCP(tcpWithOptions(opts, nil))
		if err != nil || p.Options.HasMD5 {
			t.Errorf("%s: err %v, HasMD5 %v; want ignored", bad, err, p.Options.HasMD5)
		}
		l, _ := ParseTCPOptionList(opts)
		if s := FormatOptionList(l); !bytes.Contains([]byte(s), []byte("bad-md5-len")) {
			t.Errorf("%s prints %q", bad, s)
		}
	}
}

// TestTCPMD5SignValid: the digest is RFC 2385's (computed here by hand
// for IPv4), Valid takes it with the key and refuses it with another key
// or a changed byte, for IPv4 and IPv6, whole or with the payload apart.
func TestTCPMD5SignValid(t *testing.T) {
	key := []byte("secret")
	payload := []byte("hello")
	for _, pair := range [][2]string{{"10.0.0.1", "10.0.0.2"}, {"fd00::1", "fd00::2"}} {
		src, dst := netip.MustParseAddr(pair[0]), netip.MustParseAddr(pair[1])
		h := TCP{SrcPort: 1000, DstPort: 80, Seq: 7, Ack: 9, Flags: FlagACK | FlagPSH, Window: 100,
			Options: TCPOptions{HasMD5: true, HasTimestamp: true, TSVal: 1, TSEcr: 2}}
		b := make([]byte, 60+len(payload))
		n, err := h.Emit(b)
		if err != nil {
			t.Fatal(err)
		}
		var m TCPMD5
		if !m.Sign(b[:n], payload, src, dst, key) {
			t.Fatal("Sign found no option")
		}
		seg := append(b[:n:n], payload...)
		SetTCPChecksum(seg, src, dst)
		if !m.Valid(seg, src, dst, key) {
			t.Errorf("%v: signed segment not valid", src)
		}
		if src.Is4() {
			var in []byte
			s4, d4 := src.As4(), dst.As4()
			in = append(in, s4[:]...)
			in = append(in, d4[:]...)
			in = append(in, 0, ProtoTCP, 0, byte(len(seg)))
			fixed := append([]byte(nil), seg[:20]...)
			fixed[16], fixed[17] = 0, 0
			in = append(append(append(in, fixed...), payload...), key...)
			if want := md5.Sum(in); !bytes.Equal(seg[24:40], want[:]) {
				t.Errorf("digest %x, want %x", seg[24:40], want)
			}
		}
		if m.Valid(seg, src, dst, []byte("other")) {
			t.Errorf("%v: valid with another key", src)
		}
		seg[len(seg)-1] ^= 1
		if m.Valid(seg, src, dst, key) {
			t.Errorf("%v: valid with a changed byte", src)
		}
		seg[len(seg)-1] ^= 1
		whole := append([]byte(nil), seg...)
		clear(whole[24:40])
		if !m.Sign(whole, nil, src, dst, key) || !bytes.Equal(whole[24:40], seg[24:40]) {
			t.Errorf("%v: signing the whole segment differs", src)
		}
	}
	var m TCPMD5
	plain := tcpWithOptions(nil, []byte("x"))
	if m.Sign(plain[:20], plain[20:], netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), key) ||
		m.Valid(plain, netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), key) {
		t.Error("a segment without the option signed or valid")
	}
}

// TestTCPMD5SignAllocs: signing with a TCPMD5 kept between calls
// allocates nothing.
func TestTCPMD5SignAllocs(t *testing.T) {
	h := TCP{Flags: FlagACK, Options: TCPOptions{HasMD5: true}}
	b := make([]byte, 60)
	n, _ := h.Emit(b)
	src, dst := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	var m TCPMD5
	data, key := []byte("data"), []byte("k")
	m.Sign(b[:n], nil, src, dst, key)
	if a := testing.AllocsPerRun(100, func() { m.Sign(b[:n], data, src, dst, key) }); a != 0 {
		t.Errorf("%v allocations per Sign", a)
	}
}
