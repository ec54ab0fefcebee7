package main

import (
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/clock"
	"github.com/synstack/synstack/link"
	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/trace"
	"github.com/synstack/synstack/wire"
)

// The playground: two synstack stacks, A and B, whose link is a queue the
// learner empties by hand (deliver, drop), on a virtual clock that moves
// only when told. The page (play.html) drives it through a small JSON API;
// every request runs under one mutex, so the stacks see one call at a time
// and a session replays exactly.

//go:embed play.html
var playPage []byte

// Limits on what one request may ask for.
const (
	playMaxWrite    = 1 << 20        // bytes one write call may send
	playMaxRead     = 1 << 16        // bytes one read call may take
	playMaxFlight   = 4096           // packets held in flight; beyond, the link drops them
	playMaxEvents   = 10000          // ladder rows kept; beyond, the oldest go
	playMaxDeliver  = 1000           // packets "deliver all" carries before it stops
	playMaxAdvance  = 24 * time.Hour // the longest clock step
	playMaxBody     = 64 << 10       // bytes of a request body
	playMaxFDs      = 256            // descriptors a host may have open
	playMaxOptValue = 1 << 24        // the largest value an option is set to (buffers, seconds)
	playStart       = "2026-01-01T00:00:00Z"
	playDefault     = "127.0.0.1:8020" // where synstack play listens by default
)

func runPlay(w io.Writer, args []string) error {
	fs := flag.NewFlagSet("play", flag.ContinueOnError)
	fs.SetOutput(w)
	listen := fs.String("listen", playDefault, "serve the page on `ADDR`")
	lesson := fs.String("lesson", "", "start from the lesson `NAME` (a demo scenario; see demo --list)")
	fs.Usage = func() {
		fmt.Fprintf(w, "usage: synstack play [--listen ADDR] [--lesson NAME]\n\n")
		fs.PrintDefaults()
		fmt.Fprintf(w, "\nTwo stacks, A and B, driven by hand in the browser: socket calls, each packet\ndelivered, dropped, held, duplicated or reordered, the virtual clock stepped;\nthe session in the URL, lessons, export as a packet script or pcap, a run\nagainst Linux. See docs/playground.md.\n")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("play: unexpected arguments %q", fs.Args())
	}
	if *lesson != "" && findLesson(*lesson) == nil {
		return fmt.Errorf("play: no lesson %q (the lessons are demo --list's scenarios)", *lesson)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	pg, err := newPlayground()
	if err != nil {
		ln.Close()
		return err
	}
	defer pg.close()
	if *lesson != "" {
		if err := pg.load(playLoad{Lesson: *lesson}); err != nil {
			ln.Close()
			return err
		}
	}
	fmt.Fprintf(w, "synstack play: open http://%s/\n", ln.Addr())
	srv := &http.Server{Handler: pg.handler(), ReadHeaderTimeout: 10 * time.Second}
	return srv.Serve(ln)
}

// playground is the two hosts, the link between them and the clock.
type playground struct {
	mu    sync.Mutex // held by every request: one call at a time
	clk   *clock.Virtual
	t0    time.Time
	hosts [2]*playHost

	// qmu guards what the stacks' hooks and links add to while a request
	// runs: the packets in flight, the ladder, the flows.
	qmu      sync.Mutex
	flight   []*playPacket
	nextID   int
	events   []playEvent
	dropped  int // ladder rows forgotten (playMaxEvents)
	flows    trace.Flows
	overflow int             // packets the link refused (playMaxFlight)
	tape     []playTapeEntry // A's calls and packets, for the script
	captured []playCapture   // every packet sent, for the pcap
	tapeFull bool            // the tape or the capture reached playMaxTape

	// Guarded by mu, not qmu: only requests change them.
	log    []playStep // the session: every step that acted, in order
	lesson string     // the lesson the session started from, if any
}

// playHost is one machine: a stack and the descriptors opened on it.
type playHost struct {
	pg    *playground
	name  string // "A" or "B"
	addr  netip.Addr
	st    *synstack.Stack
	so    *synstack.Sockets
	link  *playLink
	fds   []int       // open descriptors, in the order they were made
	conns []*playConn // the connections and listeners the transitions drew (pg.qmu)
}

// playPacket is a packet in flight: sent, not yet delivered or dropped.
type playPacket struct {
	ID     int         `json:"id"`
	From   string      `json:"from"`
	To     string      `json:"to"`
	Sent   int64       `json:"sentMs"` // virtual milliseconds since the start
	Flags  string      `json:"flags"`  // "SYN,ACK"
	Seq    uint32      `json:"seq"`    // absolute
	Ack    uint32      `json:"ack"`    // absolute; meaningful with ACK
	Rel    string      `json:"label"`  // summary with relative numbers, as the ladder
	Len    int         `json:"len"`    // payload bytes
	Win    uint16      `json:"win"`
	Held   *int64      `json:"heldUntilMs,omitempty"` // delayed: delivered when the clock reaches it
	DupOf  int         `json:"dupOf,omitempty"`       // a duplicate of that packet
	Fields []playField `json:"fields"`                // every header field, for the page's packet view
	pkt    []byte
	to     *playHost
	timer  clock.Timer // the delay's
}

// playEvent is one row of the ladder.
type playEvent struct {
	Ms   int64  `json:"ms"`   // virtual milliseconds since the start
	Host string `json:"host"` // "A", "B" or "" (the network, the clock)
	Kind string `json:"kind"` // call, send, deliver, drop, transition, clock
	Text string `json:"text"`
	// Differs marks a row of a run against Linux that differs from the
	// other run's.
	Differs bool `json:"differs,omitempty"`
}

// newPlayground starts A (10.0.0.1) and B (10.0.0.2) on a fresh clock.
func newPlayground() (*playground, error) {
	start, _ := time.Parse(time.RFC3339, playStart)
	pg := &playground{clk: clock.NewVirtual(start), t0: start}
	for i, name := range []string{"A", "B"} {
		h := &playHost{pg: pg, name: name, addr: netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)})}
		h.link = &playLink{h: h}
		st, err := synstack.New(synstack.Config{
			Link:         h.link,
			Addrs:        []netip.Prefix{netip.PrefixFrom(h.addr, 24)},
			Clock:        pg.clk,
			Seed:         uint64(i + 1),
			OnTransition: h.onTransition,
		})
		if err != nil {
			pg.close()
			return nil, err
		}
		h.st, h.so = st, st.Sockets()
		pg.hosts[i] = h
	}
	return pg, nil
}

// close stops both stacks; what they send then goes nowhere.
func (pg *playground) close() {
	for _, h := range pg.hosts {
		if h != nil {
			h.link.setClosed()
			h.st.Close()
		}
	}
}

// peer returns the other host.
func (h *playHost) peer() *playHost {
	if h == h.pg.hosts[0] {
		return h.pg.hosts[1]
	}
	return h.pg.hosts[0]
}

func (pg *playground) ms() int64 { return pg.clk.Now().Sub(pg.t0).Milliseconds() }

// record adds a row to the ladder.
func (pg *playground) record(host, kind, text string) {
	pg.qmu.Lock()
	defer pg.qmu.Unlock()
	pg.recordLocked(host, kind, text)
}

func (pg *playground) recordLocked(host, kind, text string) {
	if len(pg.events) == playMaxEvents {
		copy(pg.events, pg.events[1:])
		pg.events = pg.events[:len(pg.events)-1]
		pg.dropped++
	}
	pg.events = append(pg.events, playEvent{Ms: pg.ms(), Host: host, Kind: kind, Text: text})
}

// onTransition is the stack's transition hook: a ladder row.
func (h *playHost) onTransition(local, remote netip.AddrPort, from, to tcp.State, cause tcp.Cause) {
	h.transition(local, remote, from.String(), to.String(), string(cause))
}

func transitionText(local, remote netip.AddrPort, from, to, cause string) string {
	conn := fmt.Sprintf(":%d", local.Port())
	if remote.IsValid() {
		conn += fmt.Sprintf(" ⇄ %s", remote)
	}
	return fmt.Sprintf("%s %s → %s (%s)", conn, from, to, cause)
}

// playLink is a host's end of the link: what the stack writes waits in
// the playground's queue until delivered or dropped.
type playLink struct {
	h      *playHost
	mu     sync.Mutex
	d      link.Dispatcher
	closed bool
}

var _ link.Endpoint = (*playLink)(nil)

// MTU is Ethernet's.
func (l *playLink) MTU() int { return 1500 }

// Attach takes the stack that packets are delivered to.
func (l *playLink) Attach(d link.Dispatcher) {
	l.mu.Lock()
	l.d = d
	l.mu.Unlock()
}

// Close detaches the stack.
func (l *playLink) Close() error {
	l.setClosed()
	return nil
}

func (l *playLink) setClosed() {
	l.mu.Lock()
	l.closed, l.d = true, nil
	l.mu.Unlock()
}

// WritePacket puts a copy of the packet in flight, towards the other host.
func (l *playLink) WritePacket(pkt []byte) error {
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return errors.New("play: link closed")
	}
	pg := l.h.pg
	pg.qmu.Lock()
	defer pg.qmu.Unlock()
	if len(pg.flight) >= playMaxFlight {
		pg.overflow++
		return nil // a full queue drops, as a link's does
	}
	p := l.h.decode(pkt)
	pg.flight = append(pg.flight, p)
	pg.captureLocked(p.pkt)
	if l.h == pg.hosts[0] {
		pg.tapeLocked(playTapeEntry{Ms: pg.ms(), Out: true, Pkt: p.pkt}, -1)
	}
	pg.recordLocked(l.h.name, "send", fmt.Sprintf("#%d %s → %s: %s", p.ID, p.From, p.To, p.Rel))
	return nil
}

// decode reads the packet's fields (with package wire) and gives it an
// ID and its ladder label. pg.qmu is held.
func (h *playHost) decode(pkt []byte) *playPacket {
	pg := h.pg
	pg.nextID++
	p := &playPacket{ID: pg.nextID, From: h.name, To: h.peer().name, Sent: pg.ms(),
		pkt: append([]byte(nil), pkt...), to: h.peer()}
	ip, payload, err := wire.ParseIP(pkt)
	if err != nil || ip.Protocol != wire.ProtoTCP {
		p.Flags, p.Rel = "?", fmt.Sprintf("not TCP (%d bytes)", len(pkt))
		return p
	}
	t, data, err := wire.ParseTCP(payload)
	if err != nil {
		p.Flags, p.Rel = "?", fmt.Sprintf("bad TCP (%d bytes): %v", len(pkt), err)
		return p
	}
	p.Flags, p.Seq, p.Ack, p.Len, p.Win = flagNames(t.Flags), t.Seq, t.Ack, len(data), t.Window
	if tp, err := trace.ParsePacket(pkt); err == nil {
		p.Rel = trace.Label(&pg.flows, &tp, trace.OptionsSYN, true)
	}
	p.Fields = packetFields(pkt)
	return p
}

// flagNames spells the flags out: "SYN,ACK".
func flagNames(f wire.TCPFlags) string {
	var names []string
	for _, x := range []struct {
		f    wire.TCPFlags
		name string
	}{{wire.FlagSYN, "SYN"}, {wire.FlagFIN, "FIN"}, {wire.FlagRST, "RST"}, {wire.FlagPSH, "PSH"}, {wire.FlagACK, "ACK"}, {wire.FlagURG, "URG"}} {
		if f&x.f != 0 {
			names = append(names, x.name)
		}
	}
	if len(names) == 0 {
		return "-"
	}
	return strings.Join(names, ",")
}

// take removes the packet id (0: the oldest not held) from the flight.
func (pg *playground) take(id int) (*playPacket, error) {
	pg.qmu.Lock()
	defer pg.qmu.Unlock()
	i, err := pg.findLocked(id)
	if err != nil {
		return nil, err
	}
	p := pg.flight[i]
	pg.flight = append(pg.flight[:i], pg.flight[i+1:]...)
	if p.timer != nil {
		p.timer.Stop()
	}
	return p, nil
}

// findLocked returns the index in the flight of packet id (0: the oldest
// not held). pg.qmu is held.
func (pg *playground) findLocked(id int) (int, error) {
	if len(pg.flight) == 0 {
		return 0, errors.New("no packet in flight")
	}
	for i, p := range pg.flight {
		if (id == 0 && p.Held == nil) || (id != 0 && p.ID == id) {
			return i, nil
		}
	}
	if id == 0 {
		return 0, errors.New("every packet in flight is delayed: step the clock")
	}
	return 0, fmt.Errorf("no packet #%d in flight", id)
}

// deliver hands packet id (0: the oldest not held) to its receiver; what
// that stack sends in answer joins the flight.
func (pg *playground) deliver(id int) error {
	p, err := pg.take(id)
	if err != nil {
		return err
	}
	pg.record(p.To, "deliver", fmt.Sprintf("#%d delivered to %s: %s", p.ID, p.To, p.Rel))
	if p.to == pg.hosts[0] {
		pg.qmu.Lock()
		pg.tapeLocked(playTapeEntry{Ms: pg.ms(), Pkt: p.pkt}, -1)
		pg.qmu.Unlock()
	}
	l := p.to.link
	l.mu.Lock()
	d := l.d
	l.mu.Unlock()
	if d != nil {
		d.DeliverPacket(append([]byte(nil), p.pkt...)) // the stack may reuse it; the tape keeps p.pkt
	}
	return nil
}

// drop loses packet id (0: the oldest not held).
func (pg *playground) drop(id int) error {
	p, err := pg.take(id)
	if err != nil {
		return err
	}
	pg.record(p.From, "drop", fmt.Sprintf("#%d dropped: %s", p.ID, p.Rel))
	return nil
}

// delay holds packet id for d of virtual time: the clock delivers it.
func (pg *playground) delay(id int, d time.Duration) error {
	if d <= 0 || d > playMaxAdvance {
		return fmt.Errorf("delay by %s: give 1 ms to %s", d, playMaxAdvance)
	}
	pg.qmu.Lock()
	defer pg.qmu.Unlock()
	i, err := pg.findLocked(id)
	if err != nil {
		return err
	}
	p := pg.flight[i]
	if p.timer != nil {
		p.timer.Stop()
	}
	until := pg.ms() + d.Milliseconds()
	p.Held = &until
	p.timer = pg.clk.AfterFunc(d, func() {
		// The clock runs this inside a request (its step), pg.mu held.
		pg.deliver(p.ID) // gone already if delivered or dropped by hand
	})
	pg.recordLocked(p.From, "delay", fmt.Sprintf("#%d held %s, until t=%d ms: %s", p.ID, d, until, p.Rel))
	return nil
}

// duplicate puts a copy of packet id in flight, just after it.
func (pg *playground) duplicate(id int) error {
	pg.qmu.Lock()
	defer pg.qmu.Unlock()
	i, err := pg.findLocked(id)
	if err != nil {
		return err
	}
	if len(pg.flight) >= playMaxFlight {
		return fmt.Errorf("%d packets in flight: the link holds no more", playMaxFlight)
	}
	p := pg.flight[i]
	pg.nextID++
	c := &playPacket{ID: pg.nextID, From: p.From, To: p.To, Sent: pg.ms(), Flags: p.Flags, Seq: p.Seq, Ack: p.Ack,
		Rel: fmt.Sprintf("%s (duplicate of #%d)", p.Rel, p.ID), Len: p.Len, Win: p.Win, DupOf: p.ID, Fields: p.Fields,
		pkt: append([]byte(nil), p.pkt...), to: p.to}
	pg.flight = slices.Insert(pg.flight, i+1, c)
	pg.recordLocked(p.From, "dup", fmt.Sprintf("#%d duplicates #%d: %s", c.ID, p.ID, p.Rel))
	return nil
}

// swap exchanges the places of packets a and b in flight: the network
// reorders them.
func (pg *playground) swap(a, b int) error {
	if a == 0 || b == 0 || a == b {
		return errors.New("reorder: give two packets by their numbers")
	}
	pg.qmu.Lock()
	defer pg.qmu.Unlock()
	i, err := pg.findLocked(a)
	if err != nil {
		return err
	}
	j, err := pg.findLocked(b)
	if err != nil {
		return err
	}
	pg.flight[i], pg.flight[j] = pg.flight[j], pg.flight[i]
	pg.recordLocked("", "reorder", fmt.Sprintf("#%d and #%d change places", a, b))
	return nil
}

// deliverAll delivers until nothing is in flight, or playMaxDeliver
// packets have gone (two stacks can talk for ever).
func (pg *playground) deliverAll() string {
	for n := 0; n < playMaxDeliver; n++ {
		if pg.deliver(0) != nil { // nothing in flight, or only delayed packets
			return fmt.Sprintf("%d packets delivered", n)
		}
	}
	return fmt.Sprintf("stopped after %d packets: the hosts are still talking", playMaxDeliver)
}

// network runs a network step.
func (pg *playground) network(n playNet) (string, error) {
	switch n.Op {
	case "deliver":
		return "", pg.deliver(n.ID)
	case "drop":
		return "", pg.drop(n.ID)
	case "deliver-all":
		return pg.deliverAll(), nil
	case "delay":
		return "", pg.delay(n.ID, time.Duration(n.Ms)*time.Millisecond)
	case "dup":
		return "", pg.duplicate(n.ID)
	case "swap":
		return "", pg.swap(n.ID, n.ID2)
	}
	return "", fmt.Errorf("no network operation %q", n.Op)
}

// clockStep runs a clock step.
func (pg *playground) clockStep(c playClock) (string, error) {
	switch c.Op {
	case "next":
		return pg.stepClock()
	case "advance":
		if c.Ms < 1 || c.Ms > playMaxAdvance.Milliseconds() {
			return "", fmt.Errorf("advance %d ms: give 1 to %d", c.Ms, playMaxAdvance.Milliseconds())
		}
		return "", pg.advance(time.Duration(c.Ms) * time.Millisecond)
	}
	return "", fmt.Errorf("no clock operation %q", c.Op)
}

// stepClock moves the clock to the next timer's deadline.
func (pg *playground) stepClock() (string, error) {
	next, ok := pg.clk.Next()
	if !ok {
		return "", errors.New("no timer pending: nothing happens until you act")
	}
	d := next.Sub(pg.clk.Now())
	pg.record("", "clock", fmt.Sprintf("clock: +%s to the next timer (t=%s)", d, next.Sub(pg.t0)))
	pg.clk.AdvanceTo(next)
	return fmt.Sprintf("+%s", d), nil
}

// advance moves the clock d forward, running the timers that fall due.
func (pg *playground) advance(d time.Duration) error {
	if d <= 0 || d > playMaxAdvance {
		return fmt.Errorf("advance by %s: give 1 ms to %s", d, playMaxAdvance)
	}
	pg.record("", "clock", fmt.Sprintf("clock: +%s (t=%s)", d, pg.clk.Now().Add(d).Sub(pg.t0)))
	pg.clk.Advance(d)
	return nil
}

// playCall is a socket call the page asks for.
type playCall struct {
	Host    string `json:"host"` // "A" or "B"
	Op      string `json:"op"`   // socket, bind, listen, connect, accept, write, read, shutdown, close, dup, or an option (playOptions)
	FD      int    `json:"fd"`
	Port    int    `json:"port"`    // bind, connect (the other host's port)
	Backlog int    `json:"backlog"` // listen
	N       int    `json:"n"`       // write: bytes; read: at most
	How     string `json:"how"`     // shutdown: RD, WR, RDWR
	Value   int    `json:"value"`   // options: the value set
}

// playResult is what a call returned.
type playResult struct {
	Text    string `json:"text"`              // as strace prints it: "connect(3, 10.0.0.1:80) = -1 EINPROGRESS"
	Ret     int    `json:"ret"`               // the return value (-1 on error)
	Errno   string `json:"errno,omitempty"`   // "EINPROGRESS"
	Meaning string `json:"meaning,omitempty"` // "operation now in progress"
	Data    string `json:"data,omitempty"`    // read: what was read (shortened)
}

var playHows = map[string]int{"RD": synstack.SHUT_RD, "WR": synstack.SHUT_WR, "RDWR": synstack.SHUT_RDWR}

// call runs one socket call on a host.
func (pg *playground) call(c playCall) (playResult, error) {
	h := pg.host(c.Host)
	if h == nil {
		return playResult{}, fmt.Errorf("no host %q (A or B)", c.Host)
	}
	var (
		ret  int
		err  error
		text string
		data string
	)
	// The call's row goes before what the call made (transitions, packets).
	pg.qmu.Lock()
	mark, tapeMark := len(pg.events)+pg.dropped, len(pg.tape)
	pg.qmu.Unlock()
	switch c.Op {
	case "socket":
		if len(h.fds) >= playMaxFDs {
			return playResult{}, fmt.Errorf("host %s has %d descriptors open: close some", h.name, playMaxFDs)
		}
		ret, err = h.so.Socket(synstack.AF_INET, synstack.SOCK_STREAM|synstack.SOCK_NONBLOCK, 0)
		text = "socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0)"
		if err == nil {
			h.fds = append(h.fds, ret)
		}
	case "dup":
		if len(h.fds) >= playMaxFDs {
			return playResult{}, fmt.Errorf("host %s has %d descriptors open: close some", h.name, playMaxFDs)
		}
		if ret, err = h.so.Dup(c.FD); err == nil {
			h.fds = append(h.fds, ret)
		}
		text = fmt.Sprintf("dup(%d)", c.FD)
	case "bind":
		if c.Port < 0 || c.Port > 65535 {
			return playResult{}, fmt.Errorf("port %d: give 0 to 65535", c.Port)
		}
		to := netip.AddrPortFrom(h.addr, uint16(c.Port))
		err = h.so.Bind(c.FD, to)
		text = fmt.Sprintf("bind(%d, %s)", c.FD, to)
	case "listen":
		before := h.state(c.FD)
		err = h.so.Listen(c.FD, c.Backlog)
		text = fmt.Sprintf("listen(%d, %d)", c.FD, c.Backlog)
		if err == nil && before == "CLOSED" {
			// A listener has no connection: the stack's hook does not see it.
			local, _ := h.so.Getsockname(c.FD)
			defer h.transition(local, netip.AddrPort{}, "CLOSED", "LISTEN", "call LISTEN")
		}
	case "connect":
		if c.Port < 1 || c.Port > 65535 {
			return playResult{}, fmt.Errorf("port %d: give 1 to 65535", c.Port)
		}
		to := netip.AddrPortFrom(h.peer().addr, uint16(c.Port))
		text = fmt.Sprintf("connect(%d, %s)", c.FD, to)
		err = h.so.Connect(c.FD, to)
	case "accept":
		var peer netip.AddrPort
		ret, peer, err = h.so.Accept(c.FD)
		text = fmt.Sprintf("accept(%d)", c.FD)
		if err == nil {
			// As accept4(SOCK_NONBLOCK): no call may block the playground.
			if _, ferr := h.so.Fcntl(ret, synstack.F_SETFL, synstack.O_NONBLOCK); ferr != nil {
				return playResult{}, ferr
			}
			h.fds = append(h.fds, ret)
			data = "from " + peer.String()
		}
	case "write":
		if c.N < 1 || c.N > playMaxWrite {
			return playResult{}, fmt.Errorf("write %d bytes: give 1 to %d", c.N, playMaxWrite)
		}
		buf := make([]byte, c.N)
		for i := range buf {
			buf[i] = 'a' + byte(i%26)
		}
		ret, err = h.so.Write(c.FD, buf)
		text = fmt.Sprintf("write(%d, %d bytes)", c.FD, c.N)
	case "read":
		n := playReadLen(c.N)
		if n > playMaxRead {
			return playResult{}, fmt.Errorf("read %d bytes: give at most %d", n, playMaxRead)
		}
		buf := make([]byte, n)
		ret, err = h.so.Read(c.FD, buf)
		text = fmt.Sprintf("read(%d, %d)", c.FD, n)
		switch {
		case err == nil && ret == 0:
			data = "end of stream"
		case err == nil:
			data = quote(string(buf[:ret]))
		}
	case "shutdown":
		how, ok := playHows[c.How]
		if !ok {
			return playResult{}, fmt.Errorf("shutdown how %q: RD, WR or RDWR", c.How)
		}
		err = h.so.Shutdown(c.FD, how)
		text = fmt.Sprintf("shutdown(%d, SHUT_%s)", c.FD, c.How)
	case "close":
		local, _ := h.so.Getsockname(c.FD)
		listening := h.state(c.FD) == "LISTEN"
		err = h.so.Close(c.FD)
		text = fmt.Sprintf("close(%d)", c.FD)
		if err == nil {
			h.forget(c.FD)
			if listening && !h.shared(local) {
				defer h.transition(local, netip.AddrPort{}, "LISTEN", "CLOSED", "call CLOSE")
			}
		}
	default:
		var bad error
		if text, err, bad = h.setOption(c); bad != nil {
			return playResult{}, bad
		}
	}
	res := callResult(text, ret, data, err)
	pg.insertCall(mark, tapeMark, h, c, res)
	return res, nil
}

// setOption runs an option call: its strace text and the socket layer's
// error, or bad for a request to refuse (no such option, a value out of
// range).
func (h *playHost) setOption(c playCall) (text string, err, bad error) {
	o, ok := playOptions[c.Op]
	if !ok {
		return "", nil, fmt.Errorf("no call %q", c.Op)
	}
	if c.Value < -1 || c.Value > playMaxOptValue {
		return "", nil, fmt.Errorf("%s value %d: give -1 to %d", o.name, c.Value, playMaxOptValue)
	}
	if o.opt == synstack.SO_LINGER {
		// A value of -1 turns lingering off; N >= 0 lingers N seconds (0: close resets).
		l := syscall.Linger{Onoff: int32(b2i(c.Value >= 0)), Linger: int32(max(c.Value, 0))}
		return fmt.Sprintf("setsockopt(%d, SOL_SOCKET, SO_LINGER, {onoff=%d, linger=%d})", c.FD, l.Onoff, l.Linger),
			h.so.SetsockoptLinger(c.FD, l), nil
	}
	return fmt.Sprintf("setsockopt(%d, %s, %s, %d)", c.FD, o.levelName, o.name, c.Value),
		h.so.SetsockoptInt(c.FD, o.level, o.opt, c.Value), nil
}

// playReadLen is the length a read asks for: n, or 1000 if not given.
func playReadLen(n int) int {
	if n <= 0 {
		return 1000
	}
	return n
}

// host returns the host named name, or nil.
func (pg *playground) host(name string) *playHost {
	for _, h := range pg.hosts {
		if h.name == name {
			return h
		}
	}
	return nil
}

// callResult is what a call returned, written as strace writes it.
func callResult(text string, ret int, data string, err error) playResult {
	res := playResult{Ret: ret, Data: data}
	if err != nil {
		res.Ret = -1
		var e syscall.Errno
		if errors.As(err, &e) {
			res.Errno, res.Meaning = playErrno(e), e.Error()
		} else {
			res.Errno, res.Meaning = "error", err.Error()
		}
		res.Text = fmt.Sprintf("%s = -1 %s (%s)", text, res.Errno, res.Meaning)
		return res
	}
	res.Text = fmt.Sprintf("%s = %d", text, res.Ret)
	if data != "" {
		res.Text += "  " + data
	}
	return res
}

// insertCall puts a call's row where the ladder stood when the call began
// (mark counts the rows ever recorded then), and a call of A's on the
// tape where it stood (tapeMark).
func (pg *playground) insertCall(mark, tapeMark int, h *playHost, c playCall, res playResult) {
	pg.qmu.Lock()
	defer pg.qmu.Unlock()
	if h == pg.hosts[0] {
		pg.tapeLocked(playTapeEntry{Ms: pg.ms(), Call: &c, Res: res}, tapeMark)
	}
	pg.recordLocked(h.name, "call", res.Text)
	ev := pg.events[len(pg.events)-1]
	at := max(mark-pg.dropped, 0)
	copy(pg.events[at+1:], pg.events[at:len(pg.events)-1])
	pg.events[at] = ev
}

// shared reports whether another open descriptor of h is the same
// listener (a dup): the listener then lives on.
func (h *playHost) shared(local netip.AddrPort) bool {
	for _, fd := range h.fds {
		if a, _ := h.so.Getsockname(fd); a == local && h.state(fd) == "LISTEN" {
			return true
		}
	}
	return false
}

// forget removes fd from the host's open descriptors.
func (h *playHost) forget(fd int) {
	for i, x := range h.fds {
		if x == fd {
			h.fds = append(h.fds[:i], h.fds[i+1:]...)
			return
		}
	}
}

// state is the TCP state of fd's socket (TCP_INFO), or the error.
func (h *playHost) state(fd int) string {
	info, err := h.so.GetsockoptTCPInfo(fd)
	if err != nil {
		return "?"
	}
	return info.State.String()
}

// playExtraErrnos name errnos the demo's table does not.
var playExtraErrnos = map[syscall.Errno]string{
	syscall.EADDRNOTAVAIL:   "EADDRNOTAVAIL",
	syscall.EAFNOSUPPORT:    "EAFNOSUPPORT",
	syscall.EOPNOTSUPP:      "EOPNOTSUPP",
	syscall.EDESTADDRREQ:    "EDESTADDRREQ",
	syscall.ENOTSOCK:        "ENOTSOCK",
	syscall.ENOBUFS:         "ENOBUFS",
	syscall.EHOSTUNREACH:    "EHOSTUNREACH",
	syscall.ENETUNREACH:     "ENETUNREACH",
	syscall.ECONNABORTED:    "ECONNABORTED",
	syscall.EMFILE:          "EMFILE",
	syscall.ENOPROTOOPT:     "ENOPROTOOPT",
	syscall.EPROTONOSUPPORT: "EPROTONOSUPPORT",
}

// playErrno names an errno ("EINPROGRESS").
func playErrno(e syscall.Errno) string {
	if n, ok := errnoNames[e]; ok {
		return n
	}
	if n, ok := playExtraErrnos[e]; ok {
		return n
	}
	return fmt.Sprintf("errno %d", int(e))
}

// playState is everything the page shows.
type playState struct {
	Ms      int64           `json:"ms"`     // virtual time since the start
	NextMs  *int64          `json:"nextMs"` // the next timer's deadline, or null
	Hosts   []playHostView  `json:"hosts"`
	Flight  []*playPacket   `json:"flight"`
	Events  []playEvent     `json:"events"`
	Dropped int             `json:"forgotten"` // ladder rows no longer kept
	Refused int             `json:"refused"`   // packets the full link dropped
	Session string          `json:"session"`   // the steps so far, as the URL carries them
	Steps   int             `json:"steps"`     // how many
	Lesson  *playLessonView `json:"lesson"`    // the lesson being followed, or null
}

type playHostView struct {
	Name     string           `json:"name"`
	Addr     string           `json:"addr"`
	Sockets  []playSocketView `json:"sockets"`
	Conns    []playConnView   `json:"conns"`
	Counters []playField      `json:"counters"` // the stack's non-zero counters
}

type playSocketView struct {
	FD    int    `json:"fd"`
	State string `json:"state"`
	Local string `json:"local"`
	Peer  string `json:"peer"`
}

// state returns the playground as the page shows it.
func (pg *playground) state() playState {
	s := playState{Ms: pg.ms(), Session: pg.sessionText(), Steps: len(pg.log), Lesson: lessonView(pg.lesson)}
	if next, ok := pg.clk.Next(); ok {
		ms := next.Sub(pg.t0).Milliseconds()
		s.NextMs = &ms
	}
	for _, h := range pg.hosts {
		v := playHostView{Name: h.name, Addr: h.addr.String(), Sockets: []playSocketView{}, Conns: h.connViews(), Counters: h.counters()}
		for _, fd := range h.fds {
			sv := playSocketView{FD: fd, State: h.state(fd)}
			if a, err := h.so.Getsockname(fd); err == nil && a.IsValid() {
				sv.Local = a.String()
			}
			if a, err := h.so.Getpeername(fd); err == nil && a.IsValid() {
				sv.Peer = a.String()
			}
			v.Sockets = append(v.Sockets, sv)
		}
		s.Hosts = append(s.Hosts, v)
	}
	pg.qmu.Lock()
	defer pg.qmu.Unlock()
	s.Flight = append([]*playPacket{}, pg.flight...)
	s.Events = append([]playEvent{}, pg.events...)
	s.Dropped, s.Refused = pg.dropped, pg.overflow
	return s
}

// playNet and playClock are the bodies of the network's and the clock's requests.
type playNet struct {
	Op  string `json:"op"`  // deliver, drop, deliver-all, delay, dup, swap
	ID  int    `json:"id"`  // the packet; 0: the oldest in flight
	ID2 int    `json:"id2"` // swap: the other packet
	Ms  int    `json:"ms"`  // delay: milliseconds of virtual time
}

type playClock struct {
	Op string `json:"op"` // next, advance
	Ms int64  `json:"ms"` // advance: milliseconds
}

// playReply is the answer to every request: the result, or the error,
// and the state after it.
type playReply struct {
	Result *playResult `json:"result,omitempty"`
	Info   string      `json:"info,omitempty"`
	Error  string      `json:"error,omitempty"`
	State  playState   `json:"state"`
}

// handler serves the page and the API:
//
//	GET  /             the page
//	GET  /api/state    the state
//	POST /api/call     {"host":"A","op":"connect","fd":3,"port":80}
//	POST /api/net      {"op":"deliver"|"drop"|"deliver-all","id":0}
//	POST /api/clock    {"op":"next"} or {"op":"advance","ms":200}
//	POST /api/reset    two fresh hosts
//	POST /api/load     {"session":"A.socket,A.bind.3.80","lesson":"handshake"}: replay a session
//	POST /api/back     undo the last step (replay all but it)
//	POST /api/kernel   run the session against Linux (root and TUN): the two ladders, what differs
//	GET  /api/lessons  the lessons: [{"name":"handshake","title":...,"try":...}]
//	GET  /api/export/script, /api/export/pcap: the session as a packet script, as a pcap
func (pg *playground) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
		w.Write(playPage)
	})
	mux.HandleFunc("GET /api/state", func(w http.ResponseWriter, r *http.Request) {
		pg.serve(w, r, nil, func() (*playResult, string, error) { return nil, "", nil })
	})
	mux.HandleFunc("POST /api/call", func(w http.ResponseWriter, r *http.Request) {
		var c playCall
		pg.serve(w, r, &c, func() (*playResult, string, error) { return pg.step(playStep{Call: &c}) })
	})
	mux.HandleFunc("POST /api/net", func(w http.ResponseWriter, r *http.Request) {
		var n playNet
		pg.serve(w, r, &n, func() (*playResult, string, error) { return pg.step(playStep{Net: &n}) })
	})
	mux.HandleFunc("POST /api/clock", func(w http.ResponseWriter, r *http.Request) {
		var c playClock
		pg.serve(w, r, &c, func() (*playResult, string, error) { return pg.step(playStep{Clock: &c}) })
	})
	mux.HandleFunc("POST /api/reset", func(w http.ResponseWriter, r *http.Request) {
		pg.serve(w, r, nil, func() (*playResult, string, error) { return nil, "", pg.reset() })
	})
	mux.HandleFunc("POST /api/load", func(w http.ResponseWriter, r *http.Request) {
		var l playLoad
		pg.serve(w, r, &l, func() (*playResult, string, error) { return nil, "", pg.load(l) })
	})
	mux.HandleFunc("GET /api/export/script", func(w http.ResponseWriter, r *http.Request) {
		pg.mu.Lock()
		text, err := pg.exportScript()
		pg.mu.Unlock()
		pg.download(w, "play.pkt", "text/plain; charset=utf-8", []byte(text), err)
	})
	mux.HandleFunc("GET /api/export/pcap", func(w http.ResponseWriter, r *http.Request) {
		pg.mu.Lock()
		b, err := pg.exportPcap()
		pg.mu.Unlock()
		pg.download(w, "play.pcap", "application/vnd.tcpdump.pcap", b, err)
	})
	mux.HandleFunc("POST /api/kernel", func(w http.ResponseWriter, r *http.Request) {
		pg.serveKernel(w)
	})
	mux.HandleFunc("GET /api/lessons", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(lessonList())
	})
	mux.HandleFunc("POST /api/back", func(w http.ResponseWriter, r *http.Request) {
		pg.serve(w, r, nil, func() (*playResult, string, error) { return nil, "", pg.back() })
	})
	return mux
}

// reset replaces both hosts with fresh ones. pg.mu is held.
func (pg *playground) reset() error {
	fresh, err := newPlayground()
	if err != nil {
		return err
	}
	pg.close()
	pg.qmu.Lock()
	defer pg.qmu.Unlock()
	pg.clk, pg.t0, pg.hosts = fresh.clk, fresh.t0, fresh.hosts
	pg.flight, pg.nextID, pg.events, pg.dropped, pg.flows, pg.overflow = nil, 0, nil, 0, trace.Flows{}, 0
	pg.log, pg.lesson = nil, ""
	pg.tape, pg.captured, pg.tapeFull = nil, nil, false
	for _, h := range pg.hosts {
		h.pg = pg
	}
	return nil
}

// serve decodes the request's body into body (if not nil), runs do under
// the playground's lock, and answers with its result and the state.
func (pg *playground) serve(w http.ResponseWriter, r *http.Request, body any, do func() (*playResult, string, error)) {
	w.Header().Set("Content-Type", "application/json")
	if body != nil {
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, playMaxBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]string{"error": "bad request: " + err.Error()})
			return
		}
	}
	pg.mu.Lock()
	res, info, err := do()
	reply := playReply{Result: res, Info: info, State: pg.state()}
	pg.mu.Unlock()
	if err != nil {
		reply.Error = err.Error()
		w.WriteHeader(http.StatusUnprocessableEntity)
	}
	json.NewEncoder(w).Encode(reply)
}

// download answers with a file, or the error.
func (pg *playground) download(w http.ResponseWriter, name, typ string, b []byte, err error) {
	if err != nil {
		http.Error(w, "export: "+err.Error(), http.StatusUnprocessableEntity)
		return
	}
	w.Header().Set("Content-Type", typ)
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Write(b)
}
