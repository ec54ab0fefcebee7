package patterns

// Lock order is not checked: the analyzer tracks which locks are held,
// not in which order they were taken. A function that must not be called
// with a lock held says so with +checklocksexclude, which catches taking
// that same lock twice, no more.

// escalate takes ctl while holding a shard's lock, against the order
// ctl before shards: no report.
func (h *host) escalate(sh *shard) {
	sh.mu.Lock()
	h.ctl.Lock()
	h.listeners[80]++
	h.ctl.Unlock()
	sh.mu.Unlock()
}

// listen takes ctl itself.
//
// +checklocksexclude:h.ctl
func (h *host) listen(port uint16) {
	h.ctl.Lock()
	h.listeners[port]++
	h.ctl.Unlock()
}

func (h *host) listenTwice() {
	h.ctl.Lock()
	h.listen(80) // reported: must not hold h.ctl
	h.ctl.Unlock()
}
