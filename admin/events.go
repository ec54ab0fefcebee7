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

func (h *eventsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.active.Add(1) > int64(h.max) {
		h.active.Add(-1)
		h.refused.Add(1)
		w.Header().Set("Retry-After", "10")
		// And the connection goes: a client refused holds nothing of
		// the server's while it waits to try again.
		w.Header().Set("Connection", "close")
		http.Error(w, "503 too many /events clients: "+strconv.Itoa(h.max)+
			" streams already (admin.MaxEventClients); try again later", http.StatusServiceUnavailable)
		return
	}
	defer h.active.Add(-1)
	rc := http.NewResponseController(w)
	defer rc.SetWriteDeadline(time.Time{})
	var sub *Subscription
	var transitions <-chan Transition
	var dropped0 uint64
	if h.obs != nil {
		dropped0 = h.obs.Dropped()
		sub = h.obs.Subscribe(h.queue)
		defer sub.Close()
		transitions = sub.C()
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 16<<10)

	sendJSON := func(event string, b []byte) {
		bw.WriteString("event: ")
		bw.WriteString(event)
		bw.WriteString("\ndata: ")
		bw.Write(b)
		bw.WriteString("\n\n")
	}
	send := func(event string, v any) {
		b, _ := json.Marshal(v)
		sendJSON(event, b)
	}
	counts := func() {
		c := h.snapshot()
		if sub != nil {
			c.Transitions = h.obs.Seen()
			c.Dropped = h.obs.Dropped() - dropped0
		}
		send("counts", c)
	}
	flush := func() bool {
		rc.SetWriteDeadline(time.Now().Add(eventWriteTimeout)) // unsupported: no bound
		if bw.Flush() != nil {
			return false
		}
		return rc.Flush() == nil
	}

	bw.WriteString("retry: 1000\n\n")
	counts()
	if !flush() {
		return
	}
	tick := time.NewTicker(h.interval)
	defer tick.Stop()
	soon := time.NewTimer(time.Hour)
	soon.Stop()
	defer soon.Stop()
	pending := false
	delay := min(countsDelay, h.interval)
	later := time.NewTimer(time.Hour) // the flush of transitions written
	later.Stop()
	defer later.Stop()
	dirty := false
	for {
		select {
		case <-r.Context().Done():
			return
		case ev, ok := <-transitions:
			if !ok {
				// Dropped: this stream fell behind.
				send("dropped", DroppedEvent{Time: time.Now().UnixMilli(), Queue: h.queue})
				flush()
				return
			}
			// Write what is queued in one batch, then one flush.
			for n := 0; ; n++ {
				sendJSON("transition", h.enc.get(ev))
				if n == maxBatch {
					break
				}
				var more bool
				select {
				case ev, more = <-transitions:
				default:
				}
				if !more {
					break
				}
			}
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
			counts()
		case <-tick.C:
			if !pending {
				counts()
			}
		}
		if dirty {
			dirty = false
			later.Stop()
		}
		if !flush() {
			return
		}
	}
}

// addrString is a's address:port, or "" for the zero AddrPort (a
// listener's peer), never "invalid AddrPort".
func addrString(a netip.AddrPort) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
