// Package inferred shows why .ci/checklocks turns the analyzer's inferred
// hints off: every field guarded through a pointer (+checklocks:sh.mu) is
// used with its lock held, as annotated, and still draws the hint "may
// require checklocks annotation for mu", which names the lock by its
// field name alone.
package inferred

import "sync"

type shard struct {
	mu sync.Mutex
}

type endpoint struct {
	sh *shard
	// +checklocks:sh.mu
	state int
}

// +checklocks:ep.sh.mu
func (ep *endpoint) advance() { ep.state++ }

func input(ep *endpoint) {
	ep.sh.mu.Lock()
	ep.advance()
	ep.state++
	ep.sh.mu.Unlock()
}
