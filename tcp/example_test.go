package tcp_test

import (
	"fmt"
	"time"

	"github.com/synstack/synstack/tcp"
)

// Two connections joined by hand: the state machine takes segments and the
// time, and hands back the segments it wants sent. Nothing else moves it.
func Example() {
	now := time.Unix(0, 0)
	var toB, toA []tcp.Segment
	keep := func(q *[]tcp.Segment) func(*tcp.Segment) {
		return func(s *tcp.Segment) {
			cp := *s
			cp.Payload = append([]byte(nil), s.Payload...)
			*q = append(*q, cp)
		}
	}
	print := func(who string) func(from, to tcp.State, cause tcp.Cause) {
		return func(from, to tcp.State, cause tcp.Cause) {
			fmt.Printf("%s: %s -> %s (%s)\n", who, from, to, cause)
		}
	}
	a := tcp.NewConn(tcp.Config{Output: keep(&toB), OnTransition: print("A")}, 1000)
	b := tcp.NewConn(tcp.Config{Output: keep(&toA), OnTransition: print("B")}, 9000)
	flush := func() {
		for len(toA)+len(toB) > 0 {
			for len(toB) > 0 {
				s := toB[0]
				toB = toB[1:]
				b.Input(now, &s)
			}
			for len(toA) > 0 {
				s := toA[0]
				toA = toA[1:]
				a.Input(now, &s)
			}
		}
	}

	b.Listen()
	a.Connect(now)
	flush()
	a.Write(now, []byte("hello"))
	flush()
	buf := make([]byte, 16)
	n, _ := b.Read(now, buf)
	fmt.Printf("B read %q\n", buf[:n])
	a.Close(now)
	flush()
	now = now.Add(40 * time.Millisecond) // B's ACK of the FIN is delayed 40 ms
	b.Tick(now)
	flush()
	b.Close(now)
	flush()
	now = now.Add(60 * time.Second) // 2MSL later
	a.Tick(now)
	// Output:
	// B: CLOSED -> LISTEN (call LISTEN)
	// A: CLOSED -> SYN_SENT (call CONNECT)
	// B: LISTEN -> SYN_RCVD (rcv SYN)
	// A: SYN_SENT -> ESTABLISHED (rcv SYN,ACK)
	// B: SYN_RCVD -> ESTABLISHED (rcv ACK of SYN)
	// B read "hello"
	// A: ESTABLISHED -> FIN_WAIT_1 (call CLOSE)
	// B: ESTABLISHED -> CLOSE_WAIT (rcv FIN)
	// A: FIN_WAIT_1 -> FIN_WAIT_2 (rcv ACK of FIN)
	// B: CLOSE_WAIT -> LAST_ACK (call CLOSE)
	// A: FIN_WAIT_2 -> TIME_WAIT (rcv FIN)
	// B: LAST_ACK -> CLOSED (rcv ACK of FIN)
	// A: TIME_WAIT -> CLOSED (timer 2MSL)
}

// host carries connections as a stack does: it embeds each Conn and is
// its Host, so a connection costs one allocation and no closure.
type host struct {
	name string
	conn tcp.Conn
	out  *[]tcp.Segment
}

func (h *host) Send(s *tcp.Segment) {
	cp := *s
	cp.Payload = append([]byte(nil), s.Payload...)
	*h.out = append(*h.out, cp)
}

func (h *host) Transition(from, to tcp.State, cause tcp.Cause) {
	fmt.Printf("%s: %s -> %s (%s)\n", h.name, from, to, cause)
}

// Connections set up in place, sharing one configuration: a thousand
// connections with the same tunables hold one Config between them.
func ExampleConn_Init() {
	now := time.Unix(0, 0)
	cfg := tcp.PrepareConfig(tcp.Config{MSS: 1460})
	var toB, toA []tcp.Segment
	a := &host{name: "A", out: &toB}
	b := &host{name: "B", out: &toA}
	a.conn.Init(cfg, a, 1000, 0)
	b.conn.Init(cfg, b, 9000, 0)

	b.conn.Listen()
	a.conn.Connect(now)
	for len(toA)+len(toB) > 0 {
		for len(toB) > 0 {
			s := toB[0]
			toB = toB[1:]
			b.conn.Input(now, &s)
		}
		for len(toA) > 0 {
			s := toA[0]
			toA = toA[1:]
			a.conn.Input(now, &s)
		}
	}
	// Output:
	// B: CLOSED -> LISTEN (call LISTEN)
	// A: CLOSED -> SYN_SENT (call CONNECT)
	// B: LISTEN -> SYN_RCVD (rcv SYN)
	// A: SYN_SENT -> ESTABLISHED (rcv SYN,ACK)
	// B: SYN_RCVD -> ESTABLISHED (rcv ACK of SYN)
}
