package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/admin"
	"github.com/synstack/synstack/link/pipe"
)

// ssSockets is what a synstack with a listener, one connection each way
// of a handshake and one in TIME_WAIT shows at /debug/sockets.
var ssSockets = []admin.Socket{
	{State: "LISTEN", Local: "0.0.0.0:80", Listening: true, RecvQ: 1, SendQ: 128, Congestion: "cubic"},
	{State: "LISTEN", Local: "[::]:443", Listening: true, SendQ: 4096, Congestion: "cubic"},
	{State: "ESTABLISHED", Local: "10.0.0.1:80", Remote: "10.0.0.2:40000", RecvQ: 5, SendQ: 1000,
		Congestion: "cubic", Options: []string{"ts", "sack", "wscale"}, SndWScale: 7, RcvWScale: 8,
		RTO: 204, RTT: 0.352, RTTVar: 0.141, MSS: 1448, AdvMSS: 1460, RcvMSS: 536, Cwnd: 10, Ssthresh: 2147483647,
		SndWnd: 64256, RcvWnd: 65536, Unacked: 1, Retransmits: 1, TotalRetrans: 3, Backoff: 1,
		BytesAcked: 5273, BytesReceived: 3881, SegsOut: 26, SegsIn: 35,
		ATO: 40, PMTU: 1500, RcvSsthresh: 64076, BytesSent: 5400, BytesRetrans: 127, DataSegsOut: 12, DataSegsIn: 9, RcvOOOPack: 2},
	{State: "SYN_RCVD", Local: "10.0.0.1:80", Remote: "10.0.0.3:40001", Congestion: "cubic", MSS: 1448, Cwnd: 10},
	{State: "TIME_WAIT", Local: "10.0.0.1:80", Remote: "10.0.0.2:39999", Orphan: true, Congestion: "reno", MSS: 1448, Cwnd: 10, SegsOut: 5, SegsIn: 4},
	{State: "CLOSE_WAIT", Local: "[fd00::1]:22", Remote: "[fd00::2]:50000", Congestion: "cubic", Options: []string{"sack"},
		RTO: 201, RTT: 1.5, RTTVar: 0.75, MSS: 1428, AdvMSS: 1440, RcvMSS: 1428, Cwnd: 7, Ssthresh: 5, SndWnd: 1000, SegsOut: 9, SegsIn: 9},
	{State: "ESTABLISHED", Local: "10.0.0.1:80", Remote: "10.0.0.4:40002", Congestion: "bbr", Options: []string{"ts", "sack"},
		RTO: 220, RTT: 20.5, RTTVar: 0.5, MSS: 1448, AdvMSS: 1460, RcvMSS: 536, Cwnd: 340, SndWnd: 3000000, SegsOut: 90000, SegsIn: 45000,
		PacingRate: 11950000, DeliveryRate: 11500000, MinRTT: 20.1,
		BBR: &admin.BBR{Mode: "PROBE_BW", Bandwidth: 12070000, MinRTT: 20.1, PacingGain: 1.25, CwndGain: 2}},
}

func ssServer(t *testing.T, socks []admin.Socket) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/debug/sockets" {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(socks)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func runSSOut(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := runSS(&out, &errOut, args); err != nil {
		t.Fatalf("ss %v: %v", args, err)
	}
	return out.String()
}

// TestSSTable checks ss's table, as ss -tni prints it, against a canned
// /debug/sockets.
func TestSSTable(t *testing.T) {
	srv := ssServer(t, ssSockets)
	host := strings.TrimPrefix(srv.URL, "http://")

	got := runSSOut(t, "-tni", "--admin", host)
	want := `State      Recv-Q Send-Q Local Address:Port Peer Address:Port
ESTAB      5      1000   10.0.0.1:80        10.0.0.2:40000
	 ts sack cubic wscale:7,8 rto:204 backoff:1 rtt:0.352/0.141 ato:40 mss:1448 pmtu:1500 rcvmss:536 advmss:1460 cwnd:10 bytes_sent:5400 bytes_retrans:127 bytes_acked:5273 bytes_received:3881 segs_out:26 segs_in:35 data_segs_out:12 data_segs_in:9 unacked:1 retrans:1/3 rcv_wnd:65536 rcv_ssthresh:64076 snd_wnd:64256 rcv_ooopack:2
CLOSE-WAIT 0      0      [fd00::1]:22       [fd00::2]:50000
	 sack cubic rto:201 rtt:1.5/0.75 mss:1428 rcvmss:1428 advmss:1440 cwnd:7 ssthresh:5 segs_out:9 segs_in:9 snd_wnd:1000
ESTAB      0      0      10.0.0.1:80        10.0.0.4:40002
	 ts sack bbr rto:220 rtt:20.5/0.5 mss:1448 rcvmss:536 advmss:1460 cwnd:340 segs_out:90000 segs_in:45000 bbr:(bw:96.6Mbps,mrtt:20.1,pacing_gain:1.25,cwnd_gain:2) pacing_rate 95.6Mbps delivery_rate 92.0Mbps minrtt:20.1 snd_wnd:3000000
`
	if got != want {
		t.Errorf("ss -tni:\n%s\nwant:\n%s", got, want)
	}

	got = runSSOut(t, "-l", "--admin="+srv.URL)
	want = `State  Recv-Q Send-Q Local Address:Port Peer Address:Port
LISTEN 1      128    0.0.0.0:80         0.0.0.0:*
	 cubic cwnd:10
LISTEN 0      4096   [::]:443           [::]:*
	 cubic cwnd:10
`
	if got != want {
		t.Errorf("ss -l:\n%s\nwant:\n%s", got, want)
	}

	got = runSSOut(t, "-a", "--admin", srv.URL+"/")
	var states []string
	for _, l := range strings.Split(got, "\n") {
		if l != "" && l[0] != '\t' {
			states = append(states, strings.Fields(l)[0])
		}
	}
	if s := strings.Join(states, " "); s != "State LISTEN LISTEN ESTAB SYN-RECV TIME-WAIT CLOSE-WAIT ESTAB" {
		t.Errorf("ss -a shows %s:\n%s", s, got)
	}

	t.Setenv("SYNSTACK_ADMIN", host)
	if got := runSSOut(t); !strings.Contains(got, "ESTAB") {
		t.Errorf("ss with $SYNSTACK_ADMIN:\n%s", got)
	}
	for _, args := range [][]string{{"-x"}, {"extra"}, {"--admin"}} {
		if err := runSS(io.Discard, io.Discard, args); err == nil {
			t.Errorf("ss %v: no error", args)
		}
	}
	if err := runSS(io.Discard, io.Discard, []string{"--admin", host + "/nothing"}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("ss against no admin endpoint: %v", err)
	}
}

// TestSSLive runs ss against the admin endpoint of a real stack with
// connections open.
func TestSSLive(t *testing.T) {
	la, lb := pipe.New(1500)
	srv, err := synstack.New(synstack.Config{Link: la, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := synstack.New(synstack.Config{Link: lb, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ln, err := srv.Listen("tcp4", "10.0.0.1:80")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 2 {
		c, err := cli.DialContext(ctx, "tcp", "10.0.0.1:80")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
	}
	hs := httptest.NewServer(admin.Handler(srv))
	defer hs.Close()

	var got string
	deadline := time.Now().Add(time.Minute) // a hang guard, not a timing
	for {
		got = runSSOut(t, "-tnia", "--admin", hs.URL)
		if strings.Count(got, "bytes_received:4 ") == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("synstack ss -tnia:\n%s", got)
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != 7 || !strings.HasPrefix(lines[1], "LISTEN ") || !strings.Contains(lines[1], "10.0.0.1:80") ||
		!strings.HasPrefix(lines[3], "ESTAB ") || !strings.HasPrefix(lines[4], "\t ts sack cubic wscale:8,8 rto:") ||
		strings.Count(got, "bytes_received:4 ") != 2 || strings.Count(got, "10.0.0.2:") != 2 {
		t.Errorf("ss -tnia:\n%s", got)
	}
}

// Times print as ss prints them: rto in whole milliseconds, rtt and the
// like to the microsecond, with %g (ss's "rto:208 rtt:0.123/0.05").
func TestSSTimesAsSS(t *testing.T) {
	s := admin.Socket{State: "ESTABLISHED", Local: "10.0.0.1:80", Remote: "10.0.0.2:40000",
		RTO: 207.711373, RTT: 0.1234567, RTTVar: 0.0500004, MinRTT: 1234.56789, MSS: 1448, Cwnd: 10,
		BBR: &admin.BBR{MinRTT: 0.0219999, PacingGain: 1, CwndGain: 2}}
	got := ssInfo(s)
	for _, want := range []string{"rto:208 ", "rtt:0.123/0.05 ", "minrtt:1234.57 ", "mrtt:0.022,"} {
		if !strings.Contains(got, want) {
			t.Errorf("info line lacks %q:\n%s", want, got)
		}
	}
}

// TestSSUDP: ss -u lists a real stack's UDP sockets as ss does: connected
// ones (ESTAB) by default, unconnected ones (UNCONN) with -a or -l, with
// the bytes waiting in Recv-Q; -t leaves them out, -tu shows both kinds.
func TestSSUDP(t *testing.T) {
	la, lb := pipe.New(1500)
	srv, err := synstack.New(synstack.Config{Link: la, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := synstack.New(synstack.Config{Link: lb, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	dns, err := srv.ListenPacket("udp4", "10.0.0.1:53")
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Close()
	peer, err := srv.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.MustParseAddrPort("10.0.0.2:9")))
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	c, err := cli.Dial("udp4", "10.0.0.1:53")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("unread")) // 6 bytes, queued on the server's socket
	hs := httptest.NewServer(admin.Handler(srv))
	defer hs.Close()

	deadline := time.Now().Add(time.Minute) // a hang guard, not a timing
	var got string
	for {
		got = runSSOut(t, "-ua", "--admin", hs.URL)
		if strings.Contains(got, "10.0.0.1:53") && strings.Contains(got, " 262 ") || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	want := `State  Recv-Q Send-Q Local Address:Port Peer Address:Port
UNCONN 262    0      10.0.0.1:53        0.0.0.0:*
`
	if !strings.HasPrefix(got, want) || !strings.Contains(got, "ESTAB  0      0      10.0.0.1:") || !strings.Contains(got, " 10.0.0.2:9\n") {
		t.Errorf("ss -ua (6 bytes and 256 of overhead queued on :53):\n%s", got)
	}
	if got := runSSOut(t, "-u", "--admin", hs.URL); strings.Contains(got, "UNCONN") || !strings.Contains(got, "ESTAB") {
		t.Errorf("ss -u shows the unconnected socket, or not the connected one:\n%s", got)
	}
	if got := runSSOut(t, "-t", "--admin", hs.URL); strings.Contains(got, "10.0.0.2:9") {
		t.Errorf("ss -t shows a UDP socket:\n%s", got)
	}
}
