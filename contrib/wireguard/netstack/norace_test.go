//go:build !race

package netstack_test

// raceEnabled: see race_test.go.
const raceEnabled = false
