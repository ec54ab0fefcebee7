package admin

import (
	"reflect"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/tcp"
)

// stat describes one field of synstack.Stats on /metrics: its HELP text
// and whether it is a level (a gauge) rather than a counter.
type stat struct {
	help  string
	gauge bool
}

// stats is the one table of synstack.Stats fields on /metrics, by field
// name (the nstat name). Every uint64 field of Stats is exported, found by
// reflection; a field missing here (a counter added to the stack since) is
// a counter with a generic HELP: to document it, or to make it a gauge,
// add its row.
var stats = map[string]stat{
	"IpInReceives":       {help: "IP packets received."},
	"IpInHdrErrors":      {help: "IP packets dropped: malformed header or bad header checksum."},
	"IpInAddrErrors":     {help: "IP packets dropped: the destination is not one of the stack's addresses."},
	"IpInUnknownProtos":  {help: "IP packets dropped: neither TCP, UDP nor ICMP."},
	"IpReasmReqds":       {help: "IPv4 fragments received for reassembly."},
	"IpReasmOKs":         {help: "IPv4 datagrams reassembled."},
	"IpReasmFails":       {help: "IPv4 reassembly failures: fragments dropped, datagrams discarded or expired."},
	"IpReasmTimeout":     {help: "IPv4 datagrams whose fragments did not all come in time."},
	"IpExtReasmOverlaps": {help: "IPv4 datagrams discarded for overlapping fragments."},
	"IpFragOKs":          {help: "IPv4 datagrams sent in fragments."},
	"IpFragFails":        {help: "IPv4 datagrams that needed fragmenting and could not be."},
	"IpFragCreates":      {help: "IPv4 fragments sent."},
	"Ip6InHdrErrors":     {help: "IPv6 packets dropped for a bad header."},
	"Ip6ReasmReqds":      {help: "IPv6 fragments received for reassembly."},
	"Ip6ReasmOKs":        {help: "IPv6 datagrams reassembled."},
	"Ip6ReasmFails":      {help: "IPv6 reassembly failures."},
	"Ip6ReasmTimeout":    {help: "IPv6 datagrams whose fragments did not all come in time."},
	"Ip6FragOKs":         {help: "IPv6 datagrams sent in fragments."},
	"Ip6FragFails":       {help: "IPv6 datagrams that needed fragmenting and could not be."},
	"Ip6FragCreates":     {help: "IPv6 fragments sent."},
	"IpInDelivers":       {help: "IP packets handed to TCP or ICMP."},
	"IpOutRequests":      {help: "IP packets sent."},
	"IpOutDiscards":      {help: "IP packets that could not be built or written."},

	"TcpActiveOpens":  {help: "Transitions CLOSED -> SYN_SENT (connect)."},
	"TcpPassiveOpens": {help: "Transitions LISTEN -> SYN_RCVD (a SYN at a listener)."},
	"TcpAttemptFails": {help: "Transitions SYN_SENT/SYN_RCVD -> CLOSED and SYN_RCVD -> LISTEN."},
	"TcpEstabResets":  {help: "Transitions ESTABLISHED/CLOSE_WAIT -> CLOSED."},
	"TcpCurrEstab":    {help: "Connections now in ESTABLISHED or CLOSE_WAIT.", gauge: true},
	"TcpInSegs":       {help: "TCP segments received."},
	"TcpOutSegs":      {help: "TCP segments sent."},
	"TcpRetransSegs":  {help: "TCP segments retransmitted."},
	"TcpInErrs":       {help: "TCP segments dropped: bad checksum or malformed header."},
	"TcpInCsumErrors": {help: "TCP segments dropped: bad checksum."},
	"TcpOutRsts":      {help: "TCP segments sent with RST."},

	"TcpExtListenOverflows":        {help: "SYNs or handshake-completing ACKs dropped: accept queue full."},
	"TcpExtListenDrops":            {help: "SYNs or ACKs dropped at a listener for any reason."},
	"TcpExtSyncookiesSent":         {help: "SYN,ACKs sent with a SYN cookie."},
	"TcpExtSyncookiesRecv":         {help: "ACKs that returned a valid SYN cookie."},
	"TcpExtSyncookiesFailed":       {help: "ACKs at a listener whose SYN cookie did not check out."},
	"TcpExtTCPAbortOnMemory":       {help: "Connections reset on close because of too many orphans."},
	"TcpExtTCPTimeouts":            {help: "Retransmission timeouts, SYN and SYN,ACK ones included."},
	"TcpExtTCPChallengeACK":        {help: "RFC 5961 challenge ACKs sent."},
	"TcpExtTCPACKSkippedChallenge": {help: "Challenge ACKs not sent: the per-connection rate limit."},
	"TcpExtTCPACKSkippedSeq":       {help: "ACKs to out-of-window segments not sent: the per-connection rate limit."},
	"TcpExtTCPFullUndo":            {help: "Recoveries undone at their end: every retransmission was needless."},
	"TcpExtTCPPartialUndo":         {help: "Recoveries undone on a partial ACK that a delayed original made."},
	"TcpExtTCPDSACKUndo":           {help: "Congestion window reductions undone: D-SACKs showed every retransmission needless."},
	"TcpExtTCPLossUndo":            {help: "Retransmission timeouts undone: the segments were only delayed."},
	"TcpExtTCPLossProbeRecovery":   {help: "Losses a tail loss probe repaired; each reduced the congestion window."},
	"TcpExtOutOfWindowIcmps":       {help: "ICMP errors dropped: the quoted sequence number is not in flight."},
	"TcpExtTCPMD5NotFound":         {help: "Unsigned segments for a socket with a TCP MD5 key for their sender."},
	"TcpExtTCPMD5Unexpected":       {help: "TCP MD5 signed segments for a socket without a key for their sender."},
	"TcpExtTCPMD5Failure":          {help: "TCP MD5 signed segments whose digest is not the key's."},

	"TcpExtTCPFastOpenActive":         {help: "SYNs sent with data (TCP Fast Open client)."},
	"TcpExtTCPFastOpenActiveFail":     {help: "Fast Open SYNs whose data was not acknowledged, or that timed out."},
	"TcpExtTCPFastOpenPassive":        {help: "SYNs whose data a listener took (TCP Fast Open server)."},
	"TcpExtTCPFastOpenPassiveFail":    {help: "SYNs whose Fast Open cookie did not check out."},
	"TcpExtTCPFastOpenListenOverflow": {help: "Fast Open SYNs beyond the listener's Fast Open queue."},
	"TcpExtTCPFastOpenCookieReqd":     {help: "SYNs asking for a Fast Open cookie."},
	"TcpExtTCPFastOpenPassiveAltKey":  {help: "SYNs whose Fast Open cookie the backup key made."},
	"TcpExtPruneCalled":               {help: "Arrivals a receive queue had no room for: over its buffer, or past the memory budget's high mark."},
	"TcpExtRcvPruned":                 {help: "Arrivals that still had no room after out-of-order data was pruned."},
	"TcpExtOfoPruned":                 {help: "Times a connection gave back its out-of-order data to make room."},
	"TcpExtTCPRcvQDrop":               {help: "In-order segments (or their ends) dropped for want of room."},
	"TcpExtTCPOFODrop":                {help: "Out-of-order segments (or their ends) dropped for want of room."},
	"TcpExtTCPMemoryPressures":        {help: "Times the stack's memory budget went above its pressure mark."},

	"IcmpInMsgs":           {help: "ICMPv4 messages received."},
	"IcmpInErrors":         {help: "ICMPv4 messages dropped: bad checksum, or an error quoting no connection."},
	"IcmpInEchos":          {help: "ICMPv4 echo requests received."},
	"IcmpInEchoReps":       {help: "ICMPv4 echo replies delivered to a ping socket."},
	"IcmpOutEchos":         {help: "ICMPv4 echo requests sent by ping sockets."},
	"IcmpInDestUnreachs":   {help: "ICMPv4 destination unreachable received."},
	"IcmpInTimeExcds":      {help: "ICMPv4 time exceeded received."},
	"IcmpInParmProbs":      {help: "ICMPv4 parameter problem received."},
	"IcmpOutMsgs":          {help: "ICMPv4 messages sent."},
	"IcmpOutEchoReps":      {help: "ICMPv4 echo replies sent."},
	"IcmpOutTimeExcds":     {help: "ICMPv4 time exceeded sent (fragment reassembly time exceeded)."},
	"IcmpOutDestUnreachs":  {help: "ICMPv4 destination unreachable sent."},
	"Icmp6InMsgs":          {help: "ICMPv6 messages received."},
	"Icmp6InErrors":        {help: "ICMPv6 messages dropped: bad checksum, or an error quoting no connection."},
	"Icmp6InEchos":         {help: "ICMPv6 echo requests received."},
	"Icmp6InEchoReplies":   {help: "ICMPv6 echo replies delivered to a ping socket."},
	"Icmp6OutEchos":        {help: "ICMPv6 echo requests sent by ping sockets."},
	"Icmp6InDestUnreachs":  {help: "ICMPv6 destination unreachable received."},
	"Icmp6InPktTooBigs":    {help: "ICMPv6 packet too big received."},
	"Icmp6InTimeExcds":     {help: "ICMPv6 time exceeded received."},
	"Icmp6InParmProblems":  {help: "ICMPv6 parameter problem received."},
	"Icmp6OutMsgs":         {help: "ICMPv6 messages sent."},
	"Icmp6OutEchoReplies":  {help: "ICMPv6 echo replies sent."},
	"Icmp6OutTimeExcds":    {help: "ICMPv6 time exceeded sent (fragment reassembly time exceeded)."},
	"Icmp6OutParmProblems": {help: "ICMPv6 parameter problem sent (a bad fragment)."},

	"UdpInDatagrams":       {help: "UDP datagrams delivered to a socket (IPv4)."},
	"UdpNoPorts":           {help: "UDP datagrams for a port no socket has (IPv4)."},
	"UdpInErrors":          {help: "UDP datagrams dropped: bad checksum or header, or a full receive queue (IPv4)."},
	"UdpInCsumErrors":      {help: "UDP datagrams dropped: bad checksum (IPv4)."},
	"UdpOutDatagrams":      {help: "UDP datagrams sent (IPv4)."},
	"UdpRcvbufErrors":      {help: "UDP datagrams dropped: the receive queue or the UDP memory budget was full (IPv4)."},
	"UdpSndbufErrors":      {help: "UDP datagrams that could not be sent (IPv4)."},
	"Udp6InDatagrams":      {help: "UDP datagrams delivered to a socket (IPv6)."},
	"Udp6NoPorts":          {help: "UDP datagrams for a port no socket has (IPv6)."},
	"Udp6InErrors":         {help: "UDP datagrams dropped: bad checksum or header, or a full receive queue (IPv6)."},
	"Udp6InCsumErrors":     {help: "UDP datagrams dropped: bad checksum (IPv6)."},
	"Udp6OutDatagrams":     {help: "UDP datagrams sent (IPv6)."},
	"Udp6RcvbufErrors":     {help: "UDP datagrams dropped: the receive queue or the UDP memory budget was full (IPv6)."},
	"Udp6SndbufErrors":     {help: "UDP datagrams that could not be sent (IPv6)."},
	"Icmp6OutDestUnreachs": {help: "ICMPv6 destination unreachable sent."},

	"SynstackNoSocket":              {help: "TCP segments that matched no connection or listener."},
	"SynstackInCsumVerified":        {help: "TCP segments and UDP datagrams whose checksum the stack verified."},
	"SynstackInCsumTrusted":         {help: "TCP segments and UDP datagrams whose checksum the link vouched for, not verified again."},
	"SynstackTxThrottled":           {help: "Times a connection held its data because the link's transmit queue was full (as Linux's TCP Small Queues)."},
	"SynstackConnLimitDrops":        {help: "SYNs dropped and connects failed: the stack's or a listener's MaxConns reached."},
	"SynstackInMartianSources":      {help: "Packets dropped unanswered: from a broadcast, multicast, loopback, unspecified, IPv4-mapped or own address."},
	"SynstackInMartianDestinations": {help: "Packets dropped unanswered: to a broadcast, multicast, loopback, unspecified or IPv4-mapped address."},
	"SynstackTCPMemBytes":           {help: "Bytes the connections' send and receive queues hold now, charged to the memory budget.", gauge: true},
	"SynstackForwardSourceDrops":    {help: "SYNs dropped: too many forward requests already waiting from the client's address."},
	"SynstackForwardRequests":       {help: "SYNs offered to the Forwarder."},
	"SynstackForwarded":             {help: "Forwarded connections whose handshake completed."},
	"SynstackForwardRefused":        {help: "Forward requests answered with RST."},
	"SynstackForwardUnreachables":   {help: "Forward requests answered with ICMP destination unreachable."},
	"SynstackForwardTimeouts":       {help: "Forward requests rejected because the upstream timed out."},
	"SynstackForwardResets":         {help: "Forwarded connections that ended with a RST."},
	"SynstackForwardPendingDrops":   {help: "SYNs dropped: too many forward requests already waiting."},
	"SynstackForwardUDPRequests":    {help: "UDP flows offered to the UDP forwarder."},
	"SynstackForwardPings":          {help: "Echo requests for other addresses offered to the ping forwarder."},
	"SynstackForwardPingDrops":      {help: "Echo requests for other addresses dropped: too many waiting."},
	"SynstackForwardUDPFlows":       {help: "UDP flows the forwarder accepted."},
	"SynstackForwardUDPDrops":       {help: "Datagrams for other addresses dropped: a flow pending a decision, no forwarder, or the bounds."},
	"SynstackForwardUDPLimitDrops":  {help: "Datagrams dropped: the UDP flow bounds reached."},
}

// groups are the nstat groups a Stats field name starts with, longer ones
// first where one prefixes another. Synstack is the stack's own group.
var groups = []string{"TcpExt", "Tcp", "IpExt", "Ip6", "Ip", "Icmp6", "Icmp", "UdpLite", "Udp6", "Udp", "Synstack"}

// MetricName returns the /metrics name of a synstack.Stats field, as
// node_exporter names the kernel's netstat counters: the nstat name split
// after its group, under the synstack_netstat_ prefix. TcpActiveOpens is
// synstack_netstat_Tcp_ActiveOpens, TcpExtListenDrops
// synstack_netstat_TcpExt_ListenDrops, SynstackNoSocket
// synstack_netstat_Synstack_NoSocket.
func MetricName(field string) string {
	for _, g := range groups {
		if rest, ok := strings.CutPrefix(field, g); ok && rest != "" && rest[0] >= 'A' && rest[0] <= 'Z' {
			return "synstack_netstat_" + g + "_" + rest
		}
	}
	return "synstack_netstat_" + field
}

// statField is one metric made from a field of synstack.Stats.
type statField struct {
	index int
	desc  *prometheus.Desc
	typ   prometheus.ValueType
}

// statFields are every uint64 field of synstack.Stats, found by reflection
// so that a counter added to the stack is exported with no change here.
// Each HELP starts with the nstat name.
var statFields = func() []statField {
	var out []statField
	t := reflect.TypeFor[synstack.Stats]()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || f.Type.Kind() != reflect.Uint64 {
			continue
		}
		d := stats[f.Name]
		if d.help == "" {
			d.help = "synstack counter (see synstack.Stats)."
		}
		typ := prometheus.CounterValue
		if d.gauge {
			typ = prometheus.GaugeValue
		}
		out = append(out, statField{i, prometheus.NewDesc(MetricName(f.Name), f.Name+": "+d.help, nil, nil), typ})
	}
	return out
}()

// The metrics that are not Stats fields.
var (
	socketsDesc = prometheus.NewDesc("synstack_sockets",
		"TCP sockets in each state of the RFC 9293 diagram (listeners in LISTEN).", []string{"state"}, nil)
	eventsDesc = prometheus.NewDesc("synstack_admin_transitions_total",
		"State transitions the admin Observer has seen.", nil, nil)
	droppedDesc = prometheus.NewDesc("synstack_admin_events_dropped_total",
		"Transitions no /events client received: the Observer's queue was full.", nil, nil)
	clientsDesc = prometheus.NewDesc("synstack_admin_event_clients",
		"Clients connected to /events.", nil, nil)
	evictedDesc = prometheus.NewDesc("synstack_admin_event_clients_dropped_total",
		"/events clients dropped because they fell behind: their queue of transitions was full.", nil, nil)
	refusedDesc = prometheus.NewDesc("synstack_admin_event_clients_refused_total",
		"/events requests refused with 503: MaxEventClients streams already.", nil, nil)
)

// collector is the Prometheus view of a stack: it reads Stack.Stats and
// Stack.CountStates when scraped.
type collector struct {
	st     *synstack.Stack
	obs    *Observer
	events *eventsHandler // Handler's /events, or nil
}

// NewCollector returns a prometheus.Collector of st's counters, named as
// node_exporter names the kernel's (MetricName: synstack_netstat_Tcp_ActiveOpens,
// with the nstat name TcpActiveOpens in its HELP), and the sockets per
// state as synstack_sockets{state}. With obs (which may be nil) it also
// reports the Observer's own counts (synstack_admin_*). Handler uses it;
// it is exported to register the stack's metrics in another registry.
func NewCollector(st *synstack.Stack, obs *Observer) prometheus.Collector {
	return &collector{st: st, obs: obs}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range statFields {
		ch <- f.desc
	}
	ch <- socketsDesc
	if c.obs != nil {
		ch <- eventsDesc
		ch <- droppedDesc
		ch <- evictedDesc
	}
	if c.obs != nil || c.events != nil {
		ch <- clientsDesc
	}
	if c.events != nil {
		ch <- refusedDesc
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
		ch <- prometheus.MustNewConstMetric(socketsDesc, prometheus.GaugeValue, float64(n), tcp.State(s).String())
	}
	if c.obs != nil {
		ch <- prometheus.MustNewConstMetric(eventsDesc, prometheus.CounterValue, float64(c.obs.Seen()))
		ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(c.obs.Dropped()))
		ch <- prometheus.MustNewConstMetric(evictedDesc, prometheus.CounterValue, float64(c.obs.Evicted()))
	}
	switch {
	case c.events != nil:
		ch <- prometheus.MustNewConstMetric(clientsDesc, prometheus.GaugeValue, float64(c.events.active.Load()))
		ch <- prometheus.MustNewConstMetric(refusedDesc, prometheus.CounterValue, float64(c.events.refused.Load()))
	case c.obs != nil:
		ch <- prometheus.MustNewConstMetric(clientsDesc, prometheus.GaugeValue, float64(c.obs.Subscribers()))
	}
}
