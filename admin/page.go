package admin

import (
	_ "embed"
	"net/http"
)

// page is the live page: HTML, CSS and JavaScript in one file, with no
// external resource. It draws the RFC 9293 state diagram as inline SVG,
// follows /events and fetches /debug/sockets for its table.
//
//go:embed page.html
var page []byte

func servePage(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:")
	w.Write(page)
}
