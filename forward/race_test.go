//go:build race

package forward

// The race detector makes each flow many times slower: a tenth of them.
func init() { udpMany = 10_000; raceEnabled = true }
