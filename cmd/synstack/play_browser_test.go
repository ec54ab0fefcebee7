package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// playBrowser starts a headless Chromium ($CHROMIUM, or chromium or
// Chrome on $PATH) and returns a tab's context; without one, or with
// -short, the test skips.
func playBrowser(t *testing.T) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a browser")
	}
	path := os.Getenv("CHROMIUM")
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if path != "" {
			break
		}
		path, _ = exec.LookPath(name)
	}
	if path == "" {
		t.Skip("no Chromium binary (install Debian's chromium package, or set $CHROMIUM): the playground's page is not tested")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() { cancel(); acancel() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser: no timeout
		t.Fatalf("starting %s: %v", path, err)
	}
	return ctx
}

// playShots makes the browser tests write their screenshots into
// docs/img (go test ./cmd/synstack -run PlayBrowser -synstack.shots);
// without it, nothing is written.
var playShots = flag.Bool("synstack.shots", false, "write the playground's screenshots to docs/img/play-*.png")

// shot writes a screenshot of the whole page to docs/img/name, if asked.
func (p playTab) shot(name string) {
	p.t.Helper()
	if !*playShots {
		return
	}
	c, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(c, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("..", "..", "docs", "img", name), png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// playTab is the playground's page open in a browser tab.
type playTab struct {
	t   *testing.T
	ctx context.Context
	url string // the playground's server
}

// click clicks the button with that id and waits for the page to have
// shown the server's answer.
func (p playTab) click(id string) {
	p.t.Helper()
	before := p.eval(`Number(document.body.dataset.done || 0)`)
	p.do("click #"+id, chromedp.Click(chromedp.CSS("#"+id)))
	p.wait("the answer to #"+id, fmt.Sprintf(`Number(document.body.dataset.done || 0) > %s`, before))
}

func (p playTab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	c, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
}

// eval returns a JavaScript expression's value, as JSON.
func (p playTab) eval(expr string) string {
	p.t.Helper()
	c, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[string](`JSON.stringify(`+expr+`)`))
	if err != nil {
		p.t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// wait waits until the JavaScript condition holds.
func (p playTab) wait(what, cond string) {
	p.t.Helper()
	c, cancel := context.WithTimeout(p.ctx, 15*time.Second)
	defer cancel()
	if _, err := chromedp.Run(c, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
		p.t.Fatalf("page never showed %s (%s): %v\nerror line: %s", what, cond, err, p.eval(`document.getElementById("error").textContent`))
	}
}

// openPlay serves a fresh playground and opens its page in headless
// Chromium.
func openPlay(t *testing.T) playTab {
	t.Helper()
	return openPlayAt(t, playBrowser(t), "")
}

// openPlayAt serves a fresh playground and opens its page, with the
// fragment given (a session), in the browser of ctx.
func openPlayAt(t *testing.T, ctx context.Context, fragment string) playTab {
	t.Helper()
	pg, err := newPlayground()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(pg.handler())
	t.Cleanup(func() { srv.Close(); pg.close() })
	p := playTab{t, ctx, srv.URL}
	p.do("open the page", chromedp.Navigate(srv.URL+"/"+fragment), chromedp.WaitVisible(chromedp.CSS("#A-socket")))
	p.wait("the first state", `document.body.dataset.done === "1"`)
	return p
}

// listenAndConnect clicks A's socket, bind, listen and B's socket and
// connect (the default port, 80).
func (p playTab) listenAndConnect() {
	p.t.Helper()
	for _, id := range []string{"A-socket", "A-bind", "A-listen", "B-socket", "B-connect"} {
		p.click(id)
	}
}

// playSockets is a page expression: host's sockets, "fd:STATE" each.
func playSockets(host string) string {
	return `[...document.querySelectorAll("#host-` + host + ` .sockets tr[data-fd]")].map(r => r.dataset.fd + ":" + r.dataset.state).join(" ")`
}

// TestPlayBrowserHandshake clicks through a three-way handshake with the
// page's own controls in headless Chromium: A listens, B connects
// (EINPROGRESS shown), the SYN, SYN,ACK and ACK are delivered one by one
// with "Deliver next", A accepts; the page shows ESTABLISHED on both
// sides, an empty network and the ladder's transitions.
func TestPlayBrowserHandshake(t *testing.T) {
	p := openPlay(t)
	p.listenAndConnect()
	if got := p.eval(`document.querySelector("#host-B .result").dataset.errno`); got != `"EINPROGRESS"` {
		t.Errorf("B's connect shows errno %s, want EINPROGRESS (%s)", got, p.eval(`document.querySelector("#host-B .result").textContent`))
	}
	p.wait("A listening, B in SYN_SENT, the SYN in flight",
		playSockets("A")+` === "3:LISTEN" && `+playSockets("B")+` === "3:SYN_SENT" && document.querySelectorAll("#flight tr[data-id]").length === 1`)

	for _, flags := range []string{"SYN", "SYN,ACK", "ACK"} {
		if got := p.eval(`document.querySelector("#flight tr[data-id] td:nth-child(3)").textContent`); got != `"`+flags+`"` {
			t.Fatalf("the next packet in flight is %s, want %s", got, flags)
		}
		p.click("net-deliver")
	}
	p.click("A-accept")
	p.wait("ESTABLISHED on both sides",
		playSockets("A")+` === "3:LISTEN 4:ESTABLISHED" && `+playSockets("B")+` === "3:ESTABLISHED"`)
	if n := p.eval(`document.querySelectorAll("#flight tr[data-id]").length`); n != "0" {
		t.Errorf("%s packets still in flight", n)
	}
	ladder := p.eval(`document.querySelector("#ladder").innerText`)
	for _, want := range []string{"SYN_SENT → ESTABLISHED (rcv SYN,ACK)", "SYN_RCVD → ESTABLISHED (rcv ACK of SYN)", "accept(3) = 4"} {
		if !strings.Contains(ladder, want) {
			t.Errorf("the page's ladder lacks %q: %s", want, ladder)
		}
	}
	p.shot("play-handshake.png")
	// The descriptor field follows the accepted socket.
	if fd := p.eval(`document.getElementById("A-fd").value`); fd != `"4"` {
		t.Errorf("A's fd field after accept: %s, want 4", fd)
	}
	p.exported("handshake")
}

// TestPlayBrowserLostSYN drops B's SYN with "Drop next" and clicks "Step
// to next timer": the page shows the clock at the retransmission timer,
// the SYN in flight again with the same sequence number, and the ladder
// tags it as a retransmission; "Deliver all" then ends the handshake.
func TestPlayBrowserLostSYN(t *testing.T) {
	p := openPlay(t)
	p.listenAndConnect()
	const seq = `document.querySelector("#flight tr[data-id] td:nth-child(4)").textContent`
	first := p.eval(seq)
	p.click("net-drop")
	p.wait("nothing in flight, a timer pending", `!document.querySelector("#flight tr[data-id]") && document.getElementById("next").textContent !== "none"`)
	next := p.eval(`document.getElementById("next").textContent`)
	p.click("clock-next")
	if now := p.eval(`document.getElementById("now").textContent`); now != next {
		t.Errorf("the page's clock reads %s after the step, want the timer's %s", now, next)
	}
	p.wait("the SYN again", `document.querySelectorAll("#flight tr[data-id]").length === 1`)
	if again := p.eval(seq); again != first {
		t.Errorf("the SYN in flight again has seq %s, want %s", again, first)
	}
	if ladder := p.eval(`document.querySelector("#ladder").innerText`); !strings.Contains(ladder, "dropped") || !strings.Contains(ladder, "(retransmission)") {
		t.Errorf("the ladder lacks the drop or the retransmission: %s", ladder)
	}
	p.click("net-all")
	p.click("A-accept")
	p.wait("ESTABLISHED on both sides",
		playSockets("A")+` === "3:LISTEN 4:ESTABLISHED" && `+playSockets("B")+` === "3:ESTABLISHED"`)
	p.exported("lost-syn")
}

// playLadder is a page expression: the ladder's text.
const playLadder = `document.querySelector("#ladder tbody").innerText`

// TestPlayBrowserSharedURL plays a session by clicking (a handshake, a
// dropped packet, a clock step), takes the page's URL, and opens it on a
// second, fresh playground: the page there shows the same ladder, the
// same sockets and the same clock. "Back" then undoes the last step.
func TestPlayBrowserSharedURL(t *testing.T) {
	p := openPlay(t)
	p.listenAndConnect()
	p.click("net-deliver")
	p.click("net-drop") // the SYN,ACK
	p.click("clock-next")
	p.click("net-all")
	p.click("A-accept")
	p.wait("ESTABLISHED on both sides", playSockets("A")+` === "3:LISTEN 4:ESTABLISHED" && `+playSockets("B")+` === "3:ESTABLISHED"`)
	href := p.eval(`location.hash`)
	if !strings.Contains(href, "N.drop.0,T.next,N.all,A.accept.3") {
		t.Fatalf("the page's URL fragment %s does not hold the session", href)
	}
	ladder, now := p.eval(playLadder), p.eval(`document.getElementById("now").textContent`)

	q := openPlayAt(t, p.ctx, strings.Trim(href, `"`))
	q.wait("the shared session's sockets", playSockets("A")+` === "3:LISTEN 4:ESTABLISHED" && `+playSockets("B")+` === "3:ESTABLISHED"`)
	if got := q.eval(playLadder); got != ladder {
		t.Errorf("the shared URL's ladder:\n%s\nwant\n%s", got, ladder)
	}
	if got := q.eval(`document.getElementById("now").textContent`); got != now {
		t.Errorf("the shared URL's clock reads %s, want %s", got, now)
	}
	if q.url == p.url {
		t.Fatal("the shared URL was opened on the same playground")
	}
	q.click("back")
	q.wait("the accept undone", playSockets("A")+` === "3:LISTEN"`)
	if got := q.eval(`location.hash`); !strings.HasSuffix(got, `N.all"`) {
		t.Errorf("after Back the URL is %s, want the session without its last step", got)
	}
	q.exported("shared-url")
}

// TestPlayBrowserViews opens a handshake's session and checks what the
// page draws: A's connection's state diagram with ESTABLISHED current and
// the passive path lit, the sequence spaces of the connection picked,
// and, after a write, the fields of the packet picked.
func TestPlayBrowserViews(t *testing.T) {
	p := openPlayAt(t, playBrowser(t), "#s="+playHandshakeSession)
	const conn = `document.querySelector("#host-A .conn[data-state=ESTABLISHED]")`
	p.wait("A's connection", conn+` !== null`)
	if got := p.eval(conn + `.querySelector("g.current").dataset.state`); got != `"ESTABLISHED"` {
		t.Errorf("the diagram's current state: %s", got)
	}
	lit := p.eval(`[...` + conn + `.querySelectorAll("line.taken")].map(l => l.dataset.edge).join(" ")`)
	if lit != `"LISTEN>SYN_RCVD SYN_RCVD>ESTABLISHED"` {
		t.Errorf("the path lit: %s", lit)
	}
	if n := p.eval(`document.querySelectorAll("svg.diagram").length`); n != "3" {
		t.Errorf("%s diagrams, want 3 (A's listener and connection, B's connection)", n)
	}
	p.do("pick A's connection", chromedp.Click(chromedp.CSS(`#host-A .conn[data-state=ESTABLISHED] button.pick`)))
	p.wait("the sequence spaces", `document.querySelectorAll("#seq tr[data-name]").length === 7`)
	p.do("A's fd 4", chromedp.SetValue(chromedp.CSS("#A-fd"), "4"))
	p.click("A-write")
	p.wait("the data in flight", `document.querySelectorAll("#flight tr[data-id]").length === 1`)
	if got := p.eval(`document.querySelector("#seq tr[data-name='SND.NXT'] td:nth-child(3)").textContent`); !strings.Contains(got, "100 in flight") {
		t.Errorf("SND.NXT's note after writing 100 bytes: %s", got)
	}
	p.do("pick the packet", chromedp.Click(chromedp.CSS(`#flight tr[data-id] button.pick`)))
	p.wait("its fields", `document.querySelectorAll("#fields tr").length > 15`)
	if got := p.eval(`document.querySelector("#fields").innerText`); !strings.Contains(got, "PSH,ACK") || !strings.Contains(got, `payload\t100 bytes`) {
		t.Errorf("the packet's fields: %s", got)
	}
	p.shot("play-views.png")
}

// jsonUnquote reads a JSON value (eval's answer) into v.
func jsonUnquote(s string, v any) error { return json.Unmarshal([]byte(s), v) }
