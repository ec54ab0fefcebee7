// Package patterns tries, one file per question, how the checklocks
// analyzer expresses what synstack's lock regime needs. Each file has the
// form that works and a misuse (or a limit) whose diagnostic the test
// pins; an unmarked function draws no diagnostic.
package patterns

import "sync"

// host is the control plane, guarded by ctl.
type host struct {
	ctl sync.Mutex
	// +checklocks:ctl
	listeners map[uint16]int
	shards    []*shard
}

// shard owns its connections, guarded by its own mu.
type shard struct {
	mu sync.Mutex
	// +checklocks:mu
	conns map[uint32]*endpoint
}

// endpoint is a connection, owned by the shard sh points to.
type endpoint struct {
	sh *shard
	// +checklocks:sh.mu
	state int
}
