// Package netstack is a drop-in for wireguard-go's tun/netstack with
// synstack as the TCP/IP stack in place of gVisor's. A program that uses
// wireguard-go's netstack changes one import line,
//
//	"golang.zx2c4.com/wireguard/tun/netstack"
//
// to
//
//	"github.com/synstack/synstack/contrib/wireguard/netstack"
//
// and keeps its calls: CreateNetTUN(localAddresses, dnsServers, mtu)
// returns a tun.Device for wireguard-go's device.NewDevice and a *Net whose
// methods have the names and arguments of wireguard-go's (DialContext,
// Dial, DialContextTCP, DialContextTCPAddrPort, DialTCP, DialTCPAddrPort,
// ListenTCP, ListenTCPAddrPort, DialUDP, DialUDPAddrPort, ListenUDP,
// ListenUDPAddrPort, LookupHost, LookupContextHost, and the ping ones).
//
// # Differences from wireguard-go's netstack
//
//   - Connections are synstack's: the TCP methods return
//     *synstack.TCPConn and *synstack.TCPListener, the UDP ones
//     *synstack.UDPConn, where wireguard-go returns gonet's TCPConn,
//     TCPListener and UDPConn. They have the same methods (those of
//     *net.TCPConn, *net.TCPListener and *net.UDPConn), so code that keeps
//     them in a variable of the method's result type or in a net.Conn,
//     net.Listener or net.PacketConn compiles unchanged; code that names a
//     gonet type must name synstack's instead. Errors are package net's:
//     *net.OpError wrapping the errno Linux returns (errors.Is(err,
//     syscall.ECONNREFUSED) holds), where gonet returns gVisor's errors.
//   - Ping sockets are synstack's (synstack.PingConn, as Linux's
//     unprivileged ICMP sockets): a PingConn writes whole ICMP (v6) echo
//     requests, in which the stack puts its identifier and the checksum,
//     and reads the echo replies that carry it, header included, as
//     wireguard-go's. A message that is no echo request fails with EINVAL.
//     The stack answers pings addressed to it.
//   - Names are resolved by the standard library's resolver (PreferGo)
//     dialing through the tunnel to dnsServers (Stack.Resolver), with its
//     retries and its fallback to TCP for truncated answers. Like any Go
//     resolver it reads /etc/hosts and the search list and options of
//     /etc/resolv.conf on the host; the name servers it asks are dnsServers
//     only. As wireguard-go's, it asks for A records when the device has an
//     IPv4 address and AAAA when it has an IPv6 one; it orders the answers
//     as the standard library does (RFC 6724), where wireguard-go puts
//     IPv6 first whenever the device has an IPv6 address.
//   - Connections from the device to its own addresses are not looped back
//     inside the stack (wireguard-go's gVisor stack has HandleLocal): they
//     go out through the tunnel like any other.
//   - The device moves packets in batches: BatchSize is 128 (wireguard-go's
//     is 1), Read fills as many buffers as packets wait and Write hands its
//     whole batch to the stack. Packets the stack sends wait in a queue of
//     at most 4096 packets, where gVisor's sender waits for wireguard-go
//     (its device hands over one packet at a time); when wireguard-go does
//     not read fast enough, more are dropped, not queued (a TCP sender then
//     slows down, as on any full link queue), and counted (Net.Drops). The
//     queue's buffers are made as it first fills and kept: its memory
//     follows the most packets it has held, at most 4096 times the MTU.
//     Net.Stack gives the stack itself: its counters, its socket layer.
package netstack
