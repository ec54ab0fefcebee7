package patterns

import "sync"

// A pitfall: after a line that declares two fields, the analyzer puts an
// annotation on the wrong field (it counts lines, the type checker
// counts fields). Here the guard meant for c lands on b, silently.
type fieldList struct {
	mu   sync.Mutex
	a, b int
	// +checklocks:mu
	c int
}

func (f *fieldList) readC() int { return f.c } // no report: c lost its guard

func (f *fieldList) readB() int { return f.b } // reported: must be locked (b)
