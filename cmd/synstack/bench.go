package main

import (
	"errors"
	"io"
)

// errBenchMoved is what `synstack bench` says: the comparison benchmark
// links gVisor netstack, so it is a command of its own, and this one
// builds without gVisor.
var errBenchMoved = errors.New("bench is now its own command in the compare/ module, so that synstack does not link gVisor: cd compare && go run ./cmd/synstack-bench, same flags")

// runBench points to cmd/synstack-bench and fails.
func runBench(stdout, stderr io.Writer, args []string) error { return errBenchMoved }
