package link

import "sync/atomic"

// Attachment holds the Dispatcher that an Endpoint's Attach sets: set at
// any time, read by the link's receive goroutines on every packet without
// a lock. The zero value holds none. link/pipe and link/tun keep one in
// their Endpoint.
type Attachment struct {
	p atomic.Pointer[dispatcherBox]
}

// dispatcherBox lets an atomic.Pointer hold an interface value.
type dispatcherBox struct{ d Dispatcher }

// Set makes d the Dispatcher that receives packets; nil detaches.
func (a *Attachment) Set(d Dispatcher) {
	if d == nil {
		a.p.Store(nil)
		return
	}
	a.p.Store(&dispatcherBox{d})
}

// Get returns the Dispatcher, or nil if none is attached.
func (a *Attachment) Get() Dispatcher {
	if b := a.p.Load(); b != nil {
		return b.d
	}
	return nil
}
