// Package kernelnet gives tests and benchmarks servers on the kernel's
// loopback: the upstream a forwarder dials, a SOCKS5 proxy's target. It is
// for tests only; nothing in the library imports it.
package kernelnet

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
)

// Serve listens on 127.0.0.1 (a port the kernel picks) and runs handle
// for every connection, in a goroutine of its own, closing the connection
// when handle returns. Cleanup closes the listener and waits for every
// handler. It returns the listener's address.
func Serve(tb testing.TB, handle func(c *net.TCPConn)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ServeListener(tb, ln, handle)
	return ln.Addr().String()
}

// ServeListener is Serve on a listener the caller made (one opened in a
// network namespace, say): it runs handle for every connection ln
// accepts until the test ends, then closes ln and waits for every handler.
func ServeListener(tb testing.TB, ln net.Listener, handle func(c *net.TCPConn)) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c.(*net.TCPConn))
			}()
		}
	}()
	tb.Cleanup(func() { ln.Close(); wg.Wait() })
}

// Echo copies what it reads back, then half-closes when the client does.
func Echo(c *net.TCPConn) {
	io.Copy(c, c)
	c.CloseWrite()
}

// ServeUDP listens on 127.0.0.1 (a port the kernel picks) for UDP and
// answers each datagram with answer's reply to it, to its sender (none
// when answer returns nil). Cleanup closes the socket and waits for the
// server's goroutine. It returns the socket's address.
func ServeUDP(tb testing.TB, answer func(q []byte) []byte) string {
	tb.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	ServePacket(tb, pc, answer)
	return pc.LocalAddr().String()
}

// ServePacket is ServeUDP on a socket the caller made (one opened in a
// network namespace, say).
func ServePacket(tb testing.TB, pc *net.UDPConn, answer func(q []byte) []byte) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				continue // an ICMP error from an earlier sender
			}
			if a := answer(buf[:n]); a != nil {
				pc.WriteToUDPAddrPort(a, from)
			}
		}
	}()
	tb.Cleanup(func() { pc.Close(); <-done })
}

// EchoUDP answers a datagram with itself.
func EchoUDP(q []byte) []byte { return q }
