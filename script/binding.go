package script

import (
	synstack "github.com/synstack/synstack"
	"github.com/synstack/synstack/nstat"
	"github.com/synstack/synstack/tcp"
)

// stackAdapter binds the runner to the root package's stack.
type stackAdapter struct {
	*synstack.Sockets
	st *synstack.Stack
}

// newStack starts a stack on the runner's link and clock.
func newStack(cfg stackConfig) (stackHandle, error) {
	mode := cfg.tfo.mode
	if cfg.tfo.set && mode == 0 {
		mode = synstack.FastOpenOff
	}
	var keys []synstack.FastOpenKey
	for _, k := range cfg.tfo.keys {
		keys = append(keys, synstack.FastOpenKey(k))
	}
	st, err := synstack.New(synstack.Config{
		Link:         cfg.link,
		Addrs:        cfg.addrs,
		Clock:        cfg.clock,
		Seed:         cfg.seed,
		TCP:          cfg.tcp,
		FastOpen:     mode,
		FastOpenKeys: keys,
	})
	if err != nil {
		return nil, err
	}
	return &stackAdapter{Sockets: st.Sockets(), st: st}, nil
}

// Poll polls once, without waiting.
func (a *stackAdapter) Poll(fds []pollFd) (int, error) {
	p := make([]synstack.PollFd, len(fds))
	for i, f := range fds {
		p[i] = synstack.PollFd{Fd: f.fd, Events: f.events}
	}
	n, err := a.Sockets.Poll(p, 0)
	for i := range fds {
		fds[i].revents = p[i].Revents
	}
	return n, err
}

func (a *stackAdapter) shutdown() error { return a.st.Close() }

func (a *stackAdapter) setFastOpen(mode int) {
	if mode == 0 {
		mode = synstack.FastOpenOff
	}
	a.st.SetFastOpen(mode)
}
func (a *stackAdapter) stats() nstat.Counters { return a.st.Stats() }

func (a *stackAdapter) updateTCP(f func(c *tcp.Config)) { a.st.UpdateTCP(f) }

func (a *stackAdapter) flushFastOpenCache() { a.st.FlushFastOpenCache() }
