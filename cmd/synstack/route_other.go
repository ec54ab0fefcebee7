//go:build !linux

package main

import (
	"errors"
	"net/netip"
)

// Without Linux's netlink, synstack forward neither adds routes (--route)
// nor asks the kernel's routing whether an upstream loops back into the
// device: the stack's own addresses are still refused.

// addedRoutes are the routes forward added: none here.
type addedRoutes = []struct{}

// addRoutes fails if routes were asked for.
func addRoutes(ts *tunStack, prefixes prefixList) (addedRoutes, error) {
	if len(prefixes) > 0 {
		return nil, errors.New("--route needs Linux: add the routes with the system's tools")
	}
	return nil, nil
}

// removeRoutes has nothing to remove.
func removeRoutes(ts *tunStack, routes addedRoutes) {}

// checkRoute cannot ask the kernel: no loop is found by route.
func (g *loopGuard) checkRoute(a netip.Addr) error { return nil }
