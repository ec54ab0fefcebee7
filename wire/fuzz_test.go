package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

var knownErrors = []error{
	ErrTruncated, ErrBadVersion, ErrBadHeaderLen, ErrBadLength, ErrBadChecksum,
	ErrBadOption, ErrFragment, ErrBadExtHeader, ErrShortBuffer, ErrBadAddress,
	ErrBadValue, ErrOptionsTooLong,
}

func checkKnownError(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, e := range knownErrors {
		if errors.Is(err, e) {
			return
		}
	}
	t.Fatalf("unexpected error %v", err)
}

func FuzzParseIPv4(f *testing.F) {
	f.Add(unhex(f, synPacket))
	f.Add(unhex(f, "4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7"))
	f.Add(unhex(f, "46 00 00 1c 00 07 20 10 20 01 00 00 01 02 03 04 05 06 07 08 01 01 01 00 aa bb cc dd"))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkIPv4(t, data)
		// Same bytes with a correct header checksum, to get past it.
		if len(data) >= IPv4HeaderLen {
			hl := int(data[0]&0x0f) * 4
			if hl >= IPv4HeaderLen && hl <= len(data) {
				c := bytes.Clone(data)
				c[10], c[11] = 0, 0
				binary.BigEndian.PutUint16(c[10:], FoldChecksum(Checksum(c[:hl], 0)))
				if _, _, err := ParseIPv4(c); err == ErrBadChecksum {
					t.Fatal("fixed checksum does not verify")
				}
				checkIPv4(t, c)
			}
		}
	})
}

func checkIPv4(t *testing.T, data []byte) {
	h, payload, err := ParseIPv4(data)
	checkKnownError(t, err)
	if err != nil && err != ErrFragment {
		return
	}
	if int(h.TotalLen) != h.HeaderLen+len(payload) || h.HeaderLen < IPv4HeaderLen {
		t.Fatalf("inconsistent lengths %+v payload %d", h, len(payload))
	}
	b := make([]byte, IPv4HeaderLen+len(payload))
	if _, err := h.Emit(b, len(payload)); err != nil {
		t.Fatalf("Emit(%+v): %v", h, err)
	}
	copy(b[IPv4HeaderLen:], payload)
	h2, p2, err2 := ParseIPv4(b)
	if err2 != err {
		t.Fatalf("reparse error %v, first %v", err2, err)
	}
	want := h
	want.HeaderLen = IPv4HeaderLen
	want.TotalLen = uint16(len(b))
	if h2 != want || !bytes.Equal(p2, payload) {
		t.Fatalf("round trip\ngot  %+v\nwant %+v", h2, want)
	}
}

func FuzzParseIPv6(f *testing.F) {
	f.Add(unhex(f, `6b812345 0004 06 40 20010db8000000000000000000000001 20010db8000000000000000000000002 deadbeef`))
	f.Add(unhex(f, `60000000 0014 00 40 20010db8000000000000000000000001 20010db8000000000000000000000002
		2c000104 00000000 06000001 0000002a 01020304`))
	f.Add(unhex(f, `60000000 0018 3c 40 20010db8000000000000000000000001 20010db8000000000000000000000002
		2b010000 00000000 00000000 00000000 06000000 00000000`))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, payload, err := ParseIPv6(data)
		checkKnownError(t, err)
		if err != nil && err != ErrFragment {
			return
		}
		b := make([]byte, IPv6HeaderLen+len(payload))
		if _, err := h.Emit(b, len(payload)); err != nil {
			t.Fatalf("Emit(%+v): %v", h, err)
		}
		copy(b[IPv6HeaderLen:], payload)
		h2, p2, err2 := ParseIPv6(b)
		if err2 != err {
			t.Fatalf("reparse error %v, first %v", err2, err)
		}
		want := h
		want.PayloadLen = uint16(len(payload))
		if h2 != want || !bytes.Equal(p2, payload) {
			t.Fatalf("round trip\ngot  %+v\nwant %+v", h2, want)
		}
	})
}

func FuzzParseTCP(f *testing.F) {
	f.Add(unhex(f, synPacket)[20:])
	f.Add(tcpWithOptions(unhex(f, "0101080a 00000005 00000006 01010512 00000001 00000002 00000003 00000004"), []byte("data")))
	f.Add(tcpWithOptions(unhex(f, "fe04aabb 02030501 00ff0000"), nil))
	f.Add(tcpWithOptions(unhex(f, "220a0102 03040506 07080101"), []byte("tfo")))
	f.Add(tcpWithOptions(unhex(f, "fe0cf989 01020304 05060708"), nil))
	f.Add(tcpWithOptions(unhex(f, "22020101"), nil))
	// MD5 signatures (RFC 2385): well formed, and a length of 17 and 3.
	f.Add(tcpWithOptions(unhex(f, "01011312 00010203 04050607 08090a0b 0c0d0e0f"), []byte("md5")))
	f.Add(tcpWithOptions(unhex(f, "1311 00010203 04050607 08090a0b 0c0d0e 00"), nil))
	f.Add(tcpWithOptions(unhex(f, "131300 01"), nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, payload, err := ParseTCP(data)
		checkKnownError(t, err)
		var m TCPMD5 // any bytes: a verdict, never a panic
		if m.Valid(data, netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), []byte("key")) && err == nil && !h.Options.HasMD5 {
			t.Fatalf("valid MD5 signature without the option: %x", data)
		}
		if len(data) >= TCPHeaderLen {
			if doff := int(data[12]>>4) * 4; doff >= TCPHeaderLen && doff <= len(data) {
				list, lerr := ParseTCPOptionList(data[TCPHeaderLen:doff])
				if lerr != err {
					t.Fatalf("ParseTCPOptionList err %v, ParseTCP err %v", lerr, err)
				}
				if lerr == nil {
					checkRawOptions(t, list)
				}
			}
		}
		if err != nil {
			return
		}
		_ = h.Flags.String()
		if h.RawOptions != nil || h.Options.NumSACK > 4 {
			t.Fatalf("bad parse %+v", h)
		}
		for i := int(h.Options.NumSACK); i < 4; i++ {
			if h.Options.SACK[i] != (SACKBlock{}) {
				t.Fatalf("stale SACK block %d: %+v", i, h.Options)
			}
		}
		checkTCPRoundTrip(t, h, payload)
	})
}

// checkTCPRoundTrip emits h from its Options struct, reparses it, and
// compares.
func checkTCPRoundTrip(t *testing.T, h TCP, payload []byte) {
	b := make([]byte, TCPHeaderLen+TCPMaxOptionsLen+len(payload))
	n, err := h.Emit(b)
	if err != nil {
		// Linux-ordered padding can need more room than a compact
		// received encoding (e.g. TS+wscale+3 SACK blocks).
		if err == ErrOptionsTooLong && h.OptionsLen() > TCPMaxOptionsLen {
			return
		}
		t.Fatalf("Emit(%+v): %v", h, err)
	}
	if n != h.HeaderLen() || n%4 != 0 {
		t.Fatalf("Emit wrote %d bytes, HeaderLen %d", n, h.HeaderLen())
	}
	seg := append(b[:n], payload...)
	h2, p2, err := ParseTCP(seg)
	if err != nil {
		t.Fatalf("reparse: %v", err)
	}
	want := h
	want.DataOffset = n
	want.Checksum = 0
	if !reflect.DeepEqual(h2, want) || !bytes.Equal(p2, payload) {
		t.Fatalf("round trip\ngot  %+v\nwant %+v", h2, want)
	}
}

// checkRawOptions emits list as RawOptions and checks ParseTCPOptionList
// gives it back (plus an EOL when padding was needed).
func checkRawOptions(t *testing.T, list []TCPOption) {
	_ = FormatOptionList(list)
	h := TCP{RawOptions: list}
	b := make([]byte, TCPHeaderLen+TCPMaxOptionsLen)
	n, err := h.Emit(b)
	if err != nil {
		t.Fatalf("Emit raw %s: %v", FormatOptionList(list), err)
	}
	got, err := ParseTCPOptionList(b[TCPHeaderLen:n])
	if err != nil {
		t.Fatalf("reparse raw: %v", err)
	}
	want := list
	if len(list) > 0 && list[len(list)-1].Kind != OptEOL && rawOptionsLen(list)%4 != 0 {
		want = append(want[:len(want):len(want)], TCPOption{Kind: OptEOL})
	}
	if len(got) != len(want) {
		t.Fatalf("raw round trip %s, want %s", FormatOptionList(got), FormatOptionList(want))
	}
	for i := range got {
		if got[i].Kind != want[i].Kind || !bytes.Equal(got[i].Data, want[i].Data) {
			t.Fatalf("raw round trip %s, want %s", FormatOptionList(got), FormatOptionList(want))
		}
	}
}

func FuzzTCPRoundTrip(f *testing.F) {
	f.Add(uint16(12345), uint16(80), uint32(1000), uint32(0), uint8(FlagSYN), uint16(65535), uint16(0),
		uint16(1460), uint8(0x7), uint8(7), uint32(1), uint32(0), []byte{}, []byte{})
	f.Add(uint16(80), uint16(12345), uint32(1), uint32(2), uint8(FlagACK|FlagPSH), uint16(502), uint16(0),
		uint16(0), uint8(0x4), uint8(0), uint32(100), uint32(200), make([]byte, 24), []byte("hello"))
	f.Add(uint16(1), uint16(2), uint32(0xffffffff), uint32(0xffffffff), uint8(0xff), uint16(0), uint16(0xffff),
		uint16(536), uint8(0x3), uint8(14), uint32(0), uint32(0), make([]byte, 32), []byte{0})
	f.Add(uint16(1), uint16(2), uint32(1), uint32(0), uint8(FlagSYN), uint16(0), uint16(0),
		uint16(1460), uint8(0xf), uint8(8), uint32(5), uint32(0), []byte{1, 2, 3, 4, 5, 6, 7, 8}, []byte("syn data"))
	f.Add(uint16(1), uint16(2), uint32(1), uint32(0), uint8(FlagSYN), uint16(0), uint16(0),
		uint16(1460), uint8(0x1a), uint8(8), uint32(5), uint32(0), []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, sport, dport uint16, seq, ack uint32, flags uint8, win, urg uint16,
		mss uint16, which uint8, wscale uint8, tsval, tsecr uint32, sacks, payload []byte) {
		h := TCP{SrcPort: sport, DstPort: dport, Seq: seq, Ack: ack, Flags: TCPFlags(flags),
			Window: win, Urgent: urg, Options: TCPOptions{MSS: mss}}
		if which&1 != 0 {
			h.Options.HasWScale, h.Options.WScale = true, wscale
		}
		if which&2 != 0 {
			h.Options.SACKPermitted = true
		}
		if which&4 != 0 {
			h.Options.HasTimestamp, h.Options.TSVal, h.Options.TSEcr = true, tsval, tsecr
		}
		if which&8 != 0 {
			// A Fast Open option: a cookie of an even length from 4 to
			// 16 bytes, or a request; which&16 picks the experimental form.
			n := min(len(sacks), FastOpenCookieMax) &^ 1
			if n < FastOpenCookieMin {
				n = 0
			}
			h.Options.SetFastOpen(sacks[:n], which&16 != 0)
			sacks = sacks[n:]
		}
		for len(sacks) >= 8 && h.Options.NumSACK < 4 {
			h.Options.SACK[h.Options.NumSACK] = SACKBlock{
				Left: binary.BigEndian.Uint32(sacks), Right: binary.BigEndian.Uint32(sacks[4:])}
			h.Options.NumSACK++
			sacks = sacks[8:]
		}
		checkTCPRoundTrip(t, h, payload)
	})
}

func FuzzParseICMP(f *testing.F) {
	f.Add(unhex(f, "08 00 33 37 00 01 00 01 61 62 63 64"), false)
	f.Add(unhex(f, "80 00 91 aa 12 34 00 05 70 69 6e 67"), true)
	f.Add(unhex(f, "03 04 00 00 00 00 05 78 45 00 00 3c"), false)
	f.Fuzz(func(t *testing.T, data []byte, v6 bool) {
		parse := func(b []byte) (ICMP, []byte, error) {
			if v6 {
				return ParseICMPv6(b, fe80a, fe80b)
			}
			return ParseICMPv4(b)
		}
		check := func(b []byte) {
			h, body, err := parse(b)
			checkKnownError(t, err)
			if err != nil {
				return
			}
			out := make([]byte, ICMPHeaderLen+len(body))
			var n int
			if v6 {
				n, err = h.EmitV6(out, body, fe80a, fe80b)
			} else {
				n, err = h.EmitV4(out, body)
			}
			if err != nil || n != len(b) {
				t.Fatalf("Emit: %d %v", n, err)
			}
			h2, body2, err := parse(out)
			if err != nil {
				t.Fatalf("reparse: %v", err)
			}
			h2.Checksum = h.Checksum // 0x0000 and 0xffff both verify
			if h2 != h || !bytes.Equal(body2, body) {
				t.Fatalf("round trip %+v, want %+v", h2, h)
			}
		}
		check(data)
		if len(data) >= ICMPHeaderLen {
			c := bytes.Clone(data)
			c[2], c[3] = 0, 0
			var initial uint32
			if v6 {
				initial = PseudoHeaderSum(fe80a, fe80b, ProtoICMPv6, len(c))
			}
			binary.BigEndian.PutUint16(c[2:], FoldChecksum(Checksum(c, initial)))
			if _, _, err := parse(c); err != nil {
				t.Fatalf("fixed checksum: %v", err)
			}
			check(c)
		}
	})
}

func FuzzParseUDP(f *testing.F) {
	f.Add(unhex(f, udpHello), false)
	f.Add(unhex(f, "0001 0002 0008 abcd"), true)
	f.Add(unhex(f, "04d2 0035 000a 0000 e6d0 ffff"), false)
	f.Fuzz(func(t *testing.T, data []byte, v6 bool) {
		src, dst := v4a, v4b
		if v6 {
			src, dst = v6a, v6b
		}
		valid := UDPChecksumValid(data, src, dst)
		h, payload, err := ParseUDP(data)
		checkKnownError(t, err)
		if err != nil {
			if valid {
				t.Fatalf("checksum valid on a datagram ParseUDP refuses: %v", err)
			}
			return
		}
		if int(h.Length) != UDPHeaderLen+len(payload) || int(h.Length) > len(data) {
			t.Fatalf("inconsistent length %+v payload %d", h, len(payload))
		}
		if h.Checksum == 0 && valid != !v6 {
			t.Fatalf("zero checksum: valid %v over v6 %v", valid, v6)
		}
		// Emit, checksum, reparse: the same header and data, and a
		// checksum that verifies and is never 0.
		b := make([]byte, UDPHeaderLen+len(payload))
		if _, err := h.Emit(b, len(payload)); err != nil {
			t.Fatalf("Emit(%+v): %v", h, err)
		}
		copy(b[UDPHeaderLen:], payload)
		SetUDPChecksum(b, src, dst)
		h2, p2, err := ParseUDP(b)
		if err != nil || !UDPChecksumValid(b, src, dst) || h2.Checksum == 0 {
			t.Fatalf("reparse %+v: %v", h2, err)
		}
		h2.Checksum = h.Checksum
		if h2 != h || !bytes.Equal(p2, payload) {
			t.Fatalf("round trip %+v, want %+v", h2, h)
		}
		if h.Checksum != 0 && valid != (refChecksum(data[:h.Length], PseudoHeaderSum(src, dst, ProtoUDP, int(h.Length))) == 0xffff) {
			t.Fatalf("UDPChecksumValid = %v disagrees with the reference", valid)
		}
	})
}

func FuzzIPv6Fragment(f *testing.F) {
	f.Add(unhex(f, "11 00 05a9 00000001 aabb"))
	f.Add(unhex(f, "00 07 07 04 83 07 04 0a 00 00 01 01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// The fragment header round-trips, reserved bits aside.
		h, p, err := ParseIPv6Fragment(data)
		checkKnownError(t, err)
		if err == nil {
			b := make([]byte, IPv6FragmentLen)
			if _, err := h.Emit(b); err != nil {
				t.Fatalf("Emit(%+v): %v", h, err)
			}
			if h2, _, _ := ParseIPv6Fragment(b); h2 != h || len(p) != len(data)-IPv6FragmentLen {
				t.Fatalf("round trip %+v, want %+v", h2, h)
			}
		}
		// The same bytes as IPv4 options: later fragments' options keep
		// the length, and copied options only.
		dst := make([]byte, len(data))
		if n := IPv4FragmentOptions(dst, data); n != len(data) {
			t.Fatalf("IPv4FragmentOptions = %d, want %d", n, len(data))
		}
		// And as what follows an IPv6 header.
		pkt := append(make([]byte, IPv6HeaderLen), data...)
		h6 := IPv6{NextHeader: ProtoHopByHop, Src: v6a, Dst: v6b}
		if len(data) > 0 {
			h6.NextHeader = data[0]
		}
		if _, err := h6.Emit(pkt, len(data)); err != nil {
			t.Fatal(err)
		}
		n, nextAt, err := IPv6Unfragmentable(pkt)
		checkKnownError(t, err)
		if err == nil && (n < IPv6HeaderLen || n > len(pkt) || nextAt >= n || nextAt < 0) {
			t.Fatalf("IPv6Unfragmentable = %d, %d for %d bytes", n, nextAt, len(pkt))
		}
	})
}
