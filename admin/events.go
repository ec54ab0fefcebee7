package admin

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/tcp"
)

// TransitionEvent is the data of a "transition" event on /events.
type TransitionEvent struct {
	Time   int64  `json:"t"` // Unix milliseconds
	Local  string `json:"local"`
	Remote string `json:"remote,omitempty"` // empty for a listener's own transitions
	From   string `json:"from"`
	To     string `json:"to"`
	Cause  string `json:"cause"`
}

// CountsEvent is the data of a "counts" event on /events: the sockets per
// state, the stack's counters, and what this stream missed.
type CountsEvent struct {
	Time        int64          `json:"t"` // Unix milliseconds
	States      map[string]int `json:"states"`
	Stats       synstack.Stats `json:"stats"`
	Transitions uint64         `json:"transitions"` // transitions the Observer has seen (0 without one)
	Dropped     uint64         `json:"dropped"`     // transitions this stream missed: the Observer's queue was full
	Observed    bool           `json:"observed"`    // an Observer feeds the stream transitions
}

// DroppedEvent is the data of the "dropped" event that ends an /events
// stream which fell behind: its queue of transitions filled up. The
// client may reconnect (the stream's retry is 1 s).
type DroppedEvent struct {
	Time  int64 `json:"t"`     // Unix milliseconds
	Queue int   `json:"queue"` // the stream's queue, in transitions
}

const (
	// DefaultMaxEventClients is how many /events streams are served at
	// once unless MaxEventClients says otherwise.
	DefaultMaxEventClients = 64
	// DefaultEventQueue is how many transitions an /events stream queues
	// unless EventQueue says otherwise.
	DefaultEventQueue = 1024
	// maxBatch is how many transitions a stream writes before flushing.
	maxBatch = 256
	// countsDelay is how soon the counts follow a transition.
	countsDelay = 100 * time.Millisecond
	// flushDelay is how long transitions wait to be written together: a
	// stream flushed per transition cost a write system call per
	// transition per client (64 clients made the served site 3x slower).
	flushDelay = 50 * time.Millisecond
	// eventWriteTimeout bounds each write of a stream: a client that
	// reads nothing for that long is cut off.
	eventWriteTimeout = 10 * time.Second
)

// eventsHandler serves /events, a text/event-stream of "transition" events
// (TransitionEvent) as they happen and "counts" events (CountsEvent) at
// the start, shortly after transitions, and every interval. It serves max
// streams at once and refuses more with 503; each stream queues queue
// transitions and is ended (a "dropped" event) when they fill up.
type eventsHandler struct {
	st       *synstack.Stack
	obs      *Observer
	interval time.Duration
	max      int
	queue    int

	active  atomic.Int64  // streams being served
	refused atomic.Uint64 // requests refused: max streams already

	// cache is the last counts taken, shared by every stream: Stats and
	// CountStates take every lock of the stack and walk its connections,
	// so 64 streams must not each take them ten times a second.
	cache struct {
		sync.Mutex
		at time.Time
		c  CountsEvent // States is never written once cached
	}
	// enc holds the JSON of recent transitions: every stream writes the
	// same ones, and one encoding serves them all.
	enc encodings
}

// encodings is a small direct-mapped cache of transitions' JSON.
type encodings struct {
	mu    sync.Mutex
	slots [256]struct {
		ev Transition
		b  []byte // never written once cached
	}
}

// get returns the JSON of ev's TransitionEvent, encoding it only if no
// stream has yet.
func (e *encodings) get(ev Transition) []byte {
	i := (uint64(ev.Time.UnixNano()) ^ uint64(ev.Local.Port())<<16 ^ uint64(ev.Remote.Port()) ^ uint64(ev.To)<<32) % uint64(len(e.slots))
	e.mu.Lock()
	s := &e.slots[i]
	if s.b != nil && s.ev == ev {
		b := s.b
		e.mu.Unlock()
		return b
	}
	e.mu.Unlock()
	b, _ := json.Marshal(TransitionEvent{
		Time:   ev.Time.UnixMilli(),
		Local:  ev.Local.String(),
		Remote: addrString(ev.Remote),
		From:   ev.From.String(),
		To:     ev.To.String(),
		Cause:  string(ev.Cause),
	})
	e.mu.Lock()
	s.ev, s.b = ev, b
	e.mu.Unlock()
	return b
}

// snapshot returns the counts per state and the stack's counters, taken at
// most once per half countsDelay for all streams.
func (h *eventsHandler) snapshot() CountsEvent {
	h.cache.Lock()
	defer h.cache.Unlock()
	now := time.Now()
	if !h.cache.at.IsZero() && now.Sub(h.cache.at) < countsDelay/2 {
		return h.cache.c
	}
	c := CountsEvent{
		Time:     now.UnixMilli(),
		States:   make(map[string]int, 11),
		Stats:    h.st.Stats(),
		Observed: h.obs != nil,
	}
	for s, n := range h.st.CountStates() {
		c.States[tcp.State(s).String()] = n
	}
	h.cache.at, h.cache.c = now, c
	return c
}

// ServeHTTP serves one /events stream: refused with 503 past max streams,
// else the counts at once, then transitions and counts until the client
// goes, falls behind, or stops reading.
func (h *eventsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.admit(w) {
		return
	}
	defer h.active.Add(-1)
	s := h.open(w)
	defer s.close()
	s.run(r.Context().Done())
}

// admit takes one of the max stream places, or answers 503 and reports
// false when none is free.
func (h *eventsHandler) admit(w http.ResponseWriter) bool {
	if h.active.Add(1) <= int64(h.max) {
		return true
	}
	h.active.Add(-1)
	h.refused.Add(1)
	w.Header().Set("Retry-After", "10")
	// And the connection goes: a client refused holds nothing of
	// the server's while it waits to try again.
	w.Header().Set("Connection", "close")
	http.Error(w, "503 too many /events clients: "+strconv.Itoa(h.max)+
		" streams already (admin.MaxEventClients); try again later", http.StatusServiceUnavailable)
	return false
}

// eventStream is one client's /events stream.
type eventStream struct {
	h           *eventsHandler
	rc          *http.ResponseController
	bw          *bufio.Writer
	sub         *Subscription     // nil without an Observer
	transitions <-chan Transition // nil without an Observer: never ready
	dropped0    uint64            // the Observer's drops when the stream began
}

// open subscribes to the Observer, if there is one, and writes the
// stream's response header.
func (h *eventsHandler) open(w http.ResponseWriter) *eventStream {
	s := &eventStream{h: h, rc: http.NewResponseController(w)}
	if h.obs != nil {
		s.dropped0 = h.obs.Dropped()
		s.sub = h.obs.Subscribe(h.queue)
		s.transitions = s.sub.C()
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s.bw = bufio.NewWriterSize(w, 16<<10)
	return s
}

// close ends the subscription and lifts the write deadline from the
// connection, which may serve another request.
func (s *eventStream) close() {
	if s.sub != nil {
		s.sub.Close()
	}
	s.rc.SetWriteDeadline(time.Time{})
}

// run writes the stream until the client goes (done), falls behind, or a
// flush fails. Transitions are written as they come and flushed together
// after flushDelay; counts follow them after countsDelay, and come every
// interval when nothing happens.
func (s *eventStream) run(done <-chan struct{}) {
	s.bw.WriteString("retry: 1000\n\n")
	s.counts()
	if !s.flush() {
		return
	}
	tick := time.NewTicker(s.h.interval)
	defer tick.Stop()
	soon := time.NewTimer(time.Hour) // the counts that follow transitions
	soon.Stop()
	defer soon.Stop()
	pending := false
	delay := min(countsDelay, s.h.interval)
	later := time.NewTimer(time.Hour) // the flush of transitions written
	later.Stop()
	defer later.Stop()
	dirty := false
	for {
		select {
		case <-done:
			return
		case ev, ok := <-s.transitions:
			if !ok {
				// Dropped: this stream fell behind.
				s.send("dropped", DroppedEvent{Time: time.Now().UnixMilli(), Queue: s.h.queue})
				s.flush()
				return
			}
			s.writeBatch(ev)
			if !pending {
				pending = true
				soon.Reset(delay)
			}
			if !dirty {
				dirty = true
				later.Reset(flushDelay)
			}
			continue
		case <-later.C:
		case <-soon.C:
			pending = false
			s.counts()
		case <-tick.C:
			if !pending {
				s.counts()
			}
		}
		if dirty {
			dirty = false
			later.Stop()
		}
		if !s.flush() {
			return
		}
	}
}

// writeBatch writes ev and what else is queued, up to maxBatch more, so one
// flush carries them all.
func (s *eventStream) writeBatch(ev Transition) {
	for n := 0; ; n++ {
		s.event("transition", s.h.enc.get(ev))
		if n == maxBatch {
			return
		}
		var more bool
		select {
		case ev, more = <-s.transitions:
		default:
		}
		if !more {
			return
		}
	}
}

// event writes one event whose data is the JSON b.
func (s *eventStream) event(name string, b []byte) {
	s.bw.WriteString("event: ")
	s.bw.WriteString(name)
	s.bw.WriteString("\ndata: ")
	s.bw.Write(b)
	s.bw.WriteString("\n\n")
}

// send writes one event whose data is v in JSON.
func (s *eventStream) send(name string, v any) {
	b, _ := json.Marshal(v)
	s.event(name, b)
}

// counts writes a "counts" event, with the transitions this stream missed.
func (s *eventStream) counts() {
	c := s.h.snapshot()
	if s.sub != nil {
		c.Transitions = s.h.obs.Seen()
		c.Dropped = s.h.obs.Dropped() - s.dropped0
	}
	s.send("counts", c)
}

// flush sends what is written to the client, within eventWriteTimeout, and
// reports whether it went.
func (s *eventStream) flush() bool {
	s.rc.SetWriteDeadline(time.Now().Add(eventWriteTimeout)) // unsupported: no bound
	if s.bw.Flush() != nil {
		return false
	}
	return s.rc.Flush() == nil
}

// addrString is a's address:port, or "" for the zero AddrPort (a
// listener's peer), never "invalid AddrPort".
func addrString(a netip.AddrPort) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
