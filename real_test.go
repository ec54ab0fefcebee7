package synstack

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/rand"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/synstack/synstack/link/pipe"
)

// These tests run two stacks over link/pipe on the real clock, with
// blocking calls.

func TestRealEcho(t *testing.T) {
	a, b := pipeStacks(t)
	// A watchdog turns a stall into a failure (the blocked calls get
	// EBADF) instead of a hung test.
	watchdog := time.AfterFunc(30*time.Second, func() {
		t.Errorf("echo stalled: closing the stacks")
		a.Close()
		b.Close()
	})
	defer watchdog.Stop()
	echoBody(t, a, b)
}

func echoBody(t *testing.T, a, b *Stack) {
	ca, sb := a.Sockets(), b.Sockets()
	lfd := listenOn(t, b, srvAddr, 5, false)
	data := make([]byte, 1<<20)
	rand.New(rand.NewSource(1)).Read(data)

	errc := make(chan error, 1)
	go func() {
		fd, _, err := sb.Accept(lfd)
		if err != nil {
			errc <- err
			return
		}
		buf := make([]byte, 32768)
		for {
			k, err := sb.Read(fd, buf)
			if err != nil {
				errc <- err
				return
			}
			if k == 0 {
				break
			}
			if _, err := sb.Write(fd, buf[:k]); err != nil {
				errc <- err
				return
			}
		}
		errc <- sb.Close(fd)
	}()

	fd := mustFD(t)(ca.Socket(AF_INET, SOCK_STREAM, 0))
	must(t, ca.Connect(fd, srvAddr))
	wrote := make(chan error, 1)
	go func() {
		k, err := ca.Write(fd, data)
		if err == nil && k != len(data) {
			err = fmt.Errorf("short write %d", k)
		}
		ca.Shutdown(fd, SHUT_WR)
		wrote <- err
	}()
	var got bytes.Buffer
	buf := make([]byte, 65536)
	for {
		k, err := ca.Read(fd, buf)
		if err != nil {
			t.Errorf("read: %v", err)
			break
		}
		if k == 0 {
			break
		}
		got.Write(buf[:k])
	}
	must(t, <-wrote)
	if sha256.Sum256(got.Bytes()) != sha256.Sum256(data) {
		t.Errorf("echo differs: %d bytes back of %d", got.Len(), len(data))
	}
	must(t, <-errc)
	must(t, ca.Close(fd))
}

func TestRealConnectRefused(t *testing.T) {
	a, _ := pipeStacks(t)
	ca := a.Sockets()
	fd := mustFD(t)(ca.Socket(AF_INET, SOCK_STREAM, 0))
	wantErr(t, "connect", ca.Connect(fd, srvAddr), syscall.ECONNREFUSED)
	_, err := ca.Read(fd, make([]byte, 1))
	wantErr(t, "read after failed connect", err, syscall.ENOTCONN)
}

func TestRealPollWaits(t *testing.T) {
	a, b := pipeStacks(t)
	ca, sb := a.Sockets(), b.Sockets()
	lfd := listenOn(t, b, srvAddr, 5, false)
	// Poll times out on an empty listener.
	start := time.Now()
	p := []PollFd{{Fd: lfd, Events: POLLIN}}
	if k, err := sb.Poll(p, 50*time.Millisecond); k != 0 || err != nil {
		t.Errorf("poll %d %v", k, err)
	}
	if time.Since(start) < 40*time.Millisecond {
		t.Errorf("poll returned early")
	}
	// Poll wakes when a connection arrives.
	go func() {
		time.Sleep(20 * time.Millisecond)
		fd, _ := ca.Socket(AF_INET, SOCK_STREAM, 0)
		ca.Connect(fd, srvAddr)
	}()
	if k, _ := sb.Poll(p, -1); k != 1 || p[0].Revents != POLLIN {
		t.Errorf("poll %+v", p)
	}
}

func TestCloseWakesBlockedCalls(t *testing.T) {
	a, b := pipeStacks(t)
	ca, sb := a.Sockets(), b.Sockets()
	lfd := listenOn(t, b, srvAddr, 5, false)
	fd := mustFD(t)(ca.Socket(AF_INET, SOCK_STREAM, 0))
	must(t, ca.Connect(fd, srvAddr))
	errs := make(chan error, 3)
	go func() {
		_, err := ca.Read(fd, make([]byte, 10))
		errs <- err
	}()
	go func() {
		_, err := sb.Poll([]PollFd{{Fd: 99, Events: POLLIN}, {Fd: lfd, Events: POLLOUT}}, -1)
		errs <- err
	}()
	go func() {
		_, _, err := sb.Accept(lfd) // takes the connection
		if err == nil {
			_, _, err = sb.Accept(lfd)
		}
		errs <- err
	}()
	time.Sleep(20 * time.Millisecond)
	a.Close()
	b.Close()
	for i := 0; i < 3; i++ {
		select {
		case err := <-errs:
			if err != nil && err != syscall.EBADF {
				t.Errorf("woken call: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("blocked call not woken by Close")
		}
	}
	_, err := ca.Socket(AF_INET, SOCK_STREAM, 0)
	wantErr(t, "socket after close", err, syscall.EBADF)
}

func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	for i := 0; i < 3; i++ {
		la, lb := pipe.New(1500)
		a, err := New(Config{Link: la, Addrs: []netip.Prefix{netip.PrefixFrom(addrA, 24)}})
		must(t, err)
		b, err := New(Config{Link: lb, Addrs: []netip.Prefix{netip.PrefixFrom(addrB, 24)}})
		must(t, err)
		lfd := listenOn(t, b, srvAddr, 5, false)
		fd := mustFD(t)(a.Sockets().Socket(AF_INET, SOCK_STREAM, 0))
		must(t, a.Sockets().Connect(fd, srvAddr))
		sfd, _, err := b.Sockets().Accept(lfd)
		must(t, err)
		a.Sockets().Write(fd, []byte("x"))
		b.Sockets().Read(sfd, make([]byte, 1))
		a.Close()
		b.Close()
	}
	deadline := time.Now().Add(time.Minute) // a hang guard, not a timing
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("goroutines: %d before, %d after\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}
