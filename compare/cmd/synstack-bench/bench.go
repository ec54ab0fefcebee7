// Command synstack-bench measures synstack, gVisor netstack and the Linux
// kernel side by side, in one process, and prints one table of figures with
// the ratios synstack/gVisor and synstack/kernel (internal/bench does the
// measuring). It is a command of its own so that the synstack command does
// not link gVisor.
//
//	synstack-bench [--json FILE] [--quick] [--only NAME,...] [--svg DIR] [--idle N]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/synstack/synstack/compare/internal/bench"
)

func main() {
	if err := runBench(os.Stdout, os.Stderr, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "synstack-bench:", err)
		os.Exit(1)
	}
}

const benchUsage = `usage: synstack-bench [--json FILE] [--quick] [--only NAME,...] [--svg DIR] [--idle N]

Measures synstack, gVisor netstack (the version this binary was built with)
and the Linux kernel (package net over loopback) side by side, in this one
process, one after the other, and prints one table with the ratios
synstack/gVisor and synstack/kernel:

  bulk       throughput one way over one connection, MTU 1500 and 65535
             (MB/s and Gbit/s; the kernel over lo, MTU 65536)
  bulkcsum   the same with every TCP checksum computed and verified by
             both userspace stacks (synstack's pipe as by default, gVisor's
             channel without checksum offload; the kernel's lo never checks)
  connsetup  connections opened and closed per second, 1 and 8 dialers
  pingpong   1-byte request/response round trips per second
  idle       Go heap per idle established connection, and per endpoint
  allocs     heap allocations per TCP segment in a steady bulk transfer
  udp        UDP datagrams received per second, and the share lost, 64 and
             1,400-byte payloads, 1 and 8 flows (each sender keeps at most
             64 datagrams in flight, acknowledged by its receiver)

Bulk, multibulk, connsetup, pingpong and udp are the median of 3 rounds, the
kinds measured in turn in each. Progress goes to stderr. The default run takes
about a minute on two cores; --quick, one round of short measurements, a few seconds (a check, not
figures to quote). --svg DIR also
sweeps the MTU (1500 to 65535) and the idle connection count (1k, 10k, 50k)
and draws bulk-mtu.svg and idle-heap.svg in DIR. --idle N sizes the idle
figure in endpoints (N/2 connections, both ends in this process; default
20000): --idle 1000000 is the million-endpoint run (gVisor is left out of it
above 200000 endpoints).

flags:
`

func runBench(stdout, stderr io.Writer, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	jsonFile := fs.String("json", "", "write every figure, its unit and the versions measured to `FILE` as JSON")
	quick := fs.Bool("quick", false, "short measurements: check that everything runs")
	only := fs.String("only", "", "run only these comma-separated figures: "+strings.Join(bench.Names, ","))
	svgDir := fs.String("svg", "", "sweep MTU and idle connection count and write the two charts to `DIR`")
	idle := fs.Int("idle", 0, "size of the idle figure in `N` endpoints (N/2 connections)")
	fs.Usage = func() {
		fmt.Fprint(stderr, benchUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("bench: unexpected argument %q", fs.Arg(0))
	}
	if *idle < 0 {
		return errors.New("bench: --idle must be positive")
	}
	opts := bench.Options{Quick: *quick, Charts: *svgDir != "", IdleEndpoints: *idle, Progress: stderr}
	if *only != "" {
		for _, n := range strings.Split(*only, ",") {
			if n = strings.TrimSpace(n); n != "" {
				opts.Only = append(opts.Only, n)
			}
		}
	}
	if *svgDir != "" {
		if err := os.MkdirAll(*svgDir, 0o755); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := bench.Run(ctx, opts)
	if r == nil {
		return err
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench: interrupted: the table is incomplete")
	}
	fmt.Fprintln(stdout)
	if werr := bench.WriteTable(stdout, r); werr != nil {
		return werr
	}
	if *jsonFile != "" {
		b, jerr := json.MarshalIndent(r, "", "  ")
		if jerr != nil {
			return fmt.Errorf("bench: %w", jerr)
		}
		if jerr := os.WriteFile(*jsonFile, append(b, '\n'), 0o644); jerr != nil {
			return fmt.Errorf("bench: %w", jerr)
		}
	}
	if *svgDir != "" {
		for name, svg := range map[string][]byte{"bulk-mtu.svg": bench.BulkChart(r), "idle-heap.svg": bench.HeapChart(r)} {
			if svg == nil {
				fmt.Fprintf(stderr, "bench: %s not drawn: its figures were not run\n", name)
				continue
			}
			if werr := os.WriteFile(filepath.Join(*svgDir, name), svg, 0o644); werr != nil {
				return fmt.Errorf("bench: %w", werr)
			}
		}
	}
	if err != nil {
		return err
	}
	if len(r.Errors) > 0 {
		return fmt.Errorf("bench: %d measurement(s) failed", len(r.Errors))
	}
	return nil
}
