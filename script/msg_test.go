package script

import (
	"strings"
	"testing"
)

// TestParseMsghdr reads packetdrill's msghdr syntax: fields written with
// their length, name(N)=value, at any depth.
func TestParseMsghdr(t *testing.T) {
	src := "0 recvmsg(3, {msg_name(...)=..., msg_iov(2)=[{..., 10}, {\"ab\", 5}], msg_flags=MSG_ERRQUEUE|MSG_TRUNC, " +
		"msg_control(32)=[{cmsg_len=20, cmsg_level=SOL_TCP, cmsg_type=TCP_CM_INQ, cmsg_data=7}]}, MSG_ERRQUEUE) = 0\n"
	s, err := parse("t.pkt", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{}
	m, err := r.parseMsghdr(s.events[0].syscall.args[1])
	if err != nil {
		t.Fatal(err)
	}
	if len(m.iov) != 2 || len(m.iov[0]) != 10 || string(m.iov[1]) != "ab\x00\x00\x00" {
		t.Errorf("iov %q", m.iov)
	}
	if f, err := r.msgInt(m.flags); err != nil || f != 0x2000|0x20 {
		t.Errorf("msg_flags %#x, %v", f, err)
	}
	if m.control == nil || len(m.control.args) != 1 {
		t.Fatalf("msg_control %v", m.control)
	}
	for _, bad := range []string{"{msg_iov(1)=3}", "{msg_iov(1)=[{..., -1}]}", "{msg_bogus=1}", "7"} {
		s, err := parse("t.pkt", []byte("0 sendmsg(3, "+bad+", 0) = 0\n"))
		if err != nil {
			t.Fatalf("%s: %v", bad, err)
		}
		if _, err := r.parseMsghdr(s.events[0].syscall.args[1]); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
	// A length-written field outside a struct still fails as before.
	if _, err := parse("t.pkt", []byte("0 close(3) = (\n")); err == nil || !strings.Contains(err.Error(), "parse error") {
		t.Errorf("bad script: %v", err)
	}
}

// TestCmsgFamilySymbols: CMSG_LEVEL_IP and CMSG_TYPE_RECVERR follow the
// script's family, as packetdrill defines them.
func TestCmsgFamilySymbols(t *testing.T) {
	for _, c := range []struct {
		domain     int
		level, typ int64
	}{{linuxAFInet, 0, 11}, {linuxAFInet6, 41, 25}} {
		r := &runner{domain: c.domain}
		l, err1 := r.msgInt(&expr{kind: exWord, word: "CMSG_LEVEL_IP"})
		ty, err2 := r.msgInt(&expr{kind: exWord, word: "CMSG_TYPE_RECVERR"})
		if err1 != nil || err2 != nil || l != c.level || ty != c.typ {
			t.Errorf("domain %d: level %d type %d (%v %v), want %d %d", c.domain, l, ty, err1, err2, c.level, c.typ)
		}
	}
}
