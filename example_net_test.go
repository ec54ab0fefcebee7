package synstack_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"syscall"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/link/pipe"
)

// Two stacks on an in-memory link: an HTTP server on one, a client on the
// other, through the net.Listener and net.Conn the stacks hand out.
func Example() {
	ctx := context.Background()
	a, b := pipe.New(1500)
	srv, err := synstack.New(synstack.Config{Link: a, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close() // ends every goroutine it started, and the server's below
	cli, err := synstack.New(synstack.Config{Link: b, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()

	ln, err := srv.Listen("tcp", "10.0.0.1:80") // net.Listener
	if err != nil {
		log.Fatal(err)
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello, %s", r.RemoteAddr)
	})
	go http.Serve(ln, handler)

	c, err := cli.DialContext(ctx, "tcp", "10.0.0.1:80") // net.Conn, a *synstack.TCPConn
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status, string(body) == "hello, "+c.LocalAddr().String())

	// Or let net/http dial through the stack.
	client := &http.Client{Transport: &http.Transport{DialContext: cli.DialContext}}
	resp, err = client.Get("http://10.0.0.1/")
	if err != nil {
		log.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	client.CloseIdleConnections()
	fmt.Println(resp.Status, len(body) > 0)
	// Output:
	// 200 OK true
	// 200 OK true
}

// newPair returns two stacks joined by a pipe, 10.0.0.1 and fd00::1 for
// the first, 10.0.0.2 and fd00::2 for the second.
func newPair() (srv, cli *synstack.Stack) { return newPairMTU(1500) }

// newPairMTU is newPair with a link of the given MTU.
func newPairMTU(mtu int) (srv, cli *synstack.Stack) {
	a, b := pipe.New(mtu)
	srv, err := synstack.New(synstack.Config{Link: a, Addrs: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.1/24"), netip.MustParsePrefix("fd00::1/64")}})
	if err != nil {
		log.Fatal(err)
	}
	cli, err = synstack.New(synstack.Config{Link: b, Addrs: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.2/24"), netip.MustParsePrefix("fd00::2/64")}})
	if err != nil {
		log.Fatal(err)
	}
	return srv, cli
}

// Dial connects; errors are package net's, wrapping the errno.
func ExampleStack_DialContext() {
	srv, cli := newPair()
	defer srv.Close()
	defer cli.Close()

	// Nobody listens: the peer answers with a RST.
	_, err := cli.DialContext(context.Background(), "tcp", "10.0.0.1:81")
	fmt.Println(err)
	fmt.Println(errors.Is(err, syscall.ECONNREFUSED))

	ln, _ := srv.Listen("tcp", "[fd00::1]:80")
	defer ln.Close()
	c, err := cli.DialContext(context.Background(), "tcp", "[fd00::1]:80")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println(c.RemoteAddr())
	// Output:
	// dial tcp 10.0.0.1:81: connect: connection refused
	// true
	// [fd00::1]:80
}

// Listen accepts connections; "tcp" on a wildcard address takes both IPv4
// and IPv6, as package net's dual-stack listeners do.
func ExampleStack_Listen() {
	srv, cli := newPair()
	defer srv.Close()
	defer cli.Close()

	ln, err := srv.Listen("tcp", ":7")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	fmt.Println(ln.Addr())
	go func() { // an echo server
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()

	for _, addr := range []string{"10.0.0.1:7", "[fd00::1]:7"} {
		c, err := cli.Dial("tcp", addr)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Fprintf(c, "hello over %s", addr)
		c.(*synstack.TCPConn).CloseWrite()
		b, _ := io.ReadAll(c)
		fmt.Println(string(b))
		c.Close()
	}
	// Output:
	// [::]:7
	// hello over 10.0.0.1:7
	// hello over [fd00::1]:7
}

// CloseWrite sends a FIN and keeps reading: TCP's half-close.
func ExampleTCPConn_CloseWrite() {
	srv, cli := newPair()
	defer srv.Close()
	defer cli.Close()

	ln, _ := srv.Listen("tcp", "10.0.0.1:9")
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		req, _ := io.ReadAll(c) // up to the client's FIN
		fmt.Fprintf(c, "got %d bytes", len(req))
	}()

	c, err := cli.Dial("tcp", "10.0.0.1:9")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	tc := c.(*synstack.TCPConn)
	tc.Write([]byte("the whole request"))
	tc.CloseWrite() // FIN: the server's ReadAll returns
	_, err = tc.Write([]byte("more"))
	fmt.Println(errors.Is(err, syscall.EPIPE))
	reply, _ := io.ReadAll(tc) // the reply, up to the server's FIN
	fmt.Println(string(reply))
	// Output:
	// true
	// got 17 bytes
}

// Port reuse: with ReusePort (SO_REUSEPORT), two listeners share one port
// and the stack spreads connections between them. Control reaches the
// socket layer for any other option before bind.
func ExampleListenConfig_Listen() {
	srv, cli := newPair()
	defer srv.Close()
	defer cli.Close()

	lc := synstack.ListenConfig{Stack: srv, ReusePort: true}
	ln1, err := lc.Listen(context.Background(), "tcp4", "10.0.0.1:80")
	if err != nil {
		log.Fatal(err)
	}
	defer ln1.Close()
	ln2, err := lc.Listen(context.Background(), "tcp4", "10.0.0.1:80")
	if err != nil {
		log.Fatal(err)
	}
	defer ln2.Close()

	// Without SO_REUSEPORT the port is taken.
	_, err = srv.Listen("tcp4", "10.0.0.1:80")
	fmt.Println(errors.Is(err, syscall.EADDRINUSE))

	// Control sets socket options before bind.
	lc = synstack.ListenConfig{Stack: srv, Control: func(network, address string, s *synstack.Sockets, fd int) error {
		return s.SetsockoptInt(fd, synstack.IPPROTO_TCP, synstack.TCP_MAXSEG, 1000)
	}}
	ln3, err := lc.Listen(context.Background(), "tcp4", "10.0.0.1:81")
	if err != nil {
		log.Fatal(err)
	}
	defer ln3.Close()

	accepted := make(chan net.Conn, 8)
	for _, ln := range []net.Listener{ln1, ln2} {
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				accepted <- c
			}
		}()
	}
	for range 8 {
		c, err := cli.Dial("tcp", "10.0.0.1:80")
		if err != nil {
			log.Fatal(err)
		}
		defer c.Close()
		(<-accepted).Close()
	}
	fmt.Println("8 connections over two listeners")
	// Output:
	// true
	// 8 connections over two listeners
}

// A UDP exchange: ListenPacket on one stack, Dial "udp" on the other; a
// datagram larger than the link's MTU travels in IP fragments.
func ExampleStack_ListenPacket() {
	srv, cli := newPair()
	defer srv.Close()
	defer cli.Close()

	pc, err := srv.ListenPacket("udp", "10.0.0.1:53")
	if err != nil {
		log.Fatal(err)
	}
	defer pc.Close()
	go func() { // an echo server
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()

	c, err := cli.Dial("udp", "10.0.0.1:53")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	question := bytes.Repeat([]byte("?"), 4000) // three fragments at MTU 1500
	c.Write(question)
	answer := make([]byte, 65536)
	n, err := c.Read(answer)
	fmt.Println(n, err, bytes.Equal(answer[:n], question))
	st := cli.Stats()
	fmt.Println(st.UdpOutDatagrams, st.UdpInDatagrams, st.IpFragCreates, st.IpReasmOKs)
	// Output:
	// 4000 <nil> true
	// 1 1 3 1
}
