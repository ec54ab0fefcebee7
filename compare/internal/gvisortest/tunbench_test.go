package gvisortest_test

// TestTunBench: synstack and gVisor netstack side by side, each on a TUN
// device of its own, measured by the kernel's clients in one run; the
// kernel itself (loopback) as an anchor. Root only, not run by default:
//
//	go test -run TestTunBench -synstack.tunbench -v ./internal/gvisortest/
//
// Then synstack alone, on a device of one queue and of two
// (tun.Options.Queues), downloads by benchWorkers concurrent curls;
// -synstack.tunbench.only=queues runs only that part.
//
// The test makes a network namespace (ip netns add) and re-runs this test
// binary inside it (ip netns exec), where the whole benchmark runs in one
// process: both stacks, both TUN devices, the kernel-side HTTP server and
// the connection client. curl runs in the namespace for the downloads.
// Every packet stays in the namespace, which is deleted at the end.
// docs/performance.md holds the numbers of one run.

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/link/fdbased"
	gtun "gvisor.dev/gvisor/pkg/tcpip/link/tun"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/compare/internal/gvisorhost"
	"github.com/synstack/synstack/link/tun"
)

var (
	tunBench     = flag.Bool("synstack.tunbench", false, "run TestTunBench: synstack and gVisor over TUN, side by side (root)")
	tunBenchOnly = flag.String("synstack.tunbench.only", "", `with -synstack.tunbench: "queues" runs only the multi-queue comparison`)
)

// tunBenchChild marks the copy of the test binary that runs inside the
// namespace.
const tunBenchChild = "SYNSTACK_TUNBENCH_CHILD"

const (
	benchBody    = 256 << 20 // bytes of /big
	benchTrials  = 3         // downloads per target and mode; the best counts
	benchConns   = 5000      // connections per connection-rate run
	benchWorkers = 8         // concurrent clients of the second run
	benchPort    = 8080
	benchMTU     = 1500
)

func TestTunBench(t *testing.T) {
	if os.Getenv(tunBenchChild) != "" {
		runTunBench(t)
		return
	}
	if !*tunBench {
		t.Skip("skipped: a benchmark over TUN; run with -synstack.tunbench (needs root, curl, ip)")
	}
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root, to create a network namespace and TUN devices in it")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("skipped: no TUN device support: %v", err)
	}
	for _, tool := range []string{"ip", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipped: needs %s (apt-get install -y iproute2 curl)", tool)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Skipf("skipped: cannot find the test binary: %v", err)
	}
	ns := fmt.Sprintf("synstack-bench-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("skipped: cannot create a network namespace: %v: %s", err, out)
	}
	defer func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns, err, out)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, exe, "-test.run", "^TestTunBench$", "-test.v", "-test.timeout", "15m",
		"-synstack.tunbench.only="+*tunBenchOnly)
	cmd.Env = append(os.Environ(), tunBenchChild+"=1")
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(os.Stdout, &out)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("benchmark in namespace %s: %v", ns, err)
	}
}

// benchTarget is one server the kernel's clients measure.
type benchTarget struct {
	name  string
	addr  string // host:port, from the kernel's side
	close func()
}

// benchHandler is the HTTP handler every target serves: /big, benchBody
// bytes from memory; anything else, "ok\n".
func benchHandler(body []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			http.ServeContent(w, r, "big", time.Time{}, bytes.NewReader(body))
			return
		}
		w.Header().Set("Content-Length", "3")
		io.WriteString(w, "ok\n")
	})
}

// serveHTTP serves h on ln until the returned func is called.
func serveHTTP(ln net.Listener, h http.Handler) func() {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	return func() { srv.Close(); <-done }
}

// The addresses: 10.99.1.0/24 on synstack's device, 10.99.2.0/24 on
// gVisor's (.1 the kernel, .2 the stack); the kernel anchor on loopback.
var (
	synKernel = netip.MustParsePrefix("10.99.1.1/24")
	synStack  = netip.MustParsePrefix("10.99.1.2/24")
	gvKernel  = netip.MustParsePrefix("10.99.2.1/24")
	gvStack   = netip.MustParsePrefix("10.99.2.2/24")
)

func startSynstack(t *testing.T, h http.Handler, offload bool, queues int) *benchTarget {
	ep, err := tun.Open(tun.Options{Name: "bsyn0", MTU: benchMTU, NoOffload: !offload, Queues: queues, HostAddrs: []netip.Prefix{synKernel}})
	if err != nil {
		t.Fatalf("synstack: tun: %v", err)
	}
	st, err := synstack.New(synstack.Config{Link: ep, Addrs: []netip.Prefix{synStack}})
	if err != nil {
		ep.Close()
		t.Fatalf("synstack: %v", err)
	}
	lc := synstack.ListenConfig{Stack: st}
	ln, err := lc.Listen(context.Background(), "tcp", ":"+strconv.Itoa(benchPort))
	if err != nil {
		st.Close()
		t.Fatalf("synstack: listen: %v", err)
	}
	stop := serveHTTP(ln, h)
	t.Logf("synstack: device %s, %d queue(s), offloads: %s", ep.Name(), len(ep.QueueStats()), ep.Offload())
	return &benchTarget{
		name: "synstack",
		addr: net.JoinHostPort(synStack.Addr().String(), strconv.Itoa(benchPort)),
		close: func() {
			stop()
			st.Close() // closes the device too
		},
	}
}

// startGvisor runs gVisor netstack on a TUN device through its fdbased
// endpoint. fdbased turns GSO on only for socket fds (AF_PACKET), not TUN
// fds, so over TUN gVisor segments in software at the MTU whatever it is
// told; "offloads on" here is what the endpoint does take on a TUN fd:
// RXChecksumOffload (trust the kernel's checksums) and its own GRO.
func startGvisor(t *testing.T, h http.Handler, offload bool) *benchTarget {
	const name = "bgv0"
	fd, err := gtun.Open(name)
	if err != nil {
		t.Fatalf("gvisor: tun: %v", err)
	}
	lk, err := netlink.LinkByName(name)
	if err == nil {
		err = netlink.LinkSetMTU(lk, benchMTU)
	}
	if err == nil {
		err = netlink.AddrAdd(lk, &netlink.Addr{IPNet: &net.IPNet{IP: gvKernel.Addr().AsSlice(), Mask: net.CIDRMask(gvKernel.Bits(), 32)}})
	}
	if err == nil {
		err = netlink.LinkSetUp(lk)
	}
	if err != nil {
		unix.Close(fd)
		t.Fatalf("gvisor: configuring %s: %v", name, err)
	}
	ep, err := fdbased.New(&fdbased.Options{
		FDs:               []int{fd},
		MTU:               benchMTU,
		RXChecksumOffload: offload,
		GRO:               offload,
	})
	if err != nil {
		unix.Close(fd)
		t.Fatalf("gvisor: fdbased: %v", err)
	}
	// As Go programs on gVisor usually set it up (tailscale, for one):
	// SACK, and receive-buffer moderation.
	s, err := gvisorhost.New(ep, gvisorhost.Options{ModerateReceiveBuffer: true}, gvStack)
	if err != nil {
		unix.Close(fd)
		t.Fatalf("gvisor: %v", err)
	}
	la, _ := gvisorhost.FullAddr(netip.AddrPortFrom(gvStack.Addr(), benchPort))
	ln, err := gonet.ListenTCP(s, la, ipv4.ProtocolNumber)
	if err != nil {
		s.Destroy()
		unix.Close(fd)
		t.Fatalf("gvisor: listen: %v", err)
	}
	stop := serveHTTP(ln, h)
	t.Logf("gvisor: device %s, fdbased RXChecksumOffload=%v GRO=%v", name, offload, offload)
	return &benchTarget{
		name: "gVisor",
		addr: net.JoinHostPort(gvStack.Addr().String(), strconv.Itoa(benchPort)),
		close: func() {
			stop()
			s.Destroy() // closes the endpoint and waits for its goroutines
			unix.Close(fd)
		},
	}
}

func startKernel(t *testing.T, h http.Handler) *benchTarget {
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(benchPort))
	if err != nil {
		t.Fatalf("kernel: listen: %v", err)
	}
	stop := serveHTTP(ln, h)
	return &benchTarget{name: "kernel (lo)", addr: ln.Addr().String(), close: stop}
}

// waitUp polls the target until it answers, at most 10 s.
func waitUp(t *testing.T, tg *benchTarget) {
	end := time.Now().Add(10 * time.Second)
	for {
		err := fetchSmall(tg.addr)
		if err == nil {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%s at %s does not answer: %v", tg.name, tg.addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// fetchSmall opens a connection, asks for / with Connection: close, reads
// the answer to the end (the server closes) and closes.
func fetchSmall(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"); err != nil {
		return err
	}
	var buf [512]byte
	n := 0
	for {
		m, err := c.Read(buf[n:])
		n += m
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if n == len(buf) {
			return errors.New("answer too long")
		}
	}
	if !bytes.HasPrefix(buf[:n], []byte("HTTP/1.1 200")) || !bytes.HasSuffix(buf[:n], []byte("ok\n")) {
		return fmt.Errorf("unexpected answer %q", buf[:n])
	}
	return nil
}

// download fetches /big with curl and returns MiB/s (bytes over curl's
// total time, connection included).
func download(ctx context.Context, addr string) (float64, error) {
	out, err := exec.CommandContext(ctx, "curl", "-sS", "--max-time", "120", "-o", "/dev/null",
		"-w", "%{size_download} %{time_total}", "http://"+addr+"/big").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("curl: %v: %s", err, out)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 {
		return 0, fmt.Errorf("curl: unexpected output %q", out)
	}
	size, _ := strconv.ParseInt(f[0], 10, 64)
	secs, _ := strconv.ParseFloat(f[1], 64)
	if size != benchBody || secs <= 0 {
		return 0, fmt.Errorf("curl: %d bytes in %v s, want %d", size, secs, benchBody)
	}
	return float64(size) / (1 << 20) / secs, nil
}

// connRate makes benchConns connections, each one fetchSmall, with the
// given number of workers, and returns connections per second.
func connRate(addr string, workers int) (float64, error) {
	var next, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= benchConns {
				if err := fetchSmall(addr); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if n := failed.Load(); n > 0 {
		return 0, fmt.Errorf("%d of %d connections failed, first: %v", n, benchConns, firstErr.Load())
	}
	return benchConns / el.Seconds(), nil
}

// benchResult holds one target's figures in one mode.
type benchResult struct {
	mibs, seq, conc float64
}

func measure(t *testing.T, tg *benchTarget) benchResult {
	t.Helper()
	var r benchResult
	ctx := context.Background()
	for i := range benchTrials {
		cpu0, wall0 := procCPU(), time.Now()
		v, err := download(ctx, tg.addr)
		if err != nil {
			t.Fatalf("%s: download %d: %v", tg.name, i+1, err)
		}
		// How many of the machine's cores this process (the stacks and
		// the HTTP servers) kept busy: 1.0 is one core, flat out.
		cores := (procCPU() - cpu0).Seconds() / time.Since(wall0).Seconds()
		t.Logf("%s: download %d: %.0f MiB/s, this process %.2f cores", tg.name, i+1, v, cores)
		r.mibs = max(r.mibs, v)
	}
	var err error
	cpu0, wall0 := procCPU(), time.Now()
	if r.seq, err = connRate(tg.addr, 1); err != nil {
		t.Fatalf("%s: sequential connections: %v", tg.name, err)
	}
	seqCores := (procCPU() - cpu0).Seconds() / time.Since(wall0).Seconds()
	cpu0, wall0 = procCPU(), time.Now()
	if r.conc, err = connRate(tg.addr, benchWorkers); err != nil {
		t.Fatalf("%s: concurrent connections: %v", tg.name, err)
	}
	concCores := (procCPU() - cpu0).Seconds() / time.Since(wall0).Seconds()
	t.Logf("%s: %.0f conn/s sequential (%.2f cores), %.0f conn/s with %d workers (%.2f cores)",
		tg.name, r.seq, seqCores, r.conc, benchWorkers, concCores)
	return r
}

// procCPU is the CPU time (user and system) this process has used.
func procCPU() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runTunBench is the benchmark itself, in the namespace.
func runTunBench(t *testing.T) {
	// Room for the connection runs' ports; the namespace's own setting.
	os.WriteFile("/proc/sys/net/ipv4/ip_local_port_range", []byte("1024 65535"), 0)
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v: %s", err, out)
	}
	body := make([]byte, benchBody)
	for i := range body {
		body[i] = byte(i*7 + i>>12)
	}
	h := benchHandler(body)
	if *tunBenchOnly == "queues" {
		runQueuesBench(t, h)
		return
	}

	type row struct {
		mode    string
		syn, gv benchResult
	}
	var rows []row
	for _, offload := range []bool{true, false} {
		mode := "on"
		if !offload {
			mode = "off"
		}
		syn := startSynstack(t, h, offload, 0)
		gv := startGvisor(t, h, offload)
		waitUp(t, syn)
		waitUp(t, gv)
		r := row{mode: mode}
		r.syn = measure(t, syn)
		r.gv = measure(t, gv)
		syn.close()
		gv.close()
		rows = append(rows, r)
	}
	krn := startKernel(t, h)
	waitUp(t, krn)
	k := measure(t, krn)
	krn.close()

	var b strings.Builder
	fmt.Fprintf(&b, "\n| offloads | figure | synstack | gVisor | synstack/gVisor | kernel (lo) |\n")
	fmt.Fprintf(&b, "|---|---|---:|---:|---:|---:|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | download, MiB/s (best of %d × 256 MiB) | %.0f | %.0f | %.2f | %.0f |\n",
			r.mode, benchTrials, r.syn.mibs, r.gv.mibs, r.syn.mibs/r.gv.mibs, k.mibs)
		fmt.Fprintf(&b, "| %s | new conns/s, sequential (%d) | %.0f | %.0f | %.2f | %.0f |\n",
			r.mode, benchConns, r.syn.seq, r.gv.seq, r.syn.seq/r.gv.seq, k.seq)
		fmt.Fprintf(&b, "| %s | new conns/s, %d workers (%d) | %.0f | %.0f | %.2f | %.0f |\n",
			r.mode, benchWorkers, benchConns, r.syn.conc, r.gv.conc, r.syn.conc/r.gv.conc, k.conc)
	}
	fmt.Print(b.String())
	runQueuesBench(t, h)
}

// parallelDownload runs benchWorkers curl downloads of /big at once and
// returns their aggregate MiB/s (all bytes over the wall time of the
// whole run) and how many cores this process kept busy meanwhile.
func parallelDownload(addr string) (mibs, cores float64, err error) {
	ctx := context.Background()
	errs := make(chan error, benchWorkers)
	cpu0, wall0 := procCPU(), time.Now()
	for range benchWorkers {
		go func() {
			_, err := download(ctx, addr)
			errs <- err
		}()
	}
	for range benchWorkers {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}
	el := time.Since(wall0)
	cores = (procCPU() - cpu0).Seconds() / el.Seconds()
	return float64(benchWorkers*benchBody) / (1 << 20) / el.Seconds(), cores, err
}

// runQueuesBench compares synstack on a one-queue device with synstack on
// a two-queue one (stack shards as by default), offloads on and off:
// aggregate download rate of benchWorkers concurrent curls, best of
// benchTrials, and this process's CPU (cores busy) in that best run.
func runQueuesBench(t *testing.T, h http.Handler) {
	type fig struct{ mibs, cores float64 }
	var b strings.Builder
	fmt.Fprintf(&b, "\n| offloads | figure | synstack, 1 queue | synstack, 2 queues | 2/1 |\n")
	fmt.Fprintf(&b, "|---|---|---:|---:|---:|\n")
	for _, offload := range []bool{true, false} {
		mode := "on"
		if !offload {
			mode = "off"
		}
		var res [2]fig
		for i, queues := range []int{1, 2} {
			syn := startSynstack(t, h, offload, queues)
			waitUp(t, syn)
			for trial := range benchTrials {
				v, cores, err := parallelDownload(syn.addr)
				if err != nil {
					syn.close()
					t.Fatalf("synstack, %d queues: %v", queues, err)
				}
				t.Logf("synstack, offloads %s, %d queue(s): %d concurrent downloads %d: %.0f MiB/s in all, this process %.2f cores",
					mode, queues, benchWorkers, trial+1, v, cores)
				if v > res[i].mibs {
					res[i] = fig{v, cores}
				}
			}
			syn.close()
		}
		fmt.Fprintf(&b, "| %s | download, MiB/s in all, %d curls at once (best of %d × %d × 256 MiB) | %.0f | %.0f | %.2f |\n",
			mode, benchWorkers, benchTrials, benchWorkers, res[0].mibs, res[1].mibs, res[1].mibs/res[0].mibs)
		fmt.Fprintf(&b, "| %s | this process's CPU, cores (in that run) | %.2f | %.2f | %.2f |\n",
			mode, res[0].cores, res[1].cores, res[1].cores/res[0].cores)
		e0, e1 := res[0].mibs/res[0].cores, res[1].mibs/res[1].cores
		fmt.Fprintf(&b, "| %s | MiB per CPU-second of this process | %.0f | %.0f | %.2f |\n", mode, e0, e1, e1/e0)
	}
	fmt.Print(b.String())
}
