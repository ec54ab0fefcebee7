package script

import (
	"strconv"
	"strings"
)

// tokKind is the kind of a lexical token. The lexer follows packetdrill's
// lexer.l: whitespace and newlines separate tokens but carry no meaning, so
// an event may span lines; a token's line is where it starts.
type tokKind int

const (
	tEOF       tokKind = iota
	tInt               // 42, -1, 0x2a
	tFloat             // 0.100, .1, -0.5
	tWord              // socket, SO_REUSEADDR, S, mss, TS
	tIPv4              // 192.0.2.1
	tEllipsis          // ...
	tOption            // --name (the text is the name)
	tString            // "..." (the text is the content, escapes kept)
	tBackquote         // `...` (the text is the content)
	tCode              // %{ ... }% (the text is the content, trimmed)
	tPunct             // any other single character
)

// token is one lexical token.
type token struct {
	kind tokKind
	text string // the token's characters (or the content, for strings, commands and code)
	ival int64  // the value of a tInt
	line int
	pos  int // byte offset of the token in the source
	end  int // byte offset just after the token
}

// is reports whether t is the punctuation character c.
func (t token) is(c byte) bool { return t.kind == tPunct && len(t.text) == 1 && t.text[0] == c }

// isWord reports whether t is the word w.
func (t token) isWord(w string) bool { return t.kind == tWord && t.text == w }

// describe renders t for error messages, as packetdrill's "parse error at".
func (t token) describe() string {
	switch t.kind {
	case tEOF:
		return "end of file"
	case tString:
		return strconv.Quote(t.text)
	case tBackquote:
		return "`" + t.text + "`"
	case tCode:
		return "%{...}%"
	case tOption:
		return "--" + t.text
	}
	return "'" + t.text + "'"
}

// lexer splits a script into tokens on demand.
type lexer struct {
	src  string
	pos  int
	line int
	err  *Error // first lexical error
	file string
	// defines are packetdrill's -D NAME=VALUE: a word NAME reads as VALUE
	// (see define).
	defines map[string]string
}

func newLexer(file, src string) *lexer { return &lexer{src: src, line: 1, file: file} }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isWordChar(c byte) bool {
	return c == '_' || isDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}
func isHex(c byte) bool {
	return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// fail records a lexical error (the first one wins) and returns an EOF token
// so that the parser stops.
func (l *lexer) fail(line int, format string, args ...any) token {
	if l.err == nil {
		l.err = errorf(l.file, line, format, args...)
	}
	l.pos = len(l.src)
	return token{kind: tEOF, line: line, pos: l.pos, end: l.pos}
}

// advance moves to byte offset p, counting the newlines passed.
func (l *lexer) advance(p int) {
	l.line += strings.Count(l.src[l.pos:p], "\n")
	l.pos = p
}

// next returns the next token.
func (l *lexer) next() token {
	for {
		// Skip whitespace and comments.
		for l.pos < len(l.src) {
			c := l.src[l.pos]
			if c == '\n' {
				l.line++
				l.pos++
			} else if c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v' {
				l.pos++
			} else {
				break
			}
		}
		if l.pos >= len(l.src) {
			return token{kind: tEOF, line: l.line, pos: l.pos, end: l.pos}
		}
		rest := l.src[l.pos:]
		if strings.HasPrefix(rest, "//") {
			i := strings.IndexByte(rest, '\n')
			if i < 0 {
				i = len(rest)
			}
			l.advance(l.pos + i)
			continue
		}
		if strings.HasPrefix(rest, "/*") {
			i := strings.Index(rest[2:], "*/")
			if i < 0 {
				return l.fail(l.line, "unterminated /* comment")
			}
			l.advance(l.pos + 2 + i + 2)
			continue
		}
		break
	}
	start, line := l.pos, l.line
	rest := l.src[l.pos:]
	mk := func(kind tokKind, text string, n int) token {
		t := token{kind: kind, text: text, line: line, pos: start, end: start + n}
		l.advance(start + n)
		return t
	}
	c := rest[0]
	switch {
	case strings.HasPrefix(rest, "..."):
		return mk(tEllipsis, "...", 3)
	case strings.HasPrefix(rest, "%{"):
		i := strings.Index(rest[2:], "}%")
		if i < 0 {
			return l.fail(line, "unterminated %%{ code block")
		}
		return mk(tCode, strings.Trim(rest[2:2+i], " \t"), 2+i+2)
	case c == '"' || c == '`':
		kind := tString
		if c == '`' {
			kind = tBackquote
		}
		i := 1
		for i < len(rest) && rest[i] != c {
			if rest[i] == '\\' && i+1 < len(rest) {
				i++
			}
			i++
		}
		if i >= len(rest) {
			return l.fail(line, "unterminated %c string", c)
		}
		return mk(kind, rest[1:i], i+1)
	case strings.HasPrefix(rest, "--") && len(rest) > 2 && isWordChar(rest[2]):
		i := 2
		for i < len(rest) && isWordChar(rest[i]) {
			i++
		}
		return mk(tOption, rest[2:i], i)
	case isWordChar(c) || ((c == '-' || c == '.') && len(rest) > 1 && isDigit(rest[1])) ||
		(c == '-' && len(rest) > 2 && rest[1] == '.' && isDigit(rest[2])):
		return l.number(rest, mk)
	}
	return mk(tPunct, rest[:1], 1)
}

// define turns the word token t, a defined NAME, into its VALUE, as
// packetdrill's lexer does: "..." a string, `...` a command, an integer,
// else a word.
func (l *lexer) define(t token, v string) token {
	switch {
	case len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"':
		t.kind, t.text = tString, v[1:len(v)-1]
	case len(v) >= 2 && v[0] == '`' && v[len(v)-1] == '`':
		t.kind, t.text = tBackquote, v[1:len(v)-1]
	default:
		if n, err := strconv.ParseInt(v, 0, 64); err == nil {
			t.kind, t.text, t.ival = tInt, v, n
		} else {
			t.text = v
		}
	}
	return t
}

// number scans a word, an integer, a float or an IPv4 address, with flex's
// longest-match rule: "1abc" is a word, "0x1f" a hex integer, "0.5" a float,
// "192.0.2.1" an address, and "0...0.3" an integer, an ellipsis and a float.
func (l *lexer) number(rest string, mk func(tokKind, string, int) token) token {
	i := 0
	if rest[0] == '-' {
		i = 1
	}
	j := i
	for j < len(rest) && isWordChar(rest[j]) {
		j++
	}
	word := rest[i:j]
	allDigits := word != ""
	for k := 0; k < len(word); k++ {
		if !isDigit(word[k]) {
			allDigits = false
		}
	}
	if i == 0 && word != "" && !allDigits {
		if len(word) > 2 && word[0] == '0' && (word[1] == 'x' || word[1] == 'X') {
			hexOK := true
			for k := 2; k < len(word); k++ {
				if !isHex(word[k]) {
					hexOK = false
				}
			}
			if hexOK {
				v, err := strconv.ParseUint(word[2:], 16, 64)
				if err != nil {
					return l.fail(l.line, "hex number out of range: %s", word)
				}
				t := mk(tInt, word, j)
				t.ival = int64(v)
				return t
			}
		}
		if v, ok := l.defines[word]; ok {
			return l.define(mk(tWord, word, j), v)
		}
		return mk(tWord, word, j)
	}
	if word != "" && !allDigits {
		// "-abc": the minus is punctuation.
		return mk(tPunct, "-", 1)
	}
	// An IPv4 address: digits . digits . digits . digits.
	if allDigits {
		k, dots := j, 0
		for dots < 3 && k+1 < len(rest) && rest[k] == '.' && isDigit(rest[k+1]) {
			k++
			for k < len(rest) && isDigit(rest[k]) {
				k++
			}
			dots++
		}
		if dots == 3 && i == 0 {
			return mk(tIPv4, rest[:k], k)
		}
	}
	// A float: [-]digits* . digits+
	if j < len(rest)-1 && rest[j] == '.' && isDigit(rest[j+1]) {
		k := j + 1
		for k < len(rest) && isDigit(rest[k]) {
			k++
		}
		return mk(tFloat, rest[:k], k)
	}
	v, err := strconv.ParseInt(rest[:j], 10, 64)
	if err != nil {
		return l.fail(l.line, "number out of range: %s", rest[:j])
	}
	t := mk(tInt, rest[:j], j)
	t.ival = v
	return t
}
