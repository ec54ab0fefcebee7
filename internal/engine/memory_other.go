//go:build !linux

package engine

// physicalMemory is what the budget is sized from where the machine's
// memory is not asked for: an assumed 4 GiB (Config.TCPMem sets it).
func physicalMemory() int64 { return defaultPhysicalMemory }
