package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// A session is the list of steps the learner took: socket calls, network
// decisions, clock steps. The stacks are seeded and the clock virtual, so
// replaying the steps on two fresh hosts gives the same packets, states
// and ladder: that is how the page's URL restores a session and how
// "back" undoes the last step.
//
// A step is written as dot-separated words, steps joined by commas:
//
//	A.socket                 a socket call on host A
//	A.bind.3.80              call, descriptor, argument (port, backlog, bytes, how, value)
//	N.deliver.4  N.drop.4    the network: deliver or drop packet 4 (0: the next)
//	N.all                    deliver everything
//	N.delay.4.200            hold packet 4 for 200 ms of virtual time
//	N.dup.4                  duplicate packet 4
//	N.swap.4.5               reorder packets 4 and 5
//	T.next  T.advance.200    the clock: to the next timer, or 200 ms on

// playMaxSteps bounds a session.
const playMaxSteps = 5000

// playStep is one step of a session: exactly one of its fields is set.
type playStep struct {
	Call  *playCall
	Net   *playNet
	Clock *playClock
}

// playCallArgs says which field of a call its argument fills, by op.
var playCallArgs = map[string]string{
	"bind": "port", "connect": "port", "listen": "backlog", "write": "n", "read": "n", "shutdown": "how",
	"reuseaddr": "value", "reuseport": "value", "nodelay": "value", "keepalive": "value",
	"linger": "value", "sndbuf": "value", "rcvbuf": "value",
	"accept": "", "close": "", "dup": "",
}

// String writes the step as the session's text has it.
func (s playStep) String() string {
	switch {
	case s.Call != nil:
		c := s.Call
		if c.Op == "socket" {
			return c.Host + ".socket"
		}
		out := fmt.Sprintf("%s.%s.%d", c.Host, c.Op, c.FD)
		switch playCallArgs[c.Op] {
		case "port":
			out += "." + strconv.Itoa(c.Port)
		case "backlog":
			out += "." + strconv.Itoa(c.Backlog)
		case "n":
			out += "." + strconv.Itoa(c.N)
		case "how":
			out += "." + c.How
		case "value":
			out += "." + strconv.Itoa(c.Value)
		}
		return out
	case s.Net != nil:
		n := s.Net
		switch n.Op {
		case "deliver-all":
			return "N.all"
		case "delay":
			return fmt.Sprintf("N.delay.%d.%d", n.ID, n.Ms)
		case "swap":
			return fmt.Sprintf("N.swap.%d.%d", n.ID, n.ID2)
		}
		return fmt.Sprintf("N.%s.%d", n.Op, n.ID)
	case s.Clock != nil:
		if s.Clock.Op == "advance" {
			return fmt.Sprintf("T.advance.%d", s.Clock.Ms)
		}
		return "T." + s.Clock.Op
	}
	return "?"
}

// parseSession reads a session's text ("" is the empty session).
func parseSession(text string) ([]playStep, error) {
	if text == "" {
		return nil, nil
	}
	parts := strings.Split(text, ",")
	if len(parts) > playMaxSteps {
		return nil, fmt.Errorf("a session of %d steps: at most %d", len(parts), playMaxSteps)
	}
	steps := make([]playStep, 0, len(parts))
	for i, p := range parts {
		s, err := parseStep(p)
		if err != nil {
			return nil, fmt.Errorf("step %d %q: %v", i+1, p, err)
		}
		steps = append(steps, s)
	}
	return steps, nil
}

// parseStep reads one step.
func parseStep(text string) (playStep, error) {
	w := strings.Split(text, ".")
	num := func(i int) (int, error) {
		if i >= len(w) {
			return 0, errors.New("a number is missing")
		}
		n, err := strconv.Atoi(w[i])
		if err != nil {
			return 0, fmt.Errorf("%q is not a number", w[i])
		}
		return n, nil
	}
	want := func(n int) error {
		if len(w) != n {
			return fmt.Errorf("%d words, want %d", len(w), n)
		}
		return nil
	}
	if len(w) < 2 {
		return playStep{}, errors.New("too short")
	}
	switch w[0] {
	case "A", "B":
		c := &playCall{Host: w[0], Op: w[1]}
		if c.Op == "socket" {
			return playStep{Call: c}, want(2)
		}
		arg, ok := playCallArgs[c.Op]
		if !ok {
			return playStep{}, fmt.Errorf("no call %q", c.Op)
		}
		var err error
		if c.FD, err = num(2); err != nil {
			return playStep{}, err
		}
		if arg == "" {
			return playStep{Call: c}, want(3)
		}
		if err := want(4); err != nil {
			return playStep{}, err
		}
		var n int
		if arg != "how" {
			if n, err = num(3); err != nil {
				return playStep{}, err
			}
		}
		switch arg {
		case "port":
			c.Port = n
		case "backlog":
			c.Backlog = n
		case "n":
			c.N = n
		case "how":
			c.How = w[3]
		case "value":
			c.Value = n
		}
		return playStep{Call: c}, nil
	case "N":
		n := &playNet{Op: w[1]}
		var err error
		switch n.Op {
		case "all":
			n.Op = "deliver-all"
			return playStep{Net: n}, want(2)
		case "deliver", "drop", "dup":
			if n.ID, err = num(2); err == nil {
				err = want(3)
			}
		case "delay":
			if n.ID, err = num(2); err == nil {
				if n.Ms, err = num(3); err == nil {
					err = want(4)
				}
			}
		case "swap":
			if n.ID, err = num(2); err == nil {
				if n.ID2, err = num(3); err == nil {
					err = want(4)
				}
			}
		default:
			err = fmt.Errorf("no network operation %q", n.Op)
		}
		return playStep{Net: n}, err
	case "T":
		c := &playClock{Op: w[1]}
		switch c.Op {
		case "next":
			return playStep{Clock: c}, want(2)
		case "advance":
			ms, err := num(2)
			if err == nil {
				err = want(3)
			}
			c.Ms = int64(ms)
			return playStep{Clock: c}, err
		}
		return playStep{}, fmt.Errorf("no clock operation %q", c.Op)
	}
	return playStep{}, fmt.Errorf("%q: a step starts with A, B, N or T", w[0])
}

// sessionText is the session so far, as the URL carries it.
func (pg *playground) sessionText() string {
	parts := make([]string, len(pg.log))
	for i, s := range pg.log {
		parts[i] = s.String()
	}
	return strings.Join(parts, ",")
}

// step runs one step and, if it acted, adds it to the session. pg.mu is held.
func (pg *playground) step(s playStep) (*playResult, string, error) {
	if len(pg.log) >= playMaxSteps {
		return nil, "", fmt.Errorf("the session has %d steps, the most it may: reset, or go back", playMaxSteps)
	}
	var (
		res  *playResult
		info string
		err  error
	)
	switch {
	case s.Call != nil:
		var r playResult
		r, err = pg.call(*s.Call)
		res = &r
	case s.Net != nil:
		info, err = pg.network(*s.Net)
	case s.Clock != nil:
		info, err = pg.clockStep(*s.Clock)
	default:
		err = errors.New("an empty step")
	}
	if err == nil {
		pg.log = append(pg.log, s)
	}
	return res, info, err
}

// replay starts two fresh hosts and runs the steps on them; it stops at
// the first step that fails, keeping those before it. pg.mu is held.
func (pg *playground) replay(steps []playStep) error {
	lesson := pg.lesson
	if err := pg.reset(); err != nil {
		return err
	}
	pg.lesson = lesson
	for i, s := range steps {
		if _, _, err := pg.step(s); err != nil {
			return fmt.Errorf("step %d (%s): %v", i+1, s, err)
		}
	}
	return nil
}

// back undoes the last step: the session without it, replayed.
func (pg *playground) back() error {
	if len(pg.log) == 0 {
		return errors.New("nothing to undo: the session is empty")
	}
	return pg.replay(append([]playStep(nil), pg.log[:len(pg.log)-1]...))
}
