package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/synstack/synstack/link/tun"
)

// noDevice makes opening a TUN device fail the test: the arguments must be
// checked before anything is created.
func noDevice(t *testing.T) {
	t.Helper()
	saved := openTun
	openTun = func(o tun.Options) (*tun.Endpoint, error) {
		t.Errorf("device %q opened before the arguments were checked", o.Name)
		return nil, errors.New("no device in this test")
	}
	t.Cleanup(func() { openTun = saved })
}

// busyPort returns a loopback address something listens on.
func busyPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// Every mistake on the command line fails before any device is opened,
// with an error that names the flag and says what to give instead.
func TestCLIErrors(t *testing.T) {
	noDevice(t)
	dir := t.TempDir()
	busy := busyPort(t)
	base := []string{"--tun", "x", "--addr", "10.99.0.2/24"}
	with := func(extra ...string) []string { return append(append([]string{}, base...), extra...) }
	for _, tc := range []struct {
		cmd  string
		args []string
		want []string // all in the error
	}{
		{"serve", []string{"--addr", "10.99.0.2/24", "--echo"}, []string{"--tun NAME is required", "--tun syn0"}},
		{"serve", []string{"--tun", "x", "--echo"}, []string{"--addr is required", "10.99.0.2/24"}},
		{"serve", with("--host-addr", "10.98.0.1/24", "--echo"), []string{"--addr 10.99.0.2/24 is outside every --host-addr", "--host-addr 10.99.0.1/24"}},
		{"serve", with("--host-addr", "10.99.0.2/24", "--echo"), []string{"--host-addr 10.99.0.2/24 is the stack's own address", "10.99.0.1/24"}},
		{"serve", with("--listen", ":99999", "--echo"), []string{"--listen :99999", "1 to 65535"}},
		{"serve", with("--listen", "8080", "--echo"), []string{"--listen 8080", ":PORT"}},
		{"serve", with("--listen", "10.1.1.1:80", "--echo"), []string{"--listen 10.1.1.1:80", "not an address of the stack", ":80"}},
		{"serve", with("--listen", "example.org:80", "--echo"), []string{"--listen example.org:80", "resolves no names"}},
		{"serve", with("--echo", "--admin", busy), []string{"--admin " + busy, "address already in use", "another port"}},
		{"serve", with("--echo", "--admin", "9180"), []string{"--admin 9180", ":PORT"}},
		{"serve", with("--echo", "--admin", ":70000"), []string{"--admin :70000", "65535"}},
		{"serve", with("--echo", "--max-conns", "-1"), []string{"--max-conns -1"}},
		{"serve", with("--echo", "--idle-timeout", "-1s"), []string{"--idle-timeout -1s"}},
		{"serve", with("--echo", "--mtu", "100"), []string{"--mtu 100", "576 to 65535"}},
		{"serve", with("--echo", "--queues", "0"), []string{"--queues 0", "1 to 256"}},
		{"serve", with(), []string{"say what to serve", "--http DIR"}},
		{"serve", with("--http", filepath.Join(dir, "none")), []string{"--http " + filepath.Join(dir, "none"), "no such file"}},
		{"serve", with("--echo", "stray"), []string{`unexpected argument "stray"`, "--help"}},
		{"forward", []string{"--addr", "10.99.0.2/24", "--direct"}, []string{"--tun NAME is required"}},
		{"forward", with(), []string{"say where to relay", "--direct"}},
		{"forward", with("--to", "127.0.0.1"), []string{"--to 127.0.0.1", "HOST:PORT"}},
		{"forward", with("--socks5", "127.0.0.1:0"), []string{"--socks5 127.0.0.1:0", "1 to 65535"}},
		{"forward", with("--direct", "--max-relays", "0"), []string{"--max-relays 0", "1 or more"}},
		{"forward", with("--direct", "--max-relays-per-source", "-2"), []string{"--max-relays-per-source -2"}},
		{"forward", with("--direct", "--max-udp-flows", "0"), []string{"--max-udp-flows 0", "1 or more"}},
		{"forward", with("--direct", "--max-udp-flows-per-source", "-1"), []string{"--max-udp-flows-per-source -1"}},
		{"forward", with("--direct", "--udp-timeout", "0s"), []string{"--udp-timeout 0s", "above 0"}},
		{"forward", with("--direct", "--ping", "sometimes"), []string{`--ping "sometimes"`, "host, local or off"}},
		{"forward", with("--direct", "--admin", busy), []string{"--admin " + busy, "address already in use"}},
		{"forward", with("--direct", "--host-addr", "10.98.0.1/24"), []string{"outside every --host-addr"}},
		{"get", base, []string{"want one URL"}},
		{"get", []string{"--addr", "10.99.0.2/24", "http://10.99.0.1/"}, []string{"--tun NAME is required"}},
		{"get", with("--wait", "0s", "http://10.99.0.1/"), []string{"--wait 0s", "30s"}},
		{"get", with("http://example.org/"), []string{"must be an IP address"}},
		{"impair", []string{"--a", "imp0"}, []string{"--a NAME and --b NAME are required", "--b imp1"}},
		{"impair", []string{"--a", "imp0", "--b", "imp1", "--mtu", "10"}, []string{"--mtu 10"}},
		{"impair", []string{"--a", "imp0", "--b", "imp1", "--loss", "200%"}, []string{"--loss 200%", "probability"}},
		{"script", nil, []string{"no files given", "FILE.pkt"}},
		{"ss", []string{"--admin"}, []string{"--admin needs an address"}},
	} {
		t.Run(tc.cmd+" "+strings.Join(tc.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			err := runCommand(tc.cmd, &out, tc.args)
			if err == nil {
				t.Fatalf("no error; output:\n%s", out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), tc.cmd+": ") {
				t.Errorf("error %q does not name the command", err)
			}
		})
	}
}

// runCommand runs one command as main does, its output to out.
func runCommand(cmd string, out io.Writer, args []string) error {
	switch cmd {
	case "serve":
		return runServe(out, args)
	case "forward":
		return runForward(out, args)
	case "get":
		return runGet(out, out, args)
	case "impair":
		return runImpair(out, args)
	case "ss":
		return runSS(out, out, args)
	case "script":
		_, err := runScripts(out, args)
		return err
	}
	return fmt.Errorf("no command %s", cmd)
}

// Without root (here: a device open refused with EPERM, as TUNSETIFF
// refuses it), the error says what is needed and how to run it.
func TestCLINotRoot(t *testing.T) {
	saved := openTun
	t.Cleanup(func() { openTun = saved })
	openTun = func(o tun.Options) (*tun.Endpoint, error) {
		return nil, fmt.Errorf("tun: TUNSETIFF %q: %w", o.Name, syscall.EPERM)
	}
	for _, cmd := range []string{"serve", "forward", "get", "impair"} {
		args := []string{"--tun", "syn0", "--addr", "10.99.0.2/24", "--echo"}
		switch cmd {
		case "forward":
			args = []string{"--tun", "syn0", "--addr", "10.99.0.2/24", "--direct"}
		case "get":
			args = []string{"--tun", "syn0", "--addr", "10.99.0.2/24", "http://10.99.0.1/"}
		case "impair":
			args = []string{"--a", "imp0", "--b", "imp1"}
		}
		err := runCommand(cmd, io.Discard, args)
		want := cmd + `: needs root or CAP_NET_ADMIN to create a TUN device (run it as sudo "$(go env GOPATH)/bin/synstack" ` + cmd + ` ...): tun: TUNSETIFF`
		if err == nil || !strings.HasPrefix(err.Error(), want) || !errors.Is(err, syscall.EPERM) {
			t.Errorf("%s as a user: %v\nwant it to begin %q and wrap EPERM", cmd, err, want)
		}
	}
}

// Every command's --help (and -h) exits 0 and lists each of its flags
// with its default.
func TestCLIHelp(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Skipf("cannot find the test binary: %v", err)
	}
	for _, tc := range []struct {
		cmd   string
		flags []string // some of the flags the usage must list
	}{
		{"serve", []string{"--tun", "--addr", "--listen", "--http", "--echo", "--discard", "--max-conns", "--idle-timeout",
			"--read-header-timeout", "--write-timeout", "--dotfiles", "--admin", "--backlog", "--mtu", "--queues"}},
		{"get", []string{"--tun", "--addr", "--host-addr", "--dns", "--wait", "--o", "--q"}},
		{"forward", []string{"--to", "--direct", "--socks5", "--deferred", "--route", "--mark", "--max-relays",
			"--max-relays-per-source", "--max-pending", "--admin", "--dial-timeout", "--idle-timeout",
			"--udp-timeout", "--udp-stream-timeout", "--max-udp-flows", "--max-udp-flows-per-source", "--ping"}},
		{"impair", []string{"--a", "--b", "--delay", "--loss-ab", "--seed", "--mtu"}},
		{"script", []string{"--skip-unknown", "--strict", "--v"}},
		{"ss", nil},
		{"demo", nil},
	} {
		for _, h := range []string{"--help", "-h"} {
			cmd := exec.Command(exe, tc.cmd, h)
			cmd.Env = append(os.Environ(), "SYNSTACK_TEST_EXEC=main")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("synstack %s %s: %v\n%s", tc.cmd, h, err, out)
				continue
			}
			s := string(out)
			if !strings.Contains(s, "usage: synstack "+tc.cmd) || strings.Contains(s, "help requested") {
				t.Errorf("synstack %s %s printed:\n%s", tc.cmd, h, s)
			}
			for _, f := range tc.flags {
				if !strings.Contains(s, "\n  "+f+" ") && !strings.Contains(s, "\n  "+f+"\n") {
					t.Errorf("synstack %s %s does not list %s:\n%s", tc.cmd, h, f, s)
				}
			}
			// Each flag's entry ends with its default.
			if len(tc.flags) > 0 {
				for name, last := range flagEntries(s) {
					if !strings.Contains(last, "(default ") {
						t.Errorf("synstack %s: %s shows no default: %q", tc.cmd, name, last)
					}
				}
			}
		}
	}
}

// flagEntries maps each flag of a usage text (as printFlags writes them)
// to the last line of its entry.
func flagEntries(usage string) map[string]string {
	m := map[string]string{}
	var name string
	for _, l := range strings.Split(usage, "\n") {
		switch {
		case strings.HasPrefix(l, "  --"):
			name = strings.Fields(l)[0]
			m[name] = ""
		case name != "" && strings.HasPrefix(l, "    \t"):
			m[name] = l
		default:
			name = ""
		}
	}
	return m
}

// --admin with only a port listens on loopback; a non-loopback address is
// taken, with a warning.
func TestAdminListenAddr(t *testing.T) {
	for _, tc := range []struct {
		in, addr string
		public   bool
	}{
		{":9180", "127.0.0.1:9180", false},
		{"127.0.0.1:9180", "127.0.0.1:9180", false},
		{"[::1]:9180", "[::1]:9180", false},
		{"localhost:9180", "localhost:9180", false},
		{"0.0.0.0:9180", "0.0.0.0:9180", true},
		{"[::]:9180", "[::]:9180", true},
		{"10.99.0.1:9180", "10.99.0.1:9180", true},
		{"admin.example:9180", "admin.example:9180", true},
	} {
		addr, public, err := adminListenAddr(tc.in)
		if err != nil || addr != tc.addr || public != tc.public {
			t.Errorf("--admin %s: %s, public %v, %v; want %s, public %v", tc.in, addr, public, err, tc.addr, tc.public)
		}
	}
	var log bytes.Buffer
	ln, err := listenAdmin(&log, "serve", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if a := ln.Addr().(*net.TCPAddr); !a.IP.IsLoopback() || log.Len() != 0 {
		t.Errorf("--admin :0 listens on %v, said %q", a, log.String())
	}
	if w := adminWarning("0.0.0.0:9180"); !strings.Contains(w, "warning: --admin 0.0.0.0:9180 listens beyond loopback") {
		t.Errorf("warning %q", w)
	}
	// ss reads the same way: only a port is loopback.
	if u := adminURL(":9180", "/debug/sockets"); u != "http://127.0.0.1:9180/debug/sockets" {
		t.Errorf("ss --admin :9180 reads %s", u)
	}
}

// --http serves no dot-file, dot-directory or anything under one, and
// lists none, unless --dotfiles.
func TestServeNoDotFiles(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{".git/config", ".env", "a.txt", "sub/.hidden", "sub/b.txt"} {
		p := filepath.Join(dir, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("content of "+f), 0o644)
	}
	for _, dotfiles := range []bool{false, true} {
		c := &serveConfig{dir: dir, dotfiles: dotfiles}
		hs := httptest.NewServer(c.httpServer(io.Discard).Handler)
		get := func(path string) (int, string) {
			resp, err := http.Get(hs.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		hidden := http.StatusNotFound
		if dotfiles {
			hidden = http.StatusOK
		}
		for path, want := range map[string]int{"/.git/config": hidden, "/.env": hidden, "/sub/.hidden": hidden,
			"/a.txt": http.StatusOK, "/sub/b.txt": http.StatusOK, "/.git/": hidden} {
			if code, _ := get(path); code != want {
				t.Errorf("dotfiles %v: GET %s: %d, want %d", dotfiles, path, code, want)
			}
		}
		for path, names := range map[string][]string{"/": {".git", ".env"}, "/sub/": {".hidden"}} {
			_, body := get(path)
			for _, n := range names {
				if strings.Contains(body, n) != dotfiles {
					t.Errorf("dotfiles %v: the listing of %s shows %s: %v:\n%s", dotfiles, path, n, !dotfiles, body)
				}
			}
		}
		hs.Close()
	}
}

// syncLog is a log the test reads while the server writes it.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.b, format+"\n", args...)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startServer runs an echo server (serve's, minus the stack) on loopback.
func startServer(t *testing.T, maxConns int64, idle time.Duration) (*server, *syncLog, string) {
	t.Helper()
	kln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lg := &syncLog{}
	srv := &server{conns: map[net.Conn]struct{}{}, maxConns: maxConns, idle: idle, logf: lg.logf}
	srv.handle = func(c net.Conn) bool { return srv.pump(c, true) }
	ln := &limitListener{Listener: kln, srv: srv}
	go srv.acceptLoop(ln)
	t.Cleanup(func() { srv.shutdown(ln) })
	return srv, lg, kln.Addr().String()
}

func dialEcho(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// --max-conns: connections beyond the limit are reset at once and counted,
// with a log line; once one closes, a new one is served.
func TestServeMaxConns(t *testing.T) {
	srv, lg, addr := startServer(t, 2, 0)
	var conns []net.Conn
	for range 2 {
		c := dialEcho(t, addr)
		echoCheck(t, c, 100)
		conns = append(conns, c)
	}
	// The kernel completes the handshake; serve resets the connection,
	// before or after the client's connect returns.
	extra, err := net.Dial("tcp", addr)
	if err == nil {
		defer extra.Close()
		extra.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = extra.Read(make([]byte, 1))
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("third connection: %v, want ECONNRESET", err)
	}
	if n := srv.refused.Load(); n != 1 {
		t.Errorf("refused %d, want 1", n)
	}
	if !strings.Contains(lg.String(), "--max-conns 2 reached (1 refused so far)") {
		t.Errorf("log:\n%s", lg.String())
	}
	conns[0].Close()
	waitUntil(t, func() bool { return srv.active.Load() == 1 })
	echoCheck(t, dialEcho(t, addr), 100)
}

// --idle-timeout: a silent echo client and one that sends and never reads
// are both reset and counted; a client that talks is echoed meanwhile.
func TestServeIdleTimeout(t *testing.T) {
	srv, _, addr := startServer(t, 0, 200*time.Millisecond)
	silent := dialEcho(t, addr)
	deaf := dialEcho(t, addr).(*net.TCPConn)
	deaf.SetReadBuffer(4 << 10)
	go func() {
		buf := make([]byte, 64<<10)
		deaf.SetWriteDeadline(time.Now().Add(30 * time.Second))
		for {
			if _, err := deaf.Write(buf); err != nil {
				return
			}
		}
	}()
	silent.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("silent client: %v, want ECONNRESET", err)
	}
	// Both reset and counted, none left open.
	waitUntil(t, func() bool { return srv.idleClosed.Load() == 2 && srv.active.Load() == 0 })
}

// The HTTP server takes the timeouts of the flags in net/http's fields,
// and an idle keep-alive connection is closed after --idle-timeout.
func TestServeHTTPTimeouts(t *testing.T) {
	c, err := parseServe(io.Discard, []string{"--tun", "x", "--addr", "10.99.0.2/24", "--http", t.TempDir(),
		"--idle-timeout", "100ms", "--read-header-timeout", "3s", "--write-timeout", "4s"})
	if err != nil {
		t.Fatal(err)
	}
	hs := c.httpServer(io.Discard)
	if hs.IdleTimeout != 100*time.Millisecond || hs.ReadHeaderTimeout != 3*time.Second || hs.WriteTimeout != 4*time.Second {
		t.Fatalf("idle %v, read-header %v, write %v", hs.IdleTimeout, hs.ReadHeaderTimeout, hs.WriteTimeout)
	}
	d, err := parseServe(io.Discard, []string{"--tun", "x", "--addr", "10.99.0.2/24", "--http", t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if h := d.httpServer(io.Discard); h.IdleTimeout != defaultIdleTimeout || h.ReadHeaderTimeout != defaultReadHeaderTimeout ||
		h.WriteTimeout != defaultWriteTimeout || d.maxConns != defaultMaxConns || d.listen != ":80" {
		t.Errorf("defaults: %+v", d)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go hs.Serve(ln)
	defer hs.Close()
	conn := dialEcho(t, ln.Addr().String())
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if n, err := conn.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("idle keep-alive connection: read %d, %v; want EOF (closed by the server)", n, err)
	}
}

// The default port follows the service.
func TestServeDefaultListen(t *testing.T) {
	for mode, want := range map[string]string{"--echo": ":7", "--discard": ":9"} {
		c, err := parseServe(io.Discard, []string{"--tun", "x", "--addr", "10.99.0.2/24", mode})
		if err != nil || c.listen != want {
			t.Errorf("%s: listen %q, %v; want %s", mode, c.listen, err, want)
		}
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("condition not met in 10 s")
		}
	}
}

// echoCheck sends n random bytes and checks they come back exactly.
func echoCheck(t *testing.T, c net.Conn, n int) {
	t.Helper()
	msg := make([]byte, n)
	for i := range msg {
		msg[i] = byte(rand.IntN(256))
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	werr := make(chan error, 1)
	go func() { _, err := c.Write(msg); werr <- err }()
	got := make([]byte, n)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("echo of %d bytes: %v", n, err)
	}
	if err := <-werr; err != nil {
		t.Fatalf("write %d bytes: %v", n, err)
	}
	if !bytes.Equal(got, msg) {
		i := 0
		for got[i] == msg[i] {
			i++
		}
		t.Fatalf("echo of %d bytes differs from byte %d: got %q, sent %q", n, i, got[i:min(n, i+32)], msg[i:min(n, i+32)])
	}
}
