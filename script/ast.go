package script

import (
	"fmt"
	"time"

	"github.com/synstack/synstack/wire"
)

// Error is a failure located at a line of a script: a syntax error, a
// semantic error, or a run-time failure (a packet or a call that did not go
// as the script said). Its Error method prints "file:line: message".
type Error struct {
	// File is the script's name as given to Run.
	File string
	// Line is the 1-based line of the event (0 when the error concerns the
	// whole script).
	Line int
	// Msg says what went wrong.
	Msg string
}

// Error returns "file:line: message" (or "file: message" without a line).
func (e *Error) Error() string {
	if e.Line <= 0 {
		return e.File + ": " + e.Msg
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

func errorf(file string, line int, format string, args ...any) *Error {
	return &Error{File: file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// script is a parsed packet script.
type script struct {
	options []headerOption
	events  []*event
}

// headerOption is one "--name=value" line before the first event.
type headerOption struct {
	line     int
	name     string
	value    string
	hasValue bool
}

// timeKind says how an event's time is written.
type timeKind int

const (
	timeAbsolute    timeKind = iota // 0.100
	timeRelative                    // +0.100
	timeAny                         // *
	timeAbsoluteRng                 // 0.1~0.3
	timeRelativeRng                 // +0.1~+0.3
)

// eventKind is what an event does.
type eventKind int

const (
	evPacket  eventKind = iota // < or > a TCP segment
	evSyscall                  // name(args) = result
	evCommand                  // `shell command`
	evCode                     // %{ python }%
)

// event is one line (or statement) of a script.
type event struct {
	line int
	// text is the action as written, whitespace collapsed: "> S. 0:0(0) ack 1".
	text string
	// timeKind, at and end give the time: at is the (start) time, end the
	// end of a range; both are relative offsets for the relative kinds.
	timeKind timeKind
	at, end  time.Duration
	// noTime marks an init or cleanup command written without a time.
	noTime bool

	kind    eventKind
	packet  *packetSpec
	syscall *syscallSpec
	command string // evCommand: the command line
	code    string // evCode: the code
}

// packetSpec is a TCP segment of a script line.
type packetSpec struct {
	inbound bool
	// icmp is set on an inbound ICMP line (icmp.go), which has no TCP
	// fields of its own.
	icmp   *icmpSpec
	flags  wire.TCPFlags
	seq    uint32
	end    uint32
	length int
	ack    uint32
	win    int // -1: not written
	urg    int
	// anyOptions is <...>: accept any options (outbound only).
	anyOptions bool
	options    []option
	// ecn is the IP ECN mark written before the flags ([noecn], [ect0],
	// [ect1], [ce]: the codepoint; [ect01]: either ECT), checked on an
	// outbound packet, set on an inbound one; ecnUnset when none is.
	ecn int8
}

// ECN marks a packet line may carry besides the codepoints 0-3.
const (
	ecnUnset  int8 = -1
	ecnEither int8 = 4 // [ect01]: ECT(0) or ECT(1)
)

// option is one TCP option of a script line, or of a packet the stack sent.
type option struct {
	kind   uint8
	mss    uint16
	wscale uint8
	tsVal  uint32
	tsEcr  uint32
	sack   []wire.SACKBlock
	// raw holds the data bytes of an option the runner has no syntax for.
	raw []byte
}

// syscallSpec is a system call line: name(args) = result [ERRNO (note)].
type syscallSpec struct {
	name string
	// textStart is the offset of the name in the source.
	textStart int
	args      []*expr
	// blocking is set by "...END" before the name; end is END (absolute or
	// relative, as the event's time is).
	blocking bool
	end      time.Duration
	result   *expr
	errno    string // "" when the script expects success
	note     string
}

// exprKind is the kind of a system call argument.
type exprKind int

const (
	exInt      exprKind = iota // 42
	exEllipsis                 // ...
	exWord                     // SO_REUSEADDR, ECONNREFUSED
	exString                   // "abc" ("abc"... sets ellipsis)
	exOr                       // a | b
	exAssign                   // name = value (inside {...})
	exList                     // [a, b]
	exStruct                   // {a, b}
	exCall                     // htons(8080), inet_addr("1.2.3.4")
)

// expr is a system call argument or result.
type expr struct {
	kind     exprKind
	line     int
	ival     int64
	word     string  // exWord, exString, exAssign (the field name), exCall (the function)
	ellipsis bool    // exString followed by ...
	args     []*expr // exOr (2), exAssign (1), exList, exStruct, exCall
}
