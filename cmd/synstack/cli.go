package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/netutil"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/admin"
)

// What the commands share besides the TUN device: usage text that lists
// every flag with its default, the checks of addresses and ports made
// before anything is created, the signals that stop a command or ask for
// its counters, and the admin endpoint.

// usageFunc returns a flag.FlagSet's Usage: text, then every flag with its
// default (flag.PrintDefaults leaves out zero defaults; an operator wants
// to see them all).
func usageFunc(w io.Writer, fs *flag.FlagSet, text string) func() {
	return func() {
		fmt.Fprint(w, text)
		printFlags(w, fs)
	}
}

// printFlags lists fs's flags, one per entry, each with its default.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	var b strings.Builder
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(&b, "  --%s", f.Name)
		if name != "" {
			b.WriteString(" " + name)
		}
		def := f.DefValue
		switch {
		case def == "":
			def = "none"
		case name == "string" || strings.ContainsAny(def, " \t"):
			def = strconv.Quote(def)
		}
		fmt.Fprintf(&b, "\n    \t%s (default %s)\n", strings.ReplaceAll(usage, "\n", "\n    \t"), def)
	})
	io.WriteString(w, b.String())
}

// checkPort parses a port number given to flag.
func checkPort(flagName, value, port string) (uint16, error) {
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("--%s %s: the port must be a number from 1 to 65535", flagName, value)
	}
	return uint16(n), nil
}

// checkListen checks --listen's value against the stack's addresses: a
// port from 1 to 65535, and a host that is empty (every address of the
// stack) or one of the stack's addresses.
func checkListen(value string, addrs prefixList) error {
	host, port, err := net.SplitHostPort(value)
	if err != nil {
		return fmt.Errorf("--listen %s: want :PORT or ADDR:PORT, as :8080: %v", value, err)
	}
	if _, err := checkPort("listen", value, port); err != nil {
		return err
	}
	if host == "" {
		return nil
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("--listen %s: the host must be an IP address of the stack (it resolves no names), or empty: :%s", value, port)
	}
	a = a.Unmap()
	if a.IsUnspecified() {
		return nil
	}
	for _, p := range addrs {
		if p.Addr() == a {
			return nil
		}
	}
	return fmt.Errorf("--listen %s: %s is not an address of the stack (--addr %s); listen on :%s or on one of them", value, a, addrs.String(), port)
}

// adminListenAddr is the address --admin's value means: only a port
// (":9180") is loopback, 127.0.0.1:9180. It reports whether the address
// is reachable from beyond the machine (not loopback).
func adminListenAddr(value string) (addr string, public bool, err error) {
	host, port, err := net.SplitHostPort(value)
	if err != nil {
		return "", false, fmt.Errorf("--admin %s: want :PORT (loopback) or HOST:PORT, as :9180: %v", value, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", false, fmt.Errorf("--admin %s: the port must be a number from 0 (any free port) to 65535", value)
	}
	switch {
	case host == "":
		return net.JoinHostPort("127.0.0.1", port), false, nil
	case host == "localhost":
		return value, false, nil
	}
	if a, err := netip.ParseAddr(host); err == nil && a.Unmap().IsLoopback() {
		return value, false, nil
	}
	return value, true, nil
}

// listenAdmin listens for --admin before anything else is created, so that
// a busy port or a bad address fails the command at once. A non-loopback
// address works, with a warning on log.
// Without --admin (value is "") it listens for nothing and returns nil.
func listenAdmin(log io.Writer, cmd, value string) (net.Listener, error) {
	if value == "" {
		return nil, nil
	}
	addr, public, err := adminListenAddr(value)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		hint := "give another port, or stop what listens there"
		if errors.Is(err, syscall.EADDRNOTAVAIL) {
			hint = "give an address of this machine, or only :PORT for loopback"
		}
		return nil, fmt.Errorf("--admin %s: %w (%s)", value, err, hint)
	}
	if public {
		fmt.Fprintf(log, "synstack %s: %s\n", cmd, adminWarning(value))
	}
	return ln, nil
}

// adminWarning is what a command says when --admin listens beyond
// loopback.
func adminWarning(value string) string {
	return fmt.Sprintf("warning: --admin %s listens beyond loopback: whoever reaches it reads every connection and the counters; give only :PORT to keep it on 127.0.0.1", value)
}

// maxAdminConns bounds the admin endpoint's connections at once: more wait
// in the kernel's accept queue, costing the process nothing.
const maxAdminConns = 256

// serveAdmin serves the admin endpoints of st on ln and returns the
// function that stops them. Clients that hold connections cannot drown
// it: at most maxAdminConns are served at once, /events streams are
// capped by the admin handler, idle and slow clients are timed out.
func serveAdmin(ts *tunStack, ln net.Listener, obs *admin.Observer) func() {
	hs := &http.Server{
		Handler:           admin.Handler(ts.st, obs),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
	go hs.Serve(netutil.LimitListener(ln, maxAdminConns))
	ts.logf("admin endpoints on http://%s/ (metrics, /debug/sockets, live page)", ln.Addr())
	// Close, not Shutdown: the /events streams never end by themselves.
	return func() { hs.Close() }
}

// adminFlag registers --admin on fs.
func adminFlag(fs *flag.FlagSet) *string {
	return fs.String("admin", "", "serve /metrics, /debug/sockets and the live state-diagram page on `ADDR`: :PORT is 127.0.0.1:PORT (what synstack ss reads); another host warns")
}

// adminConfig returns the observer for the admin endpoints and a stack
// Config that feeds it, or nil and an empty Config without --admin.
func adminConfig(on bool) (*admin.Observer, synstack.Config) {
	if !on {
		return nil, synstack.Config{}
	}
	obs := admin.NewObserver()
	return obs, synstack.Config{OnTransition: obs.OnTransition}
}

// parseFlagsOnly parses args with fs for a command (cmd) that takes flags
// only: a positional argument is an error.
func parseFlagsOnly(fs *flag.FlagSet, cmd string, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags only; see synstack %s --help)", fs.Arg(0), cmd)
	}
	return nil
}

// commandError names the command in err, unless it is flag.ErrHelp (the
// usage is printed, and the command succeeds).
func commandError(cmd string, err error) error {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return fmt.Errorf("%s: %w", cmd, err)
}

// exactlyOne reports whether exactly one of the flags is on: a command's
// modes exclude each other.
func exactlyOne(on ...bool) bool {
	n := 0
	for _, o := range on {
		if o {
			n++
		}
	}
	return n == 1
}

// runSignals are the signals of a command that runs until stopped (serve,
// forward, impair): SIGINT or SIGTERM ends ctx, SIGUSR1 asks for the
// counters.
type runSignals struct {
	ctx  context.Context // done at SIGINT or SIGTERM
	stop context.CancelFunc
	usr1 chan os.Signal
}

// notifySignals starts catching the signals; stopSignals ends it.
func notifySignals() *runSignals {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	usr1 := make(chan os.Signal, 1)
	if statsSignal != nil {
		signal.Notify(usr1, statsSignal)
	}
	return &runSignals{ctx: ctx, stop: stop, usr1: usr1}
}

// wait calls onUsr1 at each SIGUSR1 until SIGINT or SIGTERM.
func (s *runSignals) wait(onUsr1 func()) {
	for s.ctx.Err() == nil {
		select {
		case <-s.ctx.Done():
		case <-s.usr1:
			onUsr1()
		}
	}
}

// stopSignals stops catching the signals: a second Ctrl-C then ends the
// program at once.
func (s *runSignals) stopSignals() {
	s.stop()
	signal.Stop(s.usr1)
}
