package patterns

import (
	"sync"
	"sync/atomic"
)

// (iv) Atomic fields: a typed atomic needs nothing; a plain field used
// through sync/atomic functions is annotated +checkatomic; a field with
// both +checklocks:mu and +checkatomic is written under mu (atomically)
// and read atomically without it.
type counters struct {
	mu    sync.Mutex
	polls atomic.Int64
	// +checkatomic
	orphans int64
	// +checklocks:mu
	// +checkatomic
	closed uint32
	plain  uint32
}

func (c *counters) good() bool {
	c.polls.Add(1)
	atomic.AddInt64(&c.orphans, 1)
	c.mu.Lock()
	atomic.StoreUint32(&c.closed, 1)
	c.mu.Unlock()
	return atomic.LoadUint32(&c.closed) == 1
}

func (c *counters) bad() {
	c.orphans++                      // reported: illegal use, non-atomic write
	atomic.StoreUint32(&c.closed, 1) // reported: atomic write without mu
	atomic.AddUint32(&c.plain, 1)    // reported: unexpected call to atomic function
}
