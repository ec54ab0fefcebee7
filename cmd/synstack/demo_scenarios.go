package main

import (
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/trace"
	"github.com/synstack/synstack/wire"
)

// scenario is one demo: what it shows in one sentence, the lab it needs,
// the steps, and the explanation printed after the ladder.
type scenario struct {
	name    string
	summary string
	// ports shows ports on the ladder (several connections per host).
	ports bool
	// config adjusts a host's stack configuration before it starts.
	config func(host string, cfg *synstack.Config)
	run    func(l *lab)
	// explain is printed after the ladder: paragraphs separated by blank lines.
	explain string
	// keyStates must appear in the paths taken (tests check them).
	keyStates []string
}

func findScenario(name string) *scenario {
	if name == tour.name {
		return tour
	}
	for _, sc := range scenarios {
		if sc.name == name {
			return sc
		}
	}
	return nil
}

// establish connects a new client socket to the server's listener on
// port 80 and accepts it: the three-way handshake.
func (l *lab) establish(lfd int) (cfd, afd int) { return l.establishPort(lfd, 80) }

// bulkPort is the server port of the scenarios that move bulk data
// (iperf's): on port 80, Wireshark would read the data as HTTP and flag
// its reassembly around a retransmission.
const bulkPort = 5001

// establishPort is establish for a listener on another port.
func (l *lab) establishPort(lfd int, port uint16) (cfd, afd int) {
	c, s := l.client, l.server
	cfd = c.socket()
	l.check(c.connect(cfd, serverAddr, port) == syscall.EINPROGRESS, "non-blocking connect did not return EINPROGRESS")
	l.run(100 * time.Millisecond)
	afd, err := s.accept(lfd)
	if err != nil {
		panic(fmt.Sprintf("accept: %v", err))
	}
	return cfd, afd
}

// expectErr checks that a call failed with want.
func (l *lab) expectErr(what string, err error, want syscall.Errno) {
	l.check(err == want, "%s: got %v, want %s", what, err, errnoName(want))
}

func (l *lab) expectState(h *host, fd int, want string) {
	got := h.state(fd)
	l.check(got == want, "%s fd %d: state %s, want %s", h.name, fd, got, want)
}

// showState prints the socket's state (getsockopt TCP_INFO) and checks it.
func (l *lab) showState(h *host, fd int, want string) {
	got := h.tcpInfo(fd)
	l.check(got == want, "%s fd %d: state %s, want %s", h.name, fd, got, want)
}

// tour is the default: a connection's whole life.
var tour = &scenario{
	name:      "tour",
	summary:   "a connection's whole life: handshake, data both ways, four-way close, TIME_WAIT",
	keyStates: []string{"SYN_SENT", "SYN_RCVD", "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT"},
	run: func(l *lab) {
		c, s := l.client, l.server
		l.note("The server opens a passive socket; the client connects (three-way handshake).")
		lfd := s.listenOn(80, 16)
		cfd, afd := l.establish(lfd)

		l.note("Data both ways: each segment is acknowledged.")
		c.write(cfd, "GET / HTTP/1.0\r\n\r\n")
		l.run(100 * time.Millisecond)
		s.read(afd, 4096)
		s.write(afd, "HTTP/1.0 200 OK\r\n\r\nhello from synstack\n")
		l.run(100 * time.Millisecond)
		c.read(cfd, 4096)

		l.note("The client closes first (active close): FIN, ACK; the server reads EOF, closes: FIN, ACK.")
		c.close(cfd)
		l.run(100 * time.Millisecond)
		s.read(afd, 4096)
		s.close(afd)
		l.run(100 * time.Millisecond)
		l.note("The client waits 2MSL (60 s) in TIME_WAIT, so stray segments of this connection die first.")
		l.run(61 * time.Second)
		s.so.Close(lfd)
	},
}

// scenarios are the demos, in the order --list shows them.
var scenarios = []*scenario{
	{
		name:      "handshake",
		summary:   "the three-way handshake: SYN, SYN-ACK, ACK, and the states on each side",
		keyStates: []string{"LISTEN", "SYN_SENT", "SYN_RCVD", "ESTABLISHED"},
		run: func(l *lab) {
			c, s := l.client, l.server
			l.note("The server's listening socket: a passive OPEN (CLOSED -> LISTEN).")
			lfd := s.listenOn(80, 16)
			l.note("The client's connect: an active OPEN. Non-blocking, it returns at once; the handshake goes on.")
			cfd := c.socket()
			l.expectErr("connect", c.connect(cfd, serverAddr, 80), syscall.EINPROGRESS)
			l.run(100 * time.Millisecond)
			l.note("The handshake is over: the connection waits in the accept queue until the server takes it.")
			afd, err := s.accept(lfd)
			l.check(err == nil, "accept: %v", err)
			l.check(c.soError(cfd) == 0, "connect failed")
			l.expectState(c, cfd, "ESTABLISHED")
			l.expectState(s, afd, "ESTABLISHED")
		},
		explain: `
A TCP connection is two byte streams, one each way, and each has its own sequence
numbers, starting at an initial sequence number (ISN) chosen by its sender. The
handshake is how each side learns the other's ISN and knows its own was received:
the client's SYN carries its ISN (SYN_SENT), the server's SYN,ACK carries the
server's ISN and acknowledges the client's (ack 1: a SYN counts for one sequence
number), and the client's ACK acknowledges the server's. Three segments, because
the server's SYN and its ACK of the client's SYN travel together.

The ladder numbers each direction from its own ISN (0), as tcpdump -S does not
and Wireshark does. The options in <...> are negotiated in the SYNs only: the
largest segment each side accepts (mss), selective acknowledgments (sackOK),
timestamps (TS), and window scaling (wscale 8: every later window field is
multiplied by 2^8 = 256, which is why the windows after the SYNs look small).

On the server, the listening socket stays in LISTEN: each SYN creates a new
connection that goes LISTEN -> SYN_RCVD -> ESTABLISHED on its own, and waits in
the accept queue until accept() hands it out. The client's connect() learns the
result from SO_ERROR (0: connected).`,
	},
	{
		name:      "refused",
		summary:   "connect to a port nobody listens on: the SYN is answered by RST,ACK and connect fails with ECONNREFUSED",
		keyStates: []string{"SYN_SENT", "CLOSED"},
		run: func(l *lab) {
			c := l.client
			l.note("Nothing listens on port 81 of the server.")
			cfd := c.socket()
			l.expectErr("connect", c.connect(cfd, serverAddr, 81), syscall.EINPROGRESS)
			l.run(100 * time.Millisecond)
			l.check(c.soError(cfd) == syscall.ECONNREFUSED, "connect was not refused")
		},
		explain: `
A segment that reaches no connection and no listener is answered with a reset
(RFC 9293 section 3.10.7.1). Here the SYN had no ACK, so the reset is
<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>: "R. 0:0(0) ack 1", an RST that
acknowledges exactly our SYN. A SYN_SENT connection accepts an RST only if it
acknowledges its SYN (otherwise anyone could abort connection attempts blindly);
this one does, so the connection goes to CLOSED and connect() reports
ECONNREFUSED, through SO_ERROR for a non-blocking socket.

A refused connection fails in one round trip. Compare connect-timeout, where a
firewall (or a dead host) drops the SYN and nothing answers at all.`,
	},
	{
		name:      "connect-timeout",
		summary:   "the server never answers: the SYN is retransmitted 6 times with exponential backoff, then ETIMEDOUT after 127 s",
		keyStates: []string{"SYN_SENT", "CLOSED"},
		run: func(l *lab) {
			c := l.client
			l.note("The network drops everything the client sends (a firewall that drops, a host that is down).")
			c.dropWhen("dropped", func(*trace.Packet) bool { return true })
			cfd := c.socket()
			l.expectErr("connect", c.connect(cfd, serverAddr, 80), syscall.EINPROGRESS)
			l.run(130 * time.Second)
			l.check(c.soError(cfd) == syscall.ETIMEDOUT, "connect did not time out")
		},
		explain: `
With no answer, the SYN is retransmitted when the retransmission timer (RTO)
expires. The first RTO is 1 s (RFC 6298) and it doubles at each retry: SYNs go
out at 0, 1, 3, 7, 15, 31 and 63 s. After the sixth retransmission
(tcp_syn_retries = 6, Linux's default) the connection waits one more doubled RTO
and gives up at 127 s: SYN_SENT -> CLOSED, and connect() fails with ETIMEDOUT.

Linux 6.7 and later retry the first SYNs at linear 1 s intervals
(tcp_syn_linear_timeouts); synstack keeps RFC 6298's doubling (see
docs/linux-differences.md). A program that cannot wait two minutes sets its own
deadline (a timeout on poll, or DialContext with a context).`,
	},
	{
		name:      "simultaneous-open",
		summary:   "both sides connect to each other at once: SYNs cross, each side goes SYN_SENT -> SYN_RCVD -> ESTABLISHED",
		keyStates: []string{"SYN_SENT", "SYN_RCVD", "ESTABLISHED"},
		run: func(l *lab) {
			c, s := l.client, l.server
			l.note("Both sides bind a known port and connect to the other's, at the same instant: nobody listens.")
			cfd, sfd := c.socket(), s.socket()
			l.check(c.bind(cfd, 5000) == nil, "client bind")
			l.check(s.bind(sfd, 6000) == nil, "server bind")
			l.expectErr("client connect", c.connect(cfd, serverAddr, 6000), syscall.EINPROGRESS)
			l.expectErr("server connect", s.connect(sfd, clientAddr, 5000), syscall.EINPROGRESS)
			l.run(time.Second)
			l.check(c.soError(cfd) == 0 && s.soError(sfd) == 0, "simultaneous open failed")
			l.expectState(c, cfd, "ESTABLISHED")
			l.expectState(s, sfd, "ESTABLISHED")
		},
		explain: `
When two SYNs cross, each side is in SYN_SENT and receives a SYN without an ACK.
RFC 9293 has an arrow for that: SYN_SENT -> SYN_RCVD, answering with a SYN,ACK
that repeats its own SYN (same ISN) and acknowledges the other's. Each side then
receives the other's SYN,ACK, which acknowledges its SYN: SYN_RCVD ->
ESTABLISHED. Four segments instead of three, and one connection, not two: the
4-tuple (addresses and ports) is the same on both sides.

It needs both sides to know each other's port in advance, so it is rare, but it
is what NAT hole punching (peer-to-peer) relies on, and it is the only way into
SYN_RCVD without a listener.`,
	},
	{
		name:      "active-close",
		summary:   "the client closes first: FIN_WAIT_1, FIN_WAIT_2, TIME_WAIT on its side, CLOSE_WAIT, LAST_ACK on the server's",
		keyStates: []string{"FIN_WAIT_1", "FIN_WAIT_2", "TIME_WAIT", "CLOSE_WAIT", "LAST_ACK"},
		run: func(l *lab) {
			c, s := l.client, l.server
			lfd := s.listenOn(80, 16)
			cfd, afd := l.establish(lfd)
			l.note("The client is done: close() sends a FIN after any queued data (the active close).")
			c.close(cfd)
			l.run(100 * time.Millisecond)
			l.note("The server's read() returns 0, end of stream; it closes too.")
			_, err := s.read(afd, 100)
			l.check(err == nil, "read: %v", err)
			s.close(afd)
			l.run(100 * time.Millisecond)
			l.note("The client stays in TIME_WAIT for 2MSL (60 s), then the connection is gone.")
			l.run(61 * time.Second)
		},
		explain: `
Closing takes four segments because each direction is closed on its own: a FIN
says "no more data from me", and is acknowledged like data. The side that closes
first (active close) goes ESTABLISHED -> FIN_WAIT_1 (its FIN is in flight) ->
FIN_WAIT_2 (its FIN is acknowledged; it can still receive) -> TIME_WAIT (the
peer's FIN arrived and was acknowledged) -> CLOSED after 2MSL.

The other side (passive close) goes ESTABLISHED -> CLOSE_WAIT when the FIN
arrives (read() returns 0), then LAST_ACK when its application closes, then
CLOSED when its FIN is acknowledged. The server's TCP acknowledged the client's
FIN by itself, before the application noticed; its own FIN came later, when the
application closed: four segments, not three.

Only the active closer pays TIME_WAIT: see the time-wait scenario for why.`,
	},
	{
		name:      "passive-close",
		summary:   "the server closes first; the client sits in CLOSE_WAIT until its application closes too",
		keyStates: []string{"CLOSE_WAIT", "LAST_ACK", "FIN_WAIT_2", "TIME_WAIT"},
		run: func(l *lab) {
			c, s := l.client, l.server
			lfd := s.listenOn(80, 16)
			cfd, afd := l.establish(lfd)
			c.write(cfd, "GET / HTTP/1.0\r\n\r\n")
			l.run(100 * time.Millisecond)
			s.read(afd, 100)
			l.note("The server answers and closes: an HTTP/1.0 server closes first.")
			s.write(afd, "HTTP/1.0 200 OK\r\n\r\nbye\n")
			s.close(afd)
			l.run(100 * time.Millisecond)
			l.note("The client's TCP acknowledged the FIN by itself: the connection is in CLOSE_WAIT, waiting for the application.")
			c.read(cfd, 100)
			c.read(cfd, 100)
			l.showState(c, cfd, "CLOSE_WAIT")
			l.note("The client application is busy for 5 s before it calls close(): CLOSE_WAIT lasts that long.")
			l.run(5 * time.Second)
			l.showState(c, cfd, "CLOSE_WAIT")
			c.close(cfd)
			l.run(100 * time.Millisecond)
			l.run(61 * time.Second)
		},
		explain: `
The passive closer is the side that receives the first FIN. Its TCP acknowledges
the FIN by itself and moves to CLOSE_WAIT; its application learns of it when
read() returns 0 (or poll() reports POLLRDHUP). TCP then waits, without a timer,
for the application to close: CLOSE_WAIT ends only with close() or shutdown()
(CLOSE_WAIT -> LAST_ACK, sending its FIN), and LAST_ACK ends when that FIN is
acknowledged.

So CLOSE_WAIT is the one state that only the local program can leave. Many
connections stuck in CLOSE_WAIT in "ss -t" mean a program that forgets to close
sockets whose peer has gone: a descriptor leak. Here the server did the active
close and pays TIME_WAIT; the client's side was closed by its peer.`,
	},
	{
		name:      "simultaneous-close",
		summary:   "both sides close at once: the FINs cross, both go FIN_WAIT_1 -> CLOSING -> TIME_WAIT",
		keyStates: []string{"FIN_WAIT_1", "CLOSING", "TIME_WAIT"},
		run: func(l *lab) {
			c, s := l.client, l.server
			lfd := s.listenOn(80, 16)
			cfd, afd := l.establish(lfd)
			l.note("Both applications close at the same instant: two FINs cross on the wire.")
			c.close(cfd)
			s.close(afd)
			l.run(100 * time.Millisecond)
			l.note("Both sides did an active close, so both wait in TIME_WAIT.")
			l.run(61 * time.Second)
		},
		explain: `
Each side sent its FIN (FIN_WAIT_1) and then received the other's FIN before its
own was acknowledged. RFC 9293 has a state for that: CLOSING ("waiting for the
ACK of my FIN, having got yours"). Each acknowledges the FIN it received; when
the ACK of its own FIN arrives it moves to TIME_WAIT. Both sides closed actively,
so both pay TIME_WAIT.

CLOSING is rare in practice because it needs the FINs to cross within one
round trip; if a FIN arrives that also acknowledges ours, the connection goes
from FIN_WAIT_1 straight to TIME_WAIT instead.`,
	},
	{
		name:      "time-wait",
		summary:   "why TIME_WAIT lasts 2MSL: the last ACK is lost, the peer's FIN comes again, and TIME_WAIT answers it",
		keyStates: []string{"TIME_WAIT", "LAST_ACK", "CLOSED"},
		run: func(l *lab) {
			c, s := l.client, l.server
			lfd := s.listenOn(80, 16)
			cfd, afd := l.establish(lfd)
			c.close(cfd)
			l.run(100 * time.Millisecond)
			s.read(afd, 100)
			l.note("The network will lose the client's final ACK.")
			armed := true
			c.dropWhen("lost", func(p *trace.Packet) bool {
				if armed && p.TCP.Flags == wire.FlagACK && p.PayloadLen == 0 {
					armed = false
					return true
				}
				return false
			})
			s.close(afd)
			l.run(time.Second)
			l.note("The server retransmitted its FIN; the client, still in TIME_WAIT, acknowledged it again. Had it forgotten the connection, it would have answered with a RST.")
			l.run(61 * time.Second)
		},
		explain: `
TIME_WAIT keeps a closed connection's memory for 2MSL (twice the maximum segment
lifetime; Linux uses a fixed 60 s) for two reasons, both shown or implied here.

Reliable termination: the active closer's last ACK can be lost, as it was here.
The peer, in LAST_ACK, then retransmits its FIN when its RTO expires. Because
the client is still in TIME_WAIT, it recognizes the FIN and acknowledges it
again (and restarts its 2MSL timer), so the server ends cleanly in CLOSED. A
client that had already forgotten the connection would answer with a RST, and
the server's application could see an error for a connection that worked.

Old duplicates: while the 4-tuple is in TIME_WAIT, a new connection with the
same addresses and ports cannot start, so delayed segments of the old one die
in the network before they can be mistaken for the new one's. TIME_WAIT costs
little (no buffers, no descriptor), but it holds the port: see reuseaddr.`,
	},
	{
		name:      "reuseaddr",
		summary:   "a restarted server cannot bind its port while a TIME_WAIT connection holds it, unless SO_REUSEADDR is set",
		keyStates: []string{"TIME_WAIT", "LISTEN"},
		ports:     true,
		run: func(l *lab) {
			c, s := l.client, l.server
			lfd := s.socket()
			l.check(s.setsockopt(lfd, "SO_REUSEADDR", synstack.SO_REUSEADDR) == nil, "setsockopt")
			l.check(s.bind(lfd, 80) == nil, "bind")
			s.listen(lfd, 16)
			cfd, afd := l.establish(lfd)
			l.note("The server closes its connection first: the server's side ends in TIME_WAIT, on port 80.")
			s.close(afd)
			l.run(100 * time.Millisecond)
			c.read(cfd, 100)
			c.close(cfd)
			l.run(100 * time.Millisecond)
			l.note("The server program exits (its listener closes) and restarts at once, without SO_REUSEADDR.")
			s.close(lfd)
			fd := s.socket()
			l.expectErr("bind without SO_REUSEADDR", s.bind(fd, 80), syscall.EADDRINUSE)
			s.close(fd)
			l.note("Restarted with SO_REUSEADDR: the TIME_WAIT connection no longer blocks the port.")
			fd = s.socket()
			l.check(s.setsockopt(fd, "SO_REUSEADDR", synstack.SO_REUSEADDR) == nil, "setsockopt")
			l.check(s.bind(fd, 80) == nil, "bind with SO_REUSEADDR failed")
			l.check(s.listen(fd, 16) == nil, "listen")
			l.note("A new client connection (a new client port, so a new 4-tuple) is accepted.")
			l.establish(fd)
		},
		explain: `
TIME_WAIT belongs to whoever closed first; for a server that closes its
connections (HTTP/1.0, a server shutting down), that is the server, and its
TIME_WAIT connections hold its own port, 80, for 60 s. A server restarted in
that window fails in bind() with EADDRINUSE, although nothing listens on the
port any more.

SO_REUSEADDR, set on both the old and the new socket before bind(), tells the
stack that a port held only by connections (not by a listener) may be bound
again: the old connections keep their 4-tuples and their TIME_WAIT, and the new
listener takes new ones. Two listeners on one port still conflict: that is
SO_REUSEPORT's job. Every server should set SO_REUSEADDR; Go's net.Listen does.`,
	},
	{
		name:      "reuseport",
		summary:   "two listeners share port 80 with SO_REUSEPORT, and the stack spreads connections between them by a hash",
		keyStates: []string{"LISTEN", "SYN_RCVD", "ESTABLISHED"},
		ports:     true,
		run: func(l *lab) {
			c, s := l.client, l.server
			l.note("Two server processes (or threads) each open a listener on port 80 with SO_REUSEPORT.")
			var lfds []int
			for range 2 {
				fd := s.socket()
				l.check(s.setsockopt(fd, "SO_REUSEPORT", synstack.SO_REUSEPORT) == nil, "setsockopt")
				l.check(s.bind(fd, 80) == nil, "bind with SO_REUSEPORT failed")
				l.check(s.listen(fd, 16) == nil, "listen")
				lfds = append(lfds, fd)
			}
			l.note("A third without SO_REUSEPORT is refused: every socket sharing the port must set it.")
			fd := s.socket()
			l.expectErr("bind without SO_REUSEPORT", s.bind(fd, 80), syscall.EADDRINUSE)
			s.close(fd)
			l.note("Four clients connect, each from its own port.")
			const n = 4
			for range n {
				cfd := c.socket()
				c.connect(cfd, serverAddr, 80)
			}
			l.run(100 * time.Millisecond)
			l.note("Each listener accepts what the hash of the 4-tuple gave it.")
			var counts []string
			total := 0
			for _, lfd := range lfds {
				got := 0
				for {
					if _, err := s.accept(lfd); err != nil {
						break
					}
					got++
				}
				total += got
				counts = append(counts, fmt.Sprintf("listener fd %d accepted %d", lfd, got))
			}
			l.check(total == n, "accepted %d connections, want %d", total, n)
			l.fact("%s.", strings.Join(counts, ", "))
		},
		explain: `
Without options, one port has one listener. SO_REUSEPORT lets several sockets
bind and listen on the same address and port, provided every one of them set
the option before bind(). The stack then picks one listener per incoming SYN
with a keyed hash of the 4-tuple, so a connection always reaches the same
listener, and the load spreads over processes or threads each blocked in its
own accept() (instead of all of them waking on one shared listener).

The spread is a hash, not a round robin: with few connections it can be
uneven, as it may be here. Compare SO_REUSEADDR, which lets a listener reuse a
port held by old connections, but never lets two listeners share it.`,
	},
	{
		name:      "half-close",
		summary:   "shutdown(SHUT_WR): the client says it is done sending, and still receives the server's answer (CLOSE_WAIT on the server)",
		keyStates: []string{"FIN_WAIT_1", "FIN_WAIT_2", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT"},
		run: func(l *lab) {
			c, s := l.client, l.server
			lfd := s.listenOn(80, 16)
			cfd, afd := l.establish(lfd)
			l.note("The client sends its whole request, then closes its sending half only: shutdown(SHUT_WR) sends a FIN.")
			c.write(cfd, "sort these: 3 1 2")
			c.shutdown(cfd, synstack.SHUT_WR)
			l.run(100 * time.Millisecond)
			l.note("The server reads the request, then end of stream: its receiving half is closed (CLOSE_WAIT), its sending half is open.")
			s.read(afd, 100)
			s.read(afd, 100)
			l.expectState(s, afd, "CLOSE_WAIT")
			s.write(afd, "1 2 3")
			l.run(100 * time.Millisecond)
			l.note("The client, in FIN_WAIT_2, still receives.")
			got, _ := c.read(cfd, 100)
			l.check(got == "1 2 3", "client read %q after SHUT_WR", got)
			l.expectState(c, cfd, "FIN_WAIT_2")
			s.close(afd)
			l.run(100 * time.Millisecond)
			c.read(cfd, 100)
			c.close(cfd)
			l.run(61 * time.Second)
		},
		explain: `
A TCP connection is two half-connections, one per direction, and a FIN closes
only the sender's half. shutdown(fd, SHUT_WR) sends that FIN without closing the
socket: "I will send nothing more, but I am still listening". The client is then
in FIN_WAIT_2 and the server in CLOSE_WAIT, and data still flows from server to
client for as long as the server wants: this is a half-closed connection.

It is how a client tells a server "end of request" when the request has no
length of its own (rsh, netcat -N, a sort or compression service): the server
reads until end of stream, answers, and closes its half in turn. close() could
not do this, since it gives up reading too.`,
	},
	{
		name:      "shutdown-rd",
		summary:   "shutdown(SHUT_RD): nothing is sent, read() returns 0 at once, and the connection stays ESTABLISHED",
		keyStates: []string{"ESTABLISHED"},
		run: func(l *lab) {
			c, s := l.client, l.server
			lfd := s.listenOn(80, 16)
			cfd, afd := l.establish(lfd)
			l.note("The client shuts its receiving side. No segment goes out: TCP has no way to say \"stop sending\".")
			c.shutdown(cfd, synstack.SHUT_RD)
			l.showState(c, cfd, "ESTABLISHED")
			c.read(cfd, 100)
			l.note("The client can still write; the server still reads.")
			c.write(cfd, "still talking")
			l.run(100 * time.Millisecond)
			s.read(afd, 100)
			l.note("The server sends anyway: the client's TCP acknowledges the data, as Linux does.")
			s.write(afd, "are you there?")
			l.run(100 * time.Millisecond)
			c.read(cfd, 100)
			c.read(cfd, 100)
			l.showState(c, cfd, "ESTABLISHED")
		},
		explain: `
SHUT_RD has no counterpart on the wire: TCP can say "I will not send any more"
(a FIN) but not "do not send to me". So shutdown(SHUT_RD) only changes what the
application sees: read() returns 0 (end of stream) at once, poll() reports
POLLIN and POLLRDHUP, and no state changes. The peer does not know; the
connection stays ESTABLISHED in both directions.

Data that still arrives is acknowledged as usual. Linux even lets a later read()
return it (the check for the shut side comes after the queue is copied), which
synstack follows: above, the first read() after the data returned it, the next
returned 0. Portable programs treat SHUT_RD as "I will not read any more" and
nothing else.`,
	},
	{
		name:      "shutdown-rdwr",
		summary:   "shutdown(SHUT_RDWR): a FIN goes out, reads return 0, writes fail with EPIPE, and the descriptor stays open",
		keyStates: []string{"FIN_WAIT_1", "FIN_WAIT_2", "CLOSE_WAIT"},
		run: func(l *lab) {
			c, s := l.client, l.server
			lfd := s.listenOn(80, 16)
			cfd, afd := l.establish(lfd)
			l.note("The client shuts both directions: a FIN goes out at once.")
			c.shutdown(cfd, synstack.SHUT_RDWR)
			c.read(cfd, 100)
			_, err := c.write(cfd, "too late")
			l.expectErr("write after SHUT_RDWR", err, syscall.EPIPE)
			l.run(100 * time.Millisecond)
			l.note("The descriptor is still open: the program can still ask for its state.")
			l.showState(c, cfd, "FIN_WAIT_2")
			l.note("The server, in CLOSE_WAIT, sends data anyway: the client can no longer read, so its TCP resets the connection.")
			s.read(afd, 100)
			s.write(afd, "unsolicited")
			l.run(100 * time.Millisecond)
			_, err = s.write(afd, "more")
			l.check(err != nil, "server write after RST succeeded")
			c.close(cfd)
			s.close(afd)
		},
		explain: `
shutdown(SHUT_RDWR) is SHUT_RD and SHUT_WR together: on the wire, the FIN of
SHUT_WR (ESTABLISHED -> FIN_WAIT_1, then FIN_WAIT_2 once acknowledged); for the
application, read() returns 0 and write() fails with EPIPE. Unlike close(), the
descriptor stays valid: the program can still poll it, read SO_ERROR or
TCP_INFO, and must still close() it to free it.

Since this side can no longer read, data the peer sends after the FIN has
nowhere to go. RFC 1122 (4.2.2.13) says to answer it with a RST, and Linux does
(TCPAbortOnData); so does synstack: the client's FIN_WAIT_2 becomes CLOSED. The
server learns it at its next write, as EPIPE: Linux reports a reset in
CLOSE_WAIT as EPIPE rather than ECONNRESET, since the end of stream was already
read.`,
	},
	{
		name:      "close-vs-shutdown",
		summary:   "close() releases a descriptor (FIN only with the last one; RST if data is unread); shutdown() acts on the connection at once",
		keyStates: []string{"FIN_WAIT_1", "CLOSE_WAIT", "CLOSED"},
		ports:     true,
		run: func(l *lab) {
			c, s := l.client, l.server
			lfd := s.listenOn(80, 16)
			cfd, afd := l.establish(lfd)
			l.note("Two descriptors for one socket (dup, or fork): closing one of them sends nothing.")
			dfd := c.dup(cfd)
			c.close(cfd)
			l.run(100 * time.Millisecond)
			l.showState(c, dfd, "ESTABLISHED")
			l.note("shutdown() acts on the socket whatever the descriptors: the FIN goes out now.")
			c.shutdown(dfd, synstack.SHUT_WR)
			l.run(100 * time.Millisecond)
			s.read(afd, 100)
			s.close(afd)
			l.run(100 * time.Millisecond)
			c.close(dfd)

			l.note("A second connection: the server closes while the client's request is still unread.")
			cfd2, afd2 := l.establish(lfd)
			c.write(cfd2, "a request the server never reads")
			l.run(100 * time.Millisecond)
			s.close(afd2)
			l.run(100 * time.Millisecond)
			_, err := c.read(cfd2, 100)
			l.expectErr("read after the peer's abortive close", err, syscall.ECONNRESET)
			c.close(cfd2)
			l.run(61 * time.Second)
		},
		explain: `
close() is about the descriptor; shutdown() is about the connection. A socket
can have several descriptors (dup(), or a child after fork()), and close() only
drops one: the connection is closed, and a FIN sent, when the last one goes.
That is why a forked server whose parent forgets to close its copy never sends
the FIN. shutdown(SHUT_WR) sends the FIN at once whatever the descriptors, and
leaves them open.

close() also gives up reading. If received data is still unread when the last
descriptor is closed, the data can never be delivered, and Linux (RFC 2525
section 2.17) answers with a RST instead of a FIN: the peer's read() gets
ECONNRESET, and any data in flight is lost. That is the abortive close; a
program that wants the peer to get everything it sent shuts down its sending
side, reads until end of stream, then closes.`,
	},
	{
		name:      "half-open",
		summary:   "the server crashes and reboots; the client, unaware, writes and gets a RST: ECONNRESET",
		keyStates: []string{"ESTABLISHED", "CLOSED"},
		run: func(l *lab) {
			c, s := l.client, l.server
			lfd := s.listenOn(80, 16)
			cfd, _ := l.establish(lfd)
			_ = lfd
			l.note("The server host crashes: its TCP state vanishes, and nothing is sent.")
			s.crash()
			l.run(time.Second)
			l.note("The client still believes the connection is ESTABLISHED: it is half-open.")
			l.showState(c, cfd, "ESTABLISHED")
			l.note("The server reboots and its service listens again, knowing nothing of the old connection.")
			s.reboot()
			s.listenOn(80, 16)
			l.run(time.Second)
			l.note("The client writes. The server has no connection for this 4-tuple, so it answers with a RST.")
			c.write(cfd, "hello?")
			l.run(100 * time.Millisecond)
			_, err := c.read(cfd, 100)
			l.expectErr("read after RST", err, syscall.ECONNRESET)
			_, err = c.write(cfd, "hello??")
			l.expectErr("write after RST", err, syscall.EPIPE)
		},
		explain: `
A half-open connection (RFC 9293 section 3.5.2) is one side that believes the
connection is open while the other side has no record of it: after a crash and
reboot, a power loss, a NAT that forgot its mapping. Nothing on the wire tells
the surviving side: TCP only learns when it sends something.

Here the client sent data; the rebooted server found no connection for that
4-tuple and answered with a RST (a segment for no connection, with an ACK:
<SEQ=SEG.ACK><CTL=RST>). The RST's sequence number is exactly what the client
expects, so the client accepts it: ESTABLISHED -> CLOSED, read() returns
ECONNRESET once, then writes fail with EPIPE.

Had the server stayed down, nothing would have answered: the client would have
retransmitted its data with exponential backoff for about 15 minutes
(tcp_retries2 = 15) and then failed with ETIMEDOUT. A client that sends nothing
never learns at all; that is what TCP keepalive (SO_KEEPALIVE) or an
application-level heartbeat is for.

Do not confuse with a half-closed connection (see half-close), where both sides
agree that one direction is closed, nor with the "half-open" connections of a
SYN flood, which are handshakes that never completed (SYN_RCVD).`,
	},
	{
		name:      "syn-flood",
		summary:   "spoofed SYNs fill the SYN queue: without SYN cookies a real client waits a minute, with them it connects at once",
		keyStates: []string{"SYN_RCVD", "ESTABLISHED"},
		ports:     true,
		config: func(host string, cfg *synstack.Config) {
			if host == serverName {
				cfg.MaxSynBacklog = 2
				cfg.NoSynCookies = true
			}
		},
		run: func(l *lab) {
			c, s := l.client, l.server
			l.note("Act 1: SYN cookies off (tcp_syncookies=0). The server's SYN queue holds 2 half-open connections (MaxSynBacklog, as tcp_max_syn_backlog).")
			lfd := s.listenOn(80, 128)
			l.note("An attacker next to the client sends 3 SYNs from spoofed addresses (10.0.0.100-102) that will never answer.")
			for i := range 3 {
				c.inject(spoofedSYN(i, 1))
			}
			l.run(100 * time.Millisecond)
			st := s.st.Stats()
			l.check(st.TcpExtListenDrops == 1, "ListenDrops = %d after the flood, want 1", st.TcpExtListenDrops)
			l.note("Two SYNs took the queue (their SYN,ACKs go to addresses that do not exist); the third was dropped without a word: TcpExtListenDrops = %d.", st.TcpExtListenDrops)
			l.note("A real client connects: its SYN is dropped too, and retransmitted at 1, 3, 7, 15, 31 s...")
			cfd := c.socket()
			c.connect(cfd, serverAddr, 80)
			l.run(40 * time.Second)
			l.note("TcpExtListenDrops = %d: the real client's SYNs were dropped with the flood's. The half-open entries give up after 5 SYN,ACK retransmissions (63 s) and free the queue.",
				s.st.Stats().TcpExtListenDrops)
			l.run(24 * time.Second)
			afd, err := s.accept(lfd)
			l.check(err == nil, "act 1: the real client was never accepted: %v", err)
			l.check(c.soError(cfd) == 0, "act 1: connect failed")
			l.fact("Act 1, no SYN cookies: the real client connected after %.0f s; TcpExtListenDrops %d.",
				l.clk.Now().Sub(l.t0).Seconds(), s.st.Stats().TcpExtListenDrops)
			c.close(cfd)
			l.run(100 * time.Millisecond)
			s.close(afd)
			l.run(100 * time.Millisecond)

			l.note("Act 2: the server restarts with SYN cookies on (tcp_syncookies=1, Linux's default), and the attacker floods again.")
			s.restart(func(cfg *synstack.Config) { cfg.NoSynCookies = false })
			lfd = s.listenOn(80, 128)
			act2 := l.clk.Now()
			for i := range 3 {
				c.inject(spoofedSYN(i, 2))
			}
			l.run(100 * time.Millisecond)
			l.note("The third SYN got a SYN,ACK too: its ISN is a cookie, and the server kept nothing. The real client's SYN gets one as well.")
			cfd = c.socket()
			c.connect(cfd, serverAddr, 80)
			l.run(100 * time.Millisecond)
			_, err = s.accept(lfd)
			l.check(err == nil, "act 2: the real client was not accepted at once: %v", err)
			l.check(c.soError(cfd) == 0, "act 2: connect failed")
			st = s.st.Stats()
			l.check(st.TcpExtSyncookiesRecv == 1, "act 2: SyncookiesRecv = %d, want 1", st.TcpExtSyncookiesRecv)
			l.fact("Act 2, SYN cookies: the real client connected %.1f s into the flood; TcpExtSyncookiesSent %d, TcpExtSyncookiesRecv %d, TcpExtListenDrops %d.",
				l.clk.Now().Sub(act2).Seconds(), st.TcpExtSyncookiesSent, st.TcpExtSyncookiesRecv, st.TcpExtListenDrops)
			l.fact("The client's host dropped %d SYN,ACKs meant for the spoofed addresses (IpInAddrErrors).", c.st.Stats().IpInAddrErrors)
		},
		explain: `
Each SYN that reaches a listener normally creates a half-open connection
(SYN_RCVD, RFC 4987's "half-open" or embryonic connection) that waits for the
final ACK of the handshake, retransmitting its SYN,ACK (after 1, 2, 4, 8, 16 s)
and giving up after tcp_synack_retries = 5, about 63 s later. With spoofed
source addresses the ACK never comes, so a few SYNs per second keep the SYN queue
full, and every SYN beyond it, legitimate or not, is dropped silently and
counted (TcpExtListenDrops). In act 1 the real client saw only silence and kept
retransmitting its SYN; it got in when the flood's entries expired, a minute
later.

SYN cookies (act 2) remove the state: when the SYN queue is full, the server
answers with a SYN,ACK whose ISN encodes the connection (a keyed hash of the
addresses and ports, a coarse clock, and the MSS) and forgets it. An attacker
who spoofs never answers, so the cookies cost nothing; a real client's ACK
returns the cookie (ack = ISN+1), the server checks it and creates the
connection then: LISTEN -> SYN_RCVD -> ESTABLISHED in one step ("rcv ACK with a
valid SYN cookie"). The price is small: options that the cookie cannot carry are
recovered from the timestamp echo, or lost.

The SYN,ACKs to the spoofed addresses reach the client's host here (the link has
two ends), which drops them as not its own; on a real network they go to
innocent hosts, which answer with RSTs, or nowhere.`,
	},
	{
		name:      "backlog-overflow",
		summary:   "listen(fd, 1) queues two connections; a third SYN is dropped until accept() makes room",
		keyStates: []string{"SYN_SENT", "SYN_RCVD", "ESTABLISHED"},
		ports:     true,
		run: func(l *lab) {
			c, s := l.client, l.server
			lfd := s.listenOn(80, 1)
			l.note("Three clients connect; the server does not call accept(). The accept queue takes backlog+1 = 2 connections.")
			var cfds []int
			for range 3 {
				fd := c.socket()
				c.connect(fd, serverAddr, 80)
				cfds = append(cfds, fd)
				l.run(100 * time.Millisecond)
			}
			l.expectState(c, cfds[2], "SYN_SENT")
			st := s.st.Stats()
			l.note("The third SYN reached the server, which dropped it without a word: the accept queue is full (TcpExtListenOverflows = %d).", st.TcpExtListenOverflows)
			l.note("The server accepts one: room for one more. The third client's SYN retransmission gets in.")
			l.run(500 * time.Millisecond)
			_, err := s.accept(lfd)
			l.check(err == nil, "accept: %v", err)
			l.run(2 * time.Second)
			l.expectState(c, cfds[2], "ESTABLISHED")
			s.accept(lfd)
			s.accept(lfd)
			st = s.st.Stats()
			l.check(st.TcpExtListenOverflows > 0, "no ListenOverflows counted")
			l.fact("Server counters: TcpExtListenOverflows %d, TcpExtListenDrops %d.", st.TcpExtListenOverflows, st.TcpExtListenDrops)
		},
		explain: `
A listener has two queues: half-open connections (SYN_RCVD) and completed ones
waiting for accept(). listen()'s backlog bounds the second; as in Linux, it holds
backlog+1 connections. Once it is full, a new SYN is dropped without an answer
(no RST: the client should simply retry) and counted in TcpExtListenOverflows
and TcpExtListenDrops. The client's TCP retransmits its SYN on its RTO (1 s,
then 2 s...), and once accept() has made room, the retransmission is answered
and the handshake completes.

So an overloaded server slows clients down by seconds rather than refusing
them. Check the counters (nstat, or ss -lt for the queue sizes) when clients
report slow connects to a busy server, and raise the backlog (and
net.core.somaxconn, which caps it).`,
	},
	{
		name:      "retransmission",
		summary:   "a lost data segment: a timeout (RTO) when it is the last one, fast retransmit on three duplicate ACKs otherwise",
		keyStates: []string{"ESTABLISHED"},
		config: func(host string, cfg *synstack.Config) {
			cfg.TCP.NoDelay = true
		},
		run: func(l *lab) {
			c, s := l.client, l.server
			l.note("A bulk transfer to port %d.", bulkPort)
			lfd := s.listenOn(bulkPort, 16)
			cfd, afd := l.establishPort(lfd, bulkPort)
			l.note("The link loses the client's next data segment. Nothing follows it, so only the RTO can repair it.")
			lose := 1
			c.dropWhen("lost", func(p *trace.Packet) bool {
				if lose > 0 && p.PayloadLen > 0 {
					lose--
					return true
				}
				return false
			})
			c.write(cfd, "lost once")
			l.run(time.Second)
			got, _ := s.read(afd, 100)
			l.check(got == "lost once", "server read %q", got)
			l.note("Now five full-sized segments (a bulk transfer); the link loses the second. The three after it each draw a duplicate ACK, with a SACK block.")
			skip, lose := 1, 1
			c.dropWhen("lost", func(p *trace.Packet) bool {
				if p.PayloadLen == 0 || lose == 0 {
					return false
				}
				if skip > 0 {
					skip--
					return false
				}
				lose--
				return true
			})
			mark := len(l.tagged)
			var sent strings.Builder
			for i := range 5 {
				seg := fmt.Sprintf("segment %d ", i+1)
				seg += strings.Repeat(".", mss-len(seg))
				sent.WriteString(seg)
				c.write(cfd, seg)
			}
			l.run(time.Second)
			var recv strings.Builder
			for i := 0; i < 10 && recv.Len() < sent.Len(); i++ {
				data, _ := s.read(afd, 8192)
				recv.WriteString(data)
			}
			l.check(recv.String() == sent.String(), "server read %d bytes, want %d", recv.Len(), sent.Len())
			l.fact("What synstack did: %s", describeRecovery(l.tagged[mark:], 10+mss, l.client.name, l.server.name))
			c.close(cfd)
			l.run(100 * time.Millisecond)
			s.close(afd)
			l.run(61 * time.Second)
		},
		explain: `
TCP repairs loss in two ways. The retransmission timer (RTO) is the last
resort: it is set from the measured round-trip time (RFC 6298: SRTT + 4*RTTVAR,
at least 200 ms in Linux), and when it expires the oldest unacknowledged segment
is sent again, and the RTO doubles. With a lone segment lost, it is the only
way: nothing else tells the sender.

When more data follows the hole, the receiver acknowledges each later segment
with the same ACK number (it still waits for the missing bytes), a duplicate
ACK, and here a SACK block saying which bytes beyond the hole it does have.
Three duplicate ACKs make the sender retransmit at once, without waiting for the
timer: fast retransmit (RFC 5681, and RFC 6675 with SACK), one round trip
instead of 200 ms or more. The ACK of the retransmission jumps to the end of
everything sent: the receiver had kept the segments after the hole.`,
	},
	{
		name:      "zero-window",
		summary:   "the receiver stops reading: its window closes, the sender probes the zero window until the reader drains it",
		keyStates: []string{"ESTABLISHED"},
		config: func(host string, cfg *synstack.Config) {
			cfg.TCP.NoDelay = true
		},
		run: func(l *lab) {
			c, s := l.client, l.server
			l.note("The server sets a small receive buffer on its listener (the kernel doubles it: 4 KB, half of it for data); its connections inherit it.")
			lfd := s.socket()
			s.setsockoptInt(lfd, "SO_RCVBUF", synstack.SO_RCVBUF, 2048)
			l.check(s.bind(lfd, bulkPort) == nil, "bind")
			s.listen(lfd, 16)
			cfd, afd := l.establishPort(lfd, bulkPort)
			l.note("The server's application does not read. The client writes 6000 bytes.")
			data := strings.Repeat("z", 6000)
			n, _ := c.write(cfd, data)
			l.run(100 * time.Millisecond)
			l.note("The window is 0: the client holds the rest of its data and probes the window when its persist timer fires, backing off each time.")
			l.run(5 * time.Second)
			l.note("The server's application reads at last: a window update reopens the flow.")
			total := 0
			for i := 0; i < 20 && total < len(data); i++ {
				got, _ := s.read(afd, 4096)
				total += len(got)
				l.run(100 * time.Millisecond)
				if n < len(data) {
					m, _ := c.write(cfd, data[n:])
					n += m
				}
			}
			l.check(total == len(data), "server read %d bytes, want %d", total, len(data))
			c.close(cfd)
			l.run(100 * time.Millisecond)
			s.close(afd)
			l.run(61 * time.Second)
		},
		explain: `
Every ACK carries a window: how many more bytes the receiver can buffer. An
application that does not read lets its buffer fill, and the window it
advertises shrinks to zero; the sender must then stop, whatever its congestion
window says. This is flow control (the receiver's limit), as opposed to
congestion control (the network's).

A zero window has a trap: the window update that reopens it is a pure ACK, and
if it were lost, both sides would wait forever. So the sender runs the persist
timer and sends a zero-window probe (a segment the receiver must acknowledge,
here an empty ACK one below the next sequence number) with exponential backoff,
for as long as the window stays closed. When the reader drains its buffer, the
receiver advertises the new window at once (a window update), and data flows
again.`,
	},
}

// mss is the segment size of the demos' connections: a 1500-byte link,
// less 40 bytes of headers and 12 of timestamps.
const mss = 1448

// describeRecovery says how the hole at relative sequence number hole was
// repaired: fast retransmit (a retransmission of it soon after the third
// duplicate ACK) or a timeout.
func describeRecovery(tagged []taggedPacket, hole uint32, sender, receiver string) string {
	var dups []time.Time
	for _, t := range tagged {
		switch {
		case t.tag == trace.TagDupAck && t.host == receiver:
			dups = append(dups, t.at)
		case t.tag == trace.TagRetransmission && t.host == sender && t.seq == hole:
			if len(dups) >= 3 && t.at.Sub(dups[2]) < 50*time.Millisecond {
				return fmt.Sprintf("fast retransmit: %d duplicate ACKs, then the hole resent %v after the third.",
					len(dups), t.at.Sub(dups[2]))
			}
			if len(dups) == 0 {
				return "no duplicate ACKs as RFC 5681 counts them (each ACK changed the window), but their SACK blocks showed the hole, and it was resent (RFC 6675)."
			}
			return fmt.Sprintf("%d duplicate ACKs did not trigger fast retransmit; the retransmission timer repaired the hole %v after the third.",
				len(dups), t.at.Sub(dups[min(2, len(dups)-1)]).Round(time.Millisecond))
		}
	}
	return "the hole was never retransmitted."
}

// spoofedSYN builds the i-th SYN of a flood's round, from 10.0.0.100+i: a
// plain SYN with an MSS option, as a flooding tool sends, checksums correct.
func spoofedSYN(i, round int) []byte {
	src := [4]byte{10, 0, 0, byte(100 + i)}
	th := wire.TCP{
		SrcPort: uint16(1001 + i),
		DstPort: 80,
		Seq:     uint32(0x1000_0000*(i+1) + 0x10000*round),
		Flags:   wire.FlagSYN,
		Window:  64240,
		Options: wire.TCPOptions{MSS: 1460},
	}
	buf := make([]byte, wire.IPv4HeaderLen+th.HeaderLen())
	n, err := th.Emit(buf[wire.IPv4HeaderLen:])
	if err != nil {
		panic(err)
	}
	ipSrc, ipDst := netip.AddrFrom4(src), netip.AddrFrom4([4]byte{10, 0, 0, 1})
	wire.SetTCPChecksum(buf[wire.IPv4HeaderLen:], ipSrc, ipDst)
	ih := wire.IPv4{ID: uint16(i + 1), TTL: 64, Protocol: wire.ProtoTCP, Src: ipSrc, Dst: ipDst}
	if _, err := ih.Emit(buf, n); err != nil {
		panic(err)
	}
	return buf
}
