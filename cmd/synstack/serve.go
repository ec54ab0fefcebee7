package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/synstack/synstack/admin"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/synstack/synstack"
)

// serve: a server on synstack over a TUN device, for the kernel's clients
// (curl, wrk, a browser) to reach.

const serveUsage = `usage: synstack serve --tun NAME --addr CIDR [--listen :PORT] (--http DIR | --echo | --discard)
                      [--host-addr CIDR] [--no-offload] [--mtu N] [--backlog N]

Creates the TUN device NAME (or attaches to it), gives the stack the address
CIDR and serves on it: files of DIR over HTTP, an echo service, or a discard
service. The kernel's side of the device is configured with --host-addr, or by
hand after serve has started (ip addr add 10.99.0.1/24 dev NAME; ip link set NAME up):
serve waits for it. SIGUSR1 prints the stack's counters as a JSON line on stderr.
SIGINT or SIGTERM closes every connection, then removes what serve created.
Needs root (CAP_NET_ADMIN).

`

// serveShutdownWait bounds how long connections get to finish at exit
// before the stack resets what is left.
const serveShutdownWait = 3 * time.Second

func runServe(stderr io.Writer, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var tf tunFlags
	tf.register(fs)
	listen := fs.String("listen", ":80", "the address to listen on, `:PORT` (IPv4 and IPv6) or ADDR:PORT")
	dir := fs.String("http", "", "serve the files of `DIR` over HTTP")
	echo := fs.Bool("echo", false, "echo what each connection sends")
	discard := fs.Bool("discard", false, "read and throw away what each connection sends")
	adminAddr := fs.String("admin", "", "serve /metrics, /debug/sockets and the live state-diagram page on `ADDR` (e.g. 127.0.0.1:9180, what synstack ss reads)")
	backlog := fs.Int("backlog", 0, "listen backlog (0: the stack's somaxconn, 4096); the SYN queue holds backlog+1 before SYN cookies")
	fs.Usage = func() {
		fmt.Fprint(stderr, serveUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	if err := tf.check(); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	modes := 0
	for _, on := range []bool{*dir != "", *echo, *discard} {
		if on {
			modes++
		}
	}
	if modes != 1 {
		return errors.New("serve: say what to serve: one of --http DIR, --echo, --discard")
	}
	if *dir != "" {
		if fi, err := os.Stat(*dir); err != nil {
			return fmt.Errorf("serve: %w", err)
		} else if !fi.IsDir() {
			return fmt.Errorf("serve: %s is not a directory", *dir)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)

	obs := admin.NewObserver()
	ts, err := openTunStack(stderr, "serve", &tf, synstack.Config{OnTransition: obs.OnTransition})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if *adminAddr != "" {
		als, err := net.Listen("tcp", *adminAddr)
		if err != nil {
			ts.close()
			return fmt.Errorf("serve: admin: %w", err)
		}
		hs := &http.Server{Handler: admin.Handler(ts.st, obs), ReadHeaderTimeout: 10 * time.Second}
		go hs.Serve(als)
		// Close, not Shutdown: the /events streams never end by themselves.
		defer hs.Close()
		ts.logf("admin endpoints on http://%s/ (metrics, /debug/sockets, live page)", als.Addr())
	}
	lc := synstack.ListenConfig{Stack: ts.st, Backlog: *backlog}
	ln, err := lc.Listen(ctx, "tcp", *listen)
	if err != nil {
		ts.close()
		return fmt.Errorf("serve: %w", err)
	}
	srv := &server{conns: map[net.Conn]struct{}{}}
	what := "echo"
	switch {
	case *dir != "":
		what = "HTTP, files of " + *dir
		srv.http = &http.Server{
			Handler:           http.FileServer(http.Dir(*dir)),
			ReadHeaderTimeout: 30 * time.Second,
			ErrorLog:          log.New(stderr, "synstack serve: http: ", 0),
			ConnState:         srv.connState,
		}
		go srv.http.Serve(ln)
	case *discard:
		what = "discard"
		srv.handle = func(c net.Conn) { io.Copy(io.Discard, c) }
		go srv.acceptLoop(ln)
	default:
		srv.handle = func(c net.Conn) { io.Copy(c, c) }
		go srv.acceptLoop(ln)
	}
	ts.logf("listening on %s (%s)", ln.Addr(), what)

	watchCtx, stopWatch := context.WithCancel(ctx)
	var watchDone sync.WaitGroup
	watchDone.Add(1)
	go func() {
		defer watchDone.Done()
		ts.watchKernel(watchCtx)
	}()

	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-usr1:
			ts.printStats(stderr, srv.active.Load(), nil)
		}
	}
	stop() // a second Ctrl-C ends serve at once
	stopWatch()
	watchDone.Wait()

	ts.logf("closing %d connections", srv.active.Load())
	srv.shutdown(ln)
	ts.settle(time.Second)
	ts.printStats(stderr, srv.active.Load(), nil)
	if err := ts.close(); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// server serves the connections of one listener and keeps track of them.
type server struct {
	http   *http.Server     // HTTP mode
	handle func(c net.Conn) // echo and discard modes

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
	active atomic.Int64
}

func (s *server) connState(c net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		s.active.Add(1)
	case http.StateClosed, http.StateHijacked:
		s.active.Add(-1)
	}
}

func (s *server) acceptLoop(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return // closed by shutdown
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.active.Add(1)
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.handle(c)
			c.Close()
			s.mu.Lock()
			delete(s.conns, c)
			s.active.Add(-1)
			s.mu.Unlock()
		}()
	}
}

// shutdown stops listening and closes every connection: HTTP ones once
// their request is done (at most serveShutdownWait), the others at once.
func (s *server) shutdown(ln net.Listener) {
	if s.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), serveShutdownWait)
		defer cancel()
		if s.http.Shutdown(ctx) != nil {
			s.http.Close()
		}
		return
	}
	ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(serveShutdownWait):
	}
}
