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
	"time"
)

// Options tune a run.
type Options struct {
	// SkipUnknown turns constructs the runner cannot run (an unknown
	// header option, system call, shell command or Python statement) into
	// warnings, and skips them, instead of failing the script.
	SkipUnknown bool
	// Lenient checks outbound packets only as far as packetdrill does:
	// packets sent after the last ">" line, and packets of connections
	// other than the one under test, are ignored. By default every packet
	// the stack sends must match a ">" line, so a script written for
	// packetdrill that leaves trailing packets out (a last ACK, the RST of
	// a close) fails until it lists them or runs with Lenient.
	Lenient bool
	// Verbose, if set, receives one line per event as it runs and per
	// packet the stack sends.
	Verbose io.Writer
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
	// Warnings lists what was skipped or ignored (with SkipUnknown, or
	// shell commands with no effect on the stack).
	Warnings []string
	// Duration is the virtual time the script took.
	Duration time.Duration
}

// Run parses src and runs it against a fresh stack. name is used in
// messages. Run never panics and never blocks: a panic inside the stack is
// reported as a failure at the line being run.
func Run(name string, src []byte, opts Options) (res Result) {
	res.Name = name
	s, err := parse(name, src)
	if err != nil {
		res.Err = err
		return res
	}
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

// RunFile reads the script at path and runs it, with path as its name.
func RunFile(path string, opts Options) Result {
	src, err := os.ReadFile(path)
	if err != nil {
		return Result{Name: path, Err: fmt.Errorf("%s: %w", path, err)}
	}
	return Run(path, src, opts)
}
