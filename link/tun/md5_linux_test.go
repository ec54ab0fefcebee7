package tun

import (
	"context"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/wire"
)

// kernelMD5 is a Control that gives a kernel socket a TCP MD5 key for
// peer (TCP_MD5SIG).
func kernelMD5(peer netip.Addr, key string) func(string, string, syscall.RawConn) error {
	return func(_, _ string, rc syscall.RawConn) error {
		sig := unix.TCPMD5Sig{Keylen: uint16(len(key))}
		sig.Addr.Family = unix.AF_INET
		a := peer.As4()
		copy(sig.Addr.Data[2:6], a[:])
		copy(sig.Key[:], key)
		var err error
		if cerr := rc.Control(func(fd uintptr) {
			err = unix.SetsockoptTCPMD5Sig(int(fd), unix.IPPROTO_TCP, unix.TCP_MD5SIG, &sig)
		}); cerr != nil {
			return cerr
		}
		return err
	}
}

// TestKernelMD5: the kernel's TCP and a synstack stack sign and check
// each other's segments (RFC 2385) both ways round, with the same key:
// the digests agree with Linux's. With another key the kernel's SYN is
// refused and counted.
func TestKernelMD5(t *testing.T) {
	// The SYNs each side sends, their options by name (the digests,
	// keys' and segments' own, left out).
	var mu sync.Mutex
	syns := map[string]string{}
	largest := map[string]int{} // the most data in a segment, by direction
	st := kernelStack(t, "tunmd5", func(dir string, pkt []byte) {
		_, payload, err := wire.ParseIPv4(pkt)
		if err != nil {
			return
		}
		h, data, err := wire.ParseTCP(payload)
		if err != nil {
			return
		}
		if h.Flags&wire.FlagSYN == 0 {
			mu.Lock()
			largest[dir] = max(largest[dir], len(data))
			mu.Unlock()
			return
		}
		list, _ := wire.ParseTCPOptionList(payload[wire.TCPHeaderLen:h.DataOffset])
		var names []string
		for _, o := range list {
			names = append(names, strings.Fields(o.String())[0])
		}
		mu.Lock()
		syns[dir+" "+h.Flags.String()] = strings.Join(names, ",")
		mu.Unlock()
	})
	ctx := context.Background()
	const key = "kernel-and-synstack"

	// The kernel listens, synstack dials.
	kl, err := (&net.ListenConfig{Control: kernelMD5(stackAddr.Addr(), key)}).Listen(ctx, "tcp4", net.JoinHostPort(hostAddr.Addr().String(), "179"))
	if err != nil {
		t.Fatal(err)
	}
	defer kl.Close()
	go func() {
		c, err := kl.Accept()
		if err != nil {
			return
		}
		io.Copy(c, c)
		c.Close()
	}()
	d := synstack.Dialer{Stack: st, MD5Key: []byte(key), Timeout: 10 * time.Second}
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(hostAddr.Addr().String(), "179"))
	if err != nil {
		t.Fatalf("synstack to kernel: %v", err)
	}
	echo(t, c, 100000)

	// synstack listens, the kernel dials: with the key, then without it.
	lc := synstack.ListenConfig{Stack: st, MD5Keys: map[netip.Prefix][]byte{hostAddr.Masked(): []byte(key)}}
	sl, err := lc.Listen(ctx, "tcp", ":180")
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	go func() {
		for {
			c, err := sl.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	kd := net.Dialer{Control: kernelMD5(stackAddr.Addr(), key), Timeout: 10 * time.Second}
	kc, err := kd.DialContext(ctx, "tcp4", net.JoinHostPort(stackAddr.Addr().String(), "180"))
	if err != nil {
		t.Fatalf("kernel to synstack: %v", err)
	}
	echo(t, kc, 100000)
	if s := st.Stats(); s.TcpExtTCPMD5Failure+s.TcpExtTCPMD5NotFound+s.TcpExtTCPMD5Unexpected != 0 {
		t.Errorf("segments refused with the same key: %+v", s)
	}
	// The option space as Linux shares it: the signature first, no
	// timestamps on a SYN, nor on a SYN,ACK that permits SACK; the same
	// layout from both sides.
	mu.Lock()
	t.Logf("SYNs: %q; largest segments %v", syns, largest)
	if largest["in"] != 1440 || largest["out"] != 1440 {
		t.Errorf("largest segments %v, want 1440 both ways (1460 less the signature's 20)", largest)
	}
	const want = "nop,nop,md5,mss,nop,nop,sackOK,nop,wscale"
	for _, k := range []string{"in S", "out S", "in S.", "out S."} {
		if syns[k] != want {
			t.Errorf("%s options %s, want %s", k, syns[k], want)
		}
	}
	mu.Unlock()
	bad := net.Dialer{Control: kernelMD5(stackAddr.Addr(), "another key"), Timeout: 1500 * time.Millisecond}
	if c, err := bad.DialContext(ctx, "tcp4", net.JoinHostPort(stackAddr.Addr().String(), "180")); err == nil {
		c.Close()
		t.Fatal("the kernel connected with another key")
	}
	if s := st.Stats(); s.TcpExtTCPMD5Failure == 0 {
		t.Errorf("a SYN signed with another key, but TcpExtTCPMD5Failure is 0")
	}
}

// kernelStack enters a namespace of the test's own and returns a stack on
// a TUN device named name there, the kernel at hostAddr on its other
// side, with the OnPacket hook onPacket; the stack closes when the test
// ends.
func kernelStack(t *testing.T, name string, onPacket func(dir string, pkt []byte)) *synstack.Stack {
	t.Helper()
	enterNewNetns(t)
	ep, err := Open(Options{Name: name, HostAddrs: []netip.Prefix{hostAddr}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := synstack.New(synstack.Config{Link: ep, Addrs: []netip.Prefix{stackAddr}, OnPacket: onPacket})
	if err != nil {
		ep.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if ok, err := ep.KernelReady(stackAddr.Addr()); !ok || err != nil {
		t.Fatalf("kernel side not ready: %v %v", ok, err)
	}
	return st
}

// echo writes n bytes to c, reads them back, and closes c.
func echo(t *testing.T, c net.Conn, n int) {
	t.Helper()
	defer c.Close()
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(i * 7)
	}
	go c.Write(data)
	got := make([]byte, n)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("echo: %v", err)
	}
	for i := range got {
		if got[i] != data[i] {
			t.Fatalf("echo: byte %d differs", i)
		}
	}
}

// TestKernelUrgent: urgent data between the kernel's TCP and a synstack
// stack, both ways: each reads up to the mark, then the urgent byte with
// MSG_OOB, then the rest, as the other sent it.
func TestKernelUrgent(t *testing.T) {
	st := kernelStack(t, "tunurg", nil)
	sl, err := st.Listen("tcp", ":181")
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	kc, err := net.DialTimeout("tcp4", net.JoinHostPort(stackAddr.Addr().String(), "181"), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	sc, err := sl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	krc, err := kc.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	ss := sc.(*synstack.TCPConn)

	// The kernel sends "ab", then "cd" with MSG_OOB (d urgent), then "ef".
	for _, w := range []struct {
		s     string
		flags int
	}{{"ab", 0}, {"cd", unix.MSG_OOB}, {"ef", 0}} {
		var err error
		krc.Write(func(fd uintptr) bool { err = unix.Sendto(int(fd), []byte(w.s), w.flags, nil); return true })
		if err != nil {
			t.Fatal(err)
		}
	}
	var got string
	var oob byte
	deadline := time.Now().Add(10 * time.Second)
	for got != "abcef" && time.Now().Before(deadline) {
		ss.Control(func(s *synstack.Sockets, fd int) {
			buf := make([]byte, 10)
			if oob == 0 {
				if n, err := s.Recv(fd, buf, synstack.MSG_OOB); err == nil && n == 1 {
					oob = buf[0]
				}
			}
			if n, err := s.Recv(fd, buf, synstack.MSG_DONTWAIT); err == nil {
				got += string(buf[:n])
			}
		})
		time.Sleep(time.Millisecond)
	}
	if got != "abcef" || oob != 'd' {
		t.Fatalf("synstack read %q and %q out of band; want abcef and d", got, oob)
	}

	// synstack sends "gh", then "ij" with MSG_OOB (j urgent), then "kl".
	for _, w := range []struct {
		s     string
		flags int
	}{{"gh", 0}, {"ij", synstack.MSG_OOB}, {"kl", 0}} {
		ss.Control(func(s *synstack.Sockets, fd int) {
			if _, err := s.Send(fd, []byte(w.s), w.flags); err != nil {
				t.Error(err)
			}
		})
	}
	got, oob = "", 0
	for got != "ghikl" && time.Now().Before(deadline) {
		krc.Read(func(fd uintptr) bool {
			buf := make([]byte, 10)
			if oob == 0 {
				if n, _, err := unix.Recvfrom(int(fd), buf, unix.MSG_OOB); err == nil && n == 1 {
					oob = buf[0]
				}
			}
			if n, _, err := unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT); err == nil {
				got += string(buf[:n])
			}
			return true
		})
		time.Sleep(time.Millisecond)
	}
	if got != "ghikl" || oob != 'j' {
		t.Fatalf("the kernel read %q and %q out of band; want ghikl and j", got, oob)
	}
}
