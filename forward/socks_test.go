package forward

import (
	"errors"
	"io"
	"net"
	"strconv"
	"syscall"
	"testing"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/internal/kernelnet"
)

// socksServer is a minimal SOCKS5 server (no authentication, CONNECT to an
// IPv4 address) that dials target, whatever the address asked for, or
// answers refuse when target is empty.
func socksServer(t *testing.T, target string, asked chan<- string) string {
	t.Helper()
	return kernelnet.Serve(t, func(c *net.TCPConn) {
		b := make([]byte, 262)
		if _, err := io.ReadFull(c, b[:2]); err != nil {
			return
		}
		io.ReadFull(c, b[:b[1]])
		c.Write([]byte{5, 0})
		if _, err := io.ReadFull(c, b[:10]); err != nil || b[3] != 1 {
			return
		}
		asked <- net.IP(b[4:8]).String() + ":" + strconv.Itoa(int(b[8])<<8|int(b[9]))
		if target == "" {
			c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0}) // connection refused
			return
		}
		up, err := net.Dial("tcp", target)
		if err != nil {
			c.Write([]byte{5, 1, 0, 1, 0, 0, 0, 0, 0, 0})
			return
		}
		defer up.Close()
		c.Write([]byte{5, 0, 0, 1, 127, 0, 0, 1, 0, 0})
		go func() { io.Copy(up, c); up.(*net.TCPConn).CloseWrite() }()
		io.Copy(c, up)
		c.CloseWrite()
	})
}

// Through a SOCKS5 proxy: the proxy is asked for the original
// destination, data and half-close cross it; a refusing proxy refuses the
// client (deferred).
func TestForwardSOCKS5(t *testing.T) {
	asked := make(chan string, 2)
	up := kernelnet.Serve(t, kernelnet.Echo)
	fw := &Forwarder{Deferred: true, Dial: SOCKS5(socksServer(t, up, asked), nil, nil)}
	client, _ := setup(t, fw, synstack.ForwardOptions{})
	c, err := client.Dial("tcp", "198.18.0.9:8080")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if a := <-asked; a != "198.18.0.9:8080" {
		t.Errorf("the proxy was asked for %s", a)
	}
	c.Write([]byte("through socks"))
	c.(*synstack.TCPConn).CloseWrite()
	if got, err := io.ReadAll(c); err != nil || string(got) != "through socks" {
		t.Fatalf("read %q, %v", got, err)
	}

	fw2 := &Forwarder{Deferred: true, Dial: SOCKS5(socksServer(t, "", asked), nil, nil)}
	client2, _ := setup(t, fw2, synstack.ForwardOptions{})
	if _, err := client2.Dial("tcp", "198.18.0.10:80"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial through a refusing proxy: %v, want ECONNREFUSED", err)
	}
	<-asked
}
