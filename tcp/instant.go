package tcp

import "time"

// instant is a point in time on a connection's clock: nanoseconds since
// the base its Scratch holds (shared by the connections that share the
// scratch, set by the first call that brings the time, an hour before it
// so that no instant a connection sees is zero).
// Zero means "not set", as the zero time.Time did. It takes 8 bytes where
// a time.Time takes 24, and a connection holds a few dozen of them (its
// timers, RACK's and the rate sampler's send times, BBR's stamps, each
// transmit record's): what makes an idle connection small. Differences
// come from time.Time.Sub, so the monotonic clock is used when there is
// one.
type instant int64

// IsZero reports whether t is unset.
func (t instant) IsZero() bool { return t == 0 }

// Before reports whether t is before u.
func (t instant) Before(u instant) bool { return t < u }

// After reports whether t is after u.
func (t instant) After(u instant) bool { return t > u }

// Equal reports whether t and u are the same instant.
func (t instant) Equal(u instant) bool { return t == u }

// Add returns t+d.
func (t instant) Add(d time.Duration) instant { return t + instant(d) }

// Sub returns t-u.
func (t instant) Sub(u instant) time.Duration { return time.Duration(t - u) }

// baseMargin is how far before the first time it sees a connection puts
// its base.
const baseMargin = time.Hour

// at converts a time the caller brings to the connection's clock.
func (c *Conn) at(t time.Time) instant {
	if c.sc.base.IsZero() {
		c.sc.base = t.Add(-baseMargin)
	}
	return instant(t.Sub(c.sc.base))
}

// timeOf converts an instant back; the zero instant is the zero time.
func (c *Conn) timeOf(i instant) time.Time {
	if i == 0 {
		return time.Time{}
	}
	return c.sc.base.Add(time.Duration(i))
}
