//go:build !linux

package main

import (
	"errors"
	"net/netip"

	"github.com/synstack/synstack/link"
)

var errKernelNeeds = errors.New("--kernel needs root and /dev/net/tun (Linux only)")

type kernelPeer struct{ so sockAPI }

func kernelAvailable() error                                           { return errKernelNeeds }
func startKernelPeer(string) (*kernelPeer, error)                      { return nil, errKernelNeeds }
func (k *kernelPeer) link() link.Endpoint                              { return nil }
func (k *kernelPeer) ss() string                                       { return "" }
func (k *kernelPeer) close()                                           {}
func (k *kernelPeer) watch(func(l, r netip.AddrPort, from, to string)) {}
