//go:build race

package netstack_test

// raceEnabled: the race detector makes sync.Pool drop buffers at random,
// so allocation counts are only meaningful without it.
const raceEnabled = true
