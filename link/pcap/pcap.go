// Package pcap writes packet captures that Wireshark, tshark and tcpdump
// read: a Writer for the classic pcap file format, and a Tap that wraps any
// link.Endpoint and records every packet it carries, both ways.
//
// The packets of a synstack link are bare IP packets (IPv4 or IPv6, no link
// header), so files use LINKTYPE_RAW (101): each record is an IP packet whose
// version nibble tells IPv4 from IPv6. Timestamps come from a clock.Clock,
// so a capture of a simulation on a clock.Virtual carries the virtual time.
//
//	f, _ := os.Create("out.pcap")
//	w, _ := pcap.NewWriter(f)
//	ep := pcap.NewTap(simEndpoint, w, clk) // give ep to the stack
package pcap

import (
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/synstack/synstack/clock"
	"github.com/synstack/synstack/link"
)

// Constants of the file format (https://www.tcpdump.org/linktypes.html and
// draft-ietf-opsawg-pcap).
const (
	// LinkTypeRaw is LINKTYPE_RAW: records start with an IPv4 or IPv6 header.
	LinkTypeRaw = 101
	// DefaultSnapLen is the largest record kept whole; longer packets are
	// truncated to it (the record keeps the original length).
	DefaultSnapLen = 262144

	magicMicros  = 0xa1b2c3d4 // timestamps in microseconds
	versionMajor = 2
	versionMinor = 4
	fileHdrLen   = 24
	recHdrLen    = 16
)

// Writer writes a pcap file: the file header when created, then one record
// per packet. It is safe for concurrent use.
type Writer struct {
	mu      sync.Mutex
	w       io.Writer
	snapLen int
	buf     []byte
	err     error
	n       int
}

// NewWriter writes the file header (LINKTYPE_RAW, microsecond timestamps,
// DefaultSnapLen) to w and returns a Writer for the records.
func NewWriter(w io.Writer) (*Writer, error) {
	pw := &Writer{w: w, snapLen: DefaultSnapLen, buf: make([]byte, recHdrLen, 2048)}
	var h [fileHdrLen]byte
	binary.LittleEndian.PutUint32(h[0:], magicMicros)
	binary.LittleEndian.PutUint16(h[4:], versionMajor)
	binary.LittleEndian.PutUint16(h[6:], versionMinor)
	// thiszone and sigfigs (8..15) are zero.
	binary.LittleEndian.PutUint32(h[16:], uint32(pw.snapLen))
	binary.LittleEndian.PutUint32(h[20:], LinkTypeRaw)
	if _, err := w.Write(h[:]); err != nil {
		return nil, err
	}
	return pw, nil
}

// WritePacket appends one record: pkt (an IP packet) captured at t. The
// first error is kept and returned by every later call (see Err).
func (w *Writer) WritePacket(t time.Time, pkt []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	incl := min(len(pkt), w.snapLen)
	b := w.buf[:recHdrLen]
	us := t.UnixMicro()
	binary.LittleEndian.PutUint32(b[0:], uint32(us/1e6))
	binary.LittleEndian.PutUint32(b[4:], uint32(us%1e6))
	binary.LittleEndian.PutUint32(b[8:], uint32(incl))
	binary.LittleEndian.PutUint32(b[12:], uint32(len(pkt)))
	b = append(b, pkt[:incl]...)
	w.buf = b[:recHdrLen]
	if _, err := w.w.Write(b); err != nil {
		w.err = err
		return err
	}
	w.n++
	return nil
}

// Count returns the number of records written.
func (w *Writer) Count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// Err returns the first write error, if any.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Tap is a link.Endpoint that records every packet passing through the
// endpoint it wraps: those written to it (sent by the stack) and those
// delivered by it (received by the stack), in the order they pass, with
// the clock's time. Wrap one end of a link to capture a conversation once;
// wrapping both ends with one Writer records each packet twice.
type Tap struct {
	ep  link.Endpoint
	w   *Writer
	clk clock.Clock
}

// NewTap returns a tap on ep writing to w, timestamps from clk (the real
// clock if nil).
func NewTap(ep link.Endpoint, w *Writer, clk clock.Clock) *Tap {
	if clk == nil {
		clk = clock.Real{}
	}
	return &Tap{ep: ep, w: w, clk: clk}
}

// MTU returns the wrapped endpoint's MTU.
func (t *Tap) MTU() int { return t.ep.MTU() }

// Attach attaches d to the wrapped endpoint behind a recorder.
func (t *Tap) Attach(d link.Dispatcher) {
	if d == nil {
		t.ep.Attach(nil)
		return
	}
	t.ep.Attach(tapDispatcher{t: t, d: d})
}

// WritePacket records pkt, then writes it to the wrapped endpoint. A
// capture error does not stop the packet; see Writer.Err.
func (t *Tap) WritePacket(pkt []byte) error {
	t.w.WritePacket(t.clk.Now(), pkt)
	return t.ep.WritePacket(pkt)
}

// Close closes the wrapped endpoint. It does not close the Writer's file.
func (t *Tap) Close() error { return t.ep.Close() }

type tapDispatcher struct {
	t *Tap
	d link.Dispatcher
}

func (td tapDispatcher) DeliverPacket(pkt []byte) {
	td.t.w.WritePacket(td.t.clk.Now(), pkt)
	td.d.DeliverPacket(pkt)
}

// Record is one packet read back from a capture.
type Record struct {
	Time    time.Time
	Data    []byte // the captured bytes (at most the snap length)
	OrigLen int    // the packet's length on the wire
}

// Errors of ReadFile.
var (
	ErrNotPcap     = errors.New("pcap: not a pcap file")
	ErrBadLinkType = errors.New("pcap: link type is not LINKTYPE_RAW")
	ErrTruncated   = errors.New("pcap: truncated record")
)

// Read parses a capture written by Writer (little-endian, microsecond,
// LINKTYPE_RAW) and returns its records. It is meant for tests and tools
// that check captures.
func Read(r io.Reader) ([]Record, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if len(b) < fileHdrLen || binary.LittleEndian.Uint32(b) != magicMicros {
		return nil, ErrNotPcap
	}
	if binary.LittleEndian.Uint32(b[20:]) != LinkTypeRaw {
		return nil, ErrBadLinkType
	}
	var recs []Record
	for b = b[fileHdrLen:]; len(b) > 0; {
		if len(b) < recHdrLen {
			return recs, ErrTruncated
		}
		sec := binary.LittleEndian.Uint32(b[0:])
		usec := binary.LittleEndian.Uint32(b[4:])
		incl := int(binary.LittleEndian.Uint32(b[8:]))
		orig := int(binary.LittleEndian.Uint32(b[12:]))
		if incl > len(b)-recHdrLen {
			return recs, ErrTruncated
		}
		recs = append(recs, Record{
			Time:    time.Unix(int64(sec), int64(usec)*1000).UTC(),
			Data:    b[recHdrLen : recHdrLen+incl],
			OrigLen: orig,
		})
		b = b[recHdrLen+incl:]
	}
	return recs, nil
}
