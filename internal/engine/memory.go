package engine

import (
	"runtime/debug"

	"github.com/synstack/synstack/tcp"
)

// defaultPhysicalMemory is the memory assumed when the system does not say.
const defaultPhysicalMemory = 4 << 30

// memoryLimits fills the zero marks of a stack's budget as Linux sizes
// tcp_mem at boot from the memory it has (tcp_init_mem: Pressure is a
// sixteenth of it, Low three quarters of that, High twice Low), from the
// machine's memory, or the Go runtime's memory limit when that is lower.
func memoryLimits(l tcp.MemoryLimits) tcp.MemoryLimits {
	if l.Low > 0 && l.Pressure > 0 && l.High > 0 {
		return l
	}
	total := physicalMemory()
	if lim := debug.SetMemoryLimit(-1); lim > 0 && lim < total {
		total = lim
	}
	pressure := total / 16
	if l.Pressure <= 0 {
		l.Pressure = pressure
		if l.High > 0 {
			l.Pressure = min(pressure, l.High)
		}
	}
	if l.Low <= 0 {
		l.Low = l.Pressure / 4 * 3
	}
	if l.High <= 0 {
		l.High = max(l.Pressure, pressure/4*3*2)
	}
	return l
}
