package synstack

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// A connection between calls holds no deadline channel unless a deadline
// is pending: Read and Write borrow one from the stack for their length.
// A deadline set while a Read waits on a borrowed channel still cuts it
// off, and a channel closed by a deadline is never lent again.
func TestDeadlineChannelsAreBorrowed(t *testing.T) {
	a, b := pipeStacks(t)
	ln, err := b.Listen("tcp", net.JoinHostPort(addrB.String(), "80"))
	must(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	nc, err := a.Dial("tcp", net.JoinHostPort(addrB.String(), "80"))
	must(t, err)
	cli := nc.(*TCPConn)
	defer cli.Close()
	srv := (<-accepted).(*TCPConn)
	defer srv.Close()
	// The test sets no deadline where it checks that none is held: if
	// data stops flowing, this closes the connections instead of letting
	// a read wait for ever.
	watchdog := time.AfterFunc(time.Minute, func() { cli.Close(); srv.Close() })
	defer watchdog.Stop()

	held := func(c *TCPConn) (rd, wd bool) {
		return c.c.Pending(&c.rd), c.c.Pending(&c.wd)
	}
	// A blocked Read, then one exchange.
	got := make(chan error, 1)
	go func() {
		_, err := io.ReadFull(srv, make([]byte, 1))
		got <- err
	}()
	time.Sleep(10 * time.Millisecond) // let the Read block (the test holds either way)
	_, err = cli.Write([]byte{1})
	must(t, err)
	must(t, <-got)
	for _, c := range []*TCPConn{cli, srv} {
		if rd, wd := held(c); rd || wd {
			t.Errorf("%v after its calls: read deadline channel held %v, write %v; want neither", c.LocalAddr(), rd, wd)
		}
	}

	// A deadline set while a Read waits cuts it off.
	go func() {
		_, err := srv.Read(make([]byte, 1))
		got <- err
	}()
	time.Sleep(10 * time.Millisecond)
	must(t, srv.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
	if err := <-got; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read with a deadline set while it waited: %v, want a deadline error", err)
	}
	if rd, _ := held(srv); !rd {
		t.Error("the passed deadline's channel was given back: a later Read would wait")
	}
	if _, err := srv.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after the deadline passed: %v, want a deadline error", err)
	}
	// Clearing the deadline lets reads wait again, and the exchange goes on.
	must(t, srv.SetReadDeadline(time.Time{}))
	_, err = cli.Write([]byte{2})
	must(t, err)
	b1 := make([]byte, 1)
	_, err = io.ReadFull(srv, b1)
	must(t, err)
	if b1[0] != 2 {
		t.Fatalf("read %d, want 2", b1[0])
	}
	if rd, _ := held(srv); rd {
		t.Error("read deadline channel held after the deadline was cleared and a Read returned")
	}
}
