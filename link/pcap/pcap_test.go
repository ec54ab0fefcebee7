package pcap_test

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/clock"
	"github.com/synstack/synstack/link/pcap"
	"github.com/synstack/synstack/link/sim"
	"github.com/synstack/synstack/wire"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// converse runs one connection between two stacks (IPv4 or IPv6) on a
// simulated link whose client end is tapped, and returns the capture.
func converse(t *testing.T, v6 bool) []byte {
	t.Helper()
	clk := clock.NewVirtual(t0)
	a, b := sim.Pair(sim.Options{Clock: clk, Delay: 5 * time.Millisecond})
	var buf bytes.Buffer
	w, err := pcap.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	srvAddr, cliAddr, family, bits := "10.0.0.1", "10.0.0.2", syscall.AF_INET, 24
	if v6 {
		srvAddr, cliAddr, family, bits = "fd00::1", "fd00::2", syscall.AF_INET6, 64
	}
	cli, err := synstack.New(synstack.Config{Link: pcap.NewTap(a, w, clk), Clock: clk, Seed: 1,
		Addrs: []netip.Prefix{netip.PrefixFrom(netip.MustParseAddr(cliAddr), bits)}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := synstack.New(synstack.Config{Link: b, Clock: clk, Seed: 2,
		Addrs: []netip.Prefix{netip.PrefixFrom(netip.MustParseAddr(srvAddr), bits)}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	defer srv.Close()
	ss, cs := srv.Sockets(), cli.Sockets()
	lfd, _ := ss.Socket(family, syscall.SOCK_STREAM|synstack.SOCK_NONBLOCK, 0)
	if err := ss.Bind(lfd, netip.AddrPortFrom(netip.MustParseAddr(srvAddr), 80)); err != nil {
		t.Fatal(err)
	}
	ss.Listen(lfd, 4)
	fd, _ := cs.Socket(family, syscall.SOCK_STREAM|synstack.SOCK_NONBLOCK, 0)
	if err := cs.Connect(fd, netip.AddrPortFrom(netip.MustParseAddr(srvAddr), 80)); err != syscall.EINPROGRESS {
		t.Fatalf("connect: %v", err)
	}
	clk.Advance(100 * time.Millisecond)
	afd, _, err := ss.Accept(lfd)
	if err != nil {
		t.Fatal(err)
	}
	cs.Write(fd, []byte("hello, capture"))
	clk.Advance(100 * time.Millisecond)
	ss.Write(afd, bytes.Repeat([]byte("x"), 3000))
	clk.Advance(100 * time.Millisecond)
	rb := make([]byte, 4096)
	ss.Read(afd, rb)
	for range 3 {
		cs.Read(fd, rb)
	}
	cs.Close(fd)
	ss.Close(afd)
	clk.Advance(61 * time.Second)
	if w.Err() != nil {
		t.Fatal(w.Err())
	}
	if w.Count() < 8 {
		t.Fatalf("only %d packets captured", w.Count())
	}
	return buf.Bytes()
}

// checkCapture parses every record with package wire and verifies the
// checksums.
func checkCapture(t *testing.T, data []byte) int {
	t.Helper()
	recs, err := pcap.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var last time.Time
	for i, r := range recs {
		if r.Time.Before(last) || r.Time.Before(t0) {
			t.Errorf("record %d: time %v goes backwards", i, r.Time)
		}
		last = r.Time
		if r.OrigLen != len(r.Data) {
			t.Errorf("record %d truncated", i)
		}
		var src, dst netip.Addr
		var seg []byte
		switch r.Data[0] >> 4 {
		case 4:
			h, p, err := wire.ParseIPv4(r.Data)
			if err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
			if wire.FoldChecksum(wire.Checksum(r.Data[:h.HeaderLen], 0)) != 0 {
				t.Errorf("record %d: bad IPv4 header checksum", i)
			}
			src, dst, seg = h.Src, h.Dst, p
		case 6:
			h, p, err := wire.ParseIPv6(r.Data)
			if err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
			src, dst, seg = h.Src, h.Dst, p
		default:
			t.Fatalf("record %d: not IP", i)
		}
		if _, _, err := wire.ParseTCP(seg); err != nil {
			t.Errorf("record %d: %v", i, err)
		}
		if !wire.TCPChecksumValid(seg, src, dst) {
			t.Errorf("record %d: bad TCP checksum", i)
		}
	}
	return len(recs)
}

func TestTapCapturesBothWays(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		data := converse(t, v6)
		n := checkCapture(t, data)
		// Both directions: SYN and SYN,ACK, FIN from each side.
		recs, _ := pcap.Read(bytes.NewReader(data))
		var syn, synack, fin int
		for _, r := range recs {
			hl := wire.IPv4HeaderLen
			if v6 {
				hl = wire.IPv6HeaderLen
			}
			th, _, _ := wire.ParseTCP(r.Data[hl:])
			switch {
			case th.Flags.Has(wire.FlagSYN | wire.FlagACK):
				synack++
			case th.Flags.Has(wire.FlagSYN):
				syn++
			}
			if th.Flags.Has(wire.FlagFIN) {
				fin++
			}
		}
		if syn != 1 || synack != 1 || fin != 2 {
			t.Errorf("v6=%v: %d packets, %d SYN, %d SYN,ACK, %d FIN", v6, n, syn, synack, fin)
		}
		if TsharkCheck(t, data) {
			t.Logf("v6=%v: tshark read %d packets cleanly", v6, n)
		}
	}
}

func TestReadRejects(t *testing.T) {
	if _, err := pcap.Read(strings.NewReader("nope")); !errors.Is(err, pcap.ErrNotPcap) {
		t.Fatalf("got %v", err)
	}
	var buf bytes.Buffer
	w, _ := pcap.NewWriter(&buf)
	w.WritePacket(t0, []byte{0x45, 0, 0, 20})
	b := buf.Bytes()
	if _, err := pcap.Read(bytes.NewReader(b[:len(b)-1])); !errors.Is(err, pcap.ErrTruncated) {
		t.Fatalf("got %v", err)
	}
}

// TsharkCheck runs tshark on the capture, if tshark is installed, and fails
// the test on malformed packets or bad checksums. It reports whether
// tshark ran.
func TsharkCheck(t *testing.T, data []byte) bool {
	t.Helper()
	path, err := exec.LookPath("tshark")
	if err != nil {
		t.Log("tshark not installed; skipping the tshark check")
		return false
	}
	f := filepath.Join(t.TempDir(), "c.pcap")
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// Checksum validation is off by default in Wireshark: turn it on, and
	// list malformed packets and bad checksums. (Expert-info errors of TCP
	// analysis, such as a reassembly error on a retransmission, say
	// nothing about the file.)
	cmd := exec.Command(path, "-r", f, "-n",
		"-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE",
		"-Y", "_ws.malformed || ip.checksum.status == 0 || tcp.checksum.status == 0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, stderr.Bytes())
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Errorf("tshark flags packets:\n%s", s)
	}
	return true
}
