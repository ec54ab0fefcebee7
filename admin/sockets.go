package admin

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/tcp"
)

// Socket is one element of /debug/sockets: a connection or a listener with
// what ss -ti shows of it. Times are in milliseconds, as ss prints them.
type Socket struct {
	Proto     string `json:"proto,omitempty"`  // "udp" for a UDP socket; TCP otherwise
	State     string `json:"state"`            // RFC 9293 name: ESTABLISHED, TIME_WAIT...; for UDP UNCONN or ESTAB, as ss
	Local     string `json:"local"`            // address:port
	Remote    string `json:"remote,omitempty"` // address:port; empty for a listener
	Listening bool   `json:"listening,omitempty"`
	Orphan    bool   `json:"orphan,omitempty"` // closed by the application, not finished
	// RecvQ and SendQ are ss's: for a connection, bytes not yet read and
	// bytes not yet acknowledged; for a listener, the accept queue's length
	// and the backlog.
	RecvQ int `json:"recv_q"`
	SendQ int `json:"send_q"`

	Congestion string   `json:"congestion,omitempty"` // cubic, reno, bbr
	Options    []string `json:"options,omitempty"`    // negotiated: "ts", "sack", "wscale"
	SndWScale  int      `json:"snd_wscale,omitempty"`
	RcvWScale  int      `json:"rcv_wscale,omitempty"`

	RTO    float64 `json:"rto_ms"`
	RTT    float64 `json:"rtt_ms"`    // smoothed round-trip time
	RTTVar float64 `json:"rttvar_ms"` // its mean deviation
	MSS    int     `json:"mss"`       // sending MSS
	AdvMSS int     `json:"advmss"`    // MSS advertised in our SYN
	RcvMSS int     `json:"rcvmss"`    // MSS guessed for the peer's segments

	Cwnd     int `json:"cwnd"`     // congestion window, segments
	Ssthresh int `json:"ssthresh"` // slow-start threshold, segments (2147483647: not set)
	SndWnd   int `json:"snd_wnd"`  // peer's window, bytes
	RcvWnd   int `json:"rcv_wnd"`  // our advertised window, bytes

	Unacked      int `json:"unacked"`       // segments in flight
	Retransmits  int `json:"retransmits"`   // consecutive timeouts of the current segment
	TotalRetrans int `json:"total_retrans"` // segments retransmitted
	TotalRTO     int `json:"total_rto"`     // retransmission timeouts
	Backoff      int `json:"backoff"`

	BytesAcked    uint64 `json:"bytes_acked"`
	BytesReceived uint64 `json:"bytes_received"`
	SegsOut       uint64 `json:"segs_out"`
	SegsIn        uint64 `json:"segs_in"`

	ATO          float64 `json:"ato_ms,omitempty"`        // delayed-ACK timeout (tcpi_ato)
	PMTU         int     `json:"pmtu,omitempty"`          // path MTU (tcpi_pmtu)
	RcvSsthresh  int     `json:"rcv_ssthresh,omitempty"`  // receive window's threshold, bytes (tcpi_rcv_ssthresh)
	BytesSent    uint64  `json:"bytes_sent,omitempty"`    // data octets sent, retransmissions included
	BytesRetrans uint64  `json:"bytes_retrans,omitempty"` // data octets sent again
	DataSegsOut  uint64  `json:"data_segs_out,omitempty"` // segments with data sent, retransmissions included
	DataSegsIn   uint64  `json:"data_segs_in,omitempty"`  // segments with data received
	RcvOOOPack   int     `json:"rcv_ooopack,omitempty"`   // segments received out of order
	// RTORecoveries counts RTO recovery episodes, RTORecoveryTime the time
	// spent in them (tcpi_total_rto_recoveries, tcpi_total_rto_time).
	RTORecoveries   int     `json:"rto_recoveries,omitempty"`
	RTORecoveryTime float64 `json:"rto_recovery_time_ms,omitempty"`

	PacingRate   uint64  `json:"pacing_rate,omitempty"`   // bytes per second (tcpi_pacing_rate)
	DeliveryRate uint64  `json:"delivery_rate,omitempty"` // bytes per second (tcpi_delivery_rate)
	MinRTT       float64 `json:"minrtt_ms,omitempty"`     // smallest RTT seen (tcpi_min_rtt)
	BBR          *BBR    `json:"bbr,omitempty"`           // BBR's model, when the connection uses BBR
}

// BBR is BBR's model of the path, as ss -ti shows it (bbr:(...)).
type BBR struct {
	Mode       string  `json:"mode"`        // STARTUP, DRAIN, PROBE_BW, PROBE_RTT
	Bandwidth  uint64  `json:"bw"`          // bytes per second
	MinRTT     float64 `json:"mrtt_ms"`     // BBR's windowed minimum RTT
	PacingGain float64 `json:"pacing_gain"` // current gains
	CwndGain   float64 `json:"cwnd_gain"`
}

// ms turns a duration into milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// NewSocket converts a synstack.ConnInfo into its /debug/sockets form.
func NewSocket(c synstack.ConnInfo) Socket {
	if c.UDP {
		s := Socket{Proto: "udp", State: "UNCONN", Local: c.Local.String(), RecvQ: c.RecvQ}
		if c.Remote.IsValid() {
			s.State, s.Remote = "ESTAB", c.Remote.String()
		}
		return s
	}
	i := c.Info
	s := Socket{
		State:      i.State.String(),
		Local:      c.Local.String(),
		Listening:  c.Listening,
		Orphan:     c.Orphan,
		RecvQ:      c.RecvQ,
		SendQ:      c.SendQ,
		Congestion: c.Congestion,
	}
	if c.Listening {
		return s
	}
	s.Remote = c.Remote.String()
	if i.Options&1 != 0 {
		s.Options = append(s.Options, "ts")
	}
	if i.Options&2 != 0 {
		s.Options = append(s.Options, "sack")
	}
	if i.Options&4 != 0 {
		s.Options = append(s.Options, "wscale")
		s.SndWScale, s.RcvWScale = int(i.SndWScale), int(i.RcvWScale)
	}
	s.RTO, s.RTT, s.RTTVar = ms(i.RTO), ms(i.RTT), ms(i.RTTVar)
	s.MSS, s.AdvMSS, s.RcvMSS = i.SndMSS, i.AdvMSS, i.RcvMSS
	s.Cwnd, s.Ssthresh, s.SndWnd, s.RcvWnd = i.Cwnd, i.Ssthresh, i.SndWnd, i.RcvWnd
	s.Unacked, s.Retransmits, s.TotalRetrans, s.TotalRTO, s.Backoff = i.Unacked, i.Retransmits, i.TotalRetrans, i.TotalRTO, i.Backoff
	s.BytesAcked, s.BytesReceived, s.SegsOut, s.SegsIn = i.BytesAcked, i.BytesReceived, i.SegsOut, i.SegsIn
	s.ATO, s.PMTU, s.RcvSsthresh = ms(i.ATO), i.PMTU, i.RcvSsthresh
	s.BytesSent, s.BytesRetrans, s.DataSegsOut, s.DataSegsIn = i.BytesSent, i.BytesRetrans, i.DataSegsOut, i.DataSegsIn
	s.RcvOOOPack, s.RTORecoveries, s.RTORecoveryTime = i.RcvOOOPack, i.TotalRTORecoveries, ms(i.TotalRTOTime)
	s.PacingRate, s.DeliveryRate, s.MinRTT = i.PacingRate, i.DeliveryRate, ms(i.MinRTT)
	if b := i.BBR; b != nil {
		s.BBR = &BBR{Mode: b.Mode, Bandwidth: b.Bandwidth, MinRTT: ms(b.MinRTT), PacingGain: b.PacingGain, CwndGain: b.CwndGain}
	}
	return s
}

// socketsHandler serves /debug/sockets: a JSON array of Socket, listeners
// first, then by address. Query parameters: state=ESTABLISHED,TIME_WAIT
// keeps those states only; limit=N returns at most N, for a cost that grows
// with N, not with the stack's connections (Stack.ConnectionsLimit): with
// a limit, which N connections come is unspecified.
type socketsHandler struct{ st *synstack.Stack }

func (h socketsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := -1
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			http.Error(w, "limit: want a number >= 0", http.StatusBadRequest)
			return
		}
		limit = n
	}
	var want map[tcp.State]bool
	if v := q.Get("state"); v != "" {
		want = make(map[tcp.State]bool)
		for name := range strings.SplitSeq(v, ",") {
			st, ok := parseState(name)
			if !ok {
				http.Error(w, "state: unknown state "+strconv.Quote(name), http.StatusBadRequest)
				return
			}
			want[st] = true
		}
	}
	var keep func(tcp.State) bool
	if want != nil {
		keep = func(s tcp.State) bool { return want[s] }
	}
	conns := h.st.ConnectionsLimit(limit, keep)
	out := make([]Socket, len(conns))
	for i, c := range conns {
		out[i] = NewSocket(c)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	enc.Encode(out)
}

// parseState reads a state name as tcp.State prints it (ESTABLISHED,
// SYN_SENT...), in any case, with '-' for '_' allowed.
func parseState(name string) (tcp.State, bool) {
	name = strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(name), "-", "_"))
	for s := tcp.Closed; s <= tcp.TimeWait; s++ {
		if s.String() == name {
			return s, true
		}
	}
	return 0, false
}
