package main

import (
	"slices"
	"strings"
	"testing"
)

// playConnOf returns host's connection with a peer (not the listener).
func playConnOf(t *testing.T, s playState, host string) playConnView {
	t.Helper()
	for _, h := range s.Hosts {
		for _, c := range h.Conns {
			if h.Name == host && c.Remote != "" {
				return c
			}
		}
	}
	t.Fatalf("host %s has no connection: %+v", host, s.Hosts)
	return playConnView{}
}

// TestPlayViews checks what the page draws from: each connection's path
// through the state diagram, its sequence spaces, and the counters. The
// two ends' numbers must agree as RFC 9293 says once nothing is in
// flight: A's SND.UNA = SND.NXT = B's RCV.NXT, and the other way; ISS
// and IRS cross over. Every packet carries its header fields.
func TestPlayViews(t *testing.T) {
	c := newPlayClient(t)
	st := c.post("/api/load", playLoad{Session: playHandshakeSession}, false).State
	if f := st.Events; len(f) == 0 {
		t.Fatal("no ladder")
	}
	check := func(st playState, sentA, sentB uint32, finA, finB uint32) {
		t.Helper()
		a, b := playConnOf(t, st, "A"), playConnOf(t, st, "B")
		if a.Seq == nil || b.Seq == nil {
			t.Fatalf("no sequence spaces: %+v %+v", a, b)
		}
		sa, sb := *a.Seq, *b.Seq
		if sa.ISS != sb.IRS || sa.IRS != sb.ISS {
			t.Errorf("ISS and IRS do not cross: A %+v, B %+v", sa, sb)
		}
		if sa.SndUna != sa.SndNxt || sa.SndNxt != sb.RcvNxt || sa.SndUna != sa.ISS+1+sentA+finA {
			t.Errorf("A's send space %+v against B's RCV.NXT %d: want all equal to ISS+1+%d", sa, sb.RcvNxt, sentA+finA)
		}
		if sb.SndUna != sb.SndNxt || sb.SndNxt != sa.RcvNxt || sb.SndUna != sb.ISS+1+sentB+finB {
			t.Errorf("B's send space %+v against A's RCV.NXT %d: want all equal to ISS+1+%d", sb, sa.RcvNxt, sentB+finB)
		}
		if sa.SndWnd != sb.RcvWnd || sa.RcvWnd == 0 {
			t.Errorf("A's SND.WND %d, B's RCV.WND %d: want equal and open", sa.SndWnd, sb.RcvWnd)
		}
	}
	check(st, 0, 0, 0, 0)
	a := playConnOf(t, st, "A")
	if !slices.Equal(a.Path, []string{"LISTEN", "SYN_RCVD", "ESTABLISHED"}) || len(a.FDs) != 1 || a.FDs[0] != 4 {
		t.Errorf("A's connection: path %v, fds %v; want LISTEN SYN_RCVD ESTABLISHED on fd 4", a.Path, a.FDs)
	}
	// Half a write in flight: SND.NXT is ahead of SND.UNA.
	r := c.post("/api/call", playCall{Host: "A", Op: "write", FD: 4, N: 300}, false)
	a = playConnOf(t, r.State, "A")
	if a.Seq.SndNxt-a.Seq.SndUna != 300 {
		t.Errorf("300 bytes in flight: SND.UNA %d, SND.NXT %d", a.Seq.SndUna, a.Seq.SndNxt)
	}
	c.post("/api/net", playNet{Op: "deliver-all"}, false)
	c.post("/api/call", playCall{Host: "B", Op: "write", FD: 3, N: 7}, false)
	st = c.post("/api/net", playNet{Op: "deliver-all"}, false).State
	check(st, 300, 7, 0, 0)
	// B reads and closes: its FIN counts one; A in CLOSE_WAIT has received it.
	c.call("B", "read", 3, 0, "")
	c.call("A", "read", 4, 0, "")
	c.call("B", "close", 3, 0, "")
	c.post("/api/net", playNet{Op: "deliver-all"}, false)
	// A acknowledges the FIN after its delayed-ACK timer, as Linux does.
	c.post("/api/clock", playClock{Op: "next"}, false)
	st = c.post("/api/net", playNet{Op: "deliver-all"}, false).State
	check(st, 300, 7, 0, 1)
	b := playConnOf(t, st, "B")
	if !slices.Equal(b.Path, []string{"CLOSED", "SYN_SENT", "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2"}) || len(b.FDs) != 0 {
		t.Errorf("B's connection: path %v, fds %v", b.Path, b.FDs)
	}
	if a = playConnOf(t, st, "A"); a.State != "CLOSE_WAIT" {
		t.Errorf("A's connection is %s, want CLOSE_WAIT", a.State)
	}
	var names []string
	for _, h := range st.Hosts {
		for _, f := range h.Counters {
			names = append(names, h.Name+"."+f.Name)
		}
	}
	if all := strings.Join(names, " "); !strings.Contains(all, "A.TcpPassiveOpens") || !strings.Contains(all, "B.TcpActiveOpens") {
		t.Errorf("counters: %s", all)
	}
	// A packet's fields.
	r = c.call("A", "close", 4, 0, "")
	fields := map[string]string{}
	for _, f := range r.State.Flight[0].Fields {
		fields[f.Name] = f.Value
	}
	if fields["flags"] != "FIN,ACK" || fields["source"] != "10.0.0.1" || fields["destination port"] == "" || fields["TTL"] == "" {
		t.Errorf("the FIN's fields: %v", fields)
	}
}
