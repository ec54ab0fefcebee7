package patterns

import "errors"

// (vi) Closures: one called where it is written is checked with the
// caller's locks; one passed to a helper that locks is checked with no
// lock held.

// withListeners calls f under ctl, withFD-style.
func withListeners[T any](h *host, f func() (T, error)) (T, error) {
	h.ctl.Lock()
	defer h.ctl.Unlock()
	if h.listeners == nil {
		var zero T
		return zero, errors.New("closed")
	}
	return f()
}

func inlineClosure(sh *shard) {
	sh.mu.Lock()
	func() { clear(sh.conns) }()
	sh.mu.Unlock()
}

func closureAfterUnlock(sh *shard) {
	sh.mu.Lock()
	f := func() { clear(sh.conns) } // reported: must be locked
	sh.mu.Unlock()
	f()
}

// storedClosure is right, but a closure held in a variable and called
// under the lock draws a report without a position.
func storedClosure(sh *shard) {
	sh.mu.Lock()
	f := func() { clear(sh.conns) }
	f()
	sh.mu.Unlock()
} // reported: return with unexpected locks held (no position)

// passedClosure is right, but the closure is checked as if no lock were
// held.
func passedClosure(h *host) (int, error) {
	return withListeners(h, func() (int, error) {
		return len(h.listeners), nil // reported: must be locked
	})
}

// passedClosureIgnored: +checklocksignore on the enclosing function does
// not reach the closure.
//
// +checklocksignore
func passedClosureIgnored(h *host) (int, error) {
	return withListeners(h, func() (int, error) {
		return len(h.listeners), nil // reported: must be locked
	})
}

// passedClosureLineIgnored: an ignore at the end of the closure's line
// does.
func passedClosureLineIgnored(h *host) (int, error) {
	return withListeners(h, func() (int, error) {
		return len(h.listeners), nil // +checklocksignore
	})
}

// passedClosureForced: a force there counts the lock as taken and never
// released, so the closure returns holding it.
func passedClosureForced(h *host) (int, error) {
	return withListeners(h, func() (int, error) {
		return len(h.listeners), nil // +checklocksforce
	}) // (reported on the line above: return with unexpected locks held)
}
