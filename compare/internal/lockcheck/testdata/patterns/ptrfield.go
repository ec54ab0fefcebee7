package patterns

// (i) A mutex in a struct reached through a pointer field: the field is
// annotated +checklocks:sh.mu, the function +checklocks:ep.sh.mu.

// advance needs the lock of ep's shard.
//
// +checklocks:ep.sh.mu
func (ep *endpoint) advance() { ep.state++ }

// input takes the lock through the path the annotation names.
func input(ep *endpoint) {
	ep.sh.mu.Lock()
	defer ep.sh.mu.Unlock()
	ep.advance()
	ep.state++
}

// inputNoLock forgets the lock.
func inputNoLock(ep *endpoint) {
	ep.advance() // reported: must hold
}

// inputOtherPath holds the right lock under another name: the analyzer
// knows locks by path and does not know that ep.sh == sh.
func inputOtherPath(sh *shard, ep *endpoint) {
	if ep.sh != sh {
		return
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ep.advance() // reported: must hold (a limit: same lock, other path)
}
