package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
)

// setMark sets SO_MARK on a host socket (--mark: policy routing keeps the
// forwarder's own traffic out of the TUN device).
func setMark(fd uintptr, mark int) error {
	return syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_MARK, mark)
}

// listenPingMarked opens the host's unprivileged ICMP socket for a ping
// ("udp4" or "udp6" on address), as icmp.ListenPacket does, with SO_MARK
// mark set before anything is sent, so that policy routing takes the
// forwarder's pings out of the TUN device.
func listenPingMarked(network, address string, mark int) (net.PacketConn, error) {
	family, proto := syscall.AF_INET, syscall.IPPROTO_ICMP
	if network == "udp6" {
		family, proto = syscall.AF_INET6, syscall.IPPROTO_ICMPV6
	}
	a, err := netip.ParseAddr(address)
	if err != nil {
		return nil, fmt.Errorf("ping socket: %w", err)
	}
	fd, err := syscall.Socket(family, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	var sa syscall.Sockaddr = &syscall.SockaddrInet4{Addr: a.Unmap().As4()}
	if family == syscall.AF_INET6 {
		sa = &syscall.SockaddrInet6{Addr: a.As16()}
	}
	if err := setMark(uintptr(fd), mark); err != nil {
		syscall.Close(fd)
		return nil, os.NewSyscallError("setsockopt", err)
	}
	if err := syscall.Bind(fd, sa); err != nil {
		syscall.Close(fd)
		return nil, os.NewSyscallError("bind", err)
	}
	f := os.NewFile(uintptr(fd), "ping")
	defer f.Close() // FilePacketConn holds a dup
	return net.FilePacketConn(f)
}
