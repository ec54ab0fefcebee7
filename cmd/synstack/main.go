// Command synstack runs the synstack TCP/IP stack's tools.
//
//	synstack demo [SCENARIO]   a TCP scenario between two stacks, as a ladder (--list names them)
//	synstack script FILE...    run packet scripts (packetdrill syntax)
package main

import (
	"fmt"
	"os"
)

const usage = `usage: synstack <command> [arguments]

commands:
  demo [SCENARIO]    run a TCP scenario between two stacks on virtual time and print every
                     packet and state transition as a ladder (default: a connection's whole
                     life); --list names the scenarios; --svg FILE, --pcap FILE, --json
  script FILE...     run packet scripts (packetdrill syntax); ends with "N passed, M failed"
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "demo":
		err = runDemo(os.Stdout, os.Args[2:])
	case "script":
		var failed bool
		failed, err = runScripts(os.Stdout, os.Args[2:])
		if err == nil && failed {
			os.Exit(1)
		}
	case "help", "-h", "--help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "synstack: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "synstack:", err)
		os.Exit(1)
	}
}
