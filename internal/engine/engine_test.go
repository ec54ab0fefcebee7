package engine

import (
	"net/netip"
	"syscall"
	"testing"
	"unsafe"

	"github.com/synstack/synstack/clock"
	"github.com/synstack/synstack/link/pipe"
	"github.com/synstack/synstack/tcp"
)

func TestBroadcastOf(t *testing.T) {
	for p, want := range map[string]string{"10.0.0.2/24": "10.0.0.255", "192.168.7.9/30": "192.168.7.11", "10.99.0.2/16": "10.99.255.255"} {
		if got := broadcastOf(netip.MustParsePrefix(p)); got.String() != want {
			t.Errorf("broadcastOf(%s) = %v, want %s", p, got, want)
		}
	}
}

// TestMemoryLimitsDefaults: zero marks are sized as Linux sizes tcp_mem.
func TestMemoryLimitsDefaults(t *testing.T) {
	l := memoryLimits(tcp.MemoryLimits{})
	if l.Low <= 0 || l.Low >= l.Pressure || l.Pressure >= l.High || l.High != l.Low*2 {
		t.Fatalf("default marks %+v: want Low = 3/4 Pressure, High = 2 Low", l)
	}
	if got := memoryLimits(tcp.MemoryLimits{High: 1 << 20}); got.High != 1<<20 || got.Pressure > got.High || got.Low > got.Pressure {
		t.Fatalf("with High set: %+v", got)
	}
	if got := memoryLimits(tcp.MemoryLimits{Low: 1, Pressure: 2, High: 3}); got != (tcp.MemoryLimits{Low: 1, Pressure: 2, High: 3}) {
		t.Fatalf("set marks changed: %+v", got)
	}
}

func BenchmarkShardOf(b *testing.B) {
	a, b2 := pipe.New(1500)
	defer b2.Close()
	s, err := New(Config{Link: a, Shards: 8, Clock: clock.Real{}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	l := netip.MustParseAddrPort("10.0.0.1:80")
	r := netip.MustParseAddrPort("10.0.0.2:40000")
	var sink *shard
	for b.Loop() {
		sink = s.shardOf(l, r)
	}
	_ = sink
}

// TestIdleStructureSizes keeps the engine's part of an idle connection in
// its size classes (docs/performance.md, "Idle memory"), on 64-bit
// platforms. The endpoint holds its tcp.Conn; past 512 bytes an object
// with pointers carries an 8-byte header, so 888 bytes is what fits the
// 896-byte class.
func TestIdleStructureSizes(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("64-bit platforms only")
	}
	if n := unsafe.Sizeof(endpoint{}); n > 888 {
		t.Errorf("endpoint: %d bytes, over 888: the next size class for every connection", n)
	}
	if n := unsafe.Sizeof(Socket{}); n > 96 {
		t.Errorf("Socket: %d bytes, over 96: the next size class for every socket", n)
	}
}

// TestAcceptOnClosedSocketReleasesCtl: Accept on a closed socket fails
// with EBADF and leaves ctl free. It once returned holding ctl (its
// release was deferred after the lock's error return), which the lock
// analyzer found once Socket.lock said it returns holding ctl.
func TestAcceptOnClosedSocketReleasesCtl(t *testing.T) {
	a, b := pipe.New(1500)
	defer b.Close()
	s, err := New(Config{Link: a, Clock: clock.Real{}, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sk, err := s.NewSocket(AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	if err := sk.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sk.Accept(true, nil); err != syscall.EBADF {
		t.Errorf("Accept on a closed socket: %v, want EBADF", err)
	}
	if !s.ctl.TryLock() {
		t.Error("Accept on a closed socket returned holding ctl")
	}
	// The test's hold, or the leaked one, so that Close can go on.
	s.ctl.Unlock() // +checklocksignore: TryLock, which the analyzer does not follow, took it
}
