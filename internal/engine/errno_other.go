//go:build !linux

package engine

import "syscall"

// The errnos of errno_linux.go, where the OS lacks Linux's: the one its
// own stack gives for the same event.
const (
	// errnoHostIsolated is ICMP destination unreachable, code 8 (host
	// isolated): the BSDs (macOS, iOS, FreeBSD) give EHOSTUNREACH, as for
	// every host unreachable code; Linux's ENONET does not exist there.
	errnoHostIsolated = syscall.EHOSTUNREACH
)
