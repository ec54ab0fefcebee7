package script

import (
	"bytes"
	"strings"
	"testing"
)

// TestRunOtherConnectionsSkipped: as packetdrill's sniffer, which takes
// only the packets of the socket under test, the ACK an earlier
// connection sends while the next one connects is skipped (and Strict
// does not count it); AllConnections compares it.
func TestRunOtherConnectionsSkipped(t *testing.T) {
	src := `
` + "`sysctl -q net.ipv4.tcp_timestamps=0`" + `
 0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0
+0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
+0 > S 0:0(0) <mss 1460,nop,nop,sackOK,nop,wscale 8>
+.01 < S. 0:0(0) ack 1 win 5840 <mss 1460,nop,nop,sackOK,nop,wscale 6>
+0 > . 1:1(0) ack 1
+.01 close(3) = 0
+0 > F. 1:1(0) ack 1
// The peer's FIN does not acknowledge ours: the stack ACKs it, on the
// first connection.
+.01 < F. 1:1(0) ack 1 win 257
+0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 4
+0 fcntl(4, F_SETFL, O_RDWR|O_NONBLOCK) = 0
+0 connect(4, ..., ...) = -1 EINPROGRESS (Operation now in progress)
+0 > S 0:0(0) <mss 1460,nop,nop,sackOK,nop,wscale 8>
`
	if res := Run("t.pkt", []byte(src), Options{Strict: true}); !res.Passed {
		t.Errorf("default: %v", res.Err)
	}
	res := Run("t.pkt", []byte(src), Options{Strict: true, AllConnections: true})
	wantErr(t, res, "t.pkt:17: expected > S 0:0(0) <mss 1460,nop,nop,sackOK,nop,wscale 8> at 0.030; got > . ")
	// After the last ">" line, Strict skips them too: here the first
	// connection's FIN, sent again when its RTO fires.
	src += `+.01 < S. 0:0(0) ack 1 win 5840 <mss 1460,nop,nop,sackOK,nop,wscale 6>
+0 > . 1:1(0) ack 1
+1 fcntl(4, F_SETFL, O_RDWR) = 0
`
	var trace bytes.Buffer
	if res := Run("t.pkt", []byte(src), Options{Strict: true, Verbose: &trace}); !res.Passed {
		t.Errorf("default, the FIN resent after the end: %v", res.Err)
	}
	if n := strings.Count(trace.String(), "ignored a packet of another connection"); n < 2 {
		t.Errorf("%d packets of the first connection skipped, want the ACK and the resent FIN:\n%s", n, trace.String())
	}
}
