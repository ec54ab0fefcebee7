package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/admin"
	"github.com/synstack/synstack/tcp"
)

// chromium returns the path of a Chromium (or Chrome) binary: $CHROMIUM,
// else the first of the usual names on $PATH. The test skips without one.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium binary (install Debian's chromium package, or set $CHROMIUM): the live page is not tested")
	return ""
}

// browser starts a headless Chromium and returns a tab's context. It
// skips the test with -short.
func browser(t *testing.T) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a browser")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1250),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() { cancel(); acancel() })
	// The first Run starts the browser, with no timeout: a timeout on it
	// would stop the browser.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", chromium(t), err)
	}
	return ctx
}

// do runs the actions with a timeout.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// pageCounts is what the diagram shows: the number written in each state's
// badge.
const pageCounts = `Object.fromEntries([...document.querySelectorAll("#states .state")]
	.filter(g => g.querySelector(".count"))
	.map(g => [g.dataset.state, g.querySelector(".count").textContent]))`

// waitPage waits until the page's JavaScript expression cond (over the
// diagram's counts c, the fired counts of the arrows f, and the table's
// states rows) is true.
func waitPage(t *testing.T, ctx context.Context, what, cond string) {
	t.Helper()
	expr := fmt.Sprintf(`(() => {
		const c = %s;
		const f = Object.fromEntries([...document.querySelectorAll("#edges .edge")].map(e => [e.id.slice(2), Number(e.dataset.fired)]));
		const rows = [...document.querySelectorAll("#rows tr")].map(r => r.dataset.state);
		return %s;
	})()`, pageCounts, cond)
	c, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := chromedp.Run(c, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
		counts := eval[map[string]string](t, ctx, pageCounts)
		t.Fatalf("page never showed %s (%s): %v; the diagram shows %v", what, cond, err, counts)
	}
}

// screenshot saves a PNG of the page in the test's temporary folder, and in
// $SYNSTACK_SCREENSHOTS if set (to look at it).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(c, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dirs := []string{t.TempDir()}
	if d := os.Getenv("SYNSTACK_SCREENSHOTS"); d != "" {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		if err := os.WriteFile(filepath.Join(d, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshot %s: %d bytes", name, len(png))
}

// TestLivePage opens the client's live page in headless Chromium, then
// opens 5 connections and closes 2: the diagram's counts follow (5
// ESTABLISHED; then 3 ESTABLISHED and 2 TIME_WAIT), the arrows taken
// count their transitions, the log and the table show them. The server's
// page, in a second tab, shows its listener and connections, a reset (an
// arrow outside the figure), and the passive close of the rest.
func TestLivePage(t *testing.T) {
	ctx := browser(t)
	p := newPair(t, admin.CountsInterval(250*time.Millisecond))

	do(t, ctx, "open the page", chromedp.Navigate(p.cliAdmin.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS("#fsm #st-ESTABLISHED")),
		chromedp.WaitVisible(chromedp.CSS("#status.live")))

	// The diagram: the eleven states, each with its count, and the arrows.
	states := eval[[]string](t, ctx, `[...new Set([...document.querySelectorAll("#states .state")].map(g => g.dataset.state))]`)
	if len(states) != 11 {
		t.Errorf("diagram states %v, want the 11 of RFC 9293", states)
	}
	for s := tcp.Closed; s <= tcp.TimeWait; s++ {
		if !strings.Contains(strings.Join(states, " "), s.String()) {
			t.Errorf("diagram lacks %s", s)
		}
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("#edges .edge path").length`); n < 20 {
		t.Errorf("diagram has %d arrows, want the figure's 20 and more", n)
	}
	waitPage(t, ctx, "no connection", `Object.values(c).every(v => v === "0") && Object.keys(c).length === 11`)

	p.dial(5)
	waitPage(t, ctx, "5 ESTABLISHED", `c.ESTABLISHED === "5" && c.SYN_SENT === "0" && f["CLOSED-SYN_SENT"] === 5 && f["SYN_SENT-ESTABLISHED"] === 5`)
	waitPage(t, ctx, "the table's 5 rows", `rows.length === 5 && rows.every(s => s === "ESTABLISHED")`)

	p.closeFirst(2)
	waitStates(t, p.cli, map[tcp.State]int{tcp.Established: 3, tcp.TimeWait: 2})
	waitPage(t, ctx, "3 ESTABLISHED, 2 TIME_WAIT",
		`c.ESTABLISHED === "3" && c.TIME_WAIT === "2" && c.FIN_WAIT_1 === "0" && c.FIN_WAIT_2 === "0" &&
		 f["ESTABLISHED-FIN_WAIT_1"] === 2 && f["FIN_WAIT_1-FIN_WAIT_2"] === 2 && f["FIN_WAIT_2-TIME_WAIT"] === 2`)
	screenshot(t, ctx, "client.png")
	waitPage(t, ctx, "the table's 3 + 2 rows",
		`rows.filter(s => s === "ESTABLISHED").length === 3 && rows.filter(s => s === "TIME_WAIT").length === 2`)

	// The log has each transition, newest first.
	logText := eval[string](t, ctx, `document.getElementById("log").innerText`)
	for _, want := range []string{"CLOSED → SYN_SENT (call CONNECT)", "SYN_SENT → ESTABLISHED", "ESTABLISHED → FIN_WAIT_1 (call CLOSE)", "FIN_WAIT_2 → TIME_WAIT (rcv FIN)"} {
		if !strings.Contains(logText, want) {
			t.Errorf("transition log lacks %q:\n%s", want, logText)
		}
	}
	stats := eval[map[string]string](t, ctx, `Object.fromEntries([...document.querySelectorAll("#stats .v")].map(e => [e.id.slice(5), e.textContent]))`)
	if stats["TcpActiveOpens"] != "5" || stats["TcpCurrEstab"] != "3" {
		t.Errorf("counters shown: %v", stats)
	}

	// The server's page, in another tab.
	sctx, scancel := chromedp.NewContext(ctx)
	defer scancel()
	if err := chromedp.Do(sctx); err != nil { // no timeout: the tab lives as long as this call's context
		t.Fatal(err)
	}
	do(t, sctx, "open the server's page", chromedp.Navigate(p.srvAdmin.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS("#status.live")))
	waitPage(t, sctx, "the server's listener and 3 connections",
		`c.LISTEN === "1" && c.ESTABLISHED === "3" && c.CLOSE_WAIT === "0" && c.LAST_ACK === "0" && rows.length === 4`)
	screenshot(t, sctx, "server.png")

	// A reset (SO_LINGER 0): ESTABLISHED -> CLOSED is not an arrow of the
	// figure; the page draws it for the moment, and counts it.
	if err := p.conns[0].(*synstack.TCPConn).SetLinger(0); err != nil {
		t.Fatal(err)
	}
	p.closeFirst(1)
	waitPage(t, sctx, "the reset", `c.ESTABLISHED === "2" && document.getElementById("ghosts").dataset.drawn === "1" &&
		document.getElementById("stat-TcpEstabResets").textContent === "1"`)

	// Closing the rest empties the server's diagram but for the listener,
	// live: the page sees CLOSE_WAIT and LAST_ACK arrows fire.
	p.closeFirst(2)
	waitPage(t, sctx, "only the listener", `c.LISTEN === "1" && c.ESTABLISHED === "0" && c.LAST_ACK === "0" &&
		f["ESTABLISHED-CLOSE_WAIT"] === 2 && f["CLOSE_WAIT-LAST_ACK"] === 2 && f["LAST_ACK-CLOSED"] === 2 && rows.length === 1`)
	waitPage(t, ctx, "4 TIME_WAIT", `c.ESTABLISHED === "0" && c.TIME_WAIT === "4" && document.getElementById("ghosts").dataset.drawn === "1"`)

	if st := eval[string](t, ctx, `document.getElementById("status").textContent`); st != "live" {
		t.Errorf("the client's page says %q, want live", st)
	}
}

// TestLivePageLog opens the server's page while connections are accepted
// and closed: its log shows, for each connection, the transitions that
// happened, each with its cause, in an unbroken path from LISTEN (no
// CLOSED -> LISTEN: no listen() happened for an accepted connection).
func TestLivePageLog(t *testing.T) {
	ctx := browser(t)
	p := newPair(t, admin.CountsInterval(250*time.Millisecond))
	do(t, ctx, "open the page", chromedp.Navigate(p.srvAdmin.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS("#status.live")))
	waitPage(t, ctx, "the listener", `c.LISTEN === "1"`)

	const conns = 3
	p.dial(conns)
	p.closeFirst(conns)
	waitStates(t, p.srv, map[tcp.State]int{tcp.Listen: 1})
	waitPage(t, ctx, "the passive closes", `f["LAST_ACK-CLOSED"] === 3`)

	// The log, oldest first: [remote, from, to, cause] per line.
	lines := eval[[][]string](t, ctx, `[...document.querySelectorAll("#log > div")].reverse().map(d => [
		d.querySelector(".addr").textContent.split(" ⇄ ")[1],
		...d.querySelector(".st").textContent.split(" → "),
		d.querySelector(".cause").textContent.replace(/^ \((.*)\)$/, "$1")])`)
	want := []string{"LISTEN", "SYN_RCVD", "ESTABLISHED", "CLOSE_WAIT", "LAST_ACK", "CLOSED"}
	paths := map[string][]string{}
	for _, l := range lines {
		if len(l) != 4 {
			t.Fatalf("log line %q", l)
		}
		remote, from, to, cause := l[0], l[1], l[2], l[3]
		path := paths[remote]
		if len(path) == 0 {
			path = []string{from}
		}
		if path[len(path)-1] != from {
			t.Errorf("%s: %s → %s logged, but the connection was in %s", remote, from, to, path[len(path)-1])
		}
		if cause == "" {
			t.Errorf("%s: %s → %s logged without a cause", remote, from, to)
		}
		paths[remote] = append(path, to)
	}
	if len(paths) != conns {
		t.Errorf("the log has %d connections, want %d: %v", len(paths), conns, paths)
	}
	for remote, path := range paths {
		if strings.Join(path, " ") != strings.Join(want, " ") {
			t.Errorf("%s: the log shows %v, want %v", remote, path, want)
		}
	}
}

// TestLivePageBadges feeds the page counts of 4, 5 and 6 digits (a
// stand-in /events) and checks that each number is written in full up to 5
// digits and fits inside its badge.
func TestLivePageBadges(t *testing.T) {
	ctx := browser(t)
	p := newPair(t)
	counts := admin.CountsEvent{Observed: true, States: map[string]int{
		"ESTABLISHED": 1234, "TIME_WAIT": 12345, "SYN_RCVD": 123456, "LISTEN": 1, "CLOSE_WAIT": 99999}}
	data, err := json.Marshal(counts)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", admin.Handler(p.srv))
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "retry: 1000\n\nevent: counts\ndata: %s\n\n", data)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	hs := httptest.NewServer(mux)
	defer hs.Close()
	defer hs.CloseClientConnections()

	do(t, ctx, "open the page", chromedp.Navigate(hs.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#status.live")))
	waitPage(t, ctx, "the counts", `c.ESTABLISHED === "1234" && c.TIME_WAIT === "12345" && c.CLOSE_WAIT === "99999" && c.SYN_RCVD === "123k"`)
	screenshot(t, ctx, "badges.png")
	overflow := eval[[]string](t, ctx, `[...document.querySelectorAll("#states .state")].filter(g => g.querySelector(".count")).flatMap(g => {
		const b = g.querySelector(".badge").getBBox(), c = g.querySelector(".count").getBBox();
		const inside = c.x >= b.x + 2 && c.x + c.width <= b.x + b.width - 2 && c.y >= b.y && c.y + c.height <= b.y + b.height;
		const box = r => "x " + r.x.toFixed(1) + " width " + r.width.toFixed(1);
		return inside ? [] : [g.dataset.state + ": text at " + box(c) + ", badge at " + box(b)];
	})`)
	for _, o := range overflow {
		t.Errorf("a count overflows its badge: %s", o)
	}
}
