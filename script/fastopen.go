package script

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"syscall"

	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/wire"
)

// TCP Fast Open in scripts: the FO and FOEXP options, sendto with
// MSG_FASTOPEN, the Fast Open socket options, and the sysctls
// net.ipv4.tcp_fastopen and tcp_fastopen_key (which packetdrill's
// defaults.sh sets too).

func init() {
	for name, v := range map[string]int64{
		"MSG_FASTOPEN":         0x20000000,
		"TCP_FASTOPEN_CONNECT": 30,
		"TCP_FASTOPEN_KEY":     33,
	} {
		symbols[name] = v
	}
}

// fastOpenConfig is the stack's Fast Open configuration a script sets
// (tcp_fastopen and tcp_fastopen_key); set marks that it set the mode.
type fastOpenConfig struct {
	mode int
	set  bool
	keys [][16]byte
}

// fastOpenDefines are the names packetdrill's run_all.py defines (-D)
// for Fast Open scripts: TFO_COOKIE, the cookie of its IPv4 addresses
// (remote 192.0.2.1, local 192.168.0.1) under defaults.sh's key.
var fastOpenDefines = map[string]string{"TFO_COOKIE": "3021b9d889017eeb"}

// fastOpenSysctl applies net.ipv4.tcp_fastopen (a number, hex as the
// scripts write it) and tcp_fastopen_key ("w-w-w-w" of four 32-bit hex
// words, then optionally ",w-w-w-w", the backup key). It reports whether
// name was one of them.
func (r *runner) fastOpenSysctl(line int, name, value string) (bool, error) {
	value = strings.Trim(strings.TrimSpace(value), `"'`)
	switch name {
	case "net.ipv4.tcp_fastopen":
		v, err := strconv.ParseInt(value, 0, 32)
		if err != nil || v < 0 {
			return true, r.errf(line, "bad sysctl %s=%s", name, value)
		}
		r.tfo.mode, r.tfo.set = int(v), true
		if r.st != nil {
			r.st.setFastOpen(int(v)) // the stack takes it at once, as Linux
		}
		return true, nil
	case "net.ipv4.tcp_fastopen_blackhole_timeout_sec":
		if value != "0" {
			return true, r.unsupported(line, "sysctl %s=%s (no Fast Open blackhole detection)", name, value)
		}
		// 0 turns Linux's blackhole detection off: the stack has none.
		return true, nil
	case "net.ipv4.tcp_fastopen_key":
		keys, err := parseFastOpenKeys(value)
		if err != nil {
			return true, r.errf(line, "bad sysctl %s=%s: %v", name, value, err)
		}
		if r.st != nil {
			return true, r.unsupported(line, "sysctl %s after the stack started (put it before the first event)", name)
		}
		r.tfo.keys = keys
		return true, nil
	}
	return false, nil
}

// parseFastOpenKeys reads tcp_fastopen_key's text: each key is four
// 32-bit words in hex, joined by '-', the bytes of each word in little
// endian order, as Linux reads them; a second key after a ',' is the
// backup.
func parseFastOpenKeys(s string) ([][16]byte, error) {
	var keys [][16]byte
	for _, part := range strings.Split(s, ",") {
		words := strings.Split(part, "-")
		if len(words) != 4 || len(keys) == 2 {
			return nil, fmt.Errorf("want a key of four hex words joined by '-', at most two keys")
		}
		var k [16]byte
		for i, w := range words {
			v, err := strconv.ParseUint(w, 16, 32)
			if err != nil {
				return nil, err
			}
			binary.LittleEndian.PutUint32(k[4*i:], uint32(v))
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// fastOpenOption parses the rest of an FO or FOEXP option: nothing (a
// cookie request) or the cookie in hex, up to the next ',' or '>'.
func (p *parser) fastOpenOption(t token) (option, bool) {
	o := option{kind: wire.OptFastOpen, raw: []byte{}}
	if t.text == "FOEXP" {
		o.kind = wire.OptExperimental
		o.raw = binary.BigEndian.AppendUint16(nil, wire.FastOpenMagic)
	}
	if p.tok.is(',') || p.tok.is('>') {
		return o, true
	}
	start := p.tok.pos
	end := strings.IndexAny(p.src[start:], ",>")
	if end < 0 {
		return o, p.failf(t.line, "parse error: unterminated %s option", t.text)
	}
	text := strings.TrimSpace(p.src[start : start+end])
	if v, ok := fastOpenDefines[text]; ok {
		text = v
	}
	cookie, err := hex.DecodeString(text)
	if err != nil || len(o.raw)+len(cookie) > wire.TCPMaxOptionsLen-2 {
		return o, p.failf(t.line, "parse error: bad %s cookie '%s' (an even number of hex digits)", t.text, text)
	}
	o.raw = append(o.raw, cookie...)
	p.lex.advance(start + end)
	p.tok = p.lex.next()
	p.prevEnd = start + end
	return o, true
}

// synSent reports whether fd's connection waits for its SYN,ACK.
func synSent(st stackHandle, fd int) bool {
	inf, err := st.GetsockoptTCPInfo(fd)
	return err == nil && inf.State == tcp.SynSent
}

// callSendto is sendto(FD, BUF, COUNT, FLAGS, ADDR, LEN). With
// MSG_FASTOPEN on a socket that is not the one under test, it starts a
// connection (to ADDR, ... being the script's remote address) that
// becomes the socket under test, as connect does.
func (r *runner) callSendto(c *callArgs) (*callOp, error) {
	flags, err := r.intArg(c, 3, 0)
	if err != nil {
		return r.bad(c, err)
	}
	if flags&symbols["MSG_FASTOPEN"] == 0 {
		return bufCall((*runner).handshakeSender)(r, c)
	}
	count, err := r.evalInt(c.a[2])
	if err != nil || count < 0 || count > 1<<26 {
		return r.bad(c, fmt.Errorf("bad count %s", describeExpr(c.a[2])))
	}
	if isNull(c.a[1]) && count > 0 {
		return r.nullBuffer(c.fd), nil // EFAULT before anything is sent, as Linux
	}
	addr := netip.AddrPortFrom(r.connectAddr, r.connectPort)
	if len(c.a) > 4 && c.a[4].kind == exWord && c.a[4].word == "AF_UNSPEC" {
		addr = netip.AddrPort{} // Linux refuses it: EOPNOTSUPP
	} else if len(c.a) > 4 {
		if addr, err = r.sockaddr(c.a[4], addr); err != nil {
			return r.bad(c, err)
		}
	}
	buf := make([]byte, count)
	if c.a[1].kind == exString {
		copy(buf, c.a[1].word)
	}
	return r.fastOpenSender(c.fd, buf, flags, addr), nil
}

// fastOpenSender is the call of a sendto or sendmsg with MSG_FASTOPEN of
// buf to addr on fd (see callSendto).
func (r *runner) fastOpenSender(fd int, buf []byte, flags int64, addr netip.AddrPort) *callOp {
	st := r.st
	started, sent, inSYN := false, 0, 0
	writer := r.writerMark(fd)
	return &callOp{try: func() (bool, callResult) {
		nb := flags&linuxMsgDontwait != 0 || r.nonblocking(fd)
		if !started {
			// The first attempt connects (or, on a connected socket,
			// is a send): the connection becomes the one under test.
			started = true
			if inf, err := st.GetsockoptTCPInfo(fd); r.sut == nil || r.sut.fd != fd || err != nil || inf.State == tcp.Closed {
				r.sut = &sockUnderTest{connecting: true, fd: fd,
					remote: netip.AddrPortFrom(r.remoteIP, addr.Port())}
				r.sut.rLive = remoteISNOffset
			}
			k, err := st.Sendto(fd, buf, int(flags)|linuxMsgDontwait, addr)
			if nb || (err != nil && !isErrno(err, syscall.EINPROGRESS)) {
				return true, res(k, err)
			}
			sent, inSYN = max(k, 0), max(k, 0)
		}
		// A blocking sendto: it returns once the handshake is over and
		// the rest is written, or with the handshake's error, whatever
		// the SYN carried.
		if synSent(st, fd) {
			// Waiting for the handshake, a writer if the SYN did not
			// take all the data (Linux's inet_wait_for_connect).
			writer(sent < len(buf))
			return false, callResult{}
		}
		writer(false)
		for sent < len(buf) {
			k, err := st.Send(fd, buf[sent:], int(flags&^symbols["MSG_FASTOPEN"])|linuxMsgDontwait)
			sent += max(k, 0)
			switch {
			case isErrno(err, syscall.EAGAIN):
				return false, callResult{}
			case err != nil && sent > inSYN:
				return true, res(sent, nil)
			case err != nil:
				return true, res(0, err)
			}
		}
		return true, res(sent, nil)
	}}
}

// handshakeSender is sender, for a blocking write that goes into a
// deferred Fast Open connect's SYN (TCP_FASTOPEN_CONNECT): as Linux, the
// call waits for the handshake, and returns its error if it failed,
// whatever the SYN carried; then the rest is written as by sender.
func (r *runner) handshakeSender(fd int, buf []byte, flags int64) func() (bool, callResult) {
	try := r.sender(fd, buf, flags)
	first, deferred := true, false
	var held *callResult
	writer := r.writerMark(fd)
	return func() (bool, callResult) {
		if deferred {
			if synSent(r.st, fd) {
				writer(held == nil) // data is left beyond the SYN's
				return false, callResult{}
			}
			writer(false)
			deferred = false
			if v, err := r.st.GetsockoptInt(fd, linuxSolSocket, linuxSoError); err == nil && v != 0 {
				return true, res(0, syscall.Errno(v))
			}
			if held != nil {
				return true, *held
			}
		}
		nb := flags&linuxMsgDontwait != 0 || r.nonblocking(fd)
		fresh := false
		if first {
			first = false
			inf, err := r.st.GetsockoptTCPInfo(fd)
			fresh = !nb && (err != nil || inf.State == tcp.Closed)
		}
		done, res := try()
		if fresh && synSent(r.st, fd) {
			// The write connected: wait for the handshake.
			deferred = true
			if done {
				held = &res
			}
			writer(!done)
			return false, callResult{}
		}
		// A blocking write on a connecting socket waits for the
		// handshake as a writer (Linux's sk_stream_wait_connect).
		writer(!done && !nb && synSent(r.st, fd))
		return done, res
	}
}

// writerMark returns a function that tells the stack whether a blocking
// write on fd waits for its handshake with data still to write (Linux's
// sk_write_pending), calling it only when that changes.
func (r *runner) writerMark(fd int) func(waiting bool) {
	marked := false
	return func(waiting bool) {
		if waiting != marked {
			marked = waiting
			_ = r.st.SetWriterWaiting(fd, waiting) // EBADF: the socket is gone, nothing to mark
		}
	}
}
