package wgtest

import (
	"flag"
	"strings"
	"testing"
)

// fetchSize is -wgtest.size.
var fetchSize = flag.Int64("wgtest.size", 256<<20,
	"bytes the kernel's curl fetches through the tunnel (default 256 MiB; 16 MiB with -short or -race unless given)")

// FetchSize is the size EndToEnd's curl fetches: -wgtest.size when given,
// else 256 MiB, or 16 MiB in a -short run or under the race detector (the
// CI form: gVisor under -race moves about 3 MiB/s).
func FetchSize() int64 {
	if !flagSet("wgtest.size") && (testing.Short() || raceEnabled) {
		return 16 << 20
	}
	return *fetchSize
}

// ChildArgs are the flags InNamespace passes on to the copy of the test
// binary in the namespace: -test.short, and every flag named wgtest.* or
// with one of prefixes.
func ChildArgs(prefixes ...string) []string {
	var args []string
	if testing.Short() {
		args = append(args, "-test.short")
	}
	prefixes = append(prefixes, "wgtest.")
	flag.Visit(func(f *flag.Flag) {
		for _, p := range prefixes {
			if strings.HasPrefix(f.Name, p) {
				args = append(args, "-"+f.Name+"="+f.Value.String())
				return
			}
		}
	})
	return args
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(name string) (set bool) {
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
