package engine

import "syscall"

// physicalMemory is the machine's memory in bytes (sysinfo's totalram).
func physicalMemory() int64 {
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil || si.Totalram == 0 {
		return defaultPhysicalMemory
	}
	return int64(si.Totalram) * int64(si.Unit)
}
