// Package bench measures synstack side by side with its anchors, gVisor
// netstack and the Linux kernel, in one process and one run: the figures
// of cmd/synstack-bench and of this package's Go benchmarks.
//
// Each figure has one function, which runs one kind (Synstack, GVisor or
// Kernel) at a time on a network of its own:
//
//   - synstack: two stacks on a link/pipe of the given MTU;
//   - gVisor: two gVisor netstack stacks (the version pinned in go.mod) on
//     gVisor's in-memory link, channel endpoints joined back to back;
//   - the kernel: package net over loopback (127.0.0.1, MTU 65536).
//
// Bulk (throughput one way over one connection), ConnSetup (connections
// opened and closed per second), PingPong (1-byte round trips per
// second), IdleHeap (Go heap per idle established connection), the
// allocations per segment of a bulk transfer (BulkResult.AllocsPerSegment)
// and UDP (datagrams received per second and the share lost, each sender
// keeping at most UDPWindow datagrams in flight). Run strings them
// together into a Report with ratios, which cmd/synstack prints, writes
// as JSON and draws as SVG charts.
//
// Only tools and benchmarks import this package: gVisor is not a
// dependency of the library.
package bench
