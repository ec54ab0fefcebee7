//go:build linux

package gvisortest_test

// TestUploadCeiling: how fast can anything behind link/tun take an upload
// from the kernel on this machine? Beside synstack and gVisor+GSO (each
// serving /sink as in TestTunBench), a sink that is no stack at all: on
// its own TUN device through link/tun, it answers the handshake and
// acknowledges what arrives, once per batch the link reads, with a fixed
// 8 MiB window, and does nothing else (no receive queue, no copy, no
// reader). Its rate bounds what any stack on link/tun can reach with the
// kernel sending on these two cores; the test prints it beside the
// stacks', each the median of alternated rounds. Root only, not run by
// default:
//
//	go test -run TestUploadCeiling -synstack.tunbench.ceiling -synstack.tunbench.mib=2048 -v ./internal/gvisortest/

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/synstack/synstack/compare/internal/gvisorhost"
	"github.com/synstack/synstack/link"
	"github.com/synstack/synstack/link/tun"
	"github.com/synstack/synstack/wire"
)

var tunBenchCeiling = flag.Bool("synstack.tunbench.ceiling", false, "run TestUploadCeiling: uploads to synstack, gVisor+GSO and a bare acknowledging sink over TUN (root)")

// The sink's device: 10.99.5.1/24 the kernel, 10.99.5.2 the sink.
var (
	sinkKernel = netip.MustParsePrefix("10.99.5.1/24")
	sinkAddr   = netip.AddrPortFrom(netip.MustParseAddr("10.99.5.2"), 9)
)

func TestUploadCeiling(t *testing.T) {
	if !*tunBenchCeiling {
		t.Skip("skipped: a benchmark over TUN; run with -synstack.tunbench.ceiling (needs root, ip)")
	}
	if !gvisorhost.InNamespace(t, 15*time.Minute, "-synstack.tunbench.ceiling", "-synstack.tunbench.mib="+strconv.Itoa(*tunBenchMiB)) {
		return
	}
	os.WriteFile("/proc/sys/net/ipv4/tcp_tw_reuse", []byte("1"), 0)
	body := make([]byte, benchBody())
	for i := range body {
		body[i] = byte(i*7 + i>>12)
	}
	h := benchHandler(body)
	syn := startSynstack(t, h, true, 0)
	defer syn.close()
	gvg, _ := startGvisorGSO(t, h)
	defer gvg.close()
	waitUp(t, syn)
	waitUp(t, gvg)
	s := startSink(t)
	defer s.close()

	type target struct {
		name   string
		upload func() (float64, error)
		rates  []float64
	}
	targets := []*target{
		{name: "synstack", upload: func() (float64, error) { return upload(syn.addr, body) }},
		{name: "gVisor+GSO", upload: func() (float64, error) { return upload(gvg.addr, body) }},
		{name: "sink", upload: func() (float64, error) { return rawUpload(sinkAddr.String(), body) }},
	}
	for round := range benchRounds {
		for k := range targets {
			tg := targets[(k+round)%len(targets)]
			cpu0, wall0 := procCPU(), time.Now()
			v, err := tg.upload()
			if err != nil {
				t.Fatalf("%s: round %d: %v", tg.name, round+1, err)
			}
			cores := (procCPU() - cpu0).Seconds() / time.Since(wall0).Seconds()
			t.Logf("%s: round %d: upload %.0f MiB/s, this process %.2f cores; the kernel's sender: %v", tg.name, round+1, v, cores, lastChrono.Load())
			tg.rates = append(tg.rates, v)
		}
	}
	gv := median(targets[1].rates)
	fmt.Printf("\nUploads of %d MiB over TUN with offloads, median of %d alternated rounds:\n\n", *tunBenchMiB, benchRounds)
	fmt.Printf("| receiver | MiB/s | ÷ gVisor+GSO |\n|---|---:|---:|\n")
	for _, tg := range targets {
		fmt.Printf("| %s | %.0f | %.2f |\n", tg.name, median(tg.rates), median(tg.rates)/gv)
	}
	fmt.Printf("\nsink: %d packets taken, %d ACKs sent, %d not for it\n", s.in.Load(), s.acks.Load(), s.bad.Load())
}

// rawUpload sends body to addr on a kernel socket, half-closes and waits
// for the other side's FIN, and returns MiB/s (bytes over the time from
// connect to that FIN).
func rawUpload(addr string, body []byte) (float64, error) {
	return sendTimed(addr, "", body, func(c *net.TCPConn) error {
		if err := c.CloseWrite(); err != nil {
			return err
		}
		if n, err := io.Copy(io.Discard, c); err != nil || n != 0 {
			return fmt.Errorf("after the upload: %d bytes, %v; want none, then EOF", n, err)
		}
		return nil
	})
}

// sink is the bare receiver: one connection at a time, kept by the link's
// reader goroutine alone (it is the only caller of the Deliver methods).
type sink struct {
	ep *tun.Endpoint

	remote         netip.AddrPort
	rcvNxt, sndNxt uint32
	open, finSent  bool
	ackDue         bool
	ipID           uint16
	buf            [64]byte

	in, acks, bad atomic.Uint64
}

// The sink takes its packets as the stacks do: in batches, the kernel's
// checksum marks trusted.
var _ link.VerifiedBatchDispatcher = (*sink)(nil)

// startSink opens the sink's device and waits for the kernel's route to
// it.
func startSink(t *testing.T) *sink {
	t.Helper()
	ep, err := tun.Open(tun.Options{Name: "bsink0", MTU: benchMTU, HostAddrs: []netip.Prefix{sinkKernel}})
	if err != nil {
		t.Fatalf("sink: tun: %v", err)
	}
	s := &sink{ep: ep}
	ep.Attach(s)
	for i := 0; ; i++ {
		ok, err := ep.KernelReady(sinkAddr.Addr())
		if ok {
			break
		}
		if err != nil || i == 50 {
			ep.Close()
			t.Fatalf("sink: the kernel's route is not ready: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("sink: device %s, offloads: %s", ep.Name(), ep.Offload())
	return s
}

func (s *sink) close() { s.ep.Close() }

func (s *sink) DeliverPacket(pkt []byte)             { s.take(pkt); s.flush() }
func (s *sink) DeliverVerified(pkt []byte)           { s.take(pkt); s.flush() }
func (s *sink) DeliverPackets(pkts [][]byte)         { s.takeAll(pkts) }
func (s *sink) DeliverVerifiedPackets(pkts [][]byte) { s.takeAll(pkts) }

// takeAll takes a batch and acknowledges it once.
func (s *sink) takeAll(pkts [][]byte) {
	for _, p := range pkts {
		s.take(p)
	}
	s.flush()
}

// take handles one packet: a SYN (re)starts the connection with a SYN,ACK;
// data in order moves rcvNxt; a FIN in order is answered with a FIN. What
// is not TCP to the sink's port is counted and dropped.
func (s *sink) take(pkt []byte) {
	ip, seg, err := wire.ParseIP(pkt)
	if err != nil || ip.Protocol != wire.ProtoTCP || ip.Dst != sinkAddr.Addr() {
		s.bad.Add(1)
		return
	}
	th, payload, err := wire.ParseTCP(seg)
	if err != nil || th.DstPort != sinkAddr.Port() {
		s.bad.Add(1)
		return
	}
	s.in.Add(1)
	from := netip.AddrPortFrom(ip.Src, th.SrcPort)
	switch {
	case th.Flags&wire.FlagRST != 0:
		s.open = false
	case th.Flags&wire.FlagSYN != 0:
		s.remote, s.rcvNxt, s.sndNxt, s.open, s.finSent = from, th.Seq+1, 1000, true, false
		s.send(wire.FlagSYN|wire.FlagACK, wire.TCPOptions{MSS: uint16(benchMTU - 40), HasWScale: true, WScale: 7})
		s.sndNxt++
	case !s.open || from != s.remote:
		s.bad.Add(1)
	default:
		end := th.Seq + uint32(len(payload))
		if int32(th.Seq-s.rcvNxt) <= 0 && int32(end-s.rcvNxt) > 0 {
			s.rcvNxt = end
		}
		if len(payload) > 0 {
			s.ackDue = true
		}
		if th.Flags&wire.FlagFIN != 0 && end == s.rcvNxt && !s.finSent {
			s.rcvNxt++
			s.send(wire.FlagFIN|wire.FlagACK, wire.TCPOptions{})
			s.sndNxt++
			s.finSent, s.ackDue = true, false
		}
	}
}

// flush sends the ACK a batch of data is owed.
func (s *sink) flush() {
	if s.ackDue && s.open {
		s.send(wire.FlagACK, wire.TCPOptions{})
		s.ackDue = false
	}
}

// send writes one segment without payload to the connection's peer; the
// link completes its checksum (offloads on).
func (s *sink) send(flags wire.TCPFlags, opts wire.TCPOptions) {
	th := wire.TCP{SrcPort: sinkAddr.Port(), DstPort: s.remote.Port(), Seq: s.sndNxt, Ack: s.rcvNxt,
		Flags: flags, Window: 65535, Options: opts}
	n, err := th.Emit(s.buf[wire.IPv4HeaderLen:])
	if err == nil {
		s.ipID++
		ih := wire.IPv4{ID: s.ipID, DontFragment: true, TTL: 64, Protocol: wire.ProtoTCP, Src: sinkAddr.Addr(), Dst: s.remote.Addr()}
		_, err = ih.Emit(s.buf[:], n)
	}
	if err == nil {
		err = s.ep.WritePacket(s.buf[:wire.IPv4HeaderLen+n])
	}
	if err != nil && !errors.Is(err, tun.ErrClosed) {
		s.bad.Add(1)
		return
	}
	s.acks.Add(1)
}
