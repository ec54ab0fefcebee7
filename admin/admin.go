// Package admin is the operator's view of a running synstack.Stack, served
// over HTTP:
//
//	/metrics         the stack's counters in Prometheus text format, named as
//	                 node_exporter names the kernel's netstat counters
//	                 (synstack_netstat_Tcp_ActiveOpens,
//	                 synstack_netstat_TcpExt_ListenDrops...), plus
//	                 synstack_sockets{state="..."}: sockets per state
//	/debug/sockets   every connection and listener as JSON, with what
//	                 ss -ti shows (rto, rtt, cwnd, bytes acked...)
//	/events          a server-sent event stream: each state transition as it
//	                 happens, and the counts per state
//	/                a live page: the RFC 9293 state diagram with the
//	                 number of connections in each state, transitions lit as
//	                 they happen, and the connection table
//
// Counters are read at scrape time: serving metrics costs the stack nothing
// per packet. Transitions come from an Observer set as the stack's
// Config.OnTransition:
//
//	obs := admin.NewObserver()
//	st, err := synstack.New(synstack.Config{Link: l, Addrs: addrs, OnTransition: obs.OnTransition})
//	...
//	go http.ListenAndServe("127.0.0.1:9100", admin.Handler(st, obs))
//
// Without an Observer, /events and the page still show the counts, but no
// transitions.
package admin

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/synstack/synstack"
)

// An Option configures Handler. An *Observer is one: it gives the handler
// the stack's transitions.
type Option interface {
	apply(*config)
}

type config struct {
	obs       *Observer
	interval  time.Duration
	runtime   bool
	maxEvents int // /events streams at once
	queue     int // transitions each /events stream queues
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

func (o *Observer) apply(c *config) { c.obs = o }

// DefaultCountsInterval is how often /events sends the counts per state
// when nothing happens.
const DefaultCountsInterval = time.Second

// CountsInterval sets how often /events sends the counts per state when no
// transition prompts it (default DefaultCountsInterval). After transitions
// the counts follow within a tenth of a second, or d if shorter.
func CountsInterval(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d > 0 {
			c.interval = d
		}
	})
}

// MaxEventClients sets how many /events streams are served at once
// (default DefaultMaxEventClients); beyond it a request gets 503 Service
// Unavailable, counted in synstack_admin_event_clients_refused_total.
// Each stream costs a goroutine, its queue and a 16 KiB write buffer.
func MaxEventClients(n int) Option {
	return optionFunc(func(c *config) {
		if n > 0 {
			c.maxEvents = n
		}
	})
}

// EventQueue sets how many transitions each /events stream queues
// (default DefaultEventQueue). A stream whose queue fills up, because its
// client reads too slowly for the transitions coming, is ended with a
// "dropped" event and counted in synstack_admin_event_clients_dropped_total.
func EventQueue(n int) Option {
	return optionFunc(func(c *config) {
		if n > 0 {
			c.queue = n
		}
	})
}

// WithoutRuntimeMetrics leaves the Go runtime's and the process's metrics
// (go_*, process_*) out of /metrics, which by default has them.
func WithoutRuntimeMetrics() Option {
	return optionFunc(func(c *config) { c.runtime = false })
}

// Handler returns the admin endpoints of st: /metrics, /debug/sockets,
// /events and the live page at /. It serves any method but GET and HEAD
// with 405.
func Handler(st *synstack.Stack, opts ...Option) http.Handler {
	cfg := config{interval: DefaultCountsInterval, runtime: true, maxEvents: DefaultMaxEventClients, queue: DefaultEventQueue}
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	events := &eventsHandler{st: st, obs: cfg.obs, interval: cfg.interval, max: cfg.maxEvents, queue: cfg.queue}
	reg := prometheus.NewRegistry()
	reg.MustRegister(&collector{st: st, obs: cfg.obs, events: events})
	if cfg.runtime {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("GET /debug/sockets", socketsHandler{st})
	mux.Handle("GET /events", events)
	mux.HandleFunc("GET /{$}", servePage)
	return mux
}
