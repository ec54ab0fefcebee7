//go:build race

package synstack

// soakRace: the race detector is on, and every seed of the soak costs
// ten times as much; TestSoakSim runs fewer unless asked.
const soakRace = true
