package patterns

// (iii) Every shard locked in a loop: a lock taken in a loop is a lock
// the analyzer cannot name, so the loops themselves carry
// +checklocksignore, and each access under them ends in
// // +checklocksforce.

// lockAll takes every shard's lock, unannotated: the analyzer reports it.
func (h *host) lockAll() {
	for _, sh := range h.shards {
		sh.mu.Lock()
	}
} // reported: return with unexpected locks held (no position)

// unlockAll releases them, unannotated: reported too.
func (h *host) unlockAll() {
	for i := len(h.shards) - 1; i >= 0; i-- {
		h.shards[i].mu.Unlock() // reported: already unlocked
	}
}

// lockShards takes every shard's lock.
//
// +checklocksignore
func (h *host) lockShards() {
	for _, sh := range h.shards {
		sh.mu.Lock()
	}
}

// unlockShards releases them.
//
// +checklocksignore
func (h *host) unlockShards() {
	for i := len(h.shards) - 1; i >= 0; i-- {
		h.shards[i].mu.Unlock()
	}
}

// closeAll works on every shard under lockShards.
func (h *host) closeAll() {
	h.lockShards()
	defer h.unlockShards()
	for _, sh := range h.shards {
		clear(sh.conns) // +checklocksforce
		for _, ep := range sh.conns {
			ep.advance() // +checklocksforce
		}
	}
}

// closeAllUnforced does the same without the force.
func (h *host) closeAllUnforced() {
	h.lockShards()
	defer h.unlockShards()
	for _, sh := range h.shards {
		clear(sh.conns) // reported: must be locked
	}
}

// drain takes and releases each shard's lock in one iteration: that the
// analyzer follows without help.
func (h *host) drain() {
	for _, sh := range h.shards {
		sh.mu.Lock()
		clear(sh.conns)
		sh.mu.Unlock()
	}
}
