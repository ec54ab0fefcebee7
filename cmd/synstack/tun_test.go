//go:build linux

package main

// Tests of serve and get against the Linux kernel over a TUN device. Each
// test makes a network namespace of its own (ip netns add), runs synstack
// (this test binary, re-executed as the command) and the kernel's tools
// (curl, wrk, hping3) inside it, and deletes it at the end: every packet
// stays inside that namespace, on 10.99.0.0/24 and 2001:db8:99::/64. They
// need root and skip, saying why, without it or without TUN devices,
// network namespaces or the tools. Each gives the tools a fixed amount of
// work (a count of requests or SYNs), never a fixed time; -synstack.big
// makes them the full size: 1 GiB downloads, 40,000 wrk requests,
// 200,000 SYNs.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var bigTun = flag.Bool("synstack.big", false, "TUN tests at full size: 1 GiB downloads, 40,000 wrk requests, 200,000 SYNs")

// The test binary doubles as the programs the tests run in a namespace:
// SYNSTACK_TEST_EXEC=main makes it the synstack command, =fileserver a
// kernel-side HTTP file server (a net/http server on the kernel's
// sockets). This runs before the tests' own setup.
func init() {
	switch os.Getenv("SYNSTACK_TEST_EXEC") {
	case "":
		return
	case "main":
		main()
		os.Exit(0)
	case "fileserver":
		// os.Args: binary ADDR DIR
		ln, err := net.Listen("tcp", os.Args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, "fileserver:", err)
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "fileserver: listening")
		http.Serve(ln, http.FileServer(http.Dir(os.Args[2])))
		os.Exit(1)
	case "echoclient":
		// os.Args: binary ADDR. Says how the connection ended.
		c, err := net.DialTimeout("tcp", os.Args[1], 10*time.Second)
		if err != nil {
			fmt.Fprintln(os.Stderr, "echoclient: error:", err)
			os.Exit(1)
		}
		buf := make([]byte, 6)
		if _, err = c.Write([]byte("hello\n")); err == nil {
			_, err = io.ReadFull(c, buf)
		}
		if err != nil || string(buf) != "hello\n" {
			fmt.Fprintf(os.Stderr, "echoclient: error: %q %v\n", buf, err)
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "echoclient: echoed")
		n, err := c.Read(buf)
		fmt.Fprintf(os.Stderr, "echoclient: closed: %d bytes, %v\n", n, err)
		os.Exit(0)
	}
}

const (
	nsStack  = "10.99.0.2"
	nsKernel = "10.99.0.1"
	nsSpoof  = "10.99.0.3" // nobody has it: SYN,ACKs to it go nowhere
	nsStack6 = "2001:db8:99::2"
	nsKern6  = "2001:db8:99::1"
	nsDev    = "syntest0"
	nsPort   = "8080"
)

// netns is a network namespace a test made.
type netns struct {
	t    *testing.T
	name string
	exe  string // this test binary
}

var nsCount atomic.Int32

// newNetns creates a namespace with its loopback up, deleted when the
// test ends; it skips the test where that is not possible.
func newNetns(t *testing.T, tools ...string) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root, to create a network namespace and a TUN device in it")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("skipped: no TUN device support: %v", err)
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipped: needs %s (apt-get install -y curl wrk hping3 iproute2)", tool)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Skipf("skipped: cannot find the test binary: %v", err)
	}
	name := fmt.Sprintf("synstack-test-%d-%d", os.Getpid(), nsCount.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("skipped: cannot create a network namespace: %v: %s", err, out)
	}
	ns := &netns{t: t, name: name, exe: exe}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	ns.run("ip", "link", "set", "lo", "up")
	return ns
}

// command returns a command that runs inside the namespace.
func (ns *netns) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.name, name}, args...)...)
}

// run runs a command in the namespace and fails the test if it fails.
func (ns *netns) run(name string, args ...string) string {
	ns.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := ns.command(ctx, name, args...).CombinedOutput()
	if err != nil {
		ns.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// logBuffer collects a process's output for the test to wait on.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// proc is a long-running process in the namespace.
type proc struct {
	t    *testing.T
	what string
	cmd  *exec.Cmd
	log  logBuffer
	done chan struct{}
	err  error // set when done is closed
}

// start starts this test binary in the namespace as the synstack command
// (env "main") or the kernel-side file server (env "fileserver"). The
// process is killed, if still running, when the test ends.
func (ns *netns) start(role string, args ...string) *proc {
	ns.t.Helper()
	p := &proc{t: ns.t, what: role + " " + strings.Join(args, " "), done: make(chan struct{})}
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", ns.name, ns.exe}, args...)...)
	p.cmd.Env = append(os.Environ(), "SYNSTACK_TEST_EXEC="+role)
	p.cmd.Stdout = &p.log
	p.cmd.Stderr = &p.log
	if err := p.cmd.Start(); err != nil {
		ns.t.Fatalf("start %s: %v", p.what, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	ns.t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// waitLog waits until the process has printed s.
func (p *proc) waitLog(s string, timeout time.Duration) {
	p.t.Helper()
	end := time.Now().Add(timeout)
	for !strings.Contains(p.log.String(), s) {
		select {
		case <-p.done:
			p.t.Fatalf("%s exited (%v) before printing %q:\n%s", p.what, p.err, s, p.log.String())
		default:
		}
		if time.Now().After(end) {
			p.t.Fatalf("%s did not print %q within %v:\n%s", p.what, s, timeout, p.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stats asks a serve or forward process for its counters (SIGUSR1) and
// returns them: the one line it prints for the signal.
func (p *proc) stats() statsLine {
	p.t.Helper()
	before := strings.Count(p.log.String(), "\n{")
	if err := p.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		p.t.Fatalf("SIGUSR1: %v", err)
	}
	end := time.Now().Add(10 * time.Second)
	for {
		s := p.log.String()
		if strings.Count(s, "\n{") > before {
			i := strings.LastIndex(s, "\n{")
			// A line longer than a pipe write may arrive in pieces: wait
			// for its end.
			if line, _, complete := strings.Cut(s[i+1:], "\n"); complete {
				var st statsLine
				if err := json.Unmarshal([]byte(line), &st); err != nil {
					p.t.Fatalf("stats line %q: %v", line, err)
				}
				return st
			}
		}
		if time.Now().After(end) {
			p.t.Fatalf("no stats from %s:\n%s", p.what, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGINT and waits for a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		p.t.Fatalf("%s did not exit within 20 s of SIGINT:\n%s", p.what, p.log.String())
	}
	if p.err != nil {
		p.t.Fatalf("%s: %v:\n%s", p.what, p.err, p.log.String())
	}
	if strings.Contains(p.log.String(), "DATA RACE") {
		p.t.Fatalf("%s: race detected:\n%s", p.what, p.log.String())
	}
}

// testFile writes a file of n pseudo-random bytes and returns its SHA-256.
func testFile(t *testing.T, path string, n int64) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	r := rand.NewChaCha8([32]byte{'s', 'y', 'n'})
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	if _, err := io.CopyN(w, r, n); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func fileHash(t *testing.T, path string) (string, int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil)), n
}

func downloadSize() int64 {
	if *bigTun {
		return 1 << 30
	}
	return 64 << 20
}

// curl downloads url from inside the namespace and returns the SHA-256 of
// the body and its length.
func (ns *netns) curl(url string, timeout time.Duration) (string, int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	h := sha256.New()
	cw := &countWriter{w: h}
	var stderr bytes.Buffer
	cmd := ns.command(ctx, "curl", "-sS", "--fail", "-g", "--max-time", strconv.Itoa(int(timeout.Seconds())), "-o", "-", url)
	cmd.Stdout = cw
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", cw.n, fmt.Errorf("curl %s: %v: %s", url, err, stderr.String())
	}
	return hex.EncodeToString(h.Sum(nil)), cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.w.Write(p)
}

// The kernel's curl downloads a file from synstack serve --http over TUN,
// byte for byte, with offloads (the kernel side configured by serve) and
// without (configured by hand after serve has started).
func TestTunServeCurl(t *testing.T) {
	for _, offload := range []bool{true, false} {
		t.Run(map[bool]string{true: "offload", false: "no-offload"}[offload], func(t *testing.T) {
			ns := newNetns(t, "curl")
			dir := t.TempDir()
			size := downloadSize()
			want := testFile(t, filepath.Join(dir, "big.bin"), size)
			args := []string{"serve", "--tun", nsDev, "--addr", nsStack + "/24", "--listen", ":" + nsPort, "--http", dir}
			if offload {
				args = append(args, "--addr", nsStack6+"/64", "--host-addr", nsKernel+"/24", "--host-addr", nsKern6+"/64")
			} else {
				args = append(args, "--no-offload")
			}
			srv := ns.start("main", args...)
			srv.waitLog("listening on", 10*time.Second)
			if !offload {
				// serve waits for someone to configure the kernel side.
				srv.waitLog("waiting for the kernel side of "+nsDev, 10*time.Second)
				ns.run("ip", "addr", "add", nsKernel+"/24", "dev", nsDev)
				ns.run("ip", "link", "set", nsDev, "up")
			}
			srv.waitLog("kernel side of "+nsDev+" is up", 10*time.Second)

			start := time.Now()
			got, n, err := ns.curl("http://"+nsStack+":"+nsPort+"/big.bin", 5*time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			el := time.Since(start)
			if n != size || got != want {
				t.Fatalf("curl got %d bytes, sha256 %s; want %d bytes, sha256 %s", n, got, size, want)
			}
			t.Logf("curl: %d MiB over TUN (offload %v) byte-exact in %v (%.0f MiB/s)", size>>20, offload, el.Round(time.Millisecond), float64(size)/(1<<20)/el.Seconds())
			if offload {
				// And over IPv6, a smaller file.
				want6 := testFile(t, filepath.Join(dir, "v6.bin"), 8<<20)
				got6, n6, err := ns.curl("http://["+nsStack6+"]:"+nsPort+"/v6.bin", time.Minute)
				if err != nil {
					t.Fatal(err)
				}
				if got6 != want6 || n6 != 8<<20 {
					t.Fatalf("curl over IPv6 got %d bytes, sha256 %s; want %s", n6, got6, want6)
				}
			}
			st := srv.stats()
			t.Logf("link: %+v", st.Link)
			switch {
			case offload && st.Link.TSOOut == 0:
				// With TSO the stack hands over large segments whole;
				// the link has nothing left to coalesce.
				t.Errorf("offloads on, but the stack sent no large segment: %+v", st.Link)
			case offload && st.Link.VerifiedIn == 0:
				t.Errorf("offloads on, but the kernel vouched for no packet (NEEDS_CSUM, DATA_VALID): %+v", st.Link)
			case offload && (st.Stats.SynstackInCsumTrusted == 0 || st.Stats.SynstackInCsumTrusted > st.Link.VerifiedIn):
				// The link counts before it hands a packet over; a packet
				// in between is counted by the link alone.
				t.Errorf("the kernel vouched for %d packets, the stack took %d as such", st.Link.VerifiedIn, st.Stats.SynstackInCsumTrusted)
			case !offload && (st.Link.GSOOut != 0 || st.Link.TSOOut != 0 || st.Link.GSOIn != 0 || st.Link.CsumIn != 0 || st.Link.VerifiedIn != 0):
				t.Errorf("offloads off, but large packets crossed: %+v", st.Link)
			}
			if st.Stats.TcpInCsumErrors != 0 || st.Stats.IpInHdrErrors != 0 {
				t.Errorf("bad packets: %+v", st.Stats)
			}
			srv.stop()
			if !strings.Contains(srv.log.String(), "device "+nsDev+" removed") {
				t.Errorf("serve did not say it removed the device:\n%s", srv.log.String())
			}
			if out, err := ns.command(context.Background(), "ip", "link", "show", nsDev).CombinedOutput(); err == nil {
				t.Errorf("device %s still there after serve exited:\n%s", nsDev, out)
			}
		})
	}
}

// synstack get downloads a file from a server on the kernel's sockets,
// byte for byte, with offloads (kernel side configured by get) and
// without (configured by hand while get waits).
func TestTunGet(t *testing.T) {
	for _, offload := range []bool{true, false} {
		t.Run(map[bool]string{true: "offload", false: "no-offload"}[offload], func(t *testing.T) {
			ns := newNetns(t)
			dir := t.TempDir()
			size := downloadSize()
			want := testFile(t, filepath.Join(dir, "big.bin"), size)
			fsrv := ns.start("fileserver", "0.0.0.0:"+nsPort, dir)
			fsrv.waitLog("fileserver: listening", 10*time.Second)

			out := filepath.Join(t.TempDir(), "got.bin")
			args := []string{"get", "--tun", nsDev, "--addr", nsStack + "/24", "--wait", "30s",
				"http://" + nsKernel + ":" + nsPort + "/big.bin", "-o", out}
			if offload {
				args = append(args, "--host-addr", nsKernel+"/24")
			} else {
				args = append(args, "--no-offload")
			}
			start := time.Now()
			get := ns.start("main", args...)
			if !offload {
				get.waitLog("waiting for the kernel side of "+nsDev, 10*time.Second)
				ns.run("ip", "addr", "add", nsKernel+"/24", "dev", nsDev)
				ns.run("ip", "link", "set", nsDev, "up")
			}
			select {
			case <-get.done:
			case <-time.After(5 * time.Minute):
				t.Fatalf("get did not finish in 5 minutes:\n%s", get.log.String())
			}
			el := time.Since(start)
			if get.err != nil {
				t.Fatalf("get: %v\n%s", get.err, get.log.String())
			}
			got, n := fileHash(t, out)
			if n != size || got != want {
				t.Fatalf("get wrote %d bytes, sha256 %s; want %d bytes, sha256 %s\n%s", n, got, size, want, get.log.String())
			}
			t.Logf("get: %d MiB from the kernel over TUN (offload %v) byte-exact in %v, device setup included (%.0f MiB/s)",
				size>>20, offload, el.Round(time.Millisecond), float64(size)/(1<<20)/el.Seconds())
			log := get.log.String()
			if !strings.Contains(log, "bytes to "+out) || !strings.Contains(log, "device "+nsDev+" removed") {
				t.Errorf("get's report lacks the download or the cleanup:\n%s", log)
			}
			if strings.Contains(log, "DATA RACE") {
				t.Fatalf("race detected:\n%s", log)
			}
			if offload == strings.Contains(log, "offloads: none") {
				t.Errorf("offload %v, but get says:\n%s", offload, log)
			}
			m := regexp.MustCompile(`\((\d+) large, coalesced by the kernel\)`).FindStringSubmatch(log)
			if m == nil {
				t.Fatalf("get did not report its link's counters:\n%s", log)
			}
			if large, _ := strconv.Atoi(m[1]); offload != (large > 0) {
				t.Errorf("offload %v, but %d large packets came in:\n%s", offload, large, log)
			}
		})
	}
}

// wrk with Connection: close, every request a new connection, on a
// two-queue device: no socket errors, and no connection left open
// afterwards.
func TestTunWrkConnectionClose(t *testing.T) {
	ns := newNetns(t, "wrk")
	dir := t.TempDir()
	testFile(t, filepath.Join(dir, "4k.bin"), 4096)
	// Two queues: the kernel spreads wrk's connections over them and the
	// stack takes them from two goroutines at once, into its shards.
	srv := ns.start("main", "serve", "--tun", nsDev, "--addr", nsStack+"/24", "--host-addr", nsKernel+"/24",
		"--listen", ":"+nsPort, "--http", dir, "--queues", "2")
	srv.waitLog("queues: 2", 10*time.Second)
	srv.waitLog("kernel side of "+nsDev+" is up", 10*time.Second)
	before := srv.stats()

	// A fixed amount of work, not a fixed time: wrk has no request count
	// of its own, so a script stops each of its two threads after its
	// share and says so, and the test then interrupts wrk (which makes it
	// print its figures and exit). Its duration and per-request timeout
	// are hang guards.
	reqsWant := 2000
	if *bigTun {
		reqsWant = 40000
	}
	script := filepath.Join(t.TempDir(), "count.lua")
	lua := fmt.Sprintf(`local n = 0
function response()
  n = n + 1
  if n == %d then
    io.stderr:write("synstack-test: thread done\n")
    wrk.thread:stop()
  end
end
`, reqsWant/2)
	if err := os.WriteFile(script, []byte(lua), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	// ip netns exec execs wrk: the process is wrk itself.
	wrk := ns.command(ctx, "wrk", "-t2", "-c16", "-d5m", "--timeout", "1m", "-s", script, "-H", "Connection: close",
		"http://"+nsStack+":"+nsPort+"/4k.bin")
	var wrkLog logBuffer
	wrk.Stdout, wrk.Stderr = &wrkLog, &wrkLog
	if err := wrk.Start(); err != nil {
		t.Fatal(err)
	}
	wrkDone := make(chan error, 1)
	go func() { wrkDone <- wrk.Wait() }()
	var err error
	interrupted := false
wait:
	for {
		select {
		case err = <-wrkDone:
			break wait
		case <-time.After(20 * time.Millisecond):
			if !interrupted && strings.Count(wrkLog.String(), "thread done") == 2 {
				wrk.Process.Signal(os.Interrupt)
				interrupted = true
			}
		}
	}
	out := []byte(wrkLog.String())
	if err != nil {
		t.Fatalf("wrk: %v\n%s", err, out)
	}
	t.Logf("wrk:\n%s", out)
	if !interrupted {
		t.Fatalf("wrk ran into its 5-minute guard before %d requests:\n%s", reqsWant, out)
	}
	if strings.Contains(string(out), "Socket errors") || strings.Contains(string(out), "Non-2xx") {
		t.Errorf("wrk saw errors:\n%s", out)
	}
	m := regexp.MustCompile(`(\d+) requests in`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no request count in wrk's output:\n%s", out)
	}
	reqs, _ := strconv.Atoi(string(m[1]))
	if reqs < reqsWant {
		t.Errorf("%d requests, want %d", reqs, reqsWant)
	}

	// Every connection closes: none open in the server, none ESTABLISHED
	// or CLOSE_WAIT in the stack.
	var st statsLine
	for end := time.Now().Add(time.Minute); ; { // a hang guard, not a timing
		st = srv.stats()
		if st.Conns == 0 && st.Stats.TcpCurrEstab == 0 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("connections left a minute after wrk: server %d, TcpCurrEstab %d", st.Conns, st.Stats.TcpCurrEstab)
		}
		time.Sleep(100 * time.Millisecond)
	}
	opened := st.Stats.TcpPassiveOpens + st.Stats.TcpExtSyncookiesRecv - before.Stats.TcpPassiveOpens - before.Stats.TcpExtSyncookiesRecv
	t.Logf("%d requests, %d connections opened; after: %d open, TcpCurrEstab %d, TcpEstabResets %d, goroutines %d (before %d)",
		reqs, opened, st.Conns, st.Stats.TcpCurrEstab, st.Stats.TcpEstabResets, st.Goroutines, before.Goroutines)
	if opened < uint64(reqs) {
		t.Errorf("%d connections for %d requests with Connection: close", opened, reqs)
	}
	if st.Goroutines > before.Goroutines+2 {
		t.Errorf("goroutines: %d after, %d before", st.Goroutines, before.Goroutines)
	}
	srv.stop()
}

// A SYN flood from hping3 (spoofed source, so nothing answers the
// SYN,ACKs) while curl keeps fetching: every fetch succeeds, SYN cookies
// are sent and counted, the SYN queue stays at backlog+1, memory stays
// bounded.
func TestTunSynFlood(t *testing.T) {
	ns := newNetns(t, "curl", "hping3")
	dir := t.TempDir()
	want := testFile(t, filepath.Join(dir, "1m.bin"), 1<<20)
	const backlog = 64
	srv := ns.start("main", "serve", "--tun", nsDev, "--addr", nsStack+"/24", "--host-addr", nsKernel+"/24",
		"--listen", ":"+nsPort, "--http", dir, "--backlog", strconv.Itoa(backlog))
	srv.waitLog("kernel side of "+nsDev+" is up", 10*time.Second)
	before := srv.stats()

	// A count of SYNs, not a time: hping3 sleeps between them, and on a
	// loaded machine each sleep lasts longer. The context is a hang guard.
	syns := 20000
	if *bigTun {
		syns = 200000
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	flood := ns.command(ctx, "hping3", "-S", "-p", nsPort, "-a", nsSpoof, "-i", "u1", "-c", strconv.Itoa(syns), "-q", nsStack)
	var floodOut bytes.Buffer
	flood.Stdout, flood.Stderr = &floodOut, &floodOut
	floodStart := time.Now()
	if err := flood.Start(); err != nil {
		t.Fatal(err)
	}
	floodDone := make(chan error, 1)
	go func() { floodDone <- flood.Wait() }()

	fetches, failures := 0, 0
	var maxHeap uint64
	var floodErr error
loop:
	for floodOver, after := false, 0; ; {
		// Fetch while the flood runs, then at least once more after it
		// (three fetches in all): its spoofed half-open connections still
		// fill the SYN queue then, so that fetch needs a SYN cookie.
		select {
		case floodErr = <-floodDone:
			floodOver = true
		default:
		}
		if floodOver && after >= 1 && fetches >= 3 {
			break loop
		}
		if floodOver {
			after++
		}
		got, n, err := ns.curl("http://"+nsStack+":"+nsPort+"/1m.bin", 30*time.Second)
		fetches++
		if err != nil || got != want || n != 1<<20 {
			failures++
			t.Errorf("fetch %d during the flood: %d bytes, %v", fetches, n, err)
		}
		if fetches%10 == 0 {
			maxHeap = max(maxHeap, srv.stats().HeapInuse)
		}
	}
	floodTime := time.Since(floodStart)
	if ctx.Err() != nil {
		t.Fatalf("hping3 did not send %d SYNs in 5 minutes:\n%s", syns, floodOut.String())
	}
	if floodErr != nil && !strings.Contains(floodOut.String(), "0 packets received") { // hping3 exits 1 when nothing answers
		t.Fatalf("hping3: %v\n%s", floodErr, floodOut.String())
	}
	sent := regexp.MustCompile(`(\d+) packets transmitted`).FindStringSubmatch(floodOut.String())
	if sent == nil {
		t.Fatalf("hping3 did not say how many it sent:\n%s", floodOut.String())
	}
	st := srv.stats()
	maxHeap = max(maxHeap, st.HeapInuse)
	d := func(f func(s statsLine) uint64) uint64 { return f(st) - f(before) }
	syn := d(func(s statsLine) uint64 { return s.Stats.TcpExtSyncookiesSent })
	passive := d(func(s statsLine) uint64 { return s.Stats.TcpPassiveOpens })
	returned := d(func(s statsLine) uint64 { return s.Stats.TcpExtSyncookiesRecv })
	t.Logf("hping3: %s SYNs in %v; stack: %d SYN cookies sent, %d returned; %d passive opens, %d of them through the SYN queue (backlog %d); %d fetches of 1 MiB, all byte-exact: %v; heap in use before %d KiB, at most %d KiB",
		sent[1], floodTime.Round(time.Millisecond), syn, returned, passive, passive-returned, backlog,
		fetches, failures == 0, before.HeapInuse>>10, maxHeap>>10)
	if n, _ := strconv.Atoi(sent[1]); n < syns {
		t.Errorf("hping3 sent %d SYNs, want %d", n, syns)
	}
	if returned == 0 {
		t.Errorf("no fetch came through a SYN cookie, though one came after the flood had filled the SYN queue")
	}
	if syn < uint64(syns)/2 {
		t.Errorf("%d SYN cookies for %d SYNs", syn, syns)
	}
	// Only the SYN queue (backlog+1 entries) and the fetches themselves
	// (those that came before it filled) create state.
	if passive > backlog+1+uint64(fetches) {
		t.Errorf("%d SYN_RCVD connections created (backlog %d, %d fetches): the SYN queue grew", passive, backlog, fetches)
	}
	if maxHeap > before.HeapInuse+64<<20 {
		t.Errorf("heap grew from %d to %d bytes during the flood", before.HeapInuse, maxHeap)
	}
	srv.stop()
}

// Ctrl-C (SIGINT) closes every connection with a FIN, not a reset, and
// serve removes the device and its address.
func TestTunServeInterrupt(t *testing.T) {
	ns := newNetns(t)
	srv := ns.start("main", "serve", "--tun", nsDev, "--addr", nsStack+"/24", "--host-addr", nsKernel+"/24",
		"--listen", ":7", "--echo")
	srv.waitLog("kernel side of "+nsDev+" is up", 10*time.Second)
	var clients []*proc
	for range 3 {
		c := ns.start("echoclient", nsStack+":7")
		c.waitLog("echoclient: echoed", 10*time.Second)
		clients = append(clients, c)
	}
	if st := srv.stats(); st.Conns != 3 || st.Stats.TcpCurrEstab != 3 {
		t.Fatalf("before SIGINT: %d connections, TcpCurrEstab %d; want 3", st.Conns, st.Stats.TcpCurrEstab)
	}
	srv.stop()
	for _, c := range clients {
		c.waitLog("echoclient: closed", 10*time.Second)
		if !strings.Contains(c.log.String(), "closed: 0 bytes, EOF") {
			t.Errorf("client saw the end as: %s", c.log.String())
		}
	}
	log := srv.log.String()
	if !strings.Contains(log, "closing 3 connections") || !strings.Contains(log, "device "+nsDev+" removed") {
		t.Errorf("serve's log:\n%s", log)
	}
	if !strings.Contains(log, `"TcpEstabResets":0`) || !strings.Contains(log, `"TcpOutRsts":0`) {
		t.Errorf("serve reset connections at exit:\n%s", log)
	}
	if out, err := ns.command(context.Background(), "ip", "addr", "show").CombinedOutput(); err != nil || strings.Contains(string(out), nsDev) {
		t.Errorf("device left behind (%v):\n%s", err, out)
	}
}

// Mistakes in serve's and get's arguments are caught before any device is
// touched (no root needed).
func TestServeGetArgs(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		get  bool
		args []string
		want string
	}{
		{false, []string{"--tun", "x", "--http", dir}, "--addr is required"},
		{false, []string{"--tun", "x", "--addr", "10.99.0.2"}, "prefix length"},
		{false, []string{"--tun", "x", "--addr", "10.99.0.2/24"}, "say what to serve"},
		{false, []string{"--tun", "x", "--addr", "10.99.0.2/24", "--echo", "--discard"}, "say what to serve"},
		{false, []string{"--tun", "x", "--addr", "10.99.0.2/24", "--http", filepath.Join(dir, "none")}, "no such file"},
		{false, []string{"--tun", "x", "--addr", "10.99.0.2/24", "--host-addr", "10.99.0.2/24", "--echo"}, "the stack's own address"},
		{true, []string{"--tun", "x", "--addr", "10.99.0.2/24"}, "want one URL"},
		{true, []string{"--tun", "x", "--addr", "10.99.0.2/24", "http://example.org/"}, "must be an IP address"},
		{true, []string{"--tun", "x", "--addr", "10.99.0.2/24", "ftp://10.99.0.1/x"}, "http:// or https://"},
	} {
		var out bytes.Buffer
		var err error
		if tc.get {
			err = runGet(&out, &out, tc.args)
		} else {
			err = runServe(&out, tc.args)
		}
		if err == nil || !strings.Contains(err.Error()+out.String(), tc.want) {
			t.Errorf("get %v %q: %v, want %q", tc.get, tc.args, err, tc.want)
		}
	}
}

// The progress bar fits the terminal and says how far the download is.
func TestProgressLine(t *testing.T) {
	if s := progressLine(30<<20, 64<<20, 2*time.Second, 30); len(s) > 29 || !strings.HasPrefix(s, " 47% ") {
		t.Errorf("narrow: %q", s)
	}
	for _, w := range []int{60, 80, 200} {
		s := progressLine(30<<20, 64<<20, 2*time.Second, w)
		if len(s) > w-1 || !strings.Contains(s, " 47% [") || !strings.Contains(s, "30.0 MiB / 64.0 MiB") || !strings.Contains(s, "15.0 MiB/s") {
			t.Errorf("width %d: %q", w, s)
		}
	}
	if s := progressLine(64<<20, 64<<20, time.Second, 80); !strings.Contains(s, "100% [====") || !strings.Contains(s, "eta 0s") {
		t.Errorf("done: %q", s)
	}
	if s := progressLine(5<<20, -1, time.Second, 80); !strings.Contains(s, "5.0 MiB  5.0 MiB/s") {
		t.Errorf("unknown length: %q", s)
	}
}
