//go:build !linux

package forward

import "net"

// readWaiter would wait for a datagram without a buffer; outside Linux
// there is none, and the copy's Read waits, with its buffer.
type readWaiter struct{}

func newReadWaiter(net.Conn) *readWaiter { return nil }

func (w *readWaiter) wait() error { return nil }
