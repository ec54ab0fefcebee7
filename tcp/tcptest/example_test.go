package tcptest_test

import (
	"fmt"

	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/tcp/tcptest"
)

// printT stands in for the *testing.T a test passes: it prints failures.
type printT struct{}

func (printT) Helper() {}

func (printT) Fatalf(format string, args ...any) { fmt.Printf(format+"\n", args...) }

// A passive open and five bytes of data, as a trace: the test plays the
// peer (In), checks what the connection sends (Out) and its state.
func Example() {
	c := tcptest.New(printT{}, tcp.Config{}) // in a test: tcptest.New(t, cfg)
	c.Listen()
	c.In("S 0:0(0) win 65535 <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7>")
	c.Out("S. 0:0(0) ack 1 win 65160 <mss 1460,sackOK,TS val 1 ecr 100,nop,wscale 8>")
	c.In(". 1:1(0) ack 1 win 512 <nop,nop,TS val 101 ecr 1>")
	c.State(tcp.Established)
	c.In("P. 1:6(5) ack 1 win 512 <nop,nop,TS val 102 ecr 1>")
	c.Out(". 1:1(0) ack 6") // the window and options are not compared
	c.NoOut()
	fmt.Print(c.Trace())
	// Output:
	// +0.000   call LISTEN
	// +0.000   CLOSED -> LISTEN (call LISTEN)
	// +0.000 < S 0:0(0) win 65535 <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7>
	// +0.000   LISTEN -> SYN_RCVD (rcv SYN)
	// +0.000 > S. 0:0(0) ack 1 win 65160 <mss 1460,sackOK,TS val 1 ecr 100,wscale 8>
	// +0.000 < . 1:1(0) ack 1 win 512 <nop,nop,TS val 101 ecr 1>
	// +0.000   SYN_RCVD -> ESTABLISHED (rcv ACK of SYN)
	// +0.000 < P. 1:6(5) ack 1 win 512 <nop,nop,TS val 102 ecr 1>
	// +0.000 > . 1:1(0) ack 6 win 255 <TS val 1 ecr 102>
}

// A wrong expectation fails the test with both segments, the fields that
// differ, and the trace that led there.
func Example_mismatch() {
	c := tcptest.New(printT{}, tcp.Config{})
	c.Connect()
	c.Out("S 0:0(0) win 29200 <mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7>")
	// Output:
	// tcptest: Out: the segment sent at +0.000 differs:
	//   want S 0:0(0) win 29200 <mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7>
	//   got  S 0:0(0) win 64240 <mss 1460,sackOK,TS val 1 ecr 0,wscale 8>
	//   win: want 29200, got 64240
	//   options: want <mss 1460,sackOK,TS val 1 ecr 0,wscale 7>, got <mss 1460,sackOK,TS val 1 ecr 0,wscale 8>
	// trace so far:
	// 	+0.000   call CONNECT
	// 	+0.000   CLOSED -> SYN_SENT (call CONNECT)
	// 	+0.000 > S 0:0(0) win 64240 <mss 1460,sackOK,TS val 1 ecr 0,wscale 8>
}
