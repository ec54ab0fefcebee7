//go:build unix

package main

import (
	"os"
	"syscall"
)

// statsSignal makes a running serve, forward or impair print its counters.
var statsSignal os.Signal = syscall.SIGUSR1
