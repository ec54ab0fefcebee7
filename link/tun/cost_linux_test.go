package tun

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestBulkCost measures what moving data over TUN costs the stack, not how
// fast it goes: on a machine others share, the rate is noise, the work per
// byte is not. The stack runs in this process and the kernel's side in a
// child process (this test binary again, TestBulkPeer), so this process's
// CPU time is the stack's own: its goroutines, and the system calls it
// makes (a write to the device runs the kernel's receive path up to the
// peer's socket; a read copies what the peer's send path queued). For each
// direction it logs CPU-seconds per GiB (user, system), the system calls
// per GiB by kind (counted by perf, when installed), the device's packet
// counts, and the top functions of a CPU profile (go tool pprof). Root,
// not run by default (docs/performance.md, "Where the cycles go"):
//
//	go test ./link/tun/ -run TestBulkCost -v -tun.cost [-tun.cost.gib=2] [-tun.cost.dir=DIR]
func TestBulkCost(t *testing.T) {
	if !*costBench {
		t.Skip("skipped: a cost profile over TUN; run with -tun.cost (root)")
	}
	enterNewNetns(t)
	dir := *costDir
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ep, ln, closeAll := bulkStack(t, "tuncost0", true)
	defer closeAll()
	go serveBulk(ln)
	addr := net.JoinHostPort(stackAddr.Addr().String(), "7")
	size := int64(*costGiB * (1 << 30))
	var report strings.Builder
	shares := make([][]string, len(costPlaces))
	fmt.Fprintf(&report, "\n| direction | GiB/s | CPU-s/GiB (user + sys) | the peer process: CPU-s/GiB | syscalls/GiB | by kind | packets in / out per GiB | writes per GiB |\n|---|---:|---:|---:|---:|---|---:|---:|\n")
	for _, dir1 := range []string{"download", "upload"} {
		runPeer(t, dir1, addr, 64<<20) // warm: buffers, threads, windows
		prof := filepath.Join(dir, dir1+".pprof")
		f, err := os.Create(prof)
		if err != nil {
			t.Fatal(err)
		}
		s0 := ep.Stats()
		p := startPeer(t, dir1, addr, size)
		perf := startPerf(t, dir)
		cpu0, wall0 := rusage(), time.Now()
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
		p.run(t)
		pprof.StopCPUProfile()
		cpu1, wall := rusage(), time.Since(wall0).Seconds()
		peerCPU := (p.cmd.ProcessState.UserTime() + p.cmd.ProcessState.SystemTime()).Seconds()
		calls := perf.stop()
		f.Close()
		s1 := ep.Stats()
		gib := float64(size) / (1 << 30)
		user, sys := (cpu1[0]-cpu0[0]).Seconds()/gib, (cpu1[1]-cpu0[1]).Seconds()/gib
		var kinds []string
		total := "–"
		if calls != nil {
			total = fmt.Sprintf("%.0f", float64(calls["all"])/gib)
			for _, k := range syscallKinds {
				if n := calls[k]; n > 0 {
					kinds = append(kinds, fmt.Sprintf("%s %.0f", k, float64(n)/gib))
				}
			}
		}
		fmt.Fprintf(&report, "| %s | %.2f | %.2f (%.2f + %.2f), %.2f cores | %.2f, %.2f cores | %s | %s | %.0f / %.0f | %.0f |\n",
			dir1, gib/wall, user+sys, user, sys, (user+sys)*gib/wall, peerCPU/gib, peerCPU/wall, total,
			strings.Join(kinds, ", "), float64(s1.PacketsIn-s0.PacketsIn)/gib, float64(s1.PacketsOut-s0.PacketsOut)/gib,
			float64(s1.WritesOut-s0.WritesOut)/gib)
		if top, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=25", prof).CombinedOutput(); err == nil {
			t.Logf("%s, %s:\n%s", dir1, prof, top)
		} else {
			t.Logf("%s: go tool pprof: %v", dir1, err)
		}
		if cum, total, err := profileCum(prof); err == nil {
			for i, c := range costPlaces {
				v := 0.0
				for _, fn := range c.funcs {
					v += cum[fn]
				}
				shares[i] = append(shares[i], fmt.Sprintf("%.3f (%.0f%%)", v/gib, 100*v/total))
			}
		} else {
			t.Logf("%s: go tool pprof: %v", dir1, err)
		}
	}
	fmt.Fprintf(&report, "\n| where the samples go (cumulative) | download: CPU-s/GiB (share) | upload: CPU-s/GiB (share) |\n|---|---:|---:|\n")
	for i, c := range costPlaces {
		if len(shares[i]) == 2 {
			fmt.Fprintf(&report, "| %s | %s | %s |\n", c.name, shares[i][0], shares[i][1])
		}
	}
	t.Logf("link: %+v%s", ep.Stats(), report.String())
}

// costPlaces are where TestBulkCost says the samples of its profiles go:
// each a name and the functions whose cumulative samples it adds up (none
// calls another of the same place).
var costPlaces = []struct {
	name  string
	funcs []string
}{
	{"writes to the device (write, writev; the kernel's receive path runs in them)", []string{"syscall.write", "github.com/synstack/synstack/link/tun.(*queue).writeVecSome"}},
	{"reads from the device (read)", []string{"syscall.read"}},
	{"copy into the send queue (download) or the receive queue (upload): tcp ring.writeAt", []string{"github.com/synstack/synstack/tcp.(*ring).writeAt"}},
	{"copy from the send queue into the device's queue: link/tun fill", []string{"github.com/synstack/synstack/link/tun.(*Endpoint).fill"}},
	{"copy from the receive queue to the reader: tcp ring.copyOut", []string{"github.com/synstack/synstack/tcp.(*ring).copyOut"}},
	{"ACK processing: tcp processAck", []string{"github.com/synstack/synstack/tcp.(*Conn).processAck"}},
	{"transmit records: tcp recordSent, pruneRecords", []string{"github.com/synstack/synstack/tcp.(*Conn).recordSent", "github.com/synstack/synstack/tcp.(*Conn).pruneRecords"}},
	{"Go scheduler: findRunnable, futexwakeup", []string{"runtime.findRunnable", "runtime.futexwakeup"}},
}

// profileCum returns the cumulative seconds of every function of a CPU
// profile, and the profile's total, as go tool pprof reports them.
func profileCum(prof string) (cum map[string]float64, total float64, err error) {
	out, err := exec.Command("go", "tool", "pprof", "-top", "-cum", "-nodecount=100000", prof).Output()
	if err != nil {
		return nil, 0, err
	}
	cum = map[string]float64{}
	for _, line := range strings.Split(string(out), "\n") {
		if _, rest, ok := strings.Cut(line, "Total samples = "); ok {
			total = pprofSeconds(strings.Fields(rest)[0])
			continue
		}
		// flat flat% sum% cum cum% name [(inline)]
		f := strings.Fields(line)
		if len(f) < 6 || !strings.HasSuffix(f[4], "%") {
			continue
		}
		cum[f[5]] += pprofSeconds(f[3])
	}
	if total == 0 {
		return nil, 0, errors.New("no samples")
	}
	return cum, total, nil
}

// pprofSeconds reads a duration as go tool pprof prints it (1.23s, 450ms).
func pprofSeconds(s string) float64 {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0
	}
	return d.Seconds()
}

var (
	costBench = flag.Bool("tun.cost", false, "run TestBulkCost: CPU-seconds and system calls per GiB of the stack over TUN, both ways, with CPU profiles (root)")
	costGiB   = flag.Float64("tun.cost.gib", 2, "with -tun.cost: GiB each way")
	costDir   = flag.String("tun.cost.dir", "", "with -tun.cost: where the profiles go (download.pprof, upload.pprof); a temporary directory if empty")
	peerJob   = flag.String("tun.peer", "", "TestBulkPeer's job: download|upload,host:port,bytes (TestBulkCost sets it)")
)

// syscallKinds are the system calls TestBulkCost counts one by one, besides
// all of them.
var syscallKinds = []string{"read", "write", "futex", "epoll_pwait", "nanosleep", "sched_yield", "tgkill", "madvise", "mmap"}

// serveBulk serves ln until it closes: a connection that sends a line
// "download N" gets N bytes; any other is read to its end.
func serveBulk(ln net.Listener) {
	buf := make([]byte, 1<<20)
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		r := bufio.NewReaderSize(c, 1<<20)
		line, err := r.ReadString('\n')
		if n, ok := strings.CutPrefix(strings.TrimSpace(line), "download "); ok && err == nil {
			left, _ := strconv.ParseInt(n, 10, 64)
			for left > 0 && err == nil {
				var w int
				w, err = c.Write(buf[:min(left, int64(len(buf)))])
				left -= int64(w)
			}
		} else {
			r.WriteTo(io.Discard)
		}
		c.Close()
	}
}

// peer is TestBulkPeer in a child process, in this thread's network
// namespace (which the child inherits), started but waiting for go: a
// process that exists before perf attaches is not counted as ours.
type peer struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out bytes.Buffer
}

// startPeer starts the child for one transfer of size bytes.
func startPeer(t *testing.T, job, addr string, size int64) *peer {
	t.Helper()
	p := &peer{cmd: exec.Command(os.Args[0], "-test.run=^TestBulkPeer$", "-tun.peer="+job+","+addr+","+strconv.FormatInt(size, 10))}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	in, err := p.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.in = in
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return p
}

// run lets the child go and waits for it.
func (p *peer) run(t *testing.T) {
	t.Helper()
	p.in.Close() // the child starts at the end of its input
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("peer: %v\n%s", err, p.out.Bytes())
	}
	for line := range strings.Lines(p.out.String()) {
		if strings.HasPrefix(line, "kernel sender:") {
			t.Logf("peer's %s", strings.TrimSpace(line))
		}
	}
}

// runPeer runs the child for one transfer of size bytes.
func runPeer(t *testing.T, job, addr string, size int64) {
	t.Helper()
	startPeer(t, job, addr, size).run(t)
}

// TestBulkPeer is TestBulkCost's kernel side, in a process of its own: it
// downloads or uploads -tun.peer's bytes through a kernel socket.
func TestBulkPeer(t *testing.T) {
	if *peerJob == "" {
		t.Skip("skipped: TestBulkCost's peer process")
	}
	f := strings.Split(*peerJob, ",")
	if len(f) != 3 {
		t.Fatalf("-tun.peer %q", *peerJob)
	}
	size, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, os.Stdin) // wait for the go
	c, err := net.DialTimeout("tcp", f[1], 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	switch f[0] {
	case "download":
		fmt.Fprintf(c, "download %d\n", size)
		n, err := io.CopyBuffer(io.Discard, c, make([]byte, 1<<20))
		if err != nil || n != size {
			t.Fatalf("download: %d of %d bytes: %v", n, size, err)
		}
	case "upload":
		io.WriteString(c, "upload\n")
		buf := make([]byte, 1<<20)
		for left := size; left > 0; left -= int64(len(buf)) {
			if _, err := c.Write(buf[:min(left, int64(len(buf)))]); err != nil {
				t.Fatal(err)
			}
		}
		sayChrono(c.(*net.TCPConn))
		c.(*net.TCPConn).CloseWrite()
		if _, err := io.Copy(io.Discard, c); err != nil { // the stack closes once it has read all
			t.Fatal(err)
		}
	default:
		t.Fatalf("-tun.peer %q", *peerJob)
	}
}

// sayChrono prints, for TestBulkCost's log, how long the kernel's sending
// socket c was busy with data in flight and, of that, limited by the
// peer's receive window or by its own send buffer (tcp_info's chrono
// stats, Linux 4.10 on); what is left was cwnd or the application.
func sayChrono(c *net.TCPConn) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		if ti, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			fmt.Printf("kernel sender: busy %d ms, of which rwnd-limited %d ms, sndbuf-limited %d ms; rtt %d us, cwnd %d, snd_wnd %d\n",
				ti.Busy_time/1000, ti.Rwnd_limited/1000, ti.Sndbuf_limited/1000, ti.Rtt, ti.Snd_cwnd, ti.Snd_wnd)
		}
	})
}

// rusage returns this process's user and system CPU time so far.
func rusage() [2]time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return [2]time.Duration{time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())}
}

// perfCount counts this process's system calls with perf stat, if perf is
// there and may.
type perfCount struct {
	cmd *exec.Cmd
	out string
}

// startPerf starts counting; its stop returns nil if it could not. It
// counts this process's threads, those it starts later too, and no child
// process started before it.
func startPerf(t *testing.T, dir string) *perfCount {
	p := &perfCount{out: filepath.Join(dir, "perf.txt")}
	path, err := exec.LookPath("perf")
	if err != nil {
		t.Logf("no perf: system calls not counted")
		return p
	}
	events := []string{"raw_syscalls:sys_enter"}
	for _, k := range syscallKinds {
		events = append(events, "syscalls:sys_enter_"+k)
	}
	p.cmd = exec.Command(path, "stat", "-x,", "-o", p.out, "-e", strings.Join(events, ","), "-p", strconv.Itoa(os.Getpid()))
	if err := p.cmd.Start(); err != nil {
		t.Logf("perf: %v", err)
		p.cmd = nil
		return p
	}
	time.Sleep(300 * time.Millisecond) // let it attach
	return p
}

// stop ends the count and returns the calls by kind ("all" for the total).
func (p *perfCount) stop() map[string]int64 {
	if p.cmd == nil {
		return nil
	}
	p.cmd.Process.Signal(syscall.SIGINT)
	if err := p.cmd.Wait(); err != nil && !errors.As(err, new(*exec.ExitError)) {
		return nil
	}
	out, err := os.ReadFile(p.out)
	if err != nil {
		return nil
	}
	calls := map[string]int64{}
	for _, line := range bytes.Split(out, []byte("\n")) {
		f := strings.Split(string(line), ",")
		if len(f) < 3 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		switch ev := f[2]; {
		case ev == "raw_syscalls:sys_enter":
			calls["all"] = n
		case strings.HasPrefix(ev, "syscalls:sys_enter_"):
			calls[strings.TrimPrefix(ev, "syscalls:sys_enter_")] = n
		}
	}
	return calls
}
