//go:build !race

package synstack_test

const raceEnabled = false
