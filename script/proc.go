package script

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	synstack "github.com/synstack/synstack"
	"github.com/synstack/synstack/tcp"
)

// /proc/net/tcp and /proc/net/tcp6 as the runner knows them: the stack's
// TCP sockets in Linux's format (local and remote address in hex, the
// state's number, the queues), for the shell pipelines scripts run over
// them, `grep " 0A " /proc/net/tcp | grep ":1F90"` (a listener on port
// 8080). Only grep reads them, in a pipeline of greps.

// procStates are the state numbers /proc/net/tcp prints (Linux's
// TCP_ESTABLISHED...).
var procStates = map[tcp.State]int{
	tcp.Established: 1, tcp.SynSent: 2, tcp.SynRcvd: 3, tcp.FinWait1: 4,
	tcp.FinWait2: 5, tcp.TimeWait: 6, tcp.Closed: 7, tcp.CloseWait: 8,
	tcp.LastAck: 9, tcp.Listen: 10, tcp.Closing: 11,
}

// procNetTCP returns the lines of /proc/net/tcp (v6 false) or
// /proc/net/tcp6 for the stack's TCP sockets, header first.
func (a *stackAdapter) procNetTCP(v6 bool) []string {
	lines := []string{"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"}
	for _, c := range a.st.Connections() {
		if c.UDP || c.Local.Addr().Is6() != v6 {
			continue
		}
		lines = append(lines, procLine(len(lines)-1, c))
	}
	return lines
}

// procLine formats one socket as Linux's tcp4_seq_show and tcp6_seq_show
// do: addresses as the host's 32-bit words (little-endian) in hex.
func procLine(i int, c synstack.ConnInfo) string {
	remote := c.Remote
	if !remote.IsValid() {
		remote = netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
		if c.Local.Addr().Is6() {
			remote = netip.AddrPortFrom(netip.IPv6Unspecified(), 0)
		}
	}
	return fmt.Sprintf("%4d: %s:%04X %s:%04X %02X %08X:%08X 00:00000000 00000000     0        0 0 1 0000000000000000 100 0 0 10 0",
		i, procAddr(c.Local.Addr()), c.Local.Port(), procAddr(remote.Addr()), remote.Port(),
		procStates[c.Info.State], c.SendQ, c.RecvQ)
}

// procAddr prints an address as /proc/net/tcp does: each 32-bit word as
// a little-endian host reads it.
func procAddr(a netip.Addr) string {
	b := a.AsSlice()
	var sb strings.Builder
	for ; len(b) >= 4; b = b[4:] {
		fmt.Fprintf(&sb, "%08X", binary.LittleEndian.Uint32(b))
	}
	return sb.String()
}

// procFiles are the files a grep pipeline may read.
var procFiles = map[string]bool{"/proc/net/tcp": false, "/proc/net/tcp6": true}

// procGrep runs a pipeline of greps whose first reads /proc/net/tcp or
// /proc/net/tcp6: it fails, as the pipeline's status would, when the last
// grep selects no line. Options -q, -v, -c, -F, -E and -w are taken.
func (r *runner) procGrep(line int, part string, words []string) error {
	type st interface{ procNetTCP(v6 bool) []string }
	proc, ok := r.st.(st)
	if !ok {
		return r.unsupported(line, "shell command `%s` (no stack to list)", part)
	}
	var in []string
	first := true
	for len(words) > 0 {
		stage := words
		if i := indexWord(words, "|"); i >= 0 {
			stage, words = words[:i], words[i+1:]
		} else {
			words = nil
		}
		if len(stage) < 2 || stage[0] != "grep" {
			return r.unsupported(line, "shell command `%s` (only greps read /proc/net/tcp)", part)
		}
		invert, word := false, false
		var rest []string
		for _, w := range stage[1:] {
			switch {
			case w == "-v":
				invert = true
			case w == "-w":
				word = true
			case w == "-q" || w == "-c" || w == "-F" || w == "-E" || w == "-s":
			case strings.HasPrefix(w, "-") && len(rest) == 0:
				return r.unsupported(line, "shell command `%s` (grep option %s)", part, w)
			default:
				rest = append(rest, w)
			}
		}
		if len(rest) == 0 {
			return r.unsupported(line, "shell command `%s` (grep without a pattern)", part)
		}
		pat := regexp.QuoteMeta(rest[0])
		if word {
			pat = `\b` + pat + `\b`
		}
		re := regexp.MustCompile(pat)
		files := rest[1:]
		if first != (len(files) > 0) {
			return r.unsupported(line, "shell command `%s` (the first grep reads /proc/net/tcp, the others its output)", part)
		}
		var text []string
		if first {
			for _, f := range files {
				v6, ok := procFiles[f]
				if !ok {
					return r.unsupported(line, "shell command `%s` (grep reads only /proc/net/tcp and /proc/net/tcp6 here)", part)
				}
				for _, l := range proc.procNetTCP(v6) {
					if len(files) > 1 {
						l = f + ":" + l
					}
					text = append(text, l)
				}
			}
		} else {
			text = in
		}
		in = nil
		for _, l := range text {
			if re.MatchString(l) != invert {
				in = append(in, l)
			}
		}
		first = false
	}
	if len(in) == 0 {
		return r.errf(line, "shell command `%s` failed: no line selected", part)
	}
	r.verbosef("`%s`: %s", part, strings.Join(in, "\n"))
	return nil
}

// indexWord returns the index of w in words, -1 if absent.
func indexWord(words []string, w string) int {
	for i, x := range words {
		if x == w {
			return i
		}
	}
	return -1
}
