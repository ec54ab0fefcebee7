package engine

import "github.com/synstack/synstack/tcp"

// UpdateTCPDefaults changes the tcp configuration that connections made
// from now on start with (see synstack.Stack.UpdateTCP). f gets the
// current defaults; the fields the host owns (Output, OnTransition,
// Buffers, Memory, Scratch, Counters) keep their values whatever f sets.
// The shards' shared configurations, built from the old defaults, are
// dropped: connections that use them keep them, new ones get new ones.
func (s *Host) UpdateTCPDefaults(f func(c *tcp.Config)) {
	s.lock()
	defer s.unlock()
	d := s.tcpDefaults
	f(&d)
	d.Output, d.OnTransition = s.tcpDefaults.Output, s.tcpDefaults.OnTransition
	d.Buffers, d.Memory = s.tcpDefaults.Buffers, s.tcpDefaults.Memory
	d.Scratch, d.Counters = s.tcpDefaults.Scratch, s.tcpDefaults.Counters
	s.tcpDefaults = d
	for _, sh := range s.shards {
		clear(sh.connCfgs) // +checklocksignore: s.lock holds every shard's lock
	}
}
