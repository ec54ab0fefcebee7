package wgbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/synstack/synstack/contrib/wireguard/wgtest"
)

// Sizes of the figures.
const (
	BulkBytes    = 256 << 20 // bytes of each TCP transfer
	UDPSize      = 64        // payload bytes of each datagram
	UDPDuration  = 2 * time.Second
	SetupConns   = 1000 // connections of the setup figure
	SetupWorkers = 4    // goroutines that make them
	IdleConns    = 1000 // connections of the heap figure
)

// Ports on the stack's side.
const (
	portDownload = 5001
	portUpload   = 5002
	portUDP      = 5003
	portSetup    = 5004
	portIdle     = 5005
)

// Figure is one measured row: its name and how to measure it on a tunnel.
type Figure struct {
	Name string
	// HigherBetter is true for rates, false for costs (heap).
	HigherBetter bool
	Run          func(tn *wgtest.Tunnel) (float64, error)
}

// Figures are the rows of the table, in order.
var Figures = []Figure{
	{"TCP download (stack sends), MiB/s, 256 MiB", true, download},
	{"TCP upload (kernel sends), MiB/s, 256 MiB", true, upload},
	{"UDP datagrams/s received by the stack (kernel sends 64 B, window 512, 2 s)", true, udpIn},
	{"UDP datagrams/s received by the kernel (stack sends 64 B, window 512, 2 s)", true, udpOut},
	{"new TCP conns/s (kernel dials, 1000, 4 workers)", true, setup},
	{"Go heap per idle TCP conn, bytes (1000 conns)", false, idleHeap},
}

// stackAddr is the stack's address with port.
func stackAddr(port uint16) string { return netip.AddrPortFrom(wgtest.StackAddr, port).String() }

// download: a server on the stack writes BulkBytes and closes; a kernel
// socket reads them; MiB over the time from dial to EOF.
func download(tn *wgtest.Tunnel) (float64, error) {
	ln, err := tn.Stack.Listen(netip.AddrPortFrom(wgtest.StackAddr, portDownload))
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	go wgtest.ServeEach(ln, func(c net.Conn) { writeBulk(c) })
	start := time.Now()
	c, err := net.Dial("tcp", stackAddr(portDownload))
	if err != nil {
		return 0, err
	}
	defer c.Close()
	n, err := io.Copy(io.Discard, c)
	if err != nil || n != BulkBytes {
		return 0, fmt.Errorf("download: %d bytes, %v", n, err)
	}
	return mibPerSec(n, time.Since(start)), nil
}

// upload: a kernel socket writes BulkBytes and half-closes; a server on
// the stack reads them to EOF and answers one byte; MiB over the time
// from dial to that byte.
func upload(tn *wgtest.Tunnel) (float64, error) {
	ln, err := tn.Stack.Listen(netip.AddrPortFrom(wgtest.StackAddr, portUpload))
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	go wgtest.ServeEach(ln, func(c net.Conn) {
		if n, _ := io.Copy(io.Discard, c); n == BulkBytes {
			c.Write([]byte{1})
		}
	})
	start := time.Now()
	c, err := net.Dial("tcp", stackAddr(portUpload))
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if err := writeBulk(c); err != nil {
		return 0, err
	}
	c.(*net.TCPConn).CloseWrite()
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		return 0, fmt.Errorf("upload: no answer: %w", err)
	}
	return mibPerSec(BulkBytes, time.Since(start)), nil
}

// writeBulk writes BulkBytes to c.
func writeBulk(c net.Conn) error {
	buf := make([]byte, 256<<10)
	for left := BulkBytes; left > 0; left -= len(buf) {
		if _, err := c.Write(buf[:min(left, len(buf))]); err != nil {
			return err
		}
	}
	return nil
}

// mibPerSec is n bytes over d, in MiB/s.
func mibPerSec(n int64, d time.Duration) float64 { return float64(n) / (1 << 20) / d.Seconds() }

// udpIn: a kernel socket sends UDPSize-byte datagrams to a socket on the
// stack as fast as it can for UDPDuration; datagrams received per second.
func udpIn(tn *wgtest.Tunnel) (float64, error) {
	pc, err := tn.Stack.ListenPacket(netip.AddrPortFrom(wgtest.StackAddr, portUDP))
	if err != nil {
		return 0, err
	}
	c, err := net.Dial("udp", stackAddr(portUDP))
	if err != nil {
		pc.Close()
		return 0, err
	}
	defer c.Close()
	return blast(c.Write, pc)
}

// udpOut: a socket on the stack sends UDPSize-byte datagrams to a kernel
// socket as fast as it can for UDPDuration; datagrams received per
// second.
func udpOut(tn *wgtest.Tunnel) (float64, error) {
	pc, err := net.ListenPacket("udp", netip.AddrPortFrom(wgtest.KernelAddr, portUDP).String())
	if err != nil {
		return 0, err
	}
	c, err := tn.Stack.DialContext(context.Background(), "udp", netip.AddrPortFrom(wgtest.KernelAddr, portUDP).String())
	if err != nil {
		pc.Close()
		return 0, err
	}
	defer c.Close()
	return blast(c.Write, pc)
}

// UDPWindow is the most datagrams the UDP figures' sender keeps in
// flight (sent, not yet received): a sender paced by its receiver, as a
// protocol over UDP with flow control is, so that neither stack is
// measured by how fast it can drop datagrams it cannot send.
const UDPWindow = 512

// udpStall is how long the sender waits for its window to open before it
// counts the datagrams in flight as lost and goes on.
const udpStall = 100 * time.Millisecond

// blast sends UDPSize-byte datagrams with send for UDPDuration, keeping at
// most UDPWindow in flight, while a goroutine counts what pc receives;
// then it waits 300 ms for the last ones, closes pc and returns the
// datagrams received per second of sending.
func blast(send func([]byte) (int, error), pc net.PacketConn) (float64, error) {
	var got atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			got.Add(1)
		}
	}()
	msg := make([]byte, UDPSize)
	start := time.Now()
	var sent, lost int64
	for time.Since(start) < UDPDuration {
		if sent-lost-got.Load() < 0 {
			lost = sent - got.Load() // late arrivals of datagrams counted lost
		}
		if sent-lost-got.Load() >= UDPWindow {
			waitStart := time.Now()
			for sent-lost-got.Load() >= UDPWindow && time.Since(waitStart) < udpStall {
				runtime.Gosched()
			}
			if sent-lost-got.Load() >= UDPWindow {
				lost = sent - got.Load() // give the window back
			}
			continue
		}
		if _, err := send(msg); err == nil {
			sent++
		}
	}
	took := time.Since(start)
	time.Sleep(300 * time.Millisecond)
	pc.Close()
	<-done
	if got.Load() == 0 {
		return 0, fmt.Errorf("UDP: none of %d datagrams arrived", sent)
	}
	return float64(got.Load()) / took.Seconds(), nil
}

// setup: SetupWorkers goroutines on kernel sockets make SetupConns
// connections to a server on the stack, which accepts, writes one byte and
// closes; each client reads it and EOF and closes. Connections per second.
func setup(tn *wgtest.Tunnel) (float64, error) {
	ln, err := tn.Stack.Listen(netip.AddrPortFrom(wgtest.StackAddr, portSetup))
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	go wgtest.ServeEach(ln, func(c net.Conn) { c.Write([]byte{1}) })
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range SetupWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 4)
			for next.Add(1) <= SetupConns {
				c, err := net.DialTimeout("tcp", stackAddr(portSetup), 15*time.Second)
				if err != nil {
					failed.Add(1)
					continue
				}
				c.SetDeadline(time.Now().Add(15 * time.Second))
				if n, err := io.ReadFull(c, buf); n != 1 || !errors.Is(err, io.ErrUnexpectedEOF) {
					failed.Add(1)
				}
				c.Close()
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if f := failed.Load(); f > SetupConns/1000 {
		return 0, fmt.Errorf("setup: %d of %d connections failed", f, SetupConns)
	}
	return float64(SetupConns-failed.Load()) / took.Seconds(), nil
}

// idleHeap: IdleConns connections from the kernel (raw socket descriptors,
// which cost this process's heap nothing) to a server on the stack that
// accepts and keeps them; the Go heap's growth (live bytes after a
// collection), per connection.
func idleHeap(tn *wgtest.Tunnel) (float64, error) {
	ln, err := tn.Stack.Listen(netip.AddrPortFrom(wgtest.StackAddr, portIdle))
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	accepted := make(chan net.Conn, IdleConns)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	fds := make([]int, 0, IdleConns)
	conns := make([]net.Conn, 0, IdleConns)
	before := liveHeap()
	defer func() {
		for _, fd := range fds {
			syscall.Close(fd)
		}
	}()
	sa := &syscall.SockaddrInet4{Port: portIdle, Addr: wgtest.StackAddr.As4()}
	for range IdleConns {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			return 0, err
		}
		fds = append(fds, fd)
		if err := syscall.Connect(fd, sa); err != nil {
			return 0, fmt.Errorf("idle conn %d: %w", len(fds), err)
		}
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	timeout := time.After(30 * time.Second)
	for len(conns) < IdleConns {
		select {
		case c := <-accepted:
			conns = append(conns, c)
		case <-timeout:
			return 0, fmt.Errorf("idle: %d of %d connections accepted", len(conns), IdleConns)
		}
	}
	time.Sleep(500 * time.Millisecond) // let the last ACKs settle
	after := liveHeap()
	runtime.KeepAlive(conns)
	return float64(after-before) / IdleConns, nil
}

// liveHeap is the Go heap in use after two collections.
func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
