// Package wgbench runs the wireguard-go end-to-end scenario of
// contrib/wireguard/wgtest with wireguard-go's own netstack (gVisor) as
// well as with synstack's (contrib/wireguard/netstack), and measures both
// side by side in one run: TCP throughput both ways, UDP datagrams per
// second both ways, new connections per second and Go heap per idle
// connection, each the median of alternated rounds (TestWireGuardBench,
// with -synstack.wgbench; the table in docs/performance.md).
//
// Only tests use it: it links gVisor, through wireguard-go's tun/netstack.
package wgbench

import (
	"net/netip"

	"github.com/synstack/synstack/contrib/wireguard/wgtest"
	"golang.zx2c4.com/wireguard/tun/netstack"
)

// GVisor is the wgtest.Factory of wireguard-go's own netstack, gVisor
// behind a tun.Device, as wireguard-go ships it (BatchSize 1, TCP SACK
// on).
func GVisor(locals []netip.Addr, dns netip.Addr, mtu int) (*wgtest.Netstack, error) {
	dev, n, err := netstack.CreateNetTUN(locals, []netip.Addr{dns}, mtu)
	if err != nil {
		return nil, err
	}
	return wgtest.NewNetstack("gVisor", dev, n.ListenTCPAddrPort, n.ListenUDPAddrPort, n.DialContext, n.LookupContextHost), nil
}
