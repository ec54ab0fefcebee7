//go:build !linux

package main

import (
	"errors"
	"net"
)

// setMark fails: SO_MARK is Linux's.
func setMark(fd uintptr, mark int) error {
	return errors.New("--mark needs Linux (SO_MARK)")
}

// listenPingMarked fails: SO_MARK is Linux's.
func listenPingMarked(network, address string, mark int) (net.PacketConn, error) {
	return nil, errors.New("--mark needs Linux (SO_MARK)")
}
