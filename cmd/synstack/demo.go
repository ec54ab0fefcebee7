package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/clock"
	"github.com/synstack/synstack/link"
	"github.com/synstack/synstack/link/sim"
	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/trace"
)

// lab is two stacks on one simulated link with a virtual clock: everything
// that happens is deterministic and printed as a ladder.
type lab struct {
	w      io.Writer
	clk    *clock.Virtual
	ladder *trace.Ladder
	paths  map[string][]string
	hosts  map[string]*synstack.Stack
	names  []string
}

const (
	clientName = "client 10.0.0.2"
	serverName = "server 10.0.0.1"
)

func newLab(w io.Writer, delay time.Duration) (*lab, error) {
	l := &lab{
		w:     w,
		clk:   clock.NewVirtual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
		paths: map[string][]string{},
		hosts: map[string]*synstack.Stack{},
	}
	l.ladder = trace.NewLadder(w, clientName, serverName)
	a, b := sim.Pair(sim.Options{Clock: l.clk, Delay: delay})
	if err := l.addHost(clientName, "10.0.0.2/24", a); err != nil {
		return nil, err
	}
	if err := l.addHost(serverName, "10.0.0.1/24", b); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *lab) addHost(name, addr string, ln link.Endpoint) error {
	st, err := synstack.New(synstack.Config{
		Link:  ln,
		Addrs: []netip.Prefix{netip.MustParsePrefix(addr)},
		Clock: l.clk,
		Seed:  uint64(len(l.names) + 1),
		OnTransition: func(local, remote netip.AddrPort, from, to tcp.State, cause tcp.Cause) {
			if to == tcp.Listen && from == tcp.Closed {
				// The stack opens one passive connection per SYN; the
				// listening socket's own CLOSED -> LISTEN is shown at listen().
				return
			}
			if len(l.paths[name]) == 0 {
				l.paths[name] = append(l.paths[name], from.String())
			}
			l.paths[name] = append(l.paths[name], to.String())
			l.ladder.Event(trace.Event{Time: l.clk.Now(), Host: name, Kind: trace.Transition,
				From: from.String(), To: to.String(), Cause: string(cause), Local: local, Remote: remote})
		},
		OnPacket: func(dir string, pkt []byte) {
			if dir == "out" {
				l.ladder.Event(trace.Event{Time: l.clk.Now(), Host: name, Kind: trace.PacketOut, Packet: pkt})
			}
		},
	})
	if err != nil {
		return err
	}
	l.hosts[name] = st
	l.names = append(l.names, name)
	return nil
}

func (l *lab) close() {
	for _, st := range l.hosts {
		st.Close()
	}
}

// call prints a socket call in the host's column.
func (l *lab) call(host, format string, args ...any) {
	l.ladder.Event(trace.Event{Time: l.clk.Now(), Host: host, Kind: trace.Call, Text: fmt.Sprintf(format, args...)})
}

func (l *lab) note(format string, args ...any) {
	l.ladder.Event(trace.Event{Time: l.clk.Now(), Kind: trace.Note, Text: fmt.Sprintf(format, args...)})
}

func (l *lab) run(d time.Duration) { l.clk.Advance(d) }

func errText(err error) string {
	var e syscall.Errno
	if errors.As(err, &e) {
		return errnoName(e)
	}
	if err == nil {
		return "0"
	}
	return err.Error()
}

func errnoName(e syscall.Errno) string {
	switch e {
	case syscall.EINPROGRESS:
		return "-1 EINPROGRESS"
	case syscall.EAGAIN:
		return "-1 EAGAIN"
	case syscall.ECONNREFUSED:
		return "-1 ECONNREFUSED"
	case syscall.ECONNRESET:
		return "-1 ECONNRESET"
	case syscall.ETIMEDOUT:
		return "-1 ETIMEDOUT"
	}
	return "-1 " + e.Error()
}

func runDemo(w io.Writer, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	list := fs.Bool("list", false, "list the scenarios")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *list {
		fmt.Fprintln(w, "tour    a connection's whole life: handshake, data both ways, four-way close, TIME_WAIT")
		return nil
	}
	if fs.NArg() > 0 && fs.Arg(0) != "tour" {
		return fmt.Errorf("demo: unknown scenario %q (see --list)", fs.Arg(0))
	}
	return tour(w)
}

// tour opens one connection, moves data both ways and closes it, so that
// each side passes through every state of an ordinary connection's life.
func tour(w io.Writer) error {
	l, err := newLab(w, 10*time.Millisecond)
	if err != nil {
		return err
	}
	defer l.close()
	cli := l.hosts[clientName].Sockets()
	srv := l.hosts[serverName].Sockets()
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	var result error
	func() {
		defer func() {
			if r := recover(); r != nil {
				result = fmt.Errorf("demo failed: %v", r)
			}
		}()
		l.note("The server opens a passive socket; the client connects (three-way handshake).")
		lfd, err := srv.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK, 0)
		must(err)
		must(srv.Bind(lfd, netip.MustParseAddrPort("10.0.0.1:80")))
		must(srv.Listen(lfd, 16))
		l.call(serverName, "listen(%d, 16) = 0", lfd)
		l.ladder.Event(trace.Event{Time: l.clk.Now(), Host: serverName, Kind: trace.Transition, From: "CLOSED", To: "LISTEN", Cause: "call LISTEN"})
		l.paths[serverName] = []string{"CLOSED", "LISTEN"}

		cfd, err := cli.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK, 0)
		must(err)
		l.call(clientName, "connect(%d, 10.0.0.1:80)", cfd)
		err = cli.Connect(cfd, netip.MustParseAddrPort("10.0.0.1:80"))
		l.call(clientName, "  = %s", errText(err))
		l.run(100 * time.Millisecond)
		afd, peer, err := srv.Accept(lfd)
		must(err)
		l.call(serverName, "accept(%d) = %d  (from %s)", lfd, afd, peer)

		l.note("Data both ways: each segment is acknowledged.")
		req := []byte("GET / HTTP/1.0\r\n\r\n")
		l.call(clientName, "write(%d, %d bytes)", cfd, len(req))
		_, err = cli.Write(cfd, req)
		must(err)
		l.run(100 * time.Millisecond)
		buf := make([]byte, 4096)
		n, err := srv.Read(afd, buf)
		must(err)
		l.call(serverName, "read(%d) = %d", afd, n)
		resp := []byte("HTTP/1.0 200 OK\r\n\r\nhello from synstack\n")
		l.call(serverName, "write(%d, %d bytes)", afd, len(resp))
		_, err = srv.Write(afd, resp)
		must(err)
		l.run(100 * time.Millisecond)
		n, err = cli.Read(cfd, buf)
		must(err)
		l.call(clientName, "read(%d) = %d", cfd, n)

		l.note("The client closes first (active close): FIN, ACK; the server reads EOF, closes: FIN, ACK.")
		l.call(clientName, "close(%d)", cfd)
		must(cli.Close(cfd))
		l.run(100 * time.Millisecond)
		n, err = srv.Read(afd, buf)
		must(err)
		l.call(serverName, "read(%d) = %d  (end of stream)", afd, n)
		l.call(serverName, "close(%d)", afd)
		must(srv.Close(afd))
		l.run(100 * time.Millisecond)
		l.note("The client waits 2MSL (60 s) in TIME_WAIT, so stray segments of this connection die first.")
		l.run(61 * time.Second)
		must(srv.Close(lfd))
	}()
	if result != nil {
		return result
	}
	fmt.Fprintln(w)
	for _, name := range l.names {
		fmt.Fprintf(w, "%s: %s\n", name, strings.Join(l.paths[name], " -> "))
	}
	return nil
}
