package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/clock"
	"github.com/synstack/synstack/link"
	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/trace"
)

// "Run against Linux": the session's steps again, with host A the Linux
// kernel in a network namespace of its own (as demo --kernel) and host B a
// synstack stack on the kernel's TUN device, on the real clock. The link
// between them is the same queue: every packet either side sends waits
// until a network step delivers, drops, holds, duplicates or reorders it
// (packets are numbered in the order they are sent, as in the
// playground). A clock step waits, in real time, as long as it moved the
// virtual clock (at most playKernelWait): the kernel's timers are its own.
// The two ladders are shown side by side; the calls whose results differ
// and the hosts whose state paths differ are marked.

const (
	playKernelWait   = 3 * time.Second       // the longest real wait of one clock step
	playKernelSettle = 30 * time.Millisecond // how long a step waits for the hosts to answer
	playKernelLimit  = 300                   // steps a run against Linux takes at most
	playKernelBudget = 30 * time.Second      // the real time all of a run's clock steps may wait
)

// playKernelResult is what the page shows of a run against Linux.
type playKernelResult struct {
	Synstack []playEvent `json:"synstack"`
	Linux    []playEvent `json:"linux"`
	Diffs    []string    `json:"diffs"` // what differs, one line each
	Notes    []string    `json:"notes"` // what the run could not do as the session did
}

// kernRun is one run against Linux.
type kernRun struct {
	k      *kernelPeer
	b      *synstack.Stack
	sides  map[string]*kernSide
	t0     time.Time
	mu     sync.Mutex // guards what the hosts' goroutines add to
	d      link.Dispatcher
	flight []*kernPkt
	nextID int
	events []playEvent
	flows  trace.Flows
	notes  []string
	timers []*time.Timer // the held packets' (stopped when the run ends)
}

// kernSide is a host of the run: its sockets, and the session's
// descriptors mapped to its own.
type kernSide struct {
	name       string
	so         sockAPI
	self, peer netip.Addr
	fds        map[int]int // the session's descriptor -> the host's
	listening  map[uint16]bool
}

type kernPkt struct {
	id    int
	fromA bool
	pkt   []byte
	label string
	held  bool
}

// runKernel replays steps against Linux. It needs root and a TUN device.
func runKernel(steps []playStep) (*playKernelResult, error) {
	if len(steps) > playKernelLimit {
		return nil, fmt.Errorf("a session of %d steps: a run against Linux takes at most %d", len(steps), playKernelLimit)
	}
	deltas, syn, err := playDeltas(steps)
	if err != nil {
		return nil, err
	}
	k, err := startKernelPeer(serverAddr)
	if err != nil {
		return nil, err
	}
	defer k.close()
	r := &kernRun{k: k, t0: time.Now()}
	b, err := synstack.New(synstack.Config{
		Link:  kernBLink{r},
		Addrs: []netip.Prefix{netip.MustParsePrefix(clientAddr + "/24")},
		Clock: clock.Real{},
		Seed:  2,
		OnTransition: func(local, remote netip.AddrPort, from, to tcp.State, cause tcp.Cause) {
			r.record("B", "transition", transitionText(local, remote, from.String(), to.String(), string(cause)))
		},
	})
	if err != nil {
		return nil, err
	}
	defer b.Close()
	r.b = b
	a, bb := netip.MustParseAddr(serverAddr), netip.MustParseAddr(clientAddr)
	r.sides = map[string]*kernSide{
		"A": {name: "A", so: k.so, self: a, peer: bb, fds: map[int]int{}, listening: map[uint16]bool{}},
		"B": {name: "B", so: synSockets{b.Sockets()}, self: bb, peer: a, fds: map[int]int{}, listening: map[uint16]bool{}},
	}
	k.link().Attach(kernQueue{r})
	k.watch(func(local, remote netip.AddrPort, from, to string) {
		if from == "" {
			from = "CLOSED"
			if r.sides["A"].listens(local.Port()) {
				from = "LISTEN"
			}
		}
		if to == "" {
			to = "CLOSED"
		}
		r.record("A", "transition", transitionText(local, remote, from, to, "seen in /proc/net/tcp"))
	})
	var calls []playResult
	budget := playKernelBudget
	for i, s := range steps {
		switch {
		case s.Call != nil:
			calls = append(calls, r.call(*s.Call))
		case s.Net != nil:
			r.network(*s.Net)
		case s.Clock != nil:
			d := time.Duration(deltas[i]) * time.Millisecond
			if w := min(d, playKernelWait, budget); w < d {
				r.note(fmt.Sprintf("step %d (%s) moved the virtual clock %s; the run against Linux waited %s", i+1, s, d, w))
				d = w
			}
			budget -= d
			r.record("", "clock", fmt.Sprintf("clock: waited %s", d))
			time.Sleep(d)
		}
		time.Sleep(playKernelSettle * kernelWaitScale)
	}
	time.Sleep(2 * playKernelSettle * kernelWaitScale) // the /proc/net/tcp poll catches up
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.timers {
		t.Stop()
	}
	res := &playKernelResult{Synstack: syn, Linux: r.events, Notes: append([]string{}, r.notes...), Diffs: []string{}}
	res.compare(steps, calls)
	return res, nil
}

// playDeltas replays the steps on a fresh playground: how far each step
// moved the virtual clock, and the ladder.
func playDeltas(steps []playStep) ([]int64, []playEvent, error) {
	pg, err := newPlayground()
	if err != nil {
		return nil, nil, err
	}
	defer pg.close()
	deltas := make([]int64, len(steps))
	for i, s := range steps {
		before := pg.ms()
		if _, _, err := pg.step(s); err != nil {
			return nil, nil, fmt.Errorf("step %d (%s): %v", i+1, s, err)
		}
		deltas[i] = pg.ms() - before
	}
	return deltas, pg.state().Events, nil
}

func (s *kernSide) listens(port uint16) bool { return s.listening[port] }

func (r *kernRun) note(text string) {
	r.mu.Lock()
	r.notes = append(r.notes, text)
	r.mu.Unlock()
}

func (r *kernRun) record(host, kind, text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recordLocked(host, kind, text)
}

func (r *kernRun) recordLocked(host, kind, text string) {
	if len(r.events) < playMaxEvents {
		r.events = append(r.events, playEvent{Ms: time.Since(r.t0).Milliseconds(), Host: host, Kind: kind, Text: text})
	}
}

// sent queues a packet either host sent.
func (r *kernRun) sent(fromA bool, pkt []byte) {
	if len(pkt) == 0 || pkt[0]>>4 != 4 {
		return // IPv6 is off in the namespace; just in case
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.flight) >= playMaxFlight {
		return
	}
	r.nextID++
	p := &kernPkt{id: r.nextID, fromA: fromA, pkt: append([]byte(nil), pkt...)}
	if tp, err := trace.ParsePacket(pkt); err == nil {
		p.label = trace.Label(&r.flows, &tp, trace.OptionsSYN, true)
	}
	from, to := p.ends()
	r.recordLocked(from, "send", fmt.Sprintf("#%d %s → %s: %s", p.id, from, to, p.label))
	r.flight = append(r.flight, p)
}

func (p *kernPkt) ends() (from, to string) {
	if p.fromA {
		return "A", "B"
	}
	return "B", "A"
}

// take removes packet id (0: the oldest not held) from the flight.
func (r *kernRun) take(id int) *kernPkt {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, p := range r.flight {
		if (id == 0 && !p.held) || (id != 0 && p.id == id) {
			r.flight = append(r.flight[:i], r.flight[i+1:]...)
			return p
		}
	}
	return nil
}

// deliver hands packet id to its receiver; false if it is not in flight.
func (r *kernRun) deliver(id int) bool {
	p := r.take(id)
	if p == nil {
		return false
	}
	_, to := p.ends()
	r.record(to, "deliver", fmt.Sprintf("#%d delivered to %s: %s", p.id, to, p.label))
	if p.fromA {
		r.mu.Lock()
		d := r.d
		r.mu.Unlock()
		if d != nil {
			d.DeliverPacket(p.pkt)
		}
	} else {
		r.k.link().WritePacket(p.pkt)
	}
	return true
}

// network runs a network step on the run's queue.
func (r *kernRun) network(n playNet) {
	switch n.Op {
	case "deliver":
		r.deliver(n.ID)
	case "drop":
		if p := r.take(n.ID); p != nil {
			from, _ := p.ends()
			r.record(from, "drop", fmt.Sprintf("#%d dropped: %s", p.id, p.label))
		}
	case "deliver-all":
		for range playMaxDeliver {
			if !r.deliver(0) {
				time.Sleep(playKernelSettle * kernelWaitScale) // an answer may be on its way
				if !r.deliver(0) {
					return
				}
			}
		}
	case "delay":
		r.mu.Lock()
		for _, p := range r.flight {
			if p.id == n.ID || (n.ID == 0 && !p.held) {
				p.held = true
				id := p.id
				r.timers = append(r.timers, time.AfterFunc(time.Duration(n.Ms)*time.Millisecond, func() { r.deliver(id) }))
				break
			}
		}
		r.mu.Unlock()
	case "dup":
		r.mu.Lock()
		for i, p := range r.flight {
			if p.id == n.ID || (n.ID == 0 && !p.held) {
				r.nextID++
				c := &kernPkt{id: r.nextID, fromA: p.fromA, pkt: p.pkt, label: p.label + fmt.Sprintf(" (duplicate of #%d)", p.id)}
				r.flight = append(r.flight[:i+1], append([]*kernPkt{c}, r.flight[i+1:]...)...)
				break
			}
		}
		r.mu.Unlock()
	case "swap":
		r.mu.Lock()
		i, j := -1, -1
		for x, p := range r.flight {
			switch p.id {
			case n.ID:
				i = x
			case n.ID2:
				j = x
			}
		}
		if i >= 0 && j >= 0 {
			r.flight[i], r.flight[j] = r.flight[j], r.flight[i]
		}
		r.mu.Unlock()
	}
}

// call runs a socket call on the run's host.
func (r *kernRun) call(c playCall) playResult {
	s := r.sides[c.Host]
	sys, known := s.fds[c.FD]
	if !known && c.Op != "socket" {
		sys = -1 // EBADF, as the session's call had
	}
	var (
		ret  int
		err  error
		data string
	)
	text := fmt.Sprintf("%s(%d)", c.Op, c.FD)
	switch c.Op {
	case "socket":
		text = "socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0)"
		if sys, err = s.so.Socket(synstack.AF_INET, synstack.SOCK_STREAM, 0); err == nil {
			_, err = s.so.Fcntl(sys, synstack.F_SETFL, synstack.O_NONBLOCK)
			ret = s.open(sys)
		}
	case "bind":
		err = s.so.Bind(sys, netip.AddrPortFrom(s.self, uint16(c.Port)))
	case "listen":
		if err = s.so.Listen(sys, c.Backlog); err == nil {
			// A listener is not in /proc/net/tcp's poll, nor in synstack's hook.
			if a, e := s.so.Getsockname(sys); e == nil && !s.listening[a.Port()] {
				s.listening[a.Port()] = true
				defer r.record(c.Host, "transition", transitionText(a, netip.AddrPort{}, "CLOSED", "LISTEN", "call LISTEN"))
			}
		}
	case "connect":
		err = s.so.Connect(sys, netip.AddrPortFrom(s.peer, uint16(c.Port)))
	case "accept":
		var nfd int
		var peer netip.AddrPort
		if nfd, peer, err = s.so.Accept(sys); err == nil {
			s.so.Fcntl(nfd, synstack.F_SETFL, synstack.O_NONBLOCK)
			ret, data = s.open(nfd), "from "+peer.String()
		}
	case "write":
		ret, err = s.so.Write(sys, make([]byte, c.N))
	case "read":
		buf := make([]byte, playReadLen(c.N))
		if ret, err = s.so.Read(sys, buf); err == nil && ret == 0 {
			data = "end of stream"
		}
	case "shutdown":
		err = s.so.Shutdown(sys, playHows[c.How])
	case "close":
		a, _ := s.so.Getsockname(sys)
		st, _ := s.so.TCPState(sys)
		if err = s.so.Close(sys); err == nil {
			delete(s.fds, c.FD)
			if st == "LISTEN" && s.listening[a.Port()] {
				delete(s.listening, a.Port())
				defer r.record(c.Host, "transition", transitionText(a, netip.AddrPort{}, "LISTEN", "CLOSED", "call CLOSE"))
			}
		}
	case "dup":
		var nfd int
		if nfd, err = s.so.Dup(sys); err == nil {
			ret = s.open(nfd)
		}
	default:
		o := playOptions[c.Op]
		if o.opt == synstack.SO_LINGER {
			r.note(fmt.Sprintf("%s's %s: the run against Linux does not set SO_LINGER", c.Host, text))
			return playResult{Text: text + " not run"}
		}
		err = s.so.SetsockoptInt(sys, o.level, o.opt, c.Value)
	}
	res := callResult(text, ret, data, err)
	r.record(c.Host, "call", res.Text)
	return res
}

// open gives a new descriptor of the host the session's number: the
// lowest free from 3, as a process's.
func (s *kernSide) open(sys int) int {
	for fd := 3; ; fd++ {
		if _, used := s.fds[fd]; !used {
			s.fds[fd] = sys
			return fd
		}
	}
}

// compare marks the calls whose results differ and the hosts whose
// paths through the states differ.
func (res *playKernelResult) compare(steps []playStep, linux []playResult) {
	var syn []playEvent
	for _, ev := range res.Synstack {
		if ev.Kind == "call" {
			syn = append(syn, ev)
		}
	}
	n := 0
	for i, s := range steps {
		if s.Call == nil {
			continue
		}
		if n < len(syn) && n < len(linux) {
			a, b := callOutcome(syn[n].Text), callOutcome(linux[n].Text)
			if a != b && !strings.HasSuffix(linux[n].Text, " not run") {
				res.Diffs = append(res.Diffs, fmt.Sprintf("step %d (%s): synstack = %s, Linux = %s", i+1, s, a, b))
				res.mark(syn[n].Text, linux[n].Text)
			}
		}
		n++
	}
	// Linux's states are polled: a short one can be missed. A state Linux
	// reached and synstack did not, or a connection that ends elsewhere,
	// is a difference; a state only synstack shows is a note.
	for _, h := range []string{"A", "B"} {
		a, b := statesReached(res.Synstack, h), statesReached(res.Linux, h)
		for _, st := range b {
			if !slices.Contains(a, st) {
				res.Diffs = append(res.Diffs, fmt.Sprintf("host %s: Linux reached %s, synstack never did", h, st))
			}
		}
		for _, st := range a {
			if !slices.Contains(b, st) {
				res.Notes = append(res.Notes, fmt.Sprintf("host %s: %s is not in Linux's /proc/net/tcp as polled (a short state can be missed)", h, st))
			}
		}
		fa, fb := finalStates(res.Synstack, h), finalStates(res.Linux, h)
		for conn, st := range fa {
			if fb[conn] != st {
				res.Diffs = append(res.Diffs, fmt.Sprintf("host %s's %s ends in %s with synstack, %s with Linux", h, conn, st, orNone(fb[conn])))
			}
		}
	}
}

func orNone(s string) string {
	if s == "" {
		return "no state"
	}
	return s
}

// mark flags the two call rows that differ.
func (res *playKernelResult) mark(syn, linux string) {
	for i := range res.Synstack {
		if res.Synstack[i].Text == syn && res.Synstack[i].Kind == "call" {
			res.Synstack[i].Differs = true
		}
	}
	for i := range res.Linux {
		if res.Linux[i].Text == linux && res.Linux[i].Kind == "call" {
			res.Linux[i].Differs = true
		}
	}
}

// callOutcome is what a call returned: "0", "-1 EADDRINUSE".
func callOutcome(text string) string {
	_, out, _ := strings.Cut(text, ") = ")
	out, _, _ = strings.Cut(out, " (")
	out, _, _ = strings.Cut(out, "  ")
	return out
}

// transitionParts reads a transition row: the connection, and the state
// it entered.
func transitionParts(ev playEvent) (conn, to string, ok bool) {
	left, right, ok := strings.Cut(ev.Text, " → ")
	if !ok || ev.Kind != "transition" {
		return "", "", false
	}
	if i := strings.LastIndexByte(left, ' '); i > 0 {
		conn = left[:i]
	}
	to, _, _ = strings.Cut(right, " (")
	return conn, to, true
}

// statesReached lists, in order, the distinct states a host's connections
// entered.
func statesReached(events []playEvent, host string) []string {
	var seen []string
	for _, ev := range events {
		if _, to, ok := transitionParts(ev); ok && ev.Host == host && !slices.Contains(seen, to) {
			seen = append(seen, to)
		}
	}
	return seen
}

// finalStates is the last state of each of a host's connections.
func finalStates(events []playEvent, host string) map[string]string {
	m := map[string]string{}
	for _, ev := range events {
		if conn, to, ok := transitionParts(ev); ok && ev.Host == host {
			m[conn] = to
		}
	}
	return m
}

// kernBLink is host B's link: what it sends waits in the run's queue.
type kernBLink struct{ r *kernRun }

func (l kernBLink) MTU() int     { return 1500 }
func (l kernBLink) Close() error { return nil }
func (l kernBLink) Attach(d link.Dispatcher) {
	l.r.mu.Lock()
	l.r.d = d
	l.r.mu.Unlock()
}
func (l kernBLink) WritePacket(pkt []byte) error {
	l.r.sent(false, pkt)
	return nil
}

// kernQueue receives what the kernel sends through its TUN device.
type kernQueue struct{ r *kernRun }

func (q kernQueue) DeliverPacket(pkt []byte) { q.r.sent(true, pkt) }

// playKernelBusy lets one run against Linux go at a time.
var playKernelBusy sync.Mutex

// serveKernel answers POST /api/kernel: the session, run against Linux.
func (pg *playground) serveKernel(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	if !playKernelBusy.TryLock() {
		w.WriteHeader(http.StatusConflict)
		json.NewEncoder(w).Encode(map[string]string{"error": "a run against Linux is under way"})
		return
	}
	defer playKernelBusy.Unlock()
	pg.mu.Lock()
	steps := append([]playStep(nil), pg.log...)
	pg.mu.Unlock()
	res, err := runKernel(steps)
	if err != nil {
		w.WriteHeader(http.StatusUnprocessableEntity)
		json.NewEncoder(w).Encode(map[string]string{"error": "run against Linux: " + err.Error()})
		return
	}
	json.NewEncoder(w).Encode(res)
}
