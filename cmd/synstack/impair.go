package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/synstack/synstack/link/sim"
	"github.com/synstack/synstack/link/tun"
)

// impair: a bridge between two TUN devices that applies link/sim's faults
// to real packets (this kernel has no netem), so that the kernel's TCP and
// synstack can be compared on the same bad path.

const impairUsage = `usage: synstack impair --a NAME --b NAME [--delay D] [--jitter D] [--loss P]
                       [--reorder P] [--duplicate P] [--corrupt P] [--rate R] [--queue N]
                       [--seed N] [--mtu N]

Creates the TUN devices NAME (or attaches to them) and carries every packet
that arrives on one to the other, through link/sim's faults: the packets the
kernel routes into --a come out of --b, and back. Each fault applies to both
directions; --X-ab and --X-ba (for example --loss-ab 2%) set one direction
only ("ab": what enters --a and leaves --b). Probabilities are written 1% or
0.01; rates as tc writes them: 100mbit, 1gbit, 500kbit (bits per second),
or 10mbps (bytes per second); --queue bounds the packets waiting for the
rate (tail drop). The devices are plain TUN devices (no offloads: every
packet MTU-sized, so that each is lost or delayed alone). Give each device's
kernel side its address, or move each device into a network namespace of its
own (ip link set NAME netns NS), at any time after impair has started.
SIGUSR1 prints the counters as a JSON line on stderr, as does the exit;
SIGINT or SIGTERM removes the devices impair created. Needs root or
CAP_NET_ADMIN: sudo "$(go env GOPATH)/bin/synstack" impair ...

flags:
`

// impairOpts are the option flags, each in three forms: both directions,
// -ab, -ba.
var impairOpts = []struct {
	name, usage string
	set         func(o *sim.Options, v string) error
}{
	{"delay", "one-way `delay`, as 10ms", func(o *sim.Options, v string) (err error) { o.Delay, err = parseNonNegDuration(v); return }},
	{"jitter", "a random extra delay in [0, `D`) per packet (reorders too)", func(o *sim.Options, v string) (err error) { o.Jitter, err = parseNonNegDuration(v); return }},
	{"loss", "probability of losing a packet, as 1% or 0.01", func(o *sim.Options, v string) (err error) { o.Loss, err = parseProb(v); return }},
	{"reorder", "probability of holding a packet back by the delay (at least 1 ms) so that later ones overtake it", func(o *sim.Options, v string) (err error) { o.Reorder, err = parseProb(v); return }},
	{"duplicate", "probability of delivering a packet twice", func(o *sim.Options, v string) (err error) { o.Duplicate, err = parseProb(v); return }},
	{"corrupt", "probability of flipping one bit of a packet", func(o *sim.Options, v string) (err error) { o.Corrupt, err = parseProb(v); return }},
	{"rate", "bottleneck `rate`, as 100mbit (0: none)", func(o *sim.Options, v string) (err error) { o.Bandwidth, err = parseRate(v); return }},
	{"queue", "packets waiting for the rate, at most (default 1000, as netem's limit)", func(o *sim.Options, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("want a number of packets, at least 1")
		}
		o.QueueLen = n
		return nil
	}},
}

// impairConfig is what the command line asks for.
type impairConfig struct {
	a, b   string
	mtu    int
	ab, ba sim.Options
}

func parseImpair(stderr io.Writer, args []string) (*impairConfig, error) {
	fs := flag.NewFlagSet("impair", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &impairConfig{}
	fs.StringVar(&c.a, "a", "", "the first TUN device's `NAME` (created if it does not exist, removed at exit if created)")
	fs.StringVar(&c.b, "b", "", "the second TUN device's `NAME`")
	fs.IntVar(&c.mtu, "mtu", tun.DefaultMTU, "both devices' MTU")
	seed := fs.Uint64("seed", 1, "seed of the fault decisions (each direction draws its own)")
	vals := make([][3]string, len(impairOpts))
	for i, o := range impairOpts {
		fs.StringVar(&vals[i][0], o.name, "", o.usage)
		fs.StringVar(&vals[i][1], o.name+"-ab", "", "--"+o.name+" for the packets from --a to --b only")
		fs.StringVar(&vals[i][2], o.name+"-ba", "", "--"+o.name+" for the packets from --b to --a only")
	}
	fs.Usage = usageFunc(stderr, fs, impairUsage)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("impair: unexpected argument %q", fs.Arg(0))
	}
	if c.a == "" || c.b == "" || c.a == c.b {
		return nil, errors.New("impair: --a NAME and --b NAME are required, and different (the two TUN devices, as --a imp0 --b imp1)")
	}
	if c.mtu < 576 || c.mtu > 65535 {
		return nil, fmt.Errorf("impair: --mtu %d: want 576 to 65535", c.mtu)
	}
	c.ab = sim.Options{Seed: *seed, MTU: c.mtu}
	c.ba = c.ab
	for i, o := range impairOpts {
		for d, opts := range []*sim.Options{&c.ab, &c.ba} {
			v := vals[i][1+d]
			flagName := o.name + []string{"-ab", "-ba"}[d]
			if v == "" {
				v, flagName = vals[i][0], o.name
			}
			if v == "" {
				continue
			}
			if err := o.set(opts, v); err != nil {
				return nil, fmt.Errorf("impair: --%s %s: %w", flagName, v, err)
			}
		}
	}
	for _, o := range []*sim.Options{&c.ab, &c.ba} {
		if o.Bandwidth > 0 && o.QueueLen == 0 {
			o.QueueLen = 1000
		}
	}
	return c, nil
}

func parseNonNegDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, errors.New("want a duration, as 10ms")
	}
	return d, nil
}

// parseProb parses a probability: 1%, 0.5%, 0.01.
func parseProb(v string) (float64, error) {
	s, scale := v, 1.0
	if t, ok := strings.CutSuffix(v, "%"); ok {
		s, scale = t, 100
	}
	p, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || p != p || p < 0 || p/scale > 1 {
		return 0, errors.New("want a probability, as 1% or 0.01")
	}
	return p / scale, nil
}

// parseRate parses a rate as tc does: a number and a unit, bit, kbit,
// mbit, gbit, tbit (bits per second, powers of 1000) or bps, kbps, mbps,
// gbps, tbps (bytes per second); a bare number is bits per second.
func parseRate(v string) (int64, error) {
	s := strings.ToLower(strings.TrimSpace(v))
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], s[i:]
	}
	f, err := strconv.ParseFloat(num, 64)
	mult, ok := map[string]float64{"": 1, "bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "tbit": 1e12,
		"bps": 8, "kbps": 8e3, "mbps": 8e6, "gbps": 8e9, "tbps": 8e12}[unit]
	if err != nil || !ok || f < 0 || f*mult > 1e15 {
		return 0, errors.New("want a rate, as 100mbit, 1gbit or 10mbps")
	}
	return int64(f * mult), nil
}

// describe says what a direction does, for the log.
func describe(o sim.Options) string {
	var parts []string
	if o.Delay > 0 {
		parts = append(parts, "delay "+o.Delay.String())
	}
	if o.Jitter > 0 {
		parts = append(parts, "jitter "+o.Jitter.String())
	}
	for _, p := range []struct {
		name string
		v    float64
	}{{"loss", o.Loss}, {"reorder", o.Reorder}, {"duplicate", o.Duplicate}, {"corrupt", o.Corrupt}} {
		if p.v > 0 {
			parts = append(parts, fmt.Sprintf("%s %g%%", p.name, p.v*100))
		}
	}
	if o.Bandwidth > 0 {
		parts = append(parts, fmt.Sprintf("rate %g mbit/s, queue %d", float64(o.Bandwidth)/1e6, o.QueueLen))
	}
	if len(parts) == 0 {
		return "no impairment"
	}
	return strings.Join(parts, ", ")
}

// impairStats is what impair prints on SIGUSR1 and at exit.
type impairStats struct {
	AB sim.Stats `json:"a>b"`
	BA sim.Stats `json:"b>a"`
	A  tun.Stats `json:"a"`
	B  tun.Stats `json:"b"`
}

// impairer is a running bridge.
type impairer struct {
	a, b *tun.Endpoint
	br   *sim.Bridge
}

func openImpair(c *impairConfig) (*impairer, error) {
	a, err := openTun(tun.Options{Name: c.a, MTU: c.mtu, NoOffload: true})
	if err != nil {
		return nil, errNotRoot("impair", err)
	}
	b, err := openTun(tun.Options{Name: c.b, MTU: c.mtu, NoOffload: true})
	if err != nil {
		a.Close()
		return nil, errNotRoot("impair", err)
	}
	return &impairer{a: a, b: b, br: sim.NewBridge(a, b, c.ab, c.ba)}, nil
}

func (im *impairer) stats() impairStats {
	ab, ba := im.br.Stats()
	return impairStats{AB: ab, BA: ba, A: im.a.Stats(), B: im.b.Stats()}
}

func (im *impairer) close() error {
	im.br.Close()
	return errors.Join(im.a.Close(), im.b.Close())
}

func runImpair(stderr io.Writer, args []string) error {
	c, err := parseImpair(stderr, args)
	if err != nil {
		return err
	}
	sig := notifySignals()
	defer sig.stopSignals()

	im, err := openImpair(c)
	if err != nil {
		return fmt.Errorf("impair: %w", err)
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(stderr, "synstack impair: %s\n", fmt.Sprintf(format, args...))
	}
	for _, ep := range []*tun.Endpoint{im.a, im.b} {
		how := "attached"
		if ep.Created() {
			how = "created"
		}
		logf("device %s (%s, mtu %d, offloads: %s)", ep.Name(), how, ep.MTU(), ep.Offload())
	}
	logf("%s > %s: %s", c.a, c.b, describe(c.ab))
	logf("%s > %s: %s", c.b, c.a, describe(c.ba))
	logf("seed %d; bridging (configure the kernel sides, or move the devices to other namespaces, at any time)", c.ab.Seed)
	printStats := func() {
		enc := json.NewEncoder(stderr)
		enc.SetEscapeHTML(false) // "a>b", not "a\u003eb"
		enc.Encode(im.stats())
	}
	sig.wait(printStats)
	printStats()
	if err := im.close(); err != nil {
		return fmt.Errorf("impair: %w", err)
	}
	logf("stopped")
	return nil
}
