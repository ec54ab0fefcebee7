//go:build race

package wgtest

// raceEnabled: the test binary runs under the race detector, which slows
// wireguard-go and the stacks tenfold.
const raceEnabled = true
