package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/synstack/synstack/admin"
)

// ss: the ss -tni table of a running synstack, read from its admin
// endpoint's /debug/sockets.

// defaultAdminAddr is where ss looks for the admin endpoint without
// --admin or $SYNSTACK_ADMIN.
const defaultAdminAddr = "127.0.0.1:9180"

const ssUsage = `usage: synstack ss [-t] [-u] [-a | -l] [--admin ADDR]

Prints the sockets of a running synstack as ss -tni prints the kernel's: one
line per socket (State, Recv-Q, Send-Q, Local Address:Port, Peer Address:Port)
and an indented line of TCP_INFO (rto, rtt, mss, cwnd, bytes...). As ss, it
shows the connected sockets by default, leaving out LISTEN, SYN-RECV and
TIME-WAIT; -a shows them all, -l the listeners only. ADDR is the admin
endpoint (host:port or a URL; default $SYNSTACK_ADMIN, else ` + defaultAdminAddr + `).
-t shows TCP sockets (the default), -u UDP sockets (UNCONN: bound, not
connected, shown with -a or -l; ESTAB: connected), -tu both; -n and -i are
accepted and change nothing: the table is always numeric, and TCP sockets
have the info line.
`

func runSS(stdout, stderr io.Writer, args []string) error {
	addr := os.Getenv("SYNSTACK_ADMIN")
	if addr == "" {
		addr = defaultAdminAddr
	}
	var all, listening, tcp, udp bool
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--admin" || a == "-admin":
			if i+1 == len(args) {
				return errors.New("ss: --admin needs an address")
			}
			i++
			addr = args[i]
		case strings.HasPrefix(a, "--admin=") || strings.HasPrefix(a, "-admin="):
			addr = a[strings.IndexByte(a, '=')+1:]
		case a == "-h" || a == "--help" || a == "-help":
			fmt.Fprint(stderr, ssUsage)
			return nil
		case len(a) > 1 && a[0] == '-' && a[1] != '-':
			for _, c := range a[1:] {
				switch c {
				case 'a':
					all = true
				case 'l':
					listening = true
				case 't':
					tcp = true
				case 'u':
					udp = true
				case 'n', 'i':
				default:
					return fmt.Errorf("ss: unknown flag -%c\n\n%s", c, ssUsage)
				}
			}
		default:
			return fmt.Errorf("ss: unexpected argument %q\n\n%s", a, ssUsage)
		}
	}
	socks, err := fetchSockets(addr)
	if err != nil {
		return fmt.Errorf("ss: %w", err)
	}
	if !udp {
		tcp = true
	}
	shown := socks[:0]
	for _, s := range socks {
		if s.Proto == "udp" && udp || s.Proto == "" && tcp {
			shown = append(shown, s)
		}
	}
	printSS(stdout, shown, all, listening)
	return nil
}

// adminURL turns --admin's value into the URL of path on it; only a port
// (":9180") is loopback, as serve's --admin takes it.
func adminURL(addr, path string) string {
	if strings.HasPrefix(addr, ":") {
		addr = "127.0.0.1" + addr
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return strings.TrimSuffix(addr, "/") + path
}

// fetchSockets reads /debug/sockets from the admin endpoint at addr.
func fetchSockets(addr string) ([]admin.Socket, error) {
	url := adminURL(addr, "/debug/sockets")
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, fmt.Errorf("%w (is a synstack serving its admin endpoint there? see --admin)", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	var socks []admin.Socket
	if err := json.NewDecoder(resp.Body).Decode(&socks); err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	return socks, nil
}

// ssStates are ss's names of the states.
var ssStates = map[string]string{
	"CLOSED":      "UNCONN",
	"LISTEN":      "LISTEN",
	"SYN_SENT":    "SYN-SENT",
	"SYN_RCVD":    "SYN-RECV",
	"ESTABLISHED": "ESTAB",
	"FIN_WAIT_1":  "FIN-WAIT-1",
	"FIN_WAIT_2":  "FIN-WAIT-2",
	"CLOSE_WAIT":  "CLOSE-WAIT",
	"CLOSING":     "CLOSING",
	"LAST_ACK":    "LAST-ACK",
	"TIME_WAIT":   "TIME-WAIT",
}

// ssShown reports whether ss shows a socket in state: with -l the
// listeners (and unconnected UDP sockets) only; without -a, as ss's
// default filter, not LISTEN, SYN-RECV, TIME-WAIT, CLOSED or UNCONN.
func ssShown(state string, all, listening bool) bool {
	switch {
	case listening:
		return state == "LISTEN" || state == "UNCONN"
	case all:
		return true
	}
	switch state {
	case "LISTEN", "SYN_RCVD", "TIME_WAIT", "CLOSED", "UNCONN":
		return false
	}
	return true
}

// printSS writes the table.
func printSS(w io.Writer, socks []admin.Socket, all, listening bool) {
	rows := [][]string{{"State", "Recv-Q", "Send-Q", "Local Address:Port", "Peer Address:Port"}}
	var infos []string
	for _, s := range socks {
		if !ssShown(s.State, all, listening) {
			continue
		}
		name := ssStates[s.State]
		if name == "" {
			name = s.State
		}
		peer := s.Remote
		if s.Listening || peer == "" {
			peer = "0.0.0.0:*"
			if strings.HasPrefix(s.Local, "[") {
				peer = "[::]:*"
			}
		}
		rows = append(rows, []string{name, strconv.Itoa(s.RecvQ), strconv.Itoa(s.SendQ), s.Local, peer})
		if s.Proto == "udp" {
			infos = append(infos, "") // ss -ui has nothing to say of a UDP socket
		} else {
			infos = append(infos, ssInfo(s))
		}
	}
	width := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len(c))
		}
	}
	var b strings.Builder
	for i, r := range rows {
		for j, c := range r {
			if j == len(r)-1 {
				b.WriteString(c)
				break
			}
			fmt.Fprintf(&b, "%-*s ", width[j], c)
		}
		b.WriteByte('\n')
		if i > 0 && infos[i-1] != "" {
			b.WriteString("\t ")
			b.WriteString(infos[i-1])
			b.WriteByte('\n')
		}
	}
	io.WriteString(w, b.String())
}

// ssInfo is the info line ss -i prints under a socket, in its order and
// with its names.
func ssInfo(s admin.Socket) string {
	var f []string
	add := func(format string, args ...any) { f = append(f, fmt.Sprintf(format, args...)) }
	if s.Listening {
		if s.Congestion != "" {
			add("%s", s.Congestion)
		}
		add("cwnd:%d", 10) // a listener's TCP_INFO shows the initial window, as Linux's
		return strings.Join(f, " ")
	}
	for _, o := range s.Options {
		if o == "ts" || o == "sack" {
			add("%s", o)
		}
	}
	if s.Congestion != "" {
		add("%s", s.Congestion)
	}
	for _, o := range s.Options {
		if o == "wscale" {
			add("wscale:%d,%d", s.SndWScale, s.RcvWScale)
		}
	}
	if s.RTO > 0 {
		add("rto:%.6g", math.Round(s.RTO)) // whole milliseconds, as Linux's (jiffies)
	}
	if s.Backoff > 0 {
		add("backoff:%d", s.Backoff)
	}
	if s.RTT > 0 {
		add("rtt:%.6g/%.6g", ssMillis(s.RTT), ssMillis(s.RTTVar))
	}
	if s.ATO > 0 {
		add("ato:%.6g", ssMillis(s.ATO))
	}
	add("mss:%d", s.MSS)
	if s.PMTU > 0 {
		add("pmtu:%d", s.PMTU)
	}
	add("rcvmss:%d", s.RcvMSS)
	add("advmss:%d", s.AdvMSS)
	add("cwnd:%d", s.Cwnd)
	if s.Ssthresh > 0 && s.Ssthresh < 0xffff {
		add("ssthresh:%d", s.Ssthresh)
	}
	if s.BytesSent > 0 {
		add("bytes_sent:%d", s.BytesSent)
	}
	if s.BytesRetrans > 0 {
		add("bytes_retrans:%d", s.BytesRetrans)
	}
	if s.BytesAcked > 0 {
		add("bytes_acked:%d", s.BytesAcked)
	}
	if s.BytesReceived > 0 {
		add("bytes_received:%d", s.BytesReceived)
	}
	add("segs_out:%d", s.SegsOut)
	add("segs_in:%d", s.SegsIn)
	if s.DataSegsOut > 0 {
		add("data_segs_out:%d", s.DataSegsOut)
	}
	if s.DataSegsIn > 0 {
		add("data_segs_in:%d", s.DataSegsIn)
	}
	if b := s.BBR; b != nil {
		add("bbr:(bw:%s,mrtt:%.6g,pacing_gain:%.6g,cwnd_gain:%.6g)", ssRate(b.Bandwidth), ssMillis(b.MinRTT), b.PacingGain, b.CwndGain)
	}
	if s.PacingRate > 0 {
		add("pacing_rate %s", ssRate(s.PacingRate))
	}
	if s.DeliveryRate > 0 {
		add("delivery_rate %s", ssRate(s.DeliveryRate))
	}
	if s.Unacked > 0 {
		add("unacked:%d", s.Unacked)
	}
	if s.Retransmits > 0 || s.TotalRetrans > 0 {
		add("retrans:%d/%d", s.Retransmits, s.TotalRetrans)
	}
	if s.RcvWnd > 0 {
		add("rcv_wnd:%d", s.RcvWnd)
	}
	if s.RcvSsthresh > 0 {
		add("rcv_ssthresh:%d", s.RcvSsthresh)
	}
	if s.MinRTT > 0 {
		add("minrtt:%.6g", ssMillis(s.MinRTT))
	}
	add("snd_wnd:%d", s.SndWnd)
	if s.RcvOOOPack > 0 {
		add("rcv_ooopack:%d", s.RcvOOOPack)
	}
	return strings.Join(f, " ")
}

// ssMillis rounds a time in milliseconds to the microsecond, the unit of
// TCP_INFO's times; %.6g then prints it as ss's C %g does (0.123, 12.5,
// 1234.57: six significant digits at most).
func ssMillis(ms float64) float64 { return math.Round(ms*1000) / 1000 }

// ssRate prints a rate given in bytes per second in bits, as ss's sprint_bw.
func ssRate(bytesPerSec uint64) string {
	bw := float64(bytesPerSec) * 8
	switch {
	case bw > 1e9:
		return fmt.Sprintf("%.1fGbps", bw/1e9)
	case bw > 1e6:
		return fmt.Sprintf("%.1fMbps", bw/1e6)
	case bw > 1e3:
		return fmt.Sprintf("%.1fKbps", bw/1e3)
	}
	return fmt.Sprintf("%gbps", bw)
}
