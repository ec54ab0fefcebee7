package wire

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// TestFastOpenOption checks the Fast Open option both ways: what Linux
// writes (the option last, padded with NOPs to a word) parses back, and an
// option of a length RFC 7413 does not allow is ignored.
func TestFastOpenOption(t *testing.T) {
	cookie := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	for _, tc := range []struct {
		name   string
		cookie []byte
		exp    bool
		wire   string // the option bytes Emit writes after MSS
		str    string
	}{
		{"request", nil, false, "22020101", "FO"},
		{"cookie", cookie, false, "220a0102030405060708" + "0101", "FO 0102030405060708"},
		{"short cookie", cookie[:4], false, "22060102030401" + "01", "FO 01020304"},
		{"experimental request", nil, true, "fe04f989", "FOEXP"},
		{"experimental cookie", cookie, true, "fe0cf9890102030405060708", "FOEXP 0102030405060708"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := TCP{Flags: FlagSYN, Options: TCPOptions{MSS: 1460}}
			h.Options.SetFastOpen(tc.cookie, tc.exp)
			b := make([]byte, TCPHeaderLen+TCPMaxOptionsLen)
			n, err := h.Emit(b)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(b[TCPHeaderLen+4 : n]); got != tc.wire {
				t.Fatalf("emitted %s, want %s", got, tc.wire)
			}
			h2, _, err := ParseTCP(b[:n])
			if err != nil {
				t.Fatal(err)
			}
			o := h2.Options
			if !o.HasFastOpen || o.FastOpenExp != tc.exp || !bytes.Equal(o.FastOpenCookieBytes(), tc.cookie) {
				t.Fatalf("parsed %+v", o)
			}
			list, err := ParseTCPOptionList(b[TCPHeaderLen:n])
			if err != nil {
				t.Fatal(err)
			}
			if got := list[1].String(); got != tc.str {
				t.Fatalf("String %q, want %q", got, tc.str)
			}
		})
	}
	for _, bad := range []string{"2203aa01", "2205aabbcc01", "fe05f989aa010101", "fe06f98aaabb0101", "22140102030405060708090a0b0c0d0e0f101112"} {
		opts, _ := hex.DecodeString(bad)
		var o TCPOptions
		if err := parseTCPOptions(opts, &o); err != nil || o.HasFastOpen {
			t.Errorf("%s: err %v, HasFastOpen %v: want the option ignored", bad, err, o.HasFastOpen)
		}
	}
}
