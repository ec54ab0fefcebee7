// Package engine is synstack's runtime: the part that moves packets. A
// Host is one host on one link: its addresses, its connections split
// among shards (each a lock, a 4-tuple table, a timer heap and counters),
// the port table, listeners with their SYN and accept queues and SYN
// cookies, ICMP, the forwarding queue, and the sockets on them. The
// protocol itself is package tcp's sans-IO state machine; the engine
// feeds it segments and the clock, and sends what it emits. Package
// synstack above is the faces: Config and Stack, the BSD socket layer
// with its descriptors, and net.Conn.
//
// # A received packet's route
//
// Each step is in one place, top to bottom:
//
//  1. The link hands over a batch (Host.DeliverPackets, input.go).
//  2. IP checks, without a lock (prepare): the IPv4 or IPv6 header,
//     martian addresses (martian.go), the TCP checksum and header.
//  3. Demux to a shard (inputBatch): a TCP segment's 4-tuple names its
//     shard, whose lock is taken (and kept for the next segment of the
//     same shard). A segment for a connection in the shard's table
//     (shardConn) goes straight to it.
//  4. tcp.Conn.Input: the state machine, which emits its segments through
//     the endpoint (output.go).
//  5. afterLocked (endpoint.go): the connection's timer is rescheduled
//     (timers.go), a finished connection leaves the tables, a child whose
//     handshake completed moves to its listener's accept queue, and the
//     socket's wait queue is woken (locks.go: Socket.wake), so a blocked
//     Read, Write, Accept or Poll goes on.
//
// Branches off the path: an IP fragment goes to the reassembler
// (reasm.go), and the datagram it completes starts again at step 2; a UDP
// datagram to its socket (udp.go), with no shard's lock. Under the
// control plane's lock (escalation, see locks.go): a segment for no
// connection goes to demuxLocked (demux.go): a listener (listener.go,
// cookie.go), TIME_WAIT reuse, the forwarder (forward.go), or a RST; a
// packet that is neither goes to ipInputLocked: ICMP (icmp.go) or a
// counted drop.
//
// # Locks
//
// locks.go names the lock regime: read it first.
//
// # Where to add a protocol
//
// As UDP was (udp.go): a branch off inputBatch before any shard is
// locked; a table of its endpoints with a lock of its own, a leaf in the
// order of locks.go; its part of Socket (Socket.udp) waking the socket's
// one wait queue; its counters in package nstat (atomics where no shard
// lock is held); and its faces in package synstack, which stays faces
// only.
package engine
