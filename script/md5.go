package script

import (
	"encoding/hex"
	"strings"

	"github.com/synstack/synstack/wire"
)

// md5Option parses the rest of a TCP MD5 signature option (RFC 2385):
// "md5" and its digest in hex, up to 16 bytes, as packetdrill writes it;
// in an outbound packet a bare "md5" stands for any 16-byte digest (the
// runner does not know the stack's key, and any digest matches anyway:
// see option.equal).
func (p *parser) md5Option(t token) (option, bool) {
	o := option{kind: wire.OptMD5, raw: make([]byte, wire.TCPMD5Len)}
	if p.tok.is(',') || p.tok.is('>') {
		return o, true
	}
	start := p.tok.pos
	end := strings.IndexAny(p.src[start:], ",>")
	if end < 0 {
		return o, p.failf(t.line, "parse error: unterminated md5 option")
	}
	text := strings.TrimSpace(p.src[start : start+end])
	digest, err := hex.DecodeString(text)
	if err != nil || len(digest) > wire.TCPMD5Len {
		return o, p.failf(t.line, "parse error: bad md5 digest '%s' (at most 16 bytes in hex)", text)
	}
	o.raw = digest
	p.lex.advance(start + end)
	p.tok = p.lex.next()
	p.prevEnd = start + end
	return o, true
}
