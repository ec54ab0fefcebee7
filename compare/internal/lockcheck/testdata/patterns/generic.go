package patterns

import "sync"

// (vi) Generics: annotations on generic functions and on the fields of
// generic types are checked like any other.

type box[T any] struct {
	mu sync.Mutex
	// +checklocks:mu
	v T
}

func (b *box[T]) get() T {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.v
}

func (b *box[T]) getNoLock() T {
	return b.v // reported: must be locked
}

// listenerCount needs ctl.
//
// +checklocks:h.ctl
func listenerCount[T any](h *host, _ T) int { return len(h.listeners) }

func useGeneric(h *host) int {
	h.ctl.Lock()
	defer h.ctl.Unlock()
	return listenerCount(h, "x")
}

func useGenericNoLock(h *host) int {
	return listenerCount(h, 1) // reported: must hold h.ctl
}
