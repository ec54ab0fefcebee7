package forward

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// DefaultBufSize is the default size of each direction's relay buffer.
const DefaultBufSize = 32 << 10

// RelayOptions configure Relay.
type RelayOptions struct {
	// BufSize is the buffer of each direction: at most this much data is
	// held by the relay one way, so a slow reader slows the writer on the
	// other side (its window closes) instead of growing memory. Default
	// DefaultBufSize.
	BufSize int
	// IdleTimeout, if positive, aborts both sides (RST) once nothing has
	// moved either way for that long, and bounds how long a write to a
	// peer that does not read may block. Deadlines are set with
	// time.Now: leave it zero for a synstack connection on a virtual
	// clock.
	IdleTimeout time.Duration
}

// RelayResult says how a relay ended.
type RelayResult struct {
	AToB, BToA int64 // bytes copied each way
	// Reset is set when one side was reset (its read or write failed
	// with ECONNRESET or EPIPE) and the reset was passed on to the other.
	Reset bool
	// Idle is set when IdleTimeout aborted the relay.
	Idle bool
	// Canceled is set when the context ended the relay (both sides reset).
	Canceled bool
}

// Relay copies a to b and b to a until both directions end, keeping TCP's
// meaning end to end:
//
//   - the end of one side's stream (EOF: its FIN) becomes a half-close of
//     the other (CloseWrite, a FIN after the data), and the other
//     direction goes on until it ends too;
//   - a reset of one side (ECONNRESET on read, ECONNRESET or EPIPE on
//     write) resets the other: SetLinger(0) and Close;
//   - an idle timeout or ctx ending resets both;
//   - each direction holds one buffer of RelayOptions.BufSize: a write
//     that blocks stops that direction's reads, so backpressure crosses
//     the relay.
//
// Relay closes both connections before it returns. Connections that have
// no CloseWrite (neither a *net.TCPConn nor a *synstack.TCPConn nor
// another with that method) cannot pass on a half-close: the relay then
// waits for the other direction to end before closing both.
func Relay(ctx context.Context, a, b net.Conn, opts RelayOptions) RelayResult {
	if opts.BufSize <= 0 {
		opts.BufSize = DefaultBufSize
	}
	r := &relay{a: a, b: b, opts: opts}
	r.touch()
	stop := context.AfterFunc(ctx, func() { r.abort(&r.canceled) })
	defer stop()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.res.AToB = r.copy(b, a)
	}()
	r.res.BToA = r.copy(a, b)
	wg.Wait()
	a.Close()
	b.Close()
	res := r.res
	res.Reset = r.reset.Load()
	res.Idle = r.idle.Load()
	res.Canceled = r.canceled.Load()
	return res
}

type relay struct {
	a, b net.Conn
	opts RelayOptions
	res  RelayResult

	last     atomic.Int64 // time of the last data, UnixNano
	once     sync.Once    // the abort
	aborted  atomic.Bool
	reset    atomic.Bool
	idle     atomic.Bool
	canceled atomic.Bool
}

func (r *relay) touch() { r.last.Store(time.Now().UnixNano()) }

// abort resets both sides once, recording why in flag.
func (r *relay) abort(flag *atomic.Bool) {
	r.once.Do(func() {
		flag.Store(true)
		r.aborted.Store(true)
		Reset(r.a)
		Reset(r.b)
	})
}

// Reset aborts c with a RST where it can (SetLinger(0), then Close), and
// closes it anyway.
func Reset(c net.Conn) {
	if l, ok := c.(interface{ SetLinger(int) error }); ok {
		_ = l.SetLinger(0)
	}
	_ = c.Close()
}

// closeWrite half-closes c if it can.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// isReset reports whether err says the peer reset the connection.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNABORTED)
}

// copy moves src to dst until src's stream ends or something fails.
func (r *relay) copy(dst, src net.Conn) int64 {
	bp := getBuf(r.opts.BufSize)
	defer putBuf(bp)
	buf := *bp
	var n int64
	idle := r.opts.IdleTimeout
	for {
		if idle > 0 {
			_ = src.SetReadDeadline(time.Now().Add(idle))
		}
		k, err := src.Read(buf)
		if k > 0 {
			r.touch()
			if idle > 0 {
				_ = dst.SetWriteDeadline(time.Now().Add(idle))
			}
			w, werr := dst.Write(buf[:k])
			n += int64(w)
			if werr != nil {
				switch {
				case r.aborted.Load():
				case isReset(werr):
					r.abort(&r.reset)
				case errors.Is(werr, os.ErrDeadlineExceeded):
					r.abort(&r.idle)
				default:
					r.abort(&r.reset)
				}
				return n
			}
			r.touch()
		}
		switch {
		case err == nil:
			continue
		case r.aborted.Load():
			return n
		case err == io.EOF:
			// Pass the FIN on. Without CloseWrite there is nothing to
			// pass it with: Relay closes both once the other direction
			// ends too.
			closeWrite(dst)
			return n
		case errors.Is(err, os.ErrDeadlineExceeded) && idle > 0:
			if since := time.Since(time.Unix(0, r.last.Load())); since < idle {
				continue // the other direction moved: not idle
			}
			r.abort(&r.idle)
			return n
		default:
			// ECONNRESET, or any other failure of src: pass a reset on.
			r.abort(&r.reset)
			return n
		}
	}
}

var bufPools sync.Map // size -> *sync.Pool of *[]byte

// getBuf takes a buffer of size bytes from its pool. Allocation free once
// the pool exists (the UDP relay takes one per datagram).
func getBuf(size int) *[]byte {
	p, ok := bufPools.Load(size)
	if !ok {
		p, _ = bufPools.LoadOrStore(size, &sync.Pool{New: func() any {
			b := make([]byte, size)
			return &b
		}})
	}
	return p.(*sync.Pool).Get().(*[]byte)
}

func putBuf(b *[]byte) {
	if p, ok := bufPools.Load(len(*b)); ok {
		p.(*sync.Pool).Put(b)
	}
}
