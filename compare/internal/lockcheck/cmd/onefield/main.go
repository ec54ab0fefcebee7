// Command onefield checks, in the package directories it is given, that no
// struct with checklocks annotations declares two fields on one line
// (lockcheck.MultiNameFields says why). .ci/checklocks runs it before the
// analyzer; it exits 1 when it finds one.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/synstack/synstack/compare/internal/lockcheck"
)

func main() {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "onefield:", err)
		os.Exit(2)
	}
	status := 0
	for _, dir := range os.Args[1:] {
		if rel, err := filepath.Rel(wd, dir); err == nil {
			dir = rel // positions as go vet prints them
		}
		found, err := lockcheck.MultiNameFields(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "onefield:", err)
			os.Exit(2)
		}
		for _, line := range found {
			fmt.Println(line)
			status = 1
		}
	}
	os.Exit(status)
}
