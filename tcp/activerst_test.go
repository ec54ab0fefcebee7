package tcp_test

import (
	"testing"
	"time"

	"github.com/synstack/synstack/tcp"
)

// A reset this end sends on a connection that uses timestamps carries
// them, the clock read when it leaves and the peer's last value echoed, as
// any other segment of the connection (Linux's tcp_send_active_reset); a
// peer that checks PAWS would otherwise have to take a bare RST on trust.
func TestActiveResetCarriesTimestamps(t *testing.T) {
	c := established(t)
	c.In("P. 1:101(100) ack 1 win 512 <nop,nop,TS val 102 ecr 1>")
	c.Out(". 1:1(0) ack 101 <nop,nop,TS val 1 ecr 102>")
	c.Advance(time.Second)
	c.Close() // the 100 octets were never read
	c.Out("R. 1:1(0) ack 101 <nop,nop,TS val 1001 ecr 102>")
	c.State(tcp.Closed)
	c.NoOut()
}

// Abort (SO_LINGER with a zero timeout) sends the same reset.
func TestAbortResetCarriesTimestamps(t *testing.T) {
	c := established(t)
	c.Advance(50 * time.Millisecond)
	c.Conn().Abort(c.Now())
	c.Out("R. 1:1(0) ack 1 <nop,nop,TS val 51 ecr 101>")
	c.NoOut()
}
