package link

import "testing"

type countDispatcher struct{ n int }

func (c *countDispatcher) DeliverPacket([]byte) { c.n++ }

// An Attachment holds nothing at first, then what Set gives it, until Set
// of nil detaches.
func TestAttachment(t *testing.T) {
	var a Attachment
	if d := a.Get(); d != nil {
		t.Fatalf("zero Attachment holds %v", d)
	}
	c := &countDispatcher{}
	a.Set(c)
	d := a.Get()
	if d == nil {
		t.Fatal("Get after Set returned nil")
	}
	d.DeliverPacket(nil)
	if c.n != 1 {
		t.Fatalf("Get returned a Dispatcher other than the one Set: %d deliveries reached it", c.n)
	}
	a.Set(nil)
	if d := a.Get(); d != nil {
		t.Fatalf("after Set(nil), Get returned %v", d)
	}
}
