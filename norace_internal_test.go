//go:build !race

package synstack

const soakRace = false
