//go:build !linux

package tun

import (
	"errors"
	"net/netip"

	"github.com/synstack/synstack/link"
)

// errNotLinux is what every call returns where there is no TUN device.
var errNotLinux = errors.New("tun: TUN devices are a Linux feature")

// Endpoint is an open TUN device; elsewhere than on Linux, none can be
// opened.
type Endpoint struct{}

var _ link.Endpoint = (*Endpoint)(nil)

// Open fails: TUN devices are a Linux feature.
func Open(opts Options) (*Endpoint, error) { return nil, errNotLinux }

// Name returns the device's name.
func (e *Endpoint) Name() string { return "" }

// Index returns the device's interface index.
func (e *Endpoint) Index() int { return 0 }

// Offload describes the offloads in use.
func (e *Endpoint) Offload() string { return "none" }

// Created reports whether Open created the device.
func (e *Endpoint) Created() bool { return false }

// MTU returns the device's MTU.
func (e *Endpoint) MTU() int { return DefaultMTU }

// Attach sets the Dispatcher that receives the packets read from the device.
func (e *Endpoint) Attach(d link.Dispatcher) {}

// WritePacket fails: there is no device.
func (e *Endpoint) WritePacket(pkt []byte) error { return errNotLinux }

// Stats returns the endpoint's counters.
func (e *Endpoint) Stats() Stats { return Stats{} }

// QueueStats returns the counters of each of the device's queues: none.
func (e *Endpoint) QueueStats() []QueueStats { return nil }

// KernelReady fails: there is no device.
func (e *Endpoint) KernelReady(addr netip.Addr) (bool, error) { return false, errNotLinux }

// HostAddrs fails: there is no device.
func (e *Endpoint) HostAddrs() ([]netip.Prefix, error) { return nil, errNotLinux }

// Close does nothing.
func (e *Endpoint) Close() error { return nil }
