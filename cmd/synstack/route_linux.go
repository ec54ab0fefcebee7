package main

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/synstack/synstack/forward"
	"github.com/vishvananda/netlink"
)

// The kernel's routes, for synstack forward (netlink: Linux only).

// addedRoutes are the routes forward added, removed at its end.
type addedRoutes = []*netlink.Route

// addRoutes routes each prefix into the device, saying so. On a failure it
// removes the routes it added.
func addRoutes(ts *tunStack, prefixes prefixList) (addedRoutes, error) {
	var added []*netlink.Route
	for _, p := range prefixes {
		r, err := addRoute(ts.ep.Index(), p)
		if err != nil {
			removeRoutes(ts, added)
			return nil, fmt.Errorf("route %s: %w", p, err)
		}
		added = append(added, r)
		ts.logf("route %s into %s", p, ts.ep.Name())
	}
	return added, nil
}

// addRoute routes p into the device with the given index.
func addRoute(index int, p interface{ String() string }) (*netlink.Route, error) {
	_, dst, err := net.ParseCIDR(p.String())
	if err != nil {
		return nil, err
	}
	r := &netlink.Route{LinkIndex: index, Dst: dst, Scope: netlink.SCOPE_LINK}
	if err := netlink.RouteAdd(r); err != nil {
		return nil, err
	}
	return r, nil
}

func removeRoutes(ts *tunStack, routes addedRoutes) {
	for _, r := range routes {
		if err := netlink.RouteDel(r); err != nil {
			ts.logf("removing route %s: %v", r.Dst, err)
		}
	}
}

// checkRoute returns an error wrapping forward.ErrLoop if the kernel routes
// a, with the dials' mark, into the stack's device.
func (g *loopGuard) checkRoute(a netip.Addr) error {
	routes, err := netlink.RouteGetWithOptions(a.AsSlice(), &netlink.RouteGetOptions{Mark: g.mark})
	if err != nil {
		return &net.OpError{Op: "route", Net: "ip", Addr: &net.IPAddr{IP: a.AsSlice()}, Err: err}
	}
	for _, r := range routes {
		if r.LinkIndex == g.dev {
			return fmt.Errorf("the kernel routes %s back into %s: %w", a, g.devName, forward.ErrLoop)
		}
	}
	return nil
}
