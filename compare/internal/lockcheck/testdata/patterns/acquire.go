package patterns

import "errors"

// (ii) Helpers that return with a lock held, or release one:
// +checklocksacquire and +checklocksrelease.

// lock takes the lock of ep's shard.
//
// +checklocksacquire:ep.sh.mu
func (ep *endpoint) lock() { ep.sh.mu.Lock() }

// unlock releases it.
//
// +checklocksrelease:ep.sh.mu
func (ep *endpoint) unlock() { ep.sh.mu.Unlock() }

// lockShard returns shard id's shard, locked; the annotation names the
// result.
//
// +checklocksacquire:sh.mu
func (h *host) lockShard(id uint32) (sh *shard) {
	sh = h.shards[id%uint32(len(h.shards))]
	sh.mu.Lock()
	return sh
}

// lookup returns with ctl held on every return, the error's too (as a
// withFD-style "lock, look up the descriptor" helper would).
//
// +checklocksacquire:h.ctl
func (h *host) lookup(port uint16) (int, error) {
	h.ctl.Lock()
	n, ok := h.listeners[port]
	if !ok {
		return 0, errors.New("no listener")
	}
	return n, nil
}

// lookupBad returns without ctl on its error path.
//
// +checklocksacquire:h.ctl
func (h *host) lookupBad(port uint16) (int, error) {
	if port == 0 {
		return 0, errors.New("port 0") // reported: not held
	}
	h.ctl.Lock()
	return h.listeners[port], nil
}

func useAcquire(h *host, ep *endpoint) int {
	ep.lock()
	ep.state++
	ep.unlock()

	sh := h.lockShard(7)
	delete(sh.conns, 7)
	sh.mu.Unlock()

	n, err := h.lookup(80)
	defer h.ctl.Unlock()
	if err != nil {
		return 0
	}
	return n + len(h.listeners)
}

// useAcquireLeak forgets to release what lock took.
func useAcquireLeak(ep *endpoint) {
	ep.lock()
	ep.state++
} // reported: return with unexpected locks held (no position)
