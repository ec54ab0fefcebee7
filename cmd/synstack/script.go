package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/synstack/synstack/script"
)

// runScripts runs each packet script and prints one line per file, then
// "N passed, M failed". It reports whether any failed.
const scriptUsage = `usage: synstack script [--skip-unknown] [--strict] [-v] FILE...

Runs each packet script (packetdrill syntax) against a synstack on a virtual
clock and prints one line per file ("ok" or "FAIL" with the line that
failed), then "N passed, M failed". Exits 1 if any failed.

flags:
`

func runScripts(w io.Writer, args []string) (bool, error) {
	fs := flag.NewFlagSet("script", flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = usageFunc(w, fs, scriptUsage)
	skip := fs.Bool("skip-unknown", false, "skip shell and python lines the runner has no equivalent for, with a warning")
	strict := fs.Bool("strict", false, "fail on any packet no outbound line expects, even after the last one (packetdrill ignores those)")
	verbose := fs.Bool("v", false, "print every event and packet as the scripts run")
	if err := fs.Parse(args); err != nil {
		return false, err
	}
	files := fs.Args()
	if len(files) == 0 {
		return false, fmt.Errorf("script: no files given: synstack script FILE.pkt... (see synstack script --help)")
	}
	opts := script.Options{SkipUnknown: *skip, Strict: *strict}
	if *verbose {
		opts.Verbose = w
	}
	passed, failed := 0, 0
	for _, f := range files {
		r := script.RunFile(f, opts)
		for _, warn := range r.Warnings {
			fmt.Fprintf(w, "warning: %s\n", warn)
		}
		if r.Passed {
			passed++
			fmt.Fprintf(w, "ok    %s\n", f)
			continue
		}
		failed++
		msg := "failed"
		if r.Err != nil {
			msg = strings.ReplaceAll(r.Err.Error(), "\n", "\n      ")
		}
		fmt.Fprintf(w, "FAIL  %s\n      %s\n", f, msg)
	}
	fmt.Fprintf(w, "%d passed, %d failed\n", passed, failed)
	return failed > 0, nil
}
