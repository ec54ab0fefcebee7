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
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/synstack/synstack"
)

// get: an HTTP download over synstack on a TUN device, from a server that
// the kernel reaches (nginx, python3 -m http.server on the kernel side).

const getUsage = `usage: synstack get --tun NAME --addr CIDR [--host-addr CIDR] [--no-offload] [--mtu N]
                    [--dns ADDR] [--wait D] [-o FILE] [-q] URL

Creates the TUN device NAME (or attaches to it), gives the stack the address
CIDR, and downloads URL (http:// or https://) over it, to FILE or to standard
output. The URL's host is an IP address, or a name resolved by the DNS server
at --dns ADDR through the stack (the standard library's resolver over
synstack's UDP, TCP for long answers). The kernel's side of the device is
configured with --host-addr, or by hand (get waits for it).
A progress bar is drawn when standard error is a terminal. Needs root or
CAP_NET_ADMIN: sudo "$(go env GOPATH)/bin/synstack" get ...

flags:
`

func runGet(stdout, stderr io.Writer, args []string) error {
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var tf tunFlags
	tf.register(fs)
	out := fs.String("o", "", "write the body to `FILE` instead of standard output")
	quiet := fs.Bool("q", false, "print nothing but errors")
	wait := fs.Duration("wait", 30*time.Second, "how long to wait for the kernel's side of the device")
	dnsFlag := fs.String("dns", "", "resolve the URL's host name with the DNS server at `ADDR` (10.99.0.1 or 10.99.0.1:53, [2001:db8::1]:53), through the stack")
	fs.Usage = usageFunc(stderr, fs, getUsage)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("get: want one URL, got %d arguments (see synstack get --help)", len(pos))
	}
	if *wait <= 0 {
		return fmt.Errorf("get: --wait %v: want a positive duration, as 30s", *wait)
	}
	if err := tf.check(); err != nil {
		return fmt.Errorf("get: %w", err)
	}
	u, err := url.Parse(pos[0])
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("get: %s: want an http:// or https:// URL", pos[0])
	}
	dns, err := parseDNSServer(*dnsFlag)
	if err != nil {
		return fmt.Errorf("get: --dns %s: %w", *dnsFlag, err)
	}
	if _, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err != nil && !dns.IsValid() {
		return fmt.Errorf("get: %s: the host must be an IP address, or give --dns ADDR, a DNS server to resolve it with", pos[0])
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logw := stderr
	if *quiet {
		logw = io.Discard
	}
	ts, err := openTunStack(logw, "get", &tf, synstack.Config{})
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	err = get(ctx, ts, u.String(), dns, *out, *wait, stdout, stderr, *quiet)
	if cerr := ts.close(); err == nil && cerr != nil {
		err = fmt.Errorf("get: %w", cerr)
	}
	return err
}

// get waits for the kernel's side, downloads rawURL to out (or stdout),
// resolving its host name with the DNS server dns if it is valid, and
// closes the connection.
func get(ctx context.Context, ts *tunStack, rawURL string, dns netip.AddrPort, out string, wait time.Duration, stdout, stderr io.Writer, quiet bool) error {
	wctx, cancel := context.WithTimeout(ctx, wait)
	err := ts.waitKernel(wctx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return errors.New("get: interrupted")
		}
		return fmt.Errorf("get: the kernel's side of %s was not configured within %v (%s, or --host-addr)", ts.ep.Name(), wait, ts.hint())
	}
	dial := ts.st.DialContext
	if dns.IsValid() {
		dial = resolvingDialer(ts, dns)
	}
	tr := &http.Transport{
		DialContext:        dial,
		DisableCompression: true, // the bytes as they are on the server
		MaxIdleConns:       1,
		IdleConnTimeout:    time.Second,
	}
	defer func() {
		tr.CloseIdleConnections()
		ts.settle(time.Second)
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	start := time.Now()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return errors.New("get: interrupted")
		}
		return fmt.Errorf("get: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("get: %s: %s", rawURL, resp.Status)
	}
	dst := stdout
	var f *os.File
	if out != "" {
		if f, err = os.Create(out); err != nil {
			return fmt.Errorf("get: %w", err)
		}
		dst = f
	}
	var bar *progressBar
	if sf, ok := stderr.(*os.File); ok && !quiet && term.IsTerminal(int(sf.Fd())) {
		width, _, err := term.GetSize(int(sf.Fd()))
		if err != nil || width <= 0 {
			width = 80
		}
		bar = startProgress(stderr, resp.ContentLength, width)
	}
	var src io.Reader = resp.Body
	if bar != nil {
		src = io.TeeReader(resp.Body, bar)
	}
	n, err := io.Copy(dst, src)
	if bar != nil {
		bar.stop()
	}
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = fmt.Errorf("got %d bytes of %d", n, resp.ContentLength)
	}
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(out)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return errors.New("get: interrupted")
		}
		return fmt.Errorf("get: %s: %w", rawURL, err)
	}
	if !quiet {
		el := time.Since(start)
		to := ""
		if out != "" {
			to = " to " + out
		}
		fmt.Fprintf(stderr, "synstack get: %d bytes%s in %v (%s/s)\n", n, to, el.Round(time.Millisecond), human(float64(n)/el.Seconds()))
		ls := ts.ep.Stats()
		ts.logf("link %s: %d packets in (%d large, coalesced by the kernel), %d out in %d writes", ts.ep.Name(), ls.PacketsIn, ls.GSOIn, ls.PacketsOut, ls.WritesOut)
	}
	return nil
}

// parseDNSServer parses --dns: an IP address, with a port or not (53).
// The empty string is no server: the zero AddrPort.
func parseDNSServer(s string) (netip.AddrPort, error) {
	if s == "" {
		return netip.AddrPort{}, nil
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return netip.AddrPortFrom(a.Unmap(), 53), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Port() == 0 {
		return netip.AddrPort{}, errors.New("want the DNS server's IP address, with a port if not 53 (10.99.0.1, 10.99.0.1:5353, [2001:db8::1]:53)")
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// resolvingDialer is the stack's DialContext for addresses whose host may
// be a name: the name is resolved with Stack.Resolver(dns) and each of its
// addresses dialed in turn until one answers.
func resolvingDialer(ts *tunStack, dns netip.AddrPort) func(ctx context.Context, network, addr string) (net.Conn, error) {
	r := ts.st.Resolver(dns)
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if _, err := netip.ParseAddr(host); err == nil {
			return ts.st.DialContext(ctx, network, addr)
		}
		ips, err := r.LookupNetIP(ctx, "ip", host)
		if err == nil && len(ips) == 0 {
			err = &net.DNSError{Err: "no addresses", Name: host, Server: dns.String(), IsNotFound: true}
		}
		if err != nil {
			return nil, err
		}
		ts.logf("%s is %v (DNS server %s)", host, ips, dns)
		for _, ip := range ips {
			var c net.Conn
			if c, err = ts.st.DialContext(ctx, network, net.JoinHostPort(ip.Unmap().String(), port)); err == nil {
				return c, nil
			}
		}
		return nil, err
	}
}

// progressBar draws a download's progress on a terminal, on one line
// redrawn a few times a second.
type progressBar struct {
	w     io.Writer
	total int64 // -1: unknown
	width int
	start time.Time
	n     atomic.Int64
	done  chan struct{}
	wg    sync.WaitGroup
}

func startProgress(w io.Writer, total int64, width int) *progressBar {
	p := &progressBar{w: w, total: total, width: width, start: time.Now(), done: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-t.C:
				p.draw()
			}
		}
	}()
	return p
}

// Write counts bytes: the bar is the writer side of an io.TeeReader.
func (p *progressBar) Write(b []byte) (int, error) {
	p.n.Add(int64(len(b)))
	return len(b), nil
}

func (p *progressBar) stop() {
	close(p.done)
	p.wg.Wait()
	p.draw()
	fmt.Fprintln(p.w)
}

func (p *progressBar) draw() {
	fmt.Fprint(p.w, "\r"+progressLine(p.n.Load(), p.total, time.Since(p.start), p.width))
}

// progressLine is one frame of the bar, at most width columns:
//
//	45% [=========>           ]  28.8 MiB / 64.0 MiB  52.3 MiB/s  eta 1s
func progressLine(n, total int64, el time.Duration, width int) string {
	rate := 0.0
	if el > 0 {
		rate = float64(n) / el.Seconds()
	}
	if total < 0 {
		s := fmt.Sprintf("%s  %s/s", human(float64(n)), human(rate))
		return s + strings.Repeat(" ", max(0, width-1-len(s)))
	}
	frac := 1.0
	if total > 0 {
		frac = min(1, float64(n)/float64(total))
	}
	eta := "-"
	if rate > 0 && n < total {
		eta = time.Duration(float64(total-n) / rate * float64(time.Second)).Round(time.Second).String()
	} else if n >= total {
		eta = "0s"
	}
	tail := fmt.Sprintf(" %s / %s  %s/s  eta %s", human(float64(n)), human(float64(total)), human(rate), eta)
	head := fmt.Sprintf("%3.0f%% ", frac*100)
	barW := width - 1 - len(head) - len(tail) - 2
	if barW < 5 {
		s := head + tail
		return s[:min(len(s), max(width-1, 0))]
	}
	fill := int(frac * float64(barW))
	bar := strings.Repeat("=", fill)
	if fill < barW {
		bar += ">" + strings.Repeat(" ", barW-fill-1)
	}
	return head + "[" + bar + "]" + tail
}

// human formats a byte count with a binary unit.
func human(b float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for b >= 1024 && i < len(units)-1 {
		b /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f %s", b, units[i])
	}
	return fmt.Sprintf("%.1f %s", b, units[i])
}
