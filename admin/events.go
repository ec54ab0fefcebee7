package admin

import (
	"bufio"
	"encoding/json"
	"net/http"
	"time"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/tcp"
)

// TransitionEvent is the data of a "transition" event on /events.
type TransitionEvent struct {
	Time   int64  `json:"t"` // Unix milliseconds
	Local  string `json:"local"`
	Remote string `json:"remote"`
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
	Dropped     uint64         `json:"dropped"`     // transitions this stream missed
	Observed    bool           `json:"observed"`    // an Observer feeds the stream transitions
}

// eventBuffer is how many transitions an /events stream holds before it
// drops; maxBatch is how many it writes before flushing.
const (
	eventBuffer = 4096
	maxBatch    = 256
	// countsDelay is how soon the counts follow a transition.
	countsDelay = 100 * time.Millisecond
)

// eventsHandler serves /events, a text/event-stream of "transition" events
// (TransitionEvent) as they happen and "counts" events (CountsEvent) at
// the start, shortly after transitions, and every interval.
type eventsHandler struct {
	st       *synstack.Stack
	obs      *Observer
	interval time.Duration
}

func (h *eventsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	var sub *Subscription
	var transitions <-chan Transition
	if h.obs != nil {
		sub = h.obs.Subscribe(eventBuffer)
		defer sub.Close()
		transitions = sub.C()
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 16<<10)

	send := func(event string, v any) {
		bw.WriteString("event: ")
		bw.WriteString(event)
		bw.WriteString("\ndata: ")
		b, _ := json.Marshal(v)
		bw.Write(b)
		bw.WriteString("\n\n")
	}
	counts := func() {
		c := CountsEvent{
			Time:     time.Now().UnixMilli(),
			States:   make(map[string]int, 11),
			Stats:    h.st.Stats(),
			Observed: h.obs != nil,
		}
		for s, n := range h.st.CountStates() {
			c.States[tcp.State(s).String()] = n
		}
		if sub != nil {
			c.Transitions = h.obs.Seen()
			c.Dropped = sub.Dropped()
		}
		send("counts", c)
	}
	flush := func() bool {
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
	for {
		select {
		case <-r.Context().Done():
			return
		case ev := <-transitions:
			// Write what is queued in one batch, then one flush.
			for n := 0; ; n++ {
				send("transition", TransitionEvent{
					Time:   ev.Time.UnixMilli(),
					Local:  ev.Local.String(),
					Remote: ev.Remote.String(),
					From:   ev.From.String(),
					To:     ev.To.String(),
					Cause:  string(ev.Cause),
				})
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
		case <-soon.C:
			pending = false
			counts()
		case <-tick.C:
			if !pending {
				counts()
			}
		}
		if !flush() {
			return
		}
	}
}
