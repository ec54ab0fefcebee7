// Command synstack runs the synstack TCP/IP stack's tools.
//
//	synstack demo [SCENARIO]   a TCP scenario between two stacks, as a ladder (--list names them)
//	synstack script FILE...    run packet scripts (packetdrill syntax)
//	synstack ss                the ss -tni table of a running synstack (its admin endpoint)
//	(the benchmark beside gVisor and the kernel is cmd/synstack-bench: this command links no gVisor)
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
  serve --tun NAME --addr CIDR [--listen :PORT] (--http DIR | --echo | --discard) [--host-addr CIDR]
                     serve over a TUN device for the kernel's clients (root); --no-offload
  get --tun NAME --addr CIDR [--host-addr CIDR] URL [-o FILE]
                     download URL over a TUN device from a server the kernel reaches (root)
  ss [-a | -l] [--admin ADDR]
                     the ss -tni table of a running synstack, from its admin endpoint
  forward --tun NAME --addr CIDR (--to HOST:PORT | --direct | --socks5 HOST:PORT) [--deferred]
                     terminate every TCP connection routed into a TUN device and relay it
                     upstream (tun2socks); --route CIDR, --host-addr CIDR, --idle-timeout D (root)
  impair --a NAME --b NAME [--delay D] [--jitter D] [--loss P] [--reorder P] [--duplicate P]
         [--corrupt P] [--rate R] [--queue N] [--seed N]
                     carry packets between two TUN devices through link/sim's faults (netem
                     for kernels without it); --loss-ab, --delay-ba... per direction (root)

synstack, gVisor netstack and the kernel measured side by side: go run ./cmd/synstack-bench
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
	case "serve":
		err = runServe(os.Stderr, os.Args[2:])
	case "get":
		err = runGet(os.Stdout, os.Stderr, os.Args[2:])
	case "ss":
		err = runSS(os.Stdout, os.Stderr, os.Args[2:])
	case "forward":
		err = runForward(os.Stderr, os.Args[2:])
	case "impair":
		err = runImpair(os.Stderr, os.Args[2:])
	case "bench":
		err = runBench(os.Stdout, os.Stderr, os.Args[2:])
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
