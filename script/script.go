// Package script runs packet scripts (packetdrill's language) against a fresh
// synstack stack on a virtual clock.
//
// A script drives one host, the stack, against a scripted remote peer: lines
// run in time order; "<" lines are segments the peer sends, ">" lines are
// segments the stack must send at that time (within a tolerance), and system
// call lines call the stack's BSD socket layer and check what they return.
// Scripts written for packetdrill against Linux run unchanged when they test
// protocol behaviour: the runner follows packetdrill's syntax, its defaults
// (addresses, ports, tolerance) and its rules for relative sequence numbers,
// timestamps and timing; the subset it runs is described in the project's
// PACKET-SCRIPTS.md, and what it refuses is refused by name.
//
// Outbound packets are compared as packetdrill compares them: a ">" line
// takes the next packet the stack sent, so a packet the script did not
// expect makes the next ">" line mismatch, while packets sent after the
// last ">" line are only reported as warnings (Options.Strict fails on
// them; the project's own scripts run that way).
//
// Time is virtual: the runner moves the clock from event to event, running
// the stack's timers in between, so a script that waits out a 60 s TIME_WAIT
// runs in microseconds and is fully deterministic. System calls that would
// block (a blocking accept, connect, read, write or poll) never block the
// runner: they are made non-blocking, kept pending and retried after every
// later event and timer until they complete, and their completion time is
// checked against the script.
package script

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Options tune a run.
type Options struct {
	// SkipUnknown turns constructs the runner cannot run (an unknown
	// header option, system call, shell command or Python statement) into
	// warnings, and skips them, instead of failing the script.
	SkipUnknown bool
	// Strict checks every packet the stack sends: a packet that no ">"
	// line describes is an error even after the last ">" line (a last
	// ACK, the RST of a close). By default the runner checks outbound
	// packets as packetdrill does: only when a ">" line asks for one, so
	// a packet sent before a ">" line makes that line mismatch, but
	// packets sent after the last ">" line are never compared; they are
	// listed in Result.Warnings instead. The project's own scripts run
	// with Strict.
	Strict bool
	// AllConnections compares every packet the stack sends with the ">"
	// lines, whatever its connection. By default the runner does as
	// packetdrill's sniffer, which takes only the packets of the socket
	// under test (its 4-tuple, or the SYN of its connect): packets of
	// other connections (the segments of an earlier connection still
	// closing, a RST to an unrelated segment) are skipped, and Strict
	// does not count them.
	AllConnections bool
	// Verbose, if set, receives one line per event as it runs and per
	// packet the stack sends.
	Verbose io.Writer
	// Flags are packetdrill's command-line options ("--ip_version=ipv6",
	// "--local_ip=10.0.0.1", "--tolerance_usecs=10000"...), applied
	// after the script's own header options: as in packetdrill, the
	// command line wins where both set one.
	Flags []string
	// Defines are packetdrill's -D NAME=VALUE definitions: a word NAME in
	// the script reads as VALUE ("..." a string, `...` a command, a
	// number, else a word), and ${NAME} in a shell command expands to it.
	Defines map[string]string
}

// Result is the outcome of a run.
type Result struct {
	// Name is the script's name as given to Run.
	Name string
	// Passed reports whether every event went as the script said.
	Passed bool
	// Err is the first failure (nil if Passed), formatted "name:line:
	// message", e.g. "close.pkt:12: expected > F. 1:1(0) ack 1 at 0.110;
	// got > . 1:1(0) ack 1 at 0.110". Syntax errors are reported the same
	// way. It is an *Error unless the script could not be read.
	Err error
	// Warnings lists what was skipped or ignored: constructs skipped
	// under SkipUnknown, shell commands with no effect on the stack, and
	// (without Strict) packets sent after the last ">" line.
	Warnings []string
	// Duration is the virtual time the script took.
	Duration time.Duration
}

// Run parses src and runs it against a fresh stack. name is used in
// messages. Run never panics and never blocks: a panic inside the stack is
// reported as a failure at the line being run.
func Run(name string, src []byte, opts Options) (res Result) {
	res.Name = name
	s, err := parseDefines(name, src, opts.Defines)
	if err != nil {
		res.Err = err
		return res
	}
	flags, err := flagOptions(opts.Flags)
	if err != nil {
		res.Err = fmt.Errorf("%s: %w", name, err)
		return res
	}
	s.options = append(s.options, flags...)
	r := newRunner(name, opts, &res)
	defer func() {
		if p := recover(); p != nil {
			line := 0
			if r.cur != nil {
				line = r.cur.line
			}
			res.Passed = false
			res.Err = errorf(name, line, "internal error: panic: %v", p)
			// The stack may have panicked holding its lock: leave it
			// as it is rather than risk blocking in its Close.
			r.st = nil
		}
		r.close()
		res.Duration = r.elapsed()
	}()
	if err := r.run(s); err != nil {
		res.Err = err
		return res
	}
	res.Passed = true
	return res
}

// flagOptions reads command-line options ("--name=value" or "--name") as
// header options.
func flagOptions(flags []string) ([]headerOption, error) {
	var out []headerOption
	for _, f := range flags {
		name, ok := strings.CutPrefix(f, "--")
		if !ok || name == "" {
			return nil, fmt.Errorf("bad option %q: expected --name=value", f)
		}
		o := headerOption{name: name}
		if n, v, ok := strings.Cut(name, "="); ok {
			o.name, o.value, o.hasValue = n, v, true
		}
		out = append(out, o)
	}
	return out, nil
}

// RunFile reads the script at path and runs it, with path as its name.
func RunFile(path string, opts Options) Result {
	src, err := os.ReadFile(path)
	if err != nil {
		return Result{Name: path, Err: fmt.Errorf("%s: %w", path, err)}
	}
	return Run(path, src, opts)
}
