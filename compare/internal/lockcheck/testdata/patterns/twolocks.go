package patterns

// (v) A function that needs two locks has two annotations.

// attach needs ctl and sh's lock.
//
// +checklocks:h.ctl
// +checklocks:sh.mu
func (h *host) attach(sh *shard, port uint16, id uint32) {
	h.listeners[port]++
	delete(sh.conns, id)
}

func (h *host) attachBoth(sh *shard) {
	h.ctl.Lock()
	sh.mu.Lock()
	h.attach(sh, 80, 1)
	sh.mu.Unlock()
	h.ctl.Unlock()
}

func (h *host) attachCtlOnly(sh *shard) {
	h.ctl.Lock()
	h.attach(sh, 80, 1) // reported: must hold sh.mu
	h.ctl.Unlock()
}
