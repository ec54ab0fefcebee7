package script

import (
	"strings"
	"testing"
)

// TestRunGROAggregate: with --mss, an inbound packet longer than it
// arrives as packetdrill's GSO packet, a GRO aggregate of --mss segments:
// one ACK for all of it, the peer's segment size measured as --mss
// (tcpi_rcv_mss; 600, above the 536 a connection starts from), every byte
// readable. Without --mss the same packet is
// one segment, its size capped at our MSS.
func TestRunGROAggregate(t *testing.T) {
	body := handshake + `
+0 < P. 1:2001(2000) ack 1 win 257
+0 > . 1:1(0) ack 2001
+0 %{ assert tcpi_rcv_mss == RCVMSS }%
+0 read(4, ..., 3000) = 2000
`
	run(t, "--mss=600\n"+strings.Replace(body, "RCVMSS", "600", 1), true)
	run(t, strings.Replace(body, "RCVMSS", "1460", 1), true)
	// The aggregate's PSH is on its last segment only, so a second
	// aggregate is still taken whole.
	run(t, "--mss=600\n"+handshake+`
+0 < P. 1:1201(1200) ack 1 win 257
+0 > . 1:1(0) ack 1201
+.1 < P. 1201:2401(1200) ack 1 win 257
+0 > . 1:1(0) ack 2401
+0 read(4, ..., 3000) = 2400
`, true)
}

// TestRunQdisc: "tc qdisc" on the runner's link. The default queues and
// deleting the root one change nothing; "pfifo limit 0" holds the
// stack's data (nothing leaves) and cannot be removed while data waits;
// other queues are refused by name.
func TestRunQdisc(t *testing.T) {
	run(t, handshake+"+0 `tc qdisc replace dev tun0 root pfifo_fast; tc qdisc del dev tun0 root 2>/dev/null`\n"+`
+0 write(4, ..., 10) = 10
+0 > P. 1:11(10) ack 1
`, true)
	res := run(t, handshake+"+0 `tc qdisc add dev tun0 root pfifo limit 0`\n"+`
+0 write(4, ..., 10) = 10
+1 write(4, ..., 10) = 10
`, true)
	if len(res.Warnings) != 0 {
		t.Errorf("warnings %q", res.Warnings)
	}
	// Before the stack exists (an init command) it takes effect with the
	// link: the SYN,ACK never leaves.
	res = Run("t.pkt", []byte("`tc qdisc add dev tun0 root pfifo limit 0`\n"+handshake), Options{})
	wantErr(t, res, "> S. 0:0(0)")
	res = Run("t.pkt", []byte(handshake+"+0 `tc qdisc add dev tun0 root pfifo limit 0`\n+0 write(4, ..., 10) = 10\n+0 `tc qdisc delete dev tun0 root`\n"), Options{})
	wantErr(t, res, "cannot be removed")
	res = Run("t.pkt", []byte(handshake+"+0 `tc qdisc add dev tun0 root netem delay 10ms`\n"), Options{})
	wantErr(t, res, "unsupported: shell command `tc qdisc add dev tun0 root netem delay 10ms`")
}

// TestRunAggregateFlagsOfLast: segments gathered into the GSO packet a
// line expects take the last one's PSH, as packetdrill's
// aggregate_packets copies the last packet's header: Linux's 7000 bytes
// as three packets of two segments, each with PSH, and one of one
// segment without it, match "> . 10001:17001(7000)"
// (fast_recovery/prr-ss-30pkt-lost1_4.pkt of packetdrill's corpus). Here
// the stack's packets of two segments are ". P." pairs: three segments
// end without PSH, four end with it.
func TestRunAggregateFlagsOfLast(t *testing.T) {
	run(t, handshake+`
+0 write(4, ..., 4000) = 4000
+0 > . 1:3001(3000) ack 1
+0 > P. 3001:4001(1000) ack 1
`, true)
	run(t, handshake+`
+0 write(4, ..., 4000) = 4000
+0 > P. 1:3001(3000) ack 1
+0 > P. 3001:4001(1000) ack 1
`, false)
}
