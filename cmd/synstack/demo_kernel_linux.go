package main

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/synstack/synstack/link"
	"github.com/synstack/synstack/link/tun"
)

// demo --kernel: the Linux kernel plays the server, in a network namespace
// of its own (unshare on a locked thread: nothing outside it sees the
// device or the addresses, and it disappears with the thread), on the
// kernel's side of a TUN device whose other side is the synstack client.

// nsThread is a goroutine locked on a thread that left the process's
// network namespace for a new one; it runs the functions given to do.
type nsThread struct {
	calls chan func()
	done  chan struct{}
}

func newNSThread() (*nsThread, error) {
	t := &nsThread{calls: make(chan func()), done: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread dies with the goroutine, and the
		// namespace with its last socket.
		runtime.LockOSThread()
		defer close(t.done)
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- nil
		for f := range t.calls {
			f()
		}
	}()
	if err := <-errc; err != nil {
		return nil, err
	}
	return t, nil
}

func (t *nsThread) do(f func()) {
	ran := make(chan struct{})
	t.calls <- func() { f(); close(ran) }
	<-ran
}

func (t *nsThread) stop() {
	close(t.calls)
	<-t.done
}

// kernelPeer is the namespace, its TUN device and the kernel's sockets.
type kernelPeer struct {
	ns   *nsThread
	ep   *tun.Endpoint
	so   *kernelSockets
	poll chan struct{} // closed to stop the /proc/net/tcp poller
	pwg  sync.WaitGroup
}

// kernelAvailable says why --kernel cannot run here, or nil.
func kernelAvailable() error {
	if os.Geteuid() != 0 {
		return errKernelNeeds
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return errKernelNeeds
	}
	return nil
}

var errKernelNeeds = errors.New("--kernel needs root and /dev/net/tun")

// startKernelPeer makes the namespace and the device: the kernel's side
// has kernelAddr/24, the stack's side is the other end.
func startKernelPeer(kernelAddr string) (*kernelPeer, error) {
	if err := kernelAvailable(); err != nil {
		return nil, err
	}
	ns, err := newNSThread()
	if err != nil {
		return nil, fmt.Errorf("%w (unshare: %v)", errKernelNeeds, err)
	}
	k := &kernelPeer{ns: ns, poll: make(chan struct{})}
	ns.do(func() {
		// The namespace's own sysctls: no IPv6 router solicitations on
		// the device.
		os.WriteFile("/proc/sys/net/ipv6/conf/default/disable_ipv6", []byte("1"), 0)
		k.ep, err = tun.Open(tun.Options{Name: "syndemo0", NoOffload: true,
			HostAddrs: []netip.Prefix{netip.PrefixFrom(netip.MustParseAddr(kernelAddr), 24)}})
	})
	if err != nil {
		ns.stop()
		return nil, fmt.Errorf("%w (tun: %v)", errKernelNeeds, err)
	}
	k.so = &kernelSockets{ns: ns}
	return k, nil
}

// link is the stack's side of the device.
func (k *kernelPeer) link() link.Endpoint { return k.ep }

// watch polls the namespace's /proc/net/tcp (the kernel has no hook for
// its state changes) and calls f for each connection whose state changed:
// from is "" for a new one, to "" for one that is gone.
func (k *kernelPeer) watch(f func(local, remote netip.AddrPort, from, to string)) {
	k.pwg.Add(1)
	go func() {
		defer k.pwg.Done()
		runtime.LockOSThread() // never unlocked: this thread enters the namespace, and dies with the goroutine
		var tid int
		k.ns.do(func() { tid = unix.Gettid() })
		nsfd, err := unix.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", tid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return
		}
		err = unix.Setns(nsfd, unix.CLONE_NEWNET)
		unix.Close(nsfd)
		if err != nil {
			return
		}
		seen := map[[2]netip.AddrPort]string{}
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			now := readProcTCP()
			for key, st := range now {
				if old := seen[key]; old != st {
					f(key[0], key[1], old, st)
				}
			}
			for key, st := range seen {
				if _, ok := now[key]; !ok {
					f(key[0], key[1], st, "")
				}
			}
			seen = now
			select {
			case <-k.poll:
				return
			case <-tick.C:
			}
		}
	}()
}

// procStates are the states of /proc/net/tcp, by number (include/net/tcp_states.h).
var procStates = map[int]string{1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RCVD", 4: "FIN_WAIT_1", 5: "FIN_WAIT_2",
	6: "TIME_WAIT", 7: "CLOSED", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING", 12: "SYN_RCVD"}

// readProcTCP reads the connections (not the listeners) of the calling
// thread's namespace.
func readProcTCP() map[[2]netip.AddrPort]string {
	out := map[[2]netip.AddrPort]string{}
	f, err := os.Open("/proc/thread-self/net/tcp")
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 4 {
			continue
		}
		st, err := strconv.ParseInt(fs[3], 16, 32)
		if err != nil || st == 10 {
			continue
		}
		l, r := parseProcAddr(fs[1]), parseProcAddr(fs[2])
		if l.IsValid() && r.IsValid() {
			out[[2]netip.AddrPort{l, r}] = procStates[int(st)]
		}
	}
	return out
}

// parseProcAddr parses "0100000A:0050" (address in host order, little endian).
func parseProcAddr(s string) netip.AddrPort {
	a, p, ok := strings.Cut(s, ":")
	if !ok || len(a) != 8 {
		return netip.AddrPort{}
	}
	v, err1 := strconv.ParseUint(a, 16, 32)
	port, err2 := strconv.ParseUint(p, 16, 16)
	if err1 != nil || err2 != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}), uint16(port))
}

// ss runs ss -tan in the namespace and returns its output.
func (k *kernelPeer) ss() string {
	var out []byte
	var err error
	k.ns.do(func() {
		// The child inherits the thread's namespace.
		out, err = exec.Command("ss", "-tano").CombinedOutput()
	})
	if err != nil {
		return "(ss: " + err.Error() + ")"
	}
	return strings.TrimRight(string(out), "\n")
}

// close stops the poller, closes the kernel's sockets and the device, and
// lets the namespace go.
func (k *kernelPeer) close() {
	close(k.poll)
	k.pwg.Wait()
	k.so.closeAll()
	k.ns.do(func() { k.ep.Close() })
	k.ns.stop()
}

// kernelSockets is sockAPI on the kernel's sockets, created in the namespace.
type kernelSockets struct {
	ns  *nsThread
	mu  sync.Mutex
	fds map[int]bool
}

func (k *kernelSockets) track(fd int, open bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fds == nil {
		k.fds = map[int]bool{}
	}
	if open {
		k.fds[fd] = true
	} else {
		delete(k.fds, fd)
	}
}

func (k *kernelSockets) closeAll() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for fd := range k.fds {
		// An abort, as the synstack side's Stack.Close: no FIN, no TIME_WAIT.
		unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
		unix.Close(fd)
	}
	k.fds = nil
}

func (k *kernelSockets) Socket(domain, typ, proto int) (int, error) {
	var fd int
	var err error
	k.ns.do(func() { fd, err = unix.Socket(domain, typ|unix.SOCK_CLOEXEC, proto) })
	if err == nil {
		k.track(fd, true)
	}
	return fd, err
}

func sockaddr(a netip.AddrPort) unix.Sockaddr {
	return &unix.SockaddrInet4{Port: int(a.Port()), Addr: a.Addr().As4()}
}

func addrPort(sa unix.Sockaddr) netip.AddrPort {
	if s, ok := sa.(*unix.SockaddrInet4); ok {
		return netip.AddrPortFrom(netip.AddrFrom4(s.Addr), uint16(s.Port))
	}
	return netip.AddrPort{}
}

func (k *kernelSockets) Bind(fd int, a netip.AddrPort) error    { return unix.Bind(fd, sockaddr(a)) }
func (k *kernelSockets) Listen(fd, backlog int) error           { return unix.Listen(fd, backlog) }
func (k *kernelSockets) Connect(fd int, a netip.AddrPort) error { return unix.Connect(fd, sockaddr(a)) }

func (k *kernelSockets) Accept(fd int) (int, netip.AddrPort, error) {
	nfd, sa, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
	if err != nil {
		return -1, netip.AddrPort{}, err
	}
	k.track(nfd, true)
	return nfd, addrPort(sa), nil
}

func (k *kernelSockets) Read(fd int, p []byte) (int, error) {
	n, err := unix.Read(fd, p)
	return max(n, 0), err
}

func (k *kernelSockets) Write(fd int, p []byte) (int, error) {
	return unix.SendmsgN(fd, p, nil, nil, unix.MSG_NOSIGNAL)
}

func (k *kernelSockets) Shutdown(fd, how int) error { return unix.Shutdown(fd, how) }

func (k *kernelSockets) Close(fd int) error {
	k.track(fd, false)
	return unix.Close(fd)
}

func (k *kernelSockets) Dup(fd int) (int, error) {
	nfd, err := unix.Dup(fd)
	if err == nil {
		k.track(nfd, true)
	}
	return nfd, err
}

func (k *kernelSockets) Fcntl(fd, cmd, arg int) (int, error) {
	return unix.FcntlInt(uintptr(fd), cmd, arg)
}

func (k *kernelSockets) Getsockname(fd int) (netip.AddrPort, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return addrPort(sa), nil
}

func (k *kernelSockets) SetsockoptInt(fd, level, opt, value int) error {
	return unix.SetsockoptInt(fd, level, opt, value)
}

func (k *kernelSockets) GetsockoptInt(fd, level, opt int) (int, error) {
	return unix.GetsockoptInt(fd, level, opt)
}

func (k *kernelSockets) TCPState(fd int) (string, error) {
	info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return "", err
	}
	return procStates[int(info.State)], nil
}
