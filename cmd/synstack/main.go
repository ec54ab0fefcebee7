// Command synstack runs the synstack TCP/IP stack's tools.
//
//	synstack demo [SCENARIO]   a TCP scenario between two stacks on virtual time, as a ladder
//	                           (--list names them; --svg, --pcap, --json)
//	synstack play              a playground in the browser: two stacks driven by hand, each
//	                           packet delivered or dropped, the virtual clock stepped
//	synstack script FILE...    run packet scripts (packetdrill syntax)
//	synstack serve             serve HTTP, echo or discard over a TUN device (root)
//	synstack get URL           download a URL over a TUN device (root)
//	synstack forward           terminate the TCP connections and UDP flows routed into a
//	                           TUN device and relay each upstream, tun2socks-style (root)
//	synstack impair            carry packets between two TUN devices through link/sim's
//	                           delay, loss, reordering and rate (root)
//	synstack ss                the ss -tni table of a running synstack (its admin endpoint)
//
// The benchmark beside gVisor and the kernel is cmd/synstack-bench: this
// command links no gVisor.
//
// "synstack help" prints every command with its flags; every command takes
// --help. Install with
//
//	go install github.com/synstack/synstack/cmd/synstack@latest
//
// and run the commands that make TUN devices as root:
// sudo "$(go env GOPATH)/bin/synstack" serve ...
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
)

const usage = `usage: synstack <command> [arguments]

Each command takes --help. The commands marked (root) need root or CAP_NET_ADMIN:
sudo "$(go env GOPATH)/bin/synstack" COMMAND ...

commands:
  demo [SCENARIO]    run a TCP scenario between two stacks on virtual time and print every
                     packet and state transition as a ladder (default: a connection's whole
                     life); --list names the scenarios; --svg FILE, --pcap FILE, --json
  play [--listen ADDR]
                     serve a page to drive two stacks by hand: socket calls, each packet
                     delivered or dropped, the virtual clock stepped (default 127.0.0.1:8020)
  script FILE...     run packet scripts (packetdrill syntax); ends with "N passed, M failed"
  serve --tun NAME --addr CIDR (--http DIR | --echo | --discard) [--listen :PORT] [--host-addr CIDR]
                     serve over a TUN device for the kernel's clients (root); --max-conns N,
                     --idle-timeout D, --admin :PORT, --no-offload
  get --tun NAME --addr CIDR [--host-addr CIDR] [--dns ADDR] URL [-o FILE]
                     download URL over a TUN device from a server the kernel reaches (root)
  ss [-a | -l] [--admin ADDR]
                     the ss -tni table of a running synstack, from its admin endpoint
  forward --tun NAME --addr CIDR (--to HOST:PORT | --direct | --socks5 HOST:PORT) [--deferred]
                     terminate every TCP connection and UDP flow routed into a TUN device and
                     relay it upstream (tun2socks), never back into itself; --route CIDR,
                     --host-addr CIDR, --idle-timeout D, --max-relays N, --udp-timeout D,
                     --max-udp-flows N, --admin :PORT (root)
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
	case "play":
		err = runPlay(os.Stdout, os.Args[2:])
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
	if errors.Is(err, flag.ErrHelp) {
		return // --help printed the command's usage
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "synstack:", err)
		os.Exit(1)
	}
}
