package engine

import "syscall"

// The errnos the stack returns that not every OS has, one table in two
// files: here Linux's own (also Android's), in errno_other.go the nearest
// errno of the OS the program is built for, the one its own stack gives
// for the same event. Every other errno the stack returns exists under its
// Linux name everywhere the library builds, with that OS's value.
const (
	// errnoHostIsolated is ICMP destination unreachable, code 8 (host
	// isolated): Linux's icmp_err_convert gives ENONET.
	errnoHostIsolated = syscall.ENONET
)
