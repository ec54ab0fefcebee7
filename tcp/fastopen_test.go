package tcp

import (
	"bytes"
	"testing"
)

var testCookie = []byte{1, 2, 3, 4, 5, 6, 7, 8}

// fastOpenNet has A open a Fast Open connection to a listening B, which
// takes the SYN's data when take is set; the SYN and the SYN,ACK are
// delivered, the final ACK is not.
func fastOpenNet(t *testing.T, take bool, data string) *testNet {
	t.Helper()
	n := newNet(t, nil)
	n.b.c.Listen()
	n.b.c.SetFastOpenReply(FastOpenReply{TakeData: take})
	k, err := n.a.c.ConnectFastOpen(n.now, FastOpenRequest{Cookie: testCookie, PeerMSS: 1460}, []byte(data))
	if err != nil || k != len(data) {
		t.Fatalf("ConnectFastOpen = %d, %v; want %d", k, err, len(data))
	}
	syn := n.a.out[0]
	if !syn.Options.HasFastOpen || !bytes.Equal(syn.Options.FastOpenCookieBytes(), testCookie) || string(syn.Payload) != data {
		t.Fatalf("SYN %s carries %+v, %q", fmtSeg(&syn), syn.Options, syn.Payload)
	}
	n.deliver(n.a)
	return n
}

// TestFastOpenServerTakesData: a good cookie's data is readable in
// SYN_RCVD, the SYN,ACK acknowledges it, the server may write at once,
// and both ends report TCPI_OPT_SYN_DATA.
func TestFastOpenServerTakesData(t *testing.T) {
	n := fastOpenNet(t, true, "hello")
	synAck := n.b.out[0]
	if synAck.ACK != n.a.c.ISS().Add(6) || synAck.Options.HasFastOpen {
		t.Fatalf("SYN,ACK %s %+v: want it to acknowledge the data, without a cookie", fmtSeg(&synAck), synAck.Options)
	}
	buf := make([]byte, 16)
	if k, err := n.b.c.Read(n.now, buf); err != nil || string(buf[:k]) != "hello" || n.b.c.State() != SynRcvd {
		t.Fatalf("server read %q, %v in %s", buf[:k], err, n.b.c.State())
	}
	if k, err := n.b.c.Write(n.now, []byte("world")); err != nil || k != 5 {
		t.Fatalf("server write in SYN_RCVD = %d, %v", k, err)
	}
	n.settle()
	if n.a.c.State() != Established || n.b.c.State() != Established {
		t.Fatalf("A %s, B %s\n%s", n.a.c.State(), n.b.c.State(), n.dump())
	}
	if k, _ := n.a.c.Read(n.now, buf); string(buf[:k]) != "world" {
		t.Fatalf("client read %q", buf[:k])
	}
	for _, e := range []*end{n.a, n.b} {
		if inf := e.c.Info(n.now); inf.Options&tcpiOptSynData == 0 || inf.FastOpenClientFail != 0 {
			t.Errorf("%s: tcpi_options %#x, client fail %d", e.name, inf.Options, inf.FastOpenClientFail)
		}
	}
	if c := n.a.c.cfg.Counters; c.FastOpenActive != 1 || c.FastOpenActiveFail != 0 {
		t.Errorf("client counters %+v", *c)
	}
}

// TestFastOpenDataNotAcked: a server that does not take the data
// acknowledges the SYN alone; the client sends the data after the
// handshake, the ACK riding on it, and reports TFO_DATA_NOT_ACKED.
func TestFastOpenDataNotAcked(t *testing.T) {
	n := fastOpenNet(t, false, "hello")
	if synAck := n.b.out[0]; synAck.ACK != n.a.c.ISS().Add(1) {
		t.Fatalf("SYN,ACK %s: want it to acknowledge the SYN alone", fmtSeg(&synAck))
	}
	n.deliver(n.b)
	if len(n.a.out) != 1 || string(n.a.out[0].Payload) != "hello" || n.a.out[0].SEQ != n.a.c.ISS().Add(1) {
		t.Fatalf("after the SYN,ACK the client sent\n%s", n.dump())
	}
	n.settle()
	buf := make([]byte, 16)
	if k, _ := n.b.c.Read(n.now, buf); string(buf[:k]) != "hello" {
		t.Fatalf("server read %q\n%s", buf[:k], n.dump())
	}
	inf := n.a.c.Info(n.now)
	if inf.Options&tcpiOptSynData != 0 || inf.FastOpenClientFail != FastOpenFailDataNotAcked {
		t.Errorf("tcpi_options %#x, client fail %d", inf.Options, inf.FastOpenClientFail)
	}
	if c := n.a.c.cfg.Counters; c.FastOpenActive != 1 || c.FastOpenActiveFail != 1 {
		t.Errorf("client counters %+v", *c)
	}
}

// TestFastOpenSynTimeout: a SYN with data that times out goes again
// plain, without the option and the data, which follows the handshake.
func TestFastOpenSynTimeout(t *testing.T) {
	n := newNet(t, nil)
	if _, err := n.a.c.ConnectFastOpen(n.now, FastOpenRequest{Cookie: testCookie}, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	n.drop(n.a)
	n.now = n.a.c.Deadline()
	n.a.c.Tick(n.now)
	if len(n.a.out) != 1 || len(n.a.out[0].Payload) != 0 || n.a.out[0].Options.HasFastOpen {
		t.Fatalf("retransmitted SYN\n%s", n.dump())
	}
	n.b.c.Listen()
	n.settle()
	buf := make([]byte, 4)
	if k, _ := n.b.c.Read(n.now, buf); string(buf[:k]) != "hi" {
		t.Fatalf("server read %q\n%s", buf[:k], n.dump())
	}
	if f := n.a.c.Info(n.now).FastOpenClientFail; f != FastOpenFailSynRetransmitted {
		t.Errorf("client fail %d", f)
	}
}

// TestFastOpenCookieRequest: without a cookie the SYN asks for one and
// carries no data; the cookie of the SYN,ACK is kept for the stack.
func TestFastOpenCookieRequest(t *testing.T) {
	n := newNet(t, nil)
	n.b.c.Listen()
	n.b.c.SetFastOpenReply(FastOpenReply{Cookie: testCookie})
	if k, err := n.a.c.ConnectFastOpen(n.now, FastOpenRequest{}, []byte("data")); k != 0 || err != nil {
		t.Fatalf("ConnectFastOpen = %d, %v", k, err)
	}
	if syn := n.a.out[0]; !syn.Options.HasFastOpen || syn.Options.FastOpenLen != 0 || len(syn.Payload) != 0 {
		t.Fatalf("SYN %+v", syn.Options)
	}
	n.settle()
	cookie, _, mss, ok := n.a.c.FastOpenCookie()
	if !ok || !bytes.Equal(cookie, testCookie) || mss != defaultMSS {
		t.Fatalf("cookie %x, mss %d, ok %v\n%s", cookie, mss, ok, n.dump())
	}
	if f := n.a.c.Info(n.now).FastOpenClientFail; f != FastOpenFailNoCookie {
		t.Errorf("client fail %d", f)
	}
}

// TestFastOpenResendIsRetransmission: the SYN's data a SYN,ACK leaves
// unacknowledged goes again as a retransmission, as Linux marks it lost
// and resends it (tcpi_retrans, tcpi_total_retrans), and only its last
// segment carries PSH, as the SYN's one buffer carried it.
func TestFastOpenResendIsRetransmission(t *testing.T) {
	n := newNet(t, nil)
	n.b.c.ownConfig()
	n.b.c.cfg.MSS = 500 // B announces 500: the data goes again in three segments
	n.b.c.Listen()
	data := bytes.Repeat([]byte("x"), 1200)
	if _, err := n.a.c.ConnectFastOpen(n.now, FastOpenRequest{Cookie: testCookie, PeerMSS: 1460}, data); err != nil {
		t.Fatal(err)
	}
	n.deliver(n.a) // B does not take the data: its SYN,ACK acknowledges the SYN
	n.deliver(n.b)
	out := n.a.out
	if len(out) != 3 {
		t.Fatalf("after the SYN,ACK the client sent\n%s", n.dump())
	}
	for i, s := range out {
		if got, want := s.Flags&flagPSH != 0, i == len(out)-1; got != want {
			t.Errorf("segment %s: PSH %v, want %v", fmtSeg(&s), got, want)
		}
	}
	inf := n.a.c.Info(n.now)
	if inf.Retrans != 3 || inf.TotalRetrans != 3 {
		t.Errorf("tcpi_retrans %d, tcpi_total_retrans %d; want 3 and 3", inf.Retrans, inf.TotalRetrans)
	}
	n.settle()
	if inf := n.a.c.Info(n.now); inf.Retrans != 0 || inf.Unacked != 0 {
		t.Errorf("once acknowledged: tcpi_retrans %d, tcpi_unacked %d", inf.Retrans, inf.Unacked)
	}
}

// TestFastOpenResendEntersLoss: sending again the SYN's data a SYN,ACK
// left unacknowledged puts the client in the loss state (tcpi_ca_state
// 4) with neither window nor ssthresh reduced, as Linux's
// tcp_non_congestion_loss_retransmit; the ACK of that data ends the state
// (tcpi_ca_state 0), nothing reduced either, and nothing to undo.
func TestFastOpenResendEntersLoss(t *testing.T) {
	n := newNet(t, nil)
	n.b.c.Listen()
	if _, err := n.a.c.ConnectFastOpen(n.now, FastOpenRequest{Cookie: testCookie, PeerMSS: 1460}, bytes.Repeat([]byte("x"), 1000)); err != nil {
		t.Fatal(err)
	}
	before := n.a.c.Info(n.now)
	n.deliver(n.a) // B does not take the data
	n.deliver(n.b)
	if len(n.a.out) != 1 || len(n.a.out[0].Payload) != 1000 {
		t.Fatalf("after the SYN,ACK the client sent\n%s", n.dump())
	}
	inf := n.a.c.Info(n.now)
	if inf.CAState != 4 || inf.Cwnd != before.Cwnd || inf.Ssthresh != before.Ssthresh {
		t.Errorf("after the resend: ca_state %d, cwnd %d, ssthresh %d; want 4, %d, %d",
			inf.CAState, inf.Cwnd, inf.Ssthresh, before.Cwnd, before.Ssthresh)
	}
	n.settle()
	inf = n.a.c.Info(n.now)
	if inf.CAState != 0 || inf.Cwnd < before.Cwnd || inf.Ssthresh != before.Ssthresh || inf.Unacked != 0 {
		t.Errorf("once acknowledged: ca_state %d, cwnd %d, ssthresh %d, unacked %d; want 0, at least %d, %d, 0",
			inf.CAState, inf.Cwnd, inf.Ssthresh, inf.Unacked, before.Cwnd, before.Ssthresh)
	}
	if c := n.a.c.cfg.Counters; c.LossUndo+c.FullUndo != 0 {
		t.Errorf("undone: %+v", *c)
	}
}
