// Package bad misuses the lock regime of package good: the analyzer must
// reject it, across the package boundary.
package bad

import "github.com/synstack/synstack/compare/internal/lockcheck/testdata/good"

// Connect forgets the shard's lock: it calls AddConn, which needs it,
// and deletes from the connections it guards.
func Connect(h *good.Host, id uint32) {
	sh := h.Shards[0]
	sh.AddConn(id, good.NewEndpoint(sh))
	delete(sh.Conns, id)
}
