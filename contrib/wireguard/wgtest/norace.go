//go:build !race

package wgtest

// raceEnabled: see race.go.
const raceEnabled = false
