package wgbench_test

import (
	"reflect"
	"strings"
	"testing"

	synnetstack "github.com/synstack/synstack/contrib/wireguard/netstack"
	wgnetstack "golang.zx2c4.com/wireguard/tun/netstack"
)

// TestDropInAPI: every exported function and method of wireguard-go's
// netstack (Net, PingConn, PingAddr) exists in contrib/wireguard's with
// the same arguments and the same results, but where wireguard-go returns
// a gonet type, for which synstack's returns its own.
func TestDropInAPI(t *testing.T) {
	for _, c := range []struct{ wg, syn any }{
		{(*wgnetstack.Net)(nil), (*synnetstack.Net)(nil)},
		{(*wgnetstack.PingConn)(nil), (*synnetstack.PingConn)(nil)},
		{(*wgnetstack.PingAddr)(nil), (*synnetstack.PingAddr)(nil)},
	} {
		wt, st := reflect.TypeOf(c.wg), reflect.TypeOf(c.syn)
		for i := range wt.NumMethod() {
			wm := wt.Method(i)
			sm, ok := st.MethodByName(wm.Name)
			if !ok {
				t.Errorf("%v has no method %s", st, wm.Name)
				continue
			}
			compareFuncs(t, st.String()+"."+wm.Name, wm.Type, sm.Type)
		}
	}
	for _, f := range [][2]any{
		{wgnetstack.CreateNetTUN, synnetstack.CreateNetTUN},
		{wgnetstack.PingAddrFromAddr, synnetstack.PingAddrFromAddr},
	} {
		compareFuncs(t, reflect.TypeOf(f[1]).String(), reflect.TypeOf(f[0]), reflect.TypeOf(f[1]))
	}
}

// compareFuncs checks that syn takes what wg takes and returns what it
// returns, a gonet type standing for any.
func compareFuncs(t *testing.T, name string, wg, syn reflect.Type) {
	t.Helper()
	if wg.NumIn() != syn.NumIn() || wg.NumOut() != syn.NumOut() || wg.IsVariadic() != syn.IsVariadic() {
		t.Errorf("%s: %v, want the shape of %v", name, syn, wg)
		return
	}
	for i := 1; i < wg.NumIn(); i++ { // argument 0 is the receiver, or the same for functions
		if !sameType(wg.In(i), syn.In(i)) {
			t.Errorf("%s: argument %d is %v, want %v", name, i, syn.In(i), wg.In(i))
		}
	}
	for i := range wg.NumOut() {
		w := wg.Out(i)
		if strings.Contains(w.String(), "gonet.") {
			continue // documented: synstack's TCPConn, TCPListener, UDPConn
		}
		if !sameType(w, syn.Out(i)) {
			t.Errorf("%s: result %d is %v, want %v", name, i, syn.Out(i), w)
		}
	}
}

// sameType: equal, or the same type of the other package (netstack.PingAddr).
func sameType(a, b reflect.Type) bool {
	if a == b {
		return true
	}
	strip := func(s string) string { return strings.ReplaceAll(s, "netstack.", "") }
	return a.PkgPath() != "" && a.Name() == b.Name() || strip(a.String()) == strip(b.String())
}
