package script

import (
	"fmt"
	"math/bits"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/synstack/synstack/clock"
	"github.com/synstack/synstack/nstat"
	"github.com/synstack/synstack/tcp"
)

// Defaults, as packetdrill's config.c.
const (
	defaultTolerance     = 4000 * time.Microsecond
	defaultTolerancePct  = 12.5
	defaultPort          = 8080
	defaultMTU           = 1500
	firstRemotePort      = 47000 // the scripted peer's ports for passive opens count up from here
	remoteISNOffset      = 0x9a3c5e71
	maxSteps             = 2_000_000      // clock steps per script: a bound against runaway timers
	maxWaitAny           = 24 * time.Hour // how long a "*" outbound line waits
	stackSeed            = 1
	defaultStartUnixSecs = 1_700_000_000
)

// Packetdrill's addresses: the stack in 192.168.0.0/16 (or fd3d:fa7b:d17d::/48),
// the remote peer 192.0.2.1 (or 2001:db8::1).
var (
	localIPv4  = netip.MustParseAddr("192.168.0.1")
	remoteIPv4 = netip.MustParseAddr("192.0.2.1")
	localIPv6  = netip.MustParseAddr("fd3d:fa7b:d17d::1")
	remoteIPv6 = netip.MustParseAddr("2001:db8::1")
)

// pendingCall is a blocking system call that would have blocked.
type pendingCall struct {
	e        *event
	op       *callOp
	start    time.Duration // when it was made
	end      time.Duration // when the script expects it to return
	tol      time.Duration
	deadline time.Duration // end + tol: still pending then is a failure
	wakeAt   time.Duration // a poll timeout, or 0
}

// runner runs one script.
type runner struct {
	name string
	opts Options
	res  *Result

	// Configuration (header options).
	tol                   time.Duration
	tolPct                float64
	localIP, remoteIP     netip.Addr // on the wire
	bindAddr, connectAddr netip.Addr // in socket calls (IPv4-mapped for ipv4-mapped-ipv6)
	bindPort, connectPort uint16
	domain                int
	mtu                   int
	prefixLen4            int // the IPv4 subnet's prefix length (--netmask_ip)
	tcpCfg                tcp.Config
	tfo                   fastOpenConfig // tcp_fastopen and its key (fastopen.go)
	// strictSegments turns off the aggregation of consecutive segments
	// into the TSO/GSO super-segment a line expects.
	strictSegments bool
	// tsTick, if set, checks outbound TS val: the time it stands for may
	// differ from the script's by at most the tolerance.
	tsTick time.Duration
	// groSize, from --mss, is the segment size of an inbound packet
	// longer than it: packetdrill hands such a packet to the kernel as
	// one GSO packet of gso_size groSize (see inject).
	groSize int
	// queueFull: a "tc qdisc ... pfifo limit 0" ran before the link
	// existed (testLink.full).
	queueFull bool

	clock *clock.Virtual
	start time.Time
	lnk   *testLink
	st    stackHandle

	fds      map[int]int    // script fd -> live fd
	bound    map[int]uint16 // live fd -> port it was bound to
	sut      *sockUnderTest
	nextPort uint16

	queue   []sent
	pending []*pendingCall

	cur    *event // the event being run
	prev   *event // the previous timed event
	prevAt time.Duration
	steps  int
	lastFd int // live fd of the last system call
	// finished is set once the script's checks are over.
	finished bool
	// nstatBase is the counters at the last `nstat` (nil before one).
	nstatBase *nstat.Counters
	// pyVars are the names %{ }% blocks assigned.
	pyVars map[string]float64
	// epolls are the epoll instances, by live descriptor (epoll.go).
	epolls map[int]*epollSet
	// files are the scratch files the script made, path to size, and
	// openFiles those open, by live descriptor (files.go).
	files     map[string]int64
	openFiles map[int]*openFile
	nextFile  int
	// pipes are the ends of the runner's pipes, by live descriptor
	// (pipe.go).
	pipes map[int]*pipeEnd
}

func newRunner(name string, opts Options, res *Result) *runner {
	start := time.Unix(defaultStartUnixSecs, 0)
	r := &runner{
		name: name, opts: opts, res: res,
		tol: defaultTolerance, tolPct: defaultTolerancePct,
		bindPort: defaultPort, connectPort: defaultPort, mtu: defaultMTU, prefixLen4: 16,
		clock: clock.NewVirtual(start), start: start,
		fds: map[int]int{}, bound: map[int]uint16{}, nextPort: firstRemotePort, lastFd: -1,
	}
	return r
}

// elapsed is the virtual time since the start.
func (r *runner) elapsed() time.Duration { return r.clock.Now().Sub(r.start) }

func (r *runner) now() time.Duration { return r.elapsed() }

func (r *runner) errf(line int, format string, args ...any) error {
	return errorf(r.name, line, format, args...)
}

func (r *runner) warnf(line int, format string, args ...any) {
	w := errorf(r.name, line, format, args...).Error()
	r.res.Warnings = append(r.res.Warnings, w)
	r.verbosef("warning: %s", w)
}

// unsupported fails, or warns under SkipUnknown; it returns nil when the
// construct is to be skipped.
func (r *runner) unsupported(line int, format string, args ...any) error {
	if r.opts.SkipUnknown {
		r.warnf(line, "skipped: "+format, args...)
		return nil
	}
	return r.errf(line, "unsupported: "+format, args...)
}

func (r *runner) verbosef(format string, args ...any) {
	if r.opts.Verbose != nil {
		fmt.Fprintf(r.opts.Verbose, format+"\n", args...)
	}
}

// fmtTime prints a script time in seconds: "0.110", or "0.110500" when it
// is not a whole millisecond.
func fmtTime(d time.Duration) string {
	us := d.Microseconds()
	neg := ""
	if us < 0 {
		neg, us = "-", -us
	}
	if us%1000 == 0 {
		return fmt.Sprintf("%s%d.%03d", neg, us/1e6, us%1e6/1000)
	}
	return fmt.Sprintf("%s%d.%06d", neg, us/1e6, us%1e6)
}

// configure applies the header options.
func (r *runner) configure(opts []headerOption) error {
	version := "ipv4"
	var local, remote netip.Addr
	for _, o := range opts {
		switch o.name {
		case "ip_version":
			version = o.value
			if version != "ipv4" && version != "ipv6" && version != "ipv4-mapped-ipv6" {
				return r.errf(o.line, "bad --ip_version: %s", o.value)
			}
		case "tolerance_usecs":
			v, err := strconv.ParseInt(o.value, 10, 64)
			if err != nil || v <= 0 {
				return r.errf(o.line, "bad --tolerance_usecs: %s", o.value)
			}
			r.tol = time.Duration(v) * time.Microsecond
		case "tolerance_percent":
			v, err := strconv.ParseFloat(o.value, 64)
			if err != nil || v < 0 || v > 100 {
				return r.errf(o.line, "bad --tolerance_percent: %s", o.value)
			}
			r.tolPct = v
		case "bind_port", "connect_port":
			v, err := strconv.Atoi(o.value)
			if err != nil || v <= 0 || v > 0xffff {
				return r.errf(o.line, "bad --%s: %s", o.name, o.value)
			}
			if o.name == "bind_port" {
				r.bindPort = uint16(v)
			} else {
				r.connectPort = uint16(v)
			}
		case "strict_segments":
			r.strictSegments = true
		case "tcp_ts_ecr_scaled":
			// An inbound TS ecr that echoes no TS val the stack sent is
			// interpolated from the first one: the runner always does
			// that (packetdrill only with this option).
		case "tcp_ts_tick_usecs":
			v, err := strconv.Atoi(o.value)
			if err != nil || v < 0 || v > 1000000 {
				return r.errf(o.line, "bad --tcp_ts_tick_usecs: %s", o.value)
			}
			r.tsTick = time.Duration(v) * time.Microsecond
		case "mtu":
			v, err := strconv.Atoi(o.value)
			if err != nil || v < 576 || v > 65535 {
				return r.errf(o.line, "bad --mtu: %s", o.value)
			}
			r.mtu = v
		case "mss":
			// packetdrill hands an inbound segment longer than this to
			// the kernel as one GSO packet of gso_size mss.
			v, err := strconv.Atoi(o.value)
			if err != nil || v <= 0 {
				return r.errf(o.line, "bad --mss: %s", o.value)
			}
			r.groSize = v
		case "local_ip", "remote_ip", "gateway_ip":
			// An address may carry a prefix length (192.0.2.1/24).
			a, _, _ := strings.Cut(o.value, "/")
			ip, err := netip.ParseAddr(a)
			if err != nil {
				return r.errf(o.line, "bad --%s: %s", o.name, o.value)
			}
			switch o.name {
			case "local_ip":
				local = ip
			case "remote_ip":
				remote = ip
			}
		case "netmask_ip":
			ip, err := netip.ParseAddr(o.value)
			if err != nil || !ip.Is4() {
				return r.errf(o.line, "bad --netmask_ip: %s", o.value)
			}
			b := ip.As4()
			bits := netipMaskBits(b)
			if bits < 0 {
				return r.errf(o.line, "bad --netmask_ip: %s", o.value)
			}
			r.prefixLen4 = bits
		case "define":
			// -D NAME=VALUE, applied when the script was read.
			if _, _, ok := strings.Cut(o.value, "="); !ok {
				return r.errf(o.line, "bad --define: %s (expected NAME=VALUE)", o.value)
			}
		case "speed":
			r.warnf(o.line, "ignored option --%s: the runner's link has no speed", o.name)
		default:
			if err := r.unsupported(o.line, "option --%s", o.name); err != nil {
				return err
			}
		}
	}
	return r.setAddresses(version, local, remote)
}

// setAddresses sets the script's addresses for --ip_version: the given
// --local_ip and --remote_ip (invalid when not given: packetdrill's
// defaults), and the addresses its calls bind and connect to.
func (r *runner) setAddresses(version string, local, remote netip.Addr) error {
	v6 := version == "ipv6"
	for _, a := range []netip.Addr{local, remote} {
		if a.IsValid() && a.Is4() == v6 {
			return r.errf(0, "--local_ip and --remote_ip must be IPv%s addresses with --ip_version=%s", map[bool]string{true: "6", false: "4"}[v6], version)
		}
	}
	if !local.IsValid() {
		local = map[bool]netip.Addr{true: localIPv6, false: localIPv4}[v6]
	}
	if !remote.IsValid() {
		remote = map[bool]netip.Addr{true: remoteIPv6, false: remoteIPv4}[v6]
	}
	if local == remote {
		return r.errf(0, "--local_ip and --remote_ip are the same address %s", local)
	}
	switch version {
	case "ipv4":
		r.localIP, r.remoteIP, r.domain = local, remote, linuxAFInet
		r.bindAddr, r.connectAddr = local, remote
	case "ipv4-mapped-ipv6":
		r.localIP, r.remoteIP, r.domain = local, remote, linuxAFInet6
		r.bindAddr = netip.AddrFrom16(local.As16())
		r.connectAddr = netip.AddrFrom16(remote.As16())
	case "ipv6":
		r.localIP, r.remoteIP, r.domain = local, remote, linuxAFInet6
		r.bindAddr, r.connectAddr = local, remote
	}
	return nil
}

// netipMaskBits returns the prefix length of a netmask, or -1 if it is
// not one.
func netipMaskBits(b [4]byte) int {
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	n := bits.LeadingZeros32(^v)
	if v<<n != 0 {
		return -1
	}
	return n
}

// stackAddrs are the stack's addresses: the local address of the script's
// IP version in its subnet, and the default one of the other version.
func (r *runner) stackAddrs() []netip.Prefix {
	if r.localIP.Is4() {
		return []netip.Prefix{netip.PrefixFrom(r.localIP, r.prefixLen4), netip.PrefixFrom(localIPv6, 48)}
	}
	return []netip.Prefix{netip.PrefixFrom(localIPv4, 16), netip.PrefixFrom(r.localIP, 48)}
}

// startStack creates the stack (once), after the init commands.
func (r *runner) startStack(line int) error {
	if r.st != nil {
		return nil
	}
	r.lnk = &testLink{mtu: r.mtu, clock: r.clock, out: r.recordPacket, full: r.queueFull}
	st, err := newStack(stackConfig{
		link:  r.lnk,
		addrs: r.stackAddrs(),
		clock: r.clock,
		seed:  stackSeed,
		tcp:   r.tcpCfg,
		tfo:   r.tfo,
	})
	if err != nil {
		return r.errf(line, "cannot start the stack: %v", err)
	}
	r.st = st
	return nil
}

// close shuts the stack down.
func (r *runner) close() {
	r.finished = true
	if r.st != nil {
		func() {
			defer func() { _ = recover() }()
			_ = r.st.shutdown()
		}()
		r.st = nil
	}
}

// recordPacket is the test link's output: every packet the stack sends.
func (r *runner) recordPacket(pkt []byte, at time.Time) {
	if r.finished {
		return // the stack's own shutdown (RSTs of Close) is not checked
	}
	line := 0
	if r.cur != nil {
		line = r.cur.line
	}
	s := sent{pkt: pkt, at: at.Sub(r.start), line: line}
	r.queue = append(r.queue, s)
	if r.opts.Verbose != nil {
		if seg, err := parseSegment(pkt); err == nil {
			r.verbosef("%s   sent %s", fmtTime(s.at), formatPacket(">", seg.tcp.Flags, seg.tcp.Seq,
				len(seg.payload), seg.tcp.Ack, int(seg.tcp.Window), seg.options, true)+" (live numbers)")
		}
	}
}

// run runs the script's events.
func (r *runner) run(s *script) error {
	if err := r.configure(s.options); err != nil {
		return err
	}
	first := true
	for _, e := range s.events {
		r.cur = e
		if e.noTime {
			if err := r.command(e); err != nil {
				return err
			}
			continue
		}
		if e.kind != evCommand {
			// Commands before the first other event (sysctls) set up
			// the stack's defaults; it starts at the first other event.
			if err := r.startStack(e.line); err != nil {
				return err
			}
		}
		if first && e.at != 0 && e.timeKind != timeAny {
			return r.errf(e.line, "first event should be at time 0")
		}
		if r.prev != nil && isAbsolute(r.prev) && isAbsolute(e) && e.at < r.prev.at {
			return r.errf(e.line, "time goes backward in script from %s to %s", fmtTime(r.prev.at), fmtTime(e.at))
		}
		if err := r.runEvent(e); err != nil {
			return err
		}
		first = false
	}
	if r.st == nil {
		return nil // no packets nor calls: nothing to check
	}
	return r.finish()
}

func isAbsolute(e *event) bool {
	return e.timeKind == timeAbsolute || e.timeKind == timeAbsoluteRng
}

func isInbound(e *event) bool { return e.kind == evPacket && e.packet.inbound }

// resolve returns the event's script time (and the end of its range, or of
// its blocking call), as packetdrill's adjust_relative_event_times: a
// relative time counts from now, after the previous event, except that
// consecutive inbound packets count from the previous one's script time.
func (r *runner) resolve(e *event) (at, end time.Duration) {
	switch e.timeKind {
	case timeAbsolute, timeAbsoluteRng:
		at, end = e.at, e.end
		if e.kind == evSyscall && e.syscall.blocking {
			end = e.syscall.end
		}
	case timeRelative, timeRelativeRng:
		base := r.now()
		if r.prev != nil && isInbound(r.prev) && isInbound(e) {
			base = r.prevAt
		}
		at, end = base+e.at, base+e.end
		if e.kind == evSyscall && e.syscall.blocking {
			end = base + e.syscall.end
		}
	case timeAny:
		at = r.now()
	}
	return at, end
}

// tolerance is packetdrill's: the larger of --tolerance_usecs and
// --tolerance_percent of the time since the previous event.
func (r *runner) tolerance(at, from time.Duration, hasFrom bool) time.Duration {
	tol := r.tol
	if hasFrom {
		if dyn := time.Duration(r.tolPct / 100 * float64(at-from)); dyn > tol {
			tol = dyn.Truncate(time.Microsecond)
		}
	}
	return tol
}

// runEvent runs one timed event.
func (r *runner) runEvent(e *event) error {
	at, end := r.resolve(e)
	tol := r.tolerance(at, r.prevAt, r.prev != nil)
	defer func() { r.prev, r.prevAt = e, at }()
	if e.kind == evPacket && !e.packet.inbound {
		return r.expectPacket(e, at, end, tol)
	}
	if err := r.advanceTo(at); err != nil {
		return err
	}
	if now := r.now(); now > at+tol {
		return r.errf(e.line, "timing error: expected %s at %s sec but happened at %s sec; tolerance %s sec",
			describeEvent(e), fmtTime(at), fmtTime(now), fmtTime(tol))
	}
	if e.kind == evSyscall && e.syscall.blocking {
		r.verbosef("%s %s (may block until %s)", fmtTime(r.now()), e.text, fmtTime(end))
	} else {
		r.verbosef("%s %s", fmtTime(r.now()), e.text)
	}
	var err error
	switch e.kind {
	case evPacket:
		err = r.inject(e)
	case evSyscall:
		err = r.syscall(e, at, end, tol)
	case evCommand:
		err = r.command(e)
	case evCode:
		err = r.code(e)
	}
	if err != nil {
		return err
	}
	return r.retryPending()
}

func describeEvent(e *event) string {
	switch e.kind {
	case evPacket:
		if e.packet.inbound {
			return "inbound packet"
		}
		return "outbound packet"
	case evSyscall:
		return "system call start"
	case evCommand:
		return "command"
	}
	return "data collection for code"
}

// advanceTo moves the clock to target, a step at a time: each timer, each
// deadline of a pending call, then target; pending calls are retried after
// every step.
func (r *runner) advanceTo(target time.Duration) error {
	for {
		if err := r.step(target); err != nil {
			return err
		}
		if r.now() >= target {
			return nil
		}
	}
}

// step advances the clock to the earliest of the next timer, the next
// deadline or wake-up of a pending call, and limit; then retries pending
// calls and fails those past their deadline.
func (r *runner) step(limit time.Duration) error {
	r.steps++
	if r.steps > maxSteps {
		line := 0
		if r.cur != nil {
			line = r.cur.line
		}
		return r.errf(line, "gave up after %d clock steps (a timer that keeps re-arming itself?)", maxSteps)
	}
	now := r.now()
	for _, pc := range r.pending {
		if pc.deadline < limit {
			limit = pc.deadline
		}
		if pc.wakeAt > now && pc.wakeAt < limit {
			limit = pc.wakeAt
		}
	}
	if next, ok := r.clock.Next(); ok {
		if n := next.Sub(r.start); n < limit {
			limit = n
		}
	}
	if limit < now {
		limit = now
	}
	r.clock.AdvanceTo(r.start.Add(limit))
	return r.retryPending()
}

// retryPending retries every pending call, finishes those that complete,
// and fails those past their deadline.
func (r *runner) retryPending() error {
	r.epollSample()
	for i := 0; i < len(r.pending); i++ {
		pc := r.pending[i]
		done, res := pc.op.try()
		if !done {
			if r.now() >= pc.deadline {
				hint := ""
				if pc.e.syscall.errno == "EAGAIN" || pc.e.syscall.errno == "EINPROGRESS" {
					hint = " (the socket is blocking: set O_NONBLOCK to get " + pc.e.syscall.errno + ")"
				}
				return r.errf(pc.e.line, "expected %s to return at %s; still blocked at %s%s",
					pc.e.text, fmtTime(pc.end), fmtTime(r.now()), hint)
			}
			continue
		}
		r.pending = append(r.pending[:i], r.pending[i+1:]...)
		i--
		if err := r.complete(pc.e, pc.op, res, pc.start, pc.end, pc.tol); err != nil {
			return err
		}
	}
	return nil
}

// finish runs the end of the script: wait the tolerance for late packets,
// then fail any call still blocked; a packet sent after the last ">" line
// fails under Strict and is a warning otherwise.
func (r *runner) finish() error {
	end := r.now() + r.tol
	for _, pc := range r.pending {
		end = max(end, pc.deadline)
	}
	if err := r.advanceTo(end); err != nil {
		return err
	}
	for _, pc := range r.pending {
		return r.errf(pc.e.line, "expected %s to return at %s; still blocked at the end of the script (%s)",
			pc.e.text, fmtTime(pc.end), fmtTime(r.now()))
	}
	r.dropForeign()
	if len(r.queue) == 0 {
		return nil
	}
	s := r.queue[0]
	if r.opts.Strict {
		rel := "+" + fmtTime(s.at-r.prevAt) + " after"
		if s.at < r.prevAt {
			rel = fmtTime(r.prevAt-s.at) + " before"
		}
		return r.errf(s.line, "unexpected packet: got %s at %s, %s the last line's time (the script expects no more packets)",
			r.describeTrailing(), fmtTime(s.at), rel)
	}
	// packetdrill compares a packet only when a ">" line asks for one:
	// what the stack sends after the last one goes unnoticed.
	for _, s := range r.queue {
		r.warnf(s.line, "ignored a packet sent after the last outbound line: %s at %s (--strict fails on it)",
			r.describeSent(s), fmtTime(s.at))
	}
	return nil
}
