package admin

import (
	"reflect"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/tcp"
)

// gauges lists the synstack.Stats fields that are levels, not counters.
var gauges = map[string]bool{"TcpCurrEstab": true}

// help is the HELP text of each Stats field; a field missing here (a
// counter added to the stack since) gets a generic one.
var help = map[string]string{
	"IpInReceives":      "IP packets received.",
	"IpInHdrErrors":     "IP packets dropped: malformed header or bad header checksum.",
	"IpInAddrErrors":    "IP packets dropped: the destination is not one of the stack's addresses.",
	"IpInUnknownProtos": "IP packets dropped: neither TCP nor ICMP.",
	"IpReasmFails":      "IP fragments dropped (no reassembly).",
	"IpInDelivers":      "IP packets handed to TCP or ICMP.",
	"IpOutRequests":     "IP packets sent.",
	"IpOutDiscards":     "IP packets that could not be built or written.",

	"TcpActiveOpens":  "Transitions CLOSED -> SYN_SENT (connect).",
	"TcpPassiveOpens": "Transitions LISTEN -> SYN_RCVD (a SYN at a listener).",
	"TcpAttemptFails": "Transitions SYN_SENT/SYN_RCVD -> CLOSED and SYN_RCVD -> LISTEN.",
	"TcpEstabResets":  "Transitions ESTABLISHED/CLOSE_WAIT -> CLOSED.",
	"TcpCurrEstab":    "Connections now in ESTABLISHED or CLOSE_WAIT.",
	"TcpInSegs":       "TCP segments received.",
	"TcpOutSegs":      "TCP segments sent.",
	"TcpRetransSegs":  "TCP segments retransmitted.",
	"TcpInErrs":       "TCP segments dropped: bad checksum or malformed header.",
	"TcpInCsumErrors": "TCP segments dropped: bad checksum.",
	"TcpOutRsts":      "TCP segments sent with RST.",

	"TcpExtListenOverflows":  "SYNs or handshake-completing ACKs dropped: accept queue full.",
	"TcpExtListenDrops":      "SYNs or ACKs dropped at a listener for any reason.",
	"TcpExtSyncookiesSent":   "SYN,ACKs sent with a SYN cookie.",
	"TcpExtSyncookiesRecv":   "ACKs that returned a valid SYN cookie.",
	"TcpExtSyncookiesFailed": "ACKs at a listener whose SYN cookie did not check out.",
	"TcpExtTCPAbortOnMemory": "Connections reset on close because of too many orphans.",
	"TcpExtTCPTimeouts":      "Retransmission timeouts, SYN and SYN,ACK ones included.",
	"TcpExtOutOfWindowIcmps": "ICMP errors dropped: the quoted sequence number is not in flight.",

	"IcmpInMsgs":          "ICMPv4 messages received.",
	"IcmpInErrors":        "ICMPv4 messages dropped: bad checksum, or an error quoting no connection.",
	"IcmpInEchos":         "ICMPv4 echo requests received.",
	"IcmpInDestUnreachs":  "ICMPv4 destination unreachable received.",
	"IcmpInTimeExcds":     "ICMPv4 time exceeded received.",
	"IcmpInParmProbs":     "ICMPv4 parameter problem received.",
	"IcmpOutMsgs":         "ICMPv4 messages sent.",
	"IcmpOutEchoReps":     "ICMPv4 echo replies sent.",
	"Icmp6InMsgs":         "ICMPv6 messages received.",
	"Icmp6InErrors":       "ICMPv6 messages dropped: bad checksum, or an error quoting no connection.",
	"Icmp6InEchos":        "ICMPv6 echo requests received.",
	"Icmp6InDestUnreachs": "ICMPv6 destination unreachable received.",
	"Icmp6InPktTooBigs":   "ICMPv6 packet too big received.",
	"Icmp6InTimeExcds":    "ICMPv6 time exceeded received.",
	"Icmp6InParmProblems": "ICMPv6 parameter problem received.",
	"Icmp6OutMsgs":        "ICMPv6 messages sent.",
	"Icmp6OutEchoReplies": "ICMPv6 echo replies sent.",

	"SynstackNoSocket": "TCP segments that matched no connection or listener.",
}

// statField is one metric made from a field of synstack.Stats.
type statField struct {
	index int
	desc  *prometheus.Desc
	typ   prometheus.ValueType
}

// statFields are every uint64 field of synstack.Stats, found by reflection
// so that a counter added to the stack is exported with no change here.
var statFields = func() []statField {
	var out []statField
	t := reflect.TypeFor[synstack.Stats]()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || f.Type.Kind() != reflect.Uint64 {
			continue
		}
		h := help[f.Name]
		if h == "" {
			h = "synstack counter " + f.Name + " (see synstack.Stats)."
		}
		typ := prometheus.CounterValue
		if gauges[f.Name] {
			typ = prometheus.GaugeValue
		}
		out = append(out, statField{i, prometheus.NewDesc(f.Name, h, nil, nil), typ})
	}
	return out
}()

// The metrics that are not Stats fields.
var (
	connectionsDesc = prometheus.NewDesc("SynstackConnections",
		"TCP sockets in each state of the RFC 9293 diagram (listeners in LISTEN).", []string{"state"}, nil)
	eventsDesc = prometheus.NewDesc("SynstackAdminTransitions",
		"State transitions the admin Observer has seen.", nil, nil)
	droppedDesc = prometheus.NewDesc("SynstackAdminEventsDropped",
		"Transitions not delivered to a slow /events client.", nil, nil)
	clientsDesc = prometheus.NewDesc("SynstackAdminEventClients",
		"Clients connected to /events.", nil, nil)
)

// collector is the Prometheus view of a stack: it reads Stack.Stats and
// Stack.CountStates when scraped.
type collector struct {
	st  *synstack.Stack
	obs *Observer
}

// NewCollector returns a prometheus.Collector of st's counters, with the
// nstat names as metric names, and the sockets per state as
// SynstackConnections{state}. With obs (which may be nil) it also reports
// the Observer's own counts (SynstackAdminTransitions,
// SynstackAdminEventsDropped, SynstackAdminEventClients). Handler uses it;
// it is exported to register the stack's metrics in another registry.
func NewCollector(st *synstack.Stack, obs *Observer) prometheus.Collector {
	return &collector{st: st, obs: obs}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range statFields {
		ch <- f.desc
	}
	ch <- connectionsDesc
	if c.obs != nil {
		ch <- eventsDesc
		ch <- droppedDesc
		ch <- clientsDesc
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	stats := c.st.Stats()
	v := reflect.ValueOf(&stats).Elem()
	for _, f := range statFields {
		ch <- prometheus.MustNewConstMetric(f.desc, f.typ, float64(v.Field(f.index).Uint()))
	}
	counts := c.st.CountStates()
	for s, n := range counts {
		ch <- prometheus.MustNewConstMetric(connectionsDesc, prometheus.GaugeValue, float64(n), tcp.State(s).String())
	}
	if c.obs != nil {
		ch <- prometheus.MustNewConstMetric(eventsDesc, prometheus.CounterValue, float64(c.obs.Seen()))
		ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(c.obs.Dropped()))
		ch <- prometheus.MustNewConstMetric(clientsDesc, prometheus.GaugeValue, float64(c.obs.Subscribers()))
	}
}
