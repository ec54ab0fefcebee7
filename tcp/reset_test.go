package tcp

import (
	"errors"
	"io"
	"syscall"
	"testing"
)

// TestDataBeforeResetStaysReadable: data that arrived before a RST is read
// first, then ECONNRESET, then EOF, as in Linux (tcp_reset keeps the
// receive queue); the buffer goes back when the application closes.
func TestDataBeforeResetStaysReadable(t *testing.T) {
	mem := NewMemory(MemoryLimits{Low: 1 << 30, Pressure: 1 << 30, High: 1 << 30})
	n := newNet(t, func(c *Config) { c.Memory = mem })
	n.handshake()
	if _, err := n.a.c.Write(n.now, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	n.settle()
	n.a.c.Abort(n.now) // RST
	n.settle()
	b := n.b.c
	if b.State() != Closed {
		t.Fatalf("B in %v after the RST", b.State())
	}
	buf := make([]byte, 16)
	k, err := b.Read(n.now, buf)
	if err != nil || string(buf[:k]) != "hello" {
		t.Fatalf("first read: %q, %v; want the data", buf[:k], err)
	}
	if _, err := b.Read(n.now, buf); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("second read: %v, want ECONNRESET", err)
	}
	if _, err := b.Read(n.now, buf); err != io.EOF {
		t.Fatalf("third read: %v, want EOF", err)
	}
	// Unread data after a reset goes back when the application closes.
	n2 := newNet(t, func(c *Config) { c.Memory = mem })
	n2.handshake()
	n2.a.c.Write(n2.now, []byte("unread"))
	n2.settle()
	n2.a.c.Abort(n2.now)
	n2.settle()
	if n2.b.c.Readable() != 6 {
		t.Fatalf("%d octets readable after the RST, want 6", n2.b.c.Readable())
	}
	n2.b.c.Close(n2.now)
	n.a.c.Close(n.now)
	n.b.c.Close(n.now)
	if mem.Used() != 0 {
		t.Fatalf("after close the budget holds %d", mem.Used())
	}
}
