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
const scriptUsage = `usage: synstack script [--skip-unknown] [--strict] [-v] [--ip_version=V]
       [--local_ip=A] [--remote_ip=A] [--gateway_ip=A] [--netmask_ip=M] [--mtu=N]
       [-D NAME=VALUE]... FILE...

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
	var pdFlags []string
	for _, name := range []string{"ip_version", "local_ip", "remote_ip", "gateway_ip", "netmask_ip", "mtu"} {
		fs.Func(name, "packetdrill's --"+name+" (it wins over the script's own header option, as in packetdrill)", func(v string) error {
			pdFlags = append(pdFlags, "--"+name+"="+v)
			return nil
		})
	}
	defines := map[string]string{}
	define := func(v string) error {
		name, value, ok := strings.Cut(v, "=")
		if !ok || name == "" {
			return fmt.Errorf("expected NAME=VALUE, got %q", v)
		}
		defines[name] = value
		return nil
	}
	fs.Func("D", "define NAME=VALUE: the word NAME in a script reads as VALUE (packetdrill's -D)", define)
	fs.Func("define", "the same as -D", define)
	if err := fs.Parse(args); err != nil {
		return false, err
	}
	files := fs.Args()
	if len(files) == 0 {
		return false, fmt.Errorf("script: no files given: synstack script FILE.pkt... (see synstack script --help)")
	}
	opts := script.Options{SkipUnknown: *skip, Strict: *strict, Flags: pdFlags, Defines: defines}
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
