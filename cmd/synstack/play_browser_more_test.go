package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// Browser tests of the sessions issue 20 asks the playground to show,
// each driven by the page's own controls, each ending with the session
// exported by the page's "export script" link and run with Strict.

// set types a value into one of the page's number fields.
func (p playTab) set(id, value string) {
	p.t.Helper()
	p.do("set #"+id, chromedp.SetValue(chromedp.CSS("#"+id), value))
}

// clicks clicks each button in turn.
func (p playTab) clicks(ids ...string) {
	p.t.Helper()
	for _, id := range ids {
		p.click(id)
	}
}

// connPath is a page expression: the path of host's connection with a
// peer (the oldest), states joined by spaces.
func playConnPath(host string) string {
	return `[...document.querySelectorAll("#host-` + host + ` .conn")].map(c => c.dataset.path).find(p => !p.startsWith("CLOSED LISTEN") || p.includes("SYN")) || ""`
}

// exported fetches the session's script through the page's link and runs
// it with Strict.
func (p playTab) exported(name string) {
	p.t.Helper()
	src := p.eval(`(() => { const x = new XMLHttpRequest(); x.open("GET", document.getElementById("export-script").href, false); x.send(); return x.status + "\n" + x.responseText; })()`)
	var text string
	if err := jsonUnquote(src, &text); err != nil {
		p.t.Fatalf("the exported script: %v (%s)", err, src)
	}
	status, text, _ := strings.Cut(text, "\n")
	if status != "200" {
		p.t.Fatalf("the page's export link: %s %s", status, text)
	}
	checkPlayScript(p.t, name, []byte(text))
}

// established clicks a handshake through: A listens and accepts, B
// connects, every packet delivered.
func (p playTab) established() {
	p.t.Helper()
	p.listenAndConnect()
	p.clicks("net-all", "A-accept")
	p.wait("ESTABLISHED on both sides", playSockets("A")+` === "3:LISTEN 4:ESTABLISHED" && `+playSockets("B")+` === "3:ESTABLISHED"`)
}

// TestPlayBrowserSimultaneousClose closes both ends before either FIN is
// delivered, then delivers them: both sides' diagrams show the path
// through CLOSING to TIME_WAIT.
func TestPlayBrowserSimultaneousClose(t *testing.T) {
	p := openPlay(t)
	p.established()
	p.clicks("A-close", "B-close")
	p.wait("two FINs in flight", `[...document.querySelectorAll("#flight tr[data-id] td:nth-child(3)")].map(c => c.textContent).join(" ") === "FIN,ACK FIN,ACK"`)
	p.clicks("deliver-5", "deliver-4", "net-all")
	for _, h := range []string{"A", "B"} {
		p.wait(h+" through CLOSING to TIME_WAIT", playConnPath(h)+`.endsWith("ESTABLISHED FIN_WAIT_1 CLOSING TIME_WAIT")`)
		p.wait(h+"'s diagram lit", `document.querySelector("#host-`+h+` .conn[data-state=TIME_WAIT] line.taken[data-edge='FIN_WAIT_1>CLOSING']") !== null`)
	}
	p.shot("play-simultaneous-close.png")
	p.exported("simultaneous-close")
}

// TestPlayBrowserHalfClose: B shuts down its sending side; A reads the
// end of the stream and shows CLOSE_WAIT, yet A's data still reaches B.
func TestPlayBrowserHalfClose(t *testing.T) {
	p := openPlay(t)
	p.established()
	p.clicks("B-shutdown-WR", "net-all")
	p.wait("A in CLOSE_WAIT", playSockets("A")+` === "3:LISTEN 4:CLOSE_WAIT"`)
	p.click("A-read")
	if got := p.eval(`document.querySelector("#host-A .result").textContent`); !strings.Contains(got, "= 0  end of stream") {
		t.Errorf("A's read after B's SHUT_WR: %s", got)
	}
	p.clicks("A-write", "net-all", "B-read")
	if got := p.eval(`document.querySelector("#host-B .result").textContent`); !strings.Contains(got, "read(3, 100) = 100") {
		t.Errorf("B's read of A's data after its SHUT_WR: %s", got)
	}
	p.wait("B in FIN_WAIT_2, A still CLOSE_WAIT", playSockets("B")+` === "3:FIN_WAIT_2" && `+playSockets("A")+` === "3:LISTEN 4:CLOSE_WAIT"`)
	p.shot("play-half-close.png")
	p.exported("half-close")
}

// TestPlayBrowserLostFIN drops A's FIN; stepping the clock to the next
// timer sends it again (tagged a retransmission, same sequence number),
// and delivered it closes the connection as usual.
func TestPlayBrowserLostFIN(t *testing.T) {
	p := openPlay(t)
	p.established()
	p.click("A-close")
	const fin = `document.querySelector("#flight tr[data-id] td:nth-child(4)").textContent`
	p.wait("the FIN in flight", `document.querySelector("#flight tr[data-id] td:nth-child(3)").textContent === "FIN,ACK"`)
	seq := p.eval(fin)
	p.click("net-drop")
	p.wait("nothing in flight", `!document.querySelector("#flight tr[data-id]")`)
	p.click("clock-next")
	p.wait("the FIN again", `document.querySelector("#flight tr[data-id] td:nth-child(3)")?.textContent === "FIN,ACK"`)
	if again := p.eval(fin); again != seq {
		t.Errorf("the FIN again has seq %s, want %s", again, seq)
	}
	if ladder := p.eval(playLadder); !strings.Contains(ladder, "F. 1:1(0) ack 1 win 255 (retransmission)") {
		t.Errorf("the ladder lacks the FIN's retransmission: %s", ladder)
	}
	p.shot("play-lost-fin.png")
	p.clicks("net-all")
	p.wait("B in CLOSE_WAIT", playSockets("B")+` === "3:CLOSE_WAIT"`)
	p.exported("lost-fin")
}

// TestPlayBrowserReuseAddr: with A's old connection in TIME_WAIT, a new
// socket's bind of port 80 fails with EADDRINUSE; with SO_REUSEADDR set
// on both the old listener and the new socket, it succeeds.
func TestPlayBrowserReuseAddr(t *testing.T) {
	p := openPlay(t)
	p.clicks("A-socket", "A-reuseaddr", "A-bind", "A-listen", "B-socket", "B-connect", "net-all", "A-accept")
	p.clicks("A-close", "B-close", "net-all")
	p.wait("A's connection in TIME_WAIT", `document.querySelector("#host-A .conn[data-state=TIME_WAIT]") !== null`)
	p.set("A-fd", "3")
	p.clicks("A-close", "A-socket", "A-bind")
	errno := `document.querySelector("#host-A .result").dataset.errno`
	if got := p.eval(errno); got != `"EADDRINUSE"` {
		t.Fatalf("bind during TIME_WAIT: %s (%s)", got, p.eval(`document.querySelector("#host-A .result").textContent`))
	}
	p.shot("play-reuseaddr.png")
	p.clicks("A-close", "A-socket", "A-reuseaddr", "A-bind")
	if got := p.eval(`document.querySelector("#host-A .result").textContent`); got != `"bind(3, 10.0.0.1:80) = 0"` {
		t.Errorf("bind with SO_REUSEADDR: %s", got)
	}
	p.exported("reuseaddr")
}

// TestPlayBrowserKeyboard drives a handshake with the keyboard alone:
// Tab to each control, Enter to press it, digits typed into a field.
func TestPlayBrowserKeyboard(t *testing.T) {
	p := openPlay(t)
	press := func(id string) {
		t.Helper()
		p.focus(id)
		before := p.eval(`Number(document.body.dataset.done || 0)`)
		p.do("Enter on #"+id, chromedp.KeyEvent("\r"))
		p.wait("the answer to #"+id, fmt.Sprintf(`Number(document.body.dataset.done || 0) > %s`, before))
	}
	for _, id := range []string{"A-socket", "A-bind", "A-listen", "B-socket", "B-connect", "net-deliver", "net-deliver", "net-deliver", "A-accept"} {
		press(id)
	}
	p.wait("ESTABLISHED on both sides", playSockets("A")+` === "3:LISTEN 4:ESTABLISHED" && `+playSockets("B")+` === "3:ESTABLISHED"`)
	// A field by keys: B writes 7 bytes; a packet's own button by Tab too.
	p.focus("B-n")
	p.do("type 7", chromedp.KeyEvent("\b\b\b7"))
	press("B-write")
	p.wait("B's 7 bytes in flight", `document.querySelector("#flight tr[data-id] td:nth-child(6)")?.textContent === "7"`)
	press("drop-4")
	press("back")
	p.wait("the drop undone", `document.querySelector("#flight tr[data-id]")?.dataset.id === "4"`)
}

// focus presses Tab until the element id has the focus (at most 400
// times, a whole pass of the page).
func (p playTab) focus(id string) {
	p.t.Helper()
	for range 400 {
		if p.eval(`document.activeElement && document.activeElement.id`) == `"`+id+`"` {
			return
		}
		p.do("Tab", chromedp.KeyEvent("\t"))
	}
	p.t.Fatalf("Tab never reached #%s", id)
}

// TestPlayAssets: the embedded page, all the playground serves besides
// its API, is under 300 KB.
func TestPlayAssets(t *testing.T) {
	if n := len(playPage); n >= 300<<10 || n < 1000 {
		t.Errorf("the embedded page is %d bytes, want under 300 KB", n)
	}
	t.Logf("play.html: %d bytes", len(playPage))
}

// TestPlayBrowserKernel clicks "Run against Linux" after a handshake and
// a close: the page shows both ladders and no difference. It needs root
// and TUN devices besides Chromium.
func TestPlayBrowserKernel(t *testing.T) {
	if err := kernelAvailable(); err != nil {
		t.Skipf("skipped: %v", err)
	}
	p := openPlay(t)
	p.established()
	p.clicks("B-close", "net-all")
	p.do("click Run against Linux", chromedp.Click(chromedp.CSS("#kernel")))
	p.wait("the run against Linux", `!document.getElementById("kernel-wrap").hidden`)
	if got := p.eval(`document.getElementById("kernel-diffs").innerText`); !strings.Contains(got, "No difference") {
		t.Errorf("differences against Linux: %s", got)
	}
	if got := p.eval(`document.getElementById("kernel-linux").innerText`); !strings.Contains(got, "(seen in /proc/net/tcp)") {
		t.Errorf("the Linux ladder shows no kernel state: %s\n%s", got, p.eval(`document.getElementById("kernel-wrap").innerText`))
	}
	p.shot("play-kernel.png")
}
