package main

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/synstack/synstack/link/pcap"
	"github.com/synstack/synstack/script"
)

// The sessions the playground must show (issue 20), as session text.
const (
	playHandshakeSession = "A.socket,A.bind.3.80,A.listen.3.5,B.socket,B.connect.3.80,N.deliver.0,N.deliver.0,N.deliver.0,A.accept.3"
	// Both close before either FIN is delivered; B's FIN (5) goes first.
	playSimCloseSession = playHandshakeSession + ",A.close.4,B.close.3,N.deliver.5,N.deliver.4,N.all,T.advance.60000"
	// B shuts its sending side; A, in CLOSE_WAIT, still writes, B reads.
	playHalfCloseSession = playHandshakeSession + ",B.shutdown.3.WR,N.all,A.read.4.1000,A.write.4.100,N.all,B.read.3.1000,A.close.4,N.all,B.close.3,N.all"
	// A's FIN is lost; the retransmission timer sends it again.
	playLostFINSession = playHandshakeSession + ",A.close.4,N.drop.0,T.next,N.all,B.close.3,N.all"
	// A closes first and sits in TIME_WAIT: binding port 80 again fails,
	// then succeeds with SO_REUSEADDR on both sockets.
	playReuseSession = "A.socket,A.reuseaddr.3.1,A.bind.3.80,A.listen.3.5,B.socket,B.connect.3.80,N.all,A.accept.3," +
		"A.close.4,B.close.3,N.all,A.close.3,A.socket,A.bind.3.80,A.close.3,A.socket,A.reuseaddr.3.1,A.bind.3.80"
)

var playMustShow = []struct{ name, session string }{
	{"handshake", playHandshakeSession},
	{"simultaneous-close", playSimCloseSession},
	{"half-close", playHalfCloseSession},
	{"lost-fin", playLostFINSession},
	{"reuseaddr", playReuseSession},
}

// get fetches path and returns its body; it fails the test on a status
// other than 200.
func (c *playClient) get(path string) []byte {
	c.t.Helper()
	resp, err := http.Get(c.url + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return b
}

// checkPlayScript runs an exported script with Strict: it must pass.
func checkPlayScript(t *testing.T, name string, src []byte) {
	t.Helper()
	res := script.Run(name+".pkt", src, script.Options{Strict: true})
	if !res.Passed {
		t.Errorf("the exported script of %s fails: %v\n%s", name, res.Err, src)
	}
}

// TestPlayExportScript replays each must-show session, exports it as a
// packet script (A under test, B the script's remote side) and runs the
// script with Strict: every packet A sends is described, every call
// returns what it returned in the playground.
func TestPlayExportScript(t *testing.T) {
	for _, s := range playMustShow {
		t.Run(s.name, func(t *testing.T) {
			c := newPlayClient(t)
			c.post("/api/load", playLoad{Session: s.session}, false)
			src := c.get("/api/export/script")
			for _, want := range []string{"socket(..., SOCK_STREAM, IPPROTO_TCP) = 3", "< ", "> "} {
				if !bytes.Contains(src, []byte(want)) {
					t.Errorf("the script lacks %q:\n%s", want, src)
				}
			}
			checkPlayScript(t, s.name, src)
		})
	}
}

// TestPlayExportScriptCatches: a script that says something else than
// what happened fails, so the test above can fail: the ACK of the
// handshake changed into a RST.
func TestPlayExportScriptCatches(t *testing.T) {
	c := newPlayClient(t)
	c.post("/api/load", playLoad{Session: playHandshakeSession}, false)
	src := string(c.get("/api/export/script"))
	bad := strings.Replace(src, "> S. 0:0(0) ack 1", "> R. 0:0(0) ack 1", 1)
	if bad == src {
		t.Fatalf("no SYN,ACK line in\n%s", src)
	}
	if res := script.Run("bad.pkt", []byte(bad), script.Options{Strict: true}); res.Passed {
		t.Errorf("a script with a wrong packet passed:\n%s", bad)
	}
}

// TestPlayExportPcap exports a session as a pcap: every packet either
// host sent, in order, at its virtual time.
func TestPlayExportPcap(t *testing.T) {
	c := newPlayClient(t)
	st := c.post("/api/load", playLoad{Session: playLostFINSession}, false).State
	recs, err := pcap.Read(bytes.NewReader(c.get("/api/export/pcap")))
	if err != nil {
		t.Fatal(err)
	}
	sends := 0
	for _, ev := range st.Events {
		if ev.Kind == "send" {
			sends++
		}
	}
	if len(recs) != sends || sends < 8 {
		t.Fatalf("the pcap has %d packets, the ladder %d sends", len(recs), sends)
	}
	for i := 1; i < len(recs); i++ {
		if recs[i].Time.Before(recs[i-1].Time) {
			t.Errorf("packet %d at %v before packet %d at %v", i+1, recs[i].Time, i, recs[i-1].Time)
		}
	}
	if last := recs[len(recs)-1].Time.Sub(recs[0].Time); last < 200e6 {
		t.Errorf("the capture spans %v: the FIN's retransmission comes at least 200 ms later", last)
	}
}
