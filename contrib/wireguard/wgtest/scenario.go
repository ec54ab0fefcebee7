package wgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// bodySeed seeds the stream the HTTP server serves.
var bodySeed = [32]byte{'w', 'g', 't', 'e', 's', 't'}

// body returns the deterministic stream whose first n bytes /big serves.
func body() io.Reader { return rand.NewChaCha8(bodySeed) }

// Serve serves HTTP on ln until ln is closed: /big?n=N answers N bytes of
// the deterministic stream CheckBody checks (with its Content-Length),
// /sink reads the request body to its end and answers its length, and
// anything else a 2-byte answer. The returned server's Close stops it.
func Serve(ln net.Listener) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		if err != nil || n < 0 {
			http.Error(w, "bad n", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		io.CopyN(w, body(), n)
	})
	mux.HandleFunc("/sink", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, n)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	return srv
}

// CheckBody reads r to its end and checks that it is the first n bytes of
// /big's stream, byte for byte; the error names the first difference.
func CheckBody(r io.Reader, n int64) error {
	want := body()
	got, exp := make([]byte, 256<<10), make([]byte, 256<<10)
	var off int64
	for {
		k, err := io.ReadFull(r, got)
		if k > 0 {
			io.ReadFull(want, exp[:k])
			if i := firstDiff(got[:k], exp[:k]); i >= 0 {
				return fmt.Errorf("byte %d differs", off+int64(i))
			}
			off += int64(k)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return fmt.Errorf("after %d bytes: %w", off, err)
		}
	}
	if off != n {
		return fmt.Errorf("%d bytes, want %d", off, n)
	}
	return nil
}

// firstDiff is the index of the first byte where a and b differ, or -1.
func firstDiff(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return len(a)
}

// Curl runs the kernel's curl on url and checks that it receives the
// first n bytes of /big's stream; it returns the time curl took.
func Curl(ctx context.Context, url string, n int64) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, "curl", "-sS", "--fail", "--max-time", "600", "-o", "-", url)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	checkErr := CheckBody(out, n)
	io.Copy(io.Discard, out)
	waitErr := cmd.Wait()
	took := time.Since(start)
	if waitErr != nil {
		return took, fmt.Errorf("curl %s: %v: %s", url, waitErr, stderr.Bytes())
	}
	return took, checkErr
}

// ServeDNS answers the A and AAAA queries on pc for the names in answers
// (fully qualified, lower case) with their IPv4 and IPv6 addresses, with
// an empty answer for any other name or type, until pc is closed.
func ServeDNS(pc net.PacketConn, answers map[string][]netip.Addr) {
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if msg, ok := dnsAnswer(buf[:n], answers); ok {
			pc.WriteTo(msg, from)
		}
	}
}

// dnsAnswer builds the answer to the query q.
func dnsAnswer(q []byte, answers map[string][]netip.Addr) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(q)
	if err != nil {
		return nil, false
	}
	question, err := p.Question()
	if err != nil {
		return nil, false
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired})
	b.EnableCompression()
	b.StartQuestions()
	b.Question(question)
	b.StartAnswers()
	rh := dnsmessage.ResourceHeader{Name: question.Name, Class: dnsmessage.ClassINET, TTL: 60}
	for _, a := range answers[strings.ToLower(question.Name.String())] {
		switch {
		case a.Is4() && question.Type == dnsmessage.TypeA:
			b.AResource(rh, dnsmessage.AResource{A: a.As4()})
		case a.Is6() && question.Type == dnsmessage.TypeAAAA:
			b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: a.As16()})
		}
	}
	msg, err := b.Finish()
	return msg, err == nil
}

// EndToEnd runs the end-to-end scenario with the stack f makes, in the
// namespace the caller runs in: the kernel's curl fetches size bytes
// from an HTTP server on the stack over IPv4, and a sixteenth of that (at
// least 1 MiB) over IPv6, byte-exact; the stack resolves a name
// from a DNS server on the kernel's side (LookupContextHost); dig, if
// installed, resolves a name from a DNS server on the stack; ping, if
// installed, gets answers from the stack.
func EndToEnd(t *testing.T, f Factory, size int64) {
	tn, err := Up(f, "wgk0")
	if err != nil {
		t.Fatal(err)
	}
	defer tn.Close()
	ns := tn.Stack
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	for _, c := range []struct {
		name string
		addr netip.Addr
		size int64
	}{{"curl", StackAddr, size}, {"curl IPv6", StackAddr6, max(size/16, 1<<20)}} {
		t.Run(c.name, func(t *testing.T) {
			ln, err := ns.Listen(netip.AddrPortFrom(c.addr, 80))
			if err != nil {
				t.Fatal(err)
			}
			srv := Serve(ln)
			defer srv.Close()
			url := fmt.Sprintf("http://%s/big?n=%d", netip.AddrPortFrom(c.addr, 80), c.size)
			took, err := Curl(ctx, url, c.size)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: curl fetched %d MiB from %v byte-exact in %v (%.0f MiB/s)", ns.Name, c.size>>20, c.addr,
				took.Round(time.Millisecond), float64(c.size)/(1<<20)/took.Seconds())
		})
	}

	t.Run("LookupHost", func(t *testing.T) {
		pc, err := net.ListenPacket("udp", netip.AddrPortFrom(KernelAddr, 53).String())
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		want := netip.MustParseAddr("192.0.2.53")
		go ServeDNS(pc, map[string][]netip.Addr{"kernel-side.wg.test.": {want}})
		lctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		addrs, err := ns.LookupContextHost(lctx, "kernel-side.wg.test")
		if err != nil || len(addrs) != 1 || addrs[0] != want.String() {
			t.Fatalf("%s: LookupContextHost: %v, %v; want [%v]", ns.Name, addrs, err, want)
		}
	})

	t.Run("dig", func(t *testing.T) {
		if _, err := exec.LookPath("dig"); err != nil {
			t.Skip("skipped: needs dig (apt-get install -y bind9-dnsutils)")
		}
		pc, err := ns.ListenPacket(netip.AddrPortFrom(StackAddr, 53))
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		go ServeDNS(pc, map[string][]netip.Addr{"stack-side.wg.test.": {netip.MustParseAddr("192.0.2.54")}})
		out, err := exec.CommandContext(ctx, "dig", "+short", "+time=2", "+tries=3", "@"+StackAddr.String(),
			"stack-side.wg.test", "A").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "192.0.2.54" {
			t.Fatalf("%s: dig: %v: %q, want 192.0.2.54", ns.Name, err, out)
		}
	})

	t.Run("ping", func(t *testing.T) {
		if _, err := exec.LookPath("ping"); err != nil {
			t.Skip("skipped: needs ping (apt-get install -y iputils-ping)")
		}
		out, err := exec.CommandContext(ctx, "ping", "-c", "3", "-i", "0.2", "-W", "5", StackAddr.String()).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: ping: %v: %s", ns.Name, err, out)
		}
	})
}

// ErrNoCurl is returned by NeedTools when curl is missing.
var ErrNoCurl = errors.New("needs curl (apt-get install -y curl)")

// NeedTools reports what the scenario cannot run without (curl).
func NeedTools() error {
	if _, err := exec.LookPath("curl"); err != nil {
		return ErrNoCurl
	}
	return nil
}
