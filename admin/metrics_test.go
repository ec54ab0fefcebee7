package admin_test

import (
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/admin"
	"github.com/synstack/synstack/tcp"
)

// scrape fetches and parses url's /metrics with the Prometheus text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("/metrics Content-Type %q, want the text format", ct)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

// value returns the value of the metric name with the labels (name=value
// pairs), or fails the test.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue()
		}
		t.Fatalf("%s is a %v", name, f.GetType())
	}
	t.Fatalf("no metric %s%v", name, labels)
	return 0
}

// TestMetrics opens 5 connections between two stacks, closes 2, and checks
// both stacks' /metrics: it parses, has every Stats counter under its
// node_exporter-style name, and counts what the test did.
func TestMetrics(t *testing.T) {
	p := newPair(t)
	p.dial(5)
	p.closeFirst(2)
	waitStates(t, p.cli, map[tcp.State]int{tcp.Established: 3, tcp.TimeWait: 2})
	waitStates(t, p.srv, map[tcp.State]int{tcp.Listen: 1, tcp.Established: 3})

	cli := scrape(t, p.cliAdmin.URL)
	srv := scrape(t, p.srvAdmin.URL)

	// Every Stats field is there under its node_exporter-style name, a
	// counter except TcpCurrEstab, with its nstat name in its HELP.
	st := reflect.TypeFor[synstack.Stats]()
	for i := range st.NumField() {
		field := st.Field(i).Name
		name := admin.MetricName(field)
		f, ok := cli[name]
		if !ok {
			t.Errorf("no metric %s (Stats.%s)", name, field)
			continue
		}
		want := dto.MetricType_COUNTER
		if field == "TcpCurrEstab" || field == "SynstackTCPMemBytes" {
			want = dto.MetricType_GAUGE
		}
		if f.GetType() != want {
			t.Errorf("%s is a %v, want %v", name, f.GetType(), want)
		}
		if !strings.HasPrefix(f.GetHelp(), field+": ") || len(f.GetHelp()) < len(field)+10 {
			t.Errorf("%s HELP %q, want the nstat name %s and a sentence", name, f.GetHelp(), field)
		}
	}

	checks := []struct {
		fams   map[string]*dto.MetricFamily
		side   string
		name   string
		labels []string
		want   float64
	}{
		{cli, "client", "synstack_netstat_Tcp_ActiveOpens", nil, 5},
		{cli, "client", "synstack_netstat_Tcp_PassiveOpens", nil, 0},
		{cli, "client", "synstack_netstat_Tcp_CurrEstab", nil, 3},
		{cli, "client", "synstack_netstat_Tcp_AttemptFails", nil, 0},
		{cli, "client", "synstack_netstat_Tcp_EstabResets", nil, 0},
		{cli, "client", "synstack_netstat_Tcp_OutRsts", nil, 0},
		{cli, "client", "synstack_sockets", []string{"state", "ESTABLISHED"}, 3},
		{cli, "client", "synstack_sockets", []string{"state", "TIME_WAIT"}, 2},
		{cli, "client", "synstack_sockets", []string{"state", "LISTEN"}, 0},
		{srv, "server", "synstack_netstat_Tcp_ActiveOpens", nil, 0},
		{srv, "server", "synstack_netstat_Tcp_PassiveOpens", nil, 5},
		{srv, "server", "synstack_netstat_Tcp_CurrEstab", nil, 3},
		{srv, "server", "synstack_netstat_Tcp_EstabResets", nil, 0},
		{srv, "server", "synstack_netstat_TcpExt_ListenDrops", nil, 0},
		{srv, "server", "synstack_sockets", []string{"state", "LISTEN"}, 1},
		{srv, "server", "synstack_sockets", []string{"state", "ESTABLISHED"}, 3},
		{srv, "server", "synstack_sockets", []string{"state", "LAST_ACK"}, 0},
		{srv, "server", "synstack_sockets", []string{"state", "TIME_WAIT"}, 0},
	}
	for _, c := range checks {
		if got := value(t, c.fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s %s%v = %v, want %v", c.side, c.name, c.labels, got, c.want)
		}
	}
	// Each connection took at least a SYN, an ACK, data and a FIN or
	// two; the counters move with the packets.
	if got := value(t, cli, "synstack_netstat_Tcp_OutSegs"); got < 5*3 {
		t.Errorf("client synstack_netstat_Tcp_OutSegs = %v, want >= 15", got)
	}
	if got := value(t, srv, "synstack_netstat_Tcp_InSegs"); got < 5*3 {
		t.Errorf("server synstack_netstat_Tcp_InSegs = %v, want >= 15", got)
	}
	// Server: 5 ESTABLISHED, 2 of them on to CLOSE_WAIT, LAST_ACK and
	// CLOSED; each child also went LISTEN -> SYN_RCVD (and no CLOSED ->
	// LISTEN: no listen() happened for it).
	if got := value(t, srv, "synstack_admin_transitions_total"); got != 5*2+2*3 {
		t.Errorf("server synstack_admin_transitions_total = %v, want %v", got, 5*2+2*3)
	}
	// Client: CLOSED -> SYN_SENT -> ESTABLISHED for 5; FIN_WAIT_1,
	// FIN_WAIT_2, TIME_WAIT for 2.
	if got := value(t, cli, "synstack_admin_transitions_total"); got != 5*2+2*3 {
		t.Errorf("client synstack_admin_transitions_total = %v, want %v", got, 5*2+2*3)
	}
	if _, ok := cli["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}

	// The kernel's names, and the per-state gauge, appear literally.
	resp, err := http.Get(p.cliAdmin.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"\nsynstack_netstat_Tcp_ActiveOpens 5\n", "\n# TYPE synstack_netstat_Tcp_CurrEstab gauge\n",
		"\n# HELP synstack_netstat_Tcp_CurrEstab TcpCurrEstab: Connections now in ESTABLISHED or CLOSE_WAIT.\n",
		"\nsynstack_netstat_Tcp_CurrEstab 3\n", "\nsynstack_sockets{state=\"TIME_WAIT\"} 2\n",
		"\n# TYPE synstack_netstat_Tcp_RetransSegs counter\n", "\n# TYPE synstack_netstat_TcpExt_TCPTimeouts counter\n"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestMetricName checks the node_exporter-style names: the nstat group,
// an underscore, the rest; a field of a group not listed keeps its name.
func TestMetricName(t *testing.T) {
	for field, want := range map[string]string{
		"TcpActiveOpens":           "synstack_netstat_Tcp_ActiveOpens",
		"TcpExtListenDrops":        "synstack_netstat_TcpExt_ListenDrops",
		"TcpExtTCPMemoryPressures": "synstack_netstat_TcpExt_TCPMemoryPressures",
		"IpInReceives":             "synstack_netstat_Ip_InReceives",
		"IcmpInMsgs":               "synstack_netstat_Icmp_InMsgs",
		"Icmp6InMsgs":              "synstack_netstat_Icmp6_InMsgs",
		"SynstackNoSocket":         "synstack_netstat_Synstack_NoSocket",
		"Tcp":                      "synstack_netstat_Tcp",
		"Tcpish":                   "synstack_netstat_Tcpish",
	} {
		got := admin.MetricName(field)
		if got != want {
			t.Errorf("MetricName(%s) = %s, want %s", field, got, want)
		}
		if !model.LegacyValidation.IsValidMetricName(got) {
			t.Errorf("%s is not a valid metric name", got)
		}
	}
}
