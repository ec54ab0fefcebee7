package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/forward"
)

// serve: a server on synstack over a TUN device, for the kernel's clients
// (curl, wrk, a browser) to reach.

const serveUsage = `usage: synstack serve --tun NAME --addr CIDR (--http DIR | --echo | --discard) [--listen :PORT]
                      [--host-addr CIDR] [--admin :PORT] [--max-conns N] [--idle-timeout D]
                      [--read-header-timeout D] [--write-timeout D] [--dotfiles]
                      [--no-offload] [--mtu N] [--queues N] [--backlog N]

Creates the TUN device NAME (or attaches to it), gives the stack the address
CIDR and serves on it: files of DIR over HTTP, an echo service, or a discard
service, on --listen (default :80 for --http, :7 for --echo, :9 for
--discard, the services' own ports). The kernel's side of the device is
configured with --host-addr, or by hand after serve has started (ip addr add
10.99.0.1/24 dev NAME; ip link set NAME up): serve waits for it.

Connections beyond --max-conns are refused (RST) and counted; a connection
silent for --idle-timeout is closed (HTTP: between requests; echo and
discard: no data either way, or a peer that does not read, then reset).
--http serves no dot-file or dot-directory (.git/, .env) unless --dotfiles.
SIGUSR1 prints the stack's counters as a JSON line on stderr. SIGINT or
SIGTERM closes every connection, then removes what serve created. Needs root
or CAP_NET_ADMIN: sudo "$(go env GOPATH)/bin/synstack" serve ...

flags:
`

// serveShutdownWait bounds how long connections get to finish at exit
// before the stack resets what is left.
const serveShutdownWait = 3 * time.Second

// Defaults of serve's limits.
const (
	defaultMaxConns          = 10000
	defaultIdleTimeout       = 2 * time.Minute
	defaultReadHeaderTimeout = 10 * time.Second
	defaultWriteTimeout      = 5 * time.Minute
)

// serveConfig is what serve's command line asks for.
type serveConfig struct {
	tf                tunFlags
	listen            string
	dir               string
	echo, discard     bool
	dotfiles          bool
	admin             string
	backlog           int
	maxConns          int
	idleTimeout       time.Duration
	readHeaderTimeout time.Duration
	writeTimeout      time.Duration
}

// parseServe parses and checks serve's arguments; nothing is created.
func parseServe(stderr io.Writer, args []string) (*serveConfig, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &serveConfig{}
	c.tf.register(fs)
	fs.StringVar(&c.listen, "listen", "", "the address to listen on, `:PORT` (IPv4 and IPv6) or ADDR:PORT; default :80, :7 or :9 by service")
	fs.StringVar(&c.dir, "http", "", "serve the files of `DIR` over HTTP")
	fs.BoolVar(&c.echo, "echo", false, "echo what each connection sends")
	fs.BoolVar(&c.discard, "discard", false, "read and throw away what each connection sends")
	fs.BoolVar(&c.dotfiles, "dotfiles", false, "let --http serve files and directories whose name starts with a dot")
	adminAddr := adminFlag(fs)
	fs.IntVar(&c.backlog, "backlog", 0, "listen backlog (0: the stack's somaxconn, 4096); the SYN queue holds backlog+1 before SYN cookies")
	fs.IntVar(&c.maxConns, "max-conns", defaultMaxConns, "connections open at once, at most; more are refused (RST) and counted (0: no limit)")
	fs.DurationVar(&c.idleTimeout, "idle-timeout", defaultIdleTimeout, "close a connection silent this long (HTTP: keep-alive between requests) (0: never)")
	fs.DurationVar(&c.readHeaderTimeout, "read-header-timeout", defaultReadHeaderTimeout, "HTTP: time to read a request's header (0: no limit)")
	fs.DurationVar(&c.writeTimeout, "write-timeout", defaultWriteTimeout, "HTTP: time from a request's header to the end of its response (0: no limit)")
	fs.Usage = usageFunc(stderr, fs, serveUsage)
	if err := parseFlagsOnly(fs, "serve", args); err != nil {
		return nil, err
	}
	c.admin = *adminAddr
	if err := c.tf.check(); err != nil {
		return nil, err
	}
	if !exactlyOne(c.dir != "", c.echo, c.discard) {
		return nil, errors.New("say what to serve: one of --http DIR, --echo, --discard")
	}
	if c.dir != "" {
		if fi, err := os.Stat(c.dir); err != nil {
			return nil, fmt.Errorf("--http %s: %w", c.dir, err)
		} else if !fi.IsDir() {
			return nil, fmt.Errorf("--http %s: not a directory", c.dir)
		}
	}
	if c.listen == "" {
		c.listen = map[bool]string{true: ":80", false: ":7"}[c.dir != ""]
		if c.discard {
			c.listen = ":9"
		}
	}
	if err := checkListen(c.listen, c.tf.addrs); err != nil {
		return nil, err
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"idle-timeout", c.idleTimeout}, {"read-header-timeout", c.readHeaderTimeout}, {"write-timeout", c.writeTimeout}} {
		if d.v < 0 {
			return nil, fmt.Errorf("--%s %v: want a duration of 0 (none) or more", d.name, d.v)
		}
	}
	if c.maxConns < 0 {
		return nil, fmt.Errorf("--max-conns %d: want 0 (no limit) or more", c.maxConns)
	}
	if c.backlog < 0 {
		return nil, fmt.Errorf("--backlog %d: want 0 (the default) or more", c.backlog)
	}
	return c, nil
}

func runServe(stderr io.Writer, args []string) error {
	c, err := parseServe(stderr, args)
	if err != nil {
		return commandError("serve", err)
	}
	run, err := startTunRun(stderr, "serve", &c.tf, c.admin)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer run.stop()
	ts := run.ts
	lc := synstack.ListenConfig{Stack: ts.st, Backlog: c.backlog}
	sln, err := lc.Listen(run.sig.ctx, "tcp", c.listen)
	if err != nil {
		ts.close()
		return fmt.Errorf("serve: --listen %s: %w", c.listen, err)
	}
	srv := &server{conns: map[net.Conn]struct{}{}, maxConns: int64(c.maxConns), idle: c.idleTimeout, logf: ts.logf}
	ln := &limitListener{Listener: sln, srv: srv}
	what := "echo"
	switch {
	case c.dir != "":
		what = "HTTP, files of " + c.dir
		if !c.dotfiles {
			what += ", no dot-files"
		}
		srv.http = c.httpServer(stderr)
		go srv.http.Serve(ln)
	case c.discard:
		what = "discard"
		srv.handle = func(c net.Conn) bool { return srv.pump(c, false) }
		go srv.acceptLoop(ln)
	default:
		srv.handle = func(c net.Conn) bool { return srv.pump(c, true) }
		go srv.acceptLoop(ln)
	}
	ts.logf("listening on %s (%s; at most %s connections, idle timeout %s)", sln.Addr(), what, limitText(c.maxConns), durText(c.idleTimeout))

	run.untilSignal(func() { ts.printStats(stderr, srv.active.Load(), srv, nil) })

	ts.logf("closing %d connections", srv.active.Load())
	srv.shutdown(ln)
	ts.settle(time.Second)
	if n := srv.refused.Load(); n > 0 {
		ts.logf("refused %d connections beyond --max-conns %d", n, c.maxConns)
	}
	if n := srv.idleClosed.Load(); n > 0 {
		ts.logf("reset %d connections idle for --idle-timeout %v", n, c.idleTimeout)
	}
	ts.printStats(stderr, srv.active.Load(), srv, nil)
	if err := ts.close(); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// httpServer is the HTTP server --http asks for, with the timeouts of the
// flags in net/http's own fields.
func (c *serveConfig) httpServer(stderr io.Writer) *http.Server {
	var root http.FileSystem = http.Dir(c.dir)
	if !c.dotfiles {
		root = noDotFiles{root}
	}
	return &http.Server{
		Handler:           http.FileServer(root),
		ReadHeaderTimeout: c.readHeaderTimeout,
		WriteTimeout:      c.writeTimeout,
		IdleTimeout:       c.idleTimeout,
		ErrorLog:          log.New(stderr, "synstack serve: http: ", 0),
	}
}

func limitText(n int) string {
	if n == 0 {
		return "any number of"
	}
	return fmt.Sprint(n)
}

func durText(d time.Duration) string {
	if d == 0 {
		return "none"
	}
	return d.String()
}

// server serves the connections of one listener and keeps track of them.
type server struct {
	http   *http.Server          // HTTP mode
	handle func(c net.Conn) bool // echo and discard modes; true if the connection timed out
	logf   func(string, ...any)  // the command's log
	idle   time.Duration         // --idle-timeout (echo and discard)

	maxConns   int64         // --max-conns, 0: no limit
	active     atomic.Int64  // connections open
	refused    atomic.Uint64 // connections refused beyond maxConns
	idleClosed atomic.Uint64 // connections reset by the idle timeout
	lastLog    atomic.Int64  // when a refusal was last logged, UnixNano
	peak       atomic.Int64  // the most connections open at once since memory was last given back

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// limitListener counts the connections it hands out and refuses (RST)
// those beyond the server's maxConns.
type limitListener struct {
	net.Listener
	srv *server
}

// Accept returns the next connection within the limit.
func (l *limitListener) Accept() (net.Conn, error) {
	s := l.srv
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if s.maxConns > 0 && s.active.Load() >= s.maxConns {
			n := s.refused.Add(1)
			forward.Reset(c)
			// One line a second at most, whatever the rate of refusals.
			now := time.Now().UnixNano()
			if last := s.lastLog.Load(); now-last >= int64(time.Second) && s.lastLog.CompareAndSwap(last, now) {
				s.logf("refused a connection from %s: --max-conns %d reached (%d refused so far)", c.RemoteAddr(), s.maxConns, n)
			}
			continue
		}
		if n := s.active.Add(1); n > s.peak.Load() {
			s.peak.Store(n) // one Accept at a time: no race with itself
		}
		return &countedConn{Conn: c, srv: s}, nil
	}
}

// countedConn gives its place back to the server's count once closed.
type countedConn struct {
	net.Conn
	srv  *server
	once sync.Once
}

// Close closes the connection.
func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		if c.srv.active.Add(-1) == 0 {
			c.srv.lastGone()
		}
	})
	return err
}

// freeAfterPeak is how many connections open at once make the last one's
// close give memory back to the system.
const freeAfterPeak = 256

// lastGone runs when the last connection closes. After a burst of many,
// the memory they used (the stack's pooled buffers, their goroutines'
// stacks) is given back to the system at once: the Go runtime would
// otherwise keep it for minutes, and an operator watching RSS after a load
// spike or an attack expects it back.
func (s *server) lastGone() {
	if s.peak.Load() < freeAfterPeak {
		return
	}
	s.peak.Store(0)
	go func() {
		// Two collections: the first moves the pooled buffers to the
		// pools' victim caches, the second frees them, and then the
		// memory goes back to the system.
		runtime.GC()
		debug.FreeOSMemory()
	}()
}

// SetLinger passes on to the connection, so that forward.Reset resets.
func (c *countedConn) SetLinger(sec int) error {
	if l, ok := c.Conn.(interface{ SetLinger(int) error }); ok {
		return l.SetLinger(sec)
	}
	return nil
}

func (s *server) acceptLoop(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return // closed by shutdown
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			if s.handle(c) {
				s.idleClosed.Add(1)
				forward.Reset(c) // drop what the silent peer left unread
			} else {
				c.Close()
			}
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// pump reads c until its end, echoing what it reads if echo is set. With
// an idle timeout, a read that waits that long, or a write the peer does
// not take within it, ends the connection: pump then reports true.
func (s *server) pump(c net.Conn, echo bool) (timedOut bool) {
	buf := make([]byte, 16<<10)
	for {
		if s.idle > 0 {
			c.SetReadDeadline(time.Now().Add(s.idle))
		}
		n, err := c.Read(buf)
		if n > 0 && echo {
			if s.idle > 0 {
				c.SetWriteDeadline(time.Now().Add(s.idle))
			}
			if _, werr := c.Write(buf[:n]); werr != nil {
				return errors.Is(werr, os.ErrDeadlineExceeded)
			}
		}
		if err != nil {
			return errors.Is(err, os.ErrDeadlineExceeded)
		}
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

// noDotFiles is a file system that hides every file and directory whose
// name starts with a dot (.git, .env, .ssh): opening one, or anything
// under one, is "not found", and directory listings leave them out.
type noDotFiles struct{ fs http.FileSystem }

// Open opens name unless a part of its path starts with a dot.
func (d noDotFiles) Open(name string) (http.File, error) {
	for _, part := range strings.Split(name, "/") {
		if strings.HasPrefix(part, ".") {
			return nil, fs.ErrNotExist
		}
	}
	f, err := d.fs.Open(name)
	if err != nil {
		return nil, err
	}
	return noDotFile{f}, nil
}

// noDotFile is a file whose directory listing leaves out dot-files.
type noDotFile struct{ http.File }

// Readdir lists the directory without its dot-files.
func (f noDotFile) Readdir(n int) ([]fs.FileInfo, error) {
	all, err := f.File.Readdir(n)
	kept := all[:0]
	for _, fi := range all {
		if !strings.HasPrefix(fi.Name(), ".") {
			kept = append(kept, fi)
		}
	}
	return kept, err
}
