// Package frag reassembles received IP fragments and fragments IP packets
// to send, IPv4 (RFC 791) and IPv6 (RFC 8200 section 4.5), with Linux's
// rules and limits.
//
// It does no I/O, starts no goroutine and reads no clock: each call brings
// the time, and the caller serialises the calls (one Reassembler per
// engine shard, say). A Reassembler tells when it next needs Expire
// (Deadline); a Fragmenter hands each fragment to a function as a header
// and a slice of the packet, for a link that writes the two (GatherWriter).
//
// # Reassembly
//
// Reassembler.Input takes every received fragment. Fragments are keyed by
// (source, destination, protocol, ID) for IPv4 and (source, destination,
// ID) for IPv6; their data is copied once, into a buffer of its own, and
// put together when the datagram is complete. The rules, each as Linux
// (net/ipv4/ip_fragment.c, net/ipv6/reassembly.c, net/ipv4/inet_fragment.c)
// unless marked otherwise:
//
//   - Memory: the bytes held (data plus a fixed charge per fragment and per
//     datagram, as Linux charges an skb's truesize) stay at or under
//     Config.HighThresh (ipfrag_high_thresh, 4 MiB); a fragment that would
//     pass it is dropped and counted in ReasmFails. Linux refuses fragments
//     once the count is over the bound; here the fragment that would take
//     it over is refused, so the bound is never passed.
//   - Datagrams in flight: at most Config.MaxDatagrams (synstack's own;
//     Linux bounds them by memory alone). A new datagram past it is
//     dropped and counted.
//   - Fragments per datagram: at most Config.MaxFragments (synstack's own,
//     128 by default); the datagram that would pass it is discarded.
//   - Timeout: a datagram has Config.Timeout (ipfrag_time, 30 s) from its
//     first fragment received to complete; Expire drops it, counts
//     ReasmTimeout and ReasmFails, and hands the caller the first fragment,
//     if it arrived, to quote in an ICMP Time Exceeded, code 1 (Linux sends
//     one only when the first fragment arrived).
//   - Size: no datagram over 65,535 bytes. IPv4 discards the datagram as
//     soon as a fragment reaches past it (Linux waits for the last piece,
//     or the timeout); IPv6 discards it and asks for a Parameter Problem
//     pointing at the fragment's Fragment Offset (RFC 8200 4.5).
//   - The end: a last fragment (MF or M clear) must not end before data
//     held nor elsewhere than an earlier last fragment, and no fragment may
//     reach past a last fragment's end: the datagram is discarded. A
//     fragment with no data discards its datagram.
//   - IPv4 non-last fragments are cut to a multiple of 8 bytes; an IPv6
//     fragment with M set whose length is no multiple of 8 discards its
//     datagram with a Parameter Problem, code 0, at the Payload Length (RFC
//     8200 4.5; recent Linux discards the datagram too).
//   - Overlap: a fragment that overlaps data held without lying within it
//     discards the whole datagram, IPv6 (RFC 5722) and IPv4 alike (Linux
//     since its 2018 FragmentSmack fixes), counted in ReasmFails and
//     ReasmOverlaps.
//   - Duplicates: a fragment that lies within data held is dropped and the
//     datagram kept (Linux's IPFRAG_DUP), counted as a duplicate only.
//     Linux asks it of one run of fragments that arrived in order and calls
//     a fragment spanning two runs an overlap; here any gapless stretch of
//     data held will do.
//   - Atomic fragments (IPv6, offset 0 and M clear) are whole packets,
//     processed apart from any datagram with their ID (RFC 6946), counted
//     in Ip6ReasmReqds and Ip6ReasmOKs as Linux does.
//   - IPv6 first fragments must hold the whole header chain up to the
//     upper-layer header (RFC 8200 4.5, RFC 7112): else the fragment is
//     dropped with a Parameter Problem, code 3, and counted by the caller
//     in Ip6InHdrErrors, not in Ip6ReasmFails. Linux lets a fragment
//     whose extension headers cannot be walked through that check; here it
//     is dropped. Each Parameter Problem counts in Ip6InHdrErrors (the
//     caller's counter), as in Linux.
//   - ECN (RFC 3168 5.3): a datagram is CE if a fragment was; CE mixed with
//     Not-ECT discards it (Linux's ip_frag_ecn_table).
//   - The reassembled IPv4 header is the first fragment's, options
//     included, with DF set if the largest fragment had it (Linux, so that
//     a forwarder refragments alike); the IPv6 packet keeps the headers
//     before the Fragment header and drops that header.
//
// Linux's ipfrag_max_dist (an IPv4 datagram whose source sent 64 other
// fragments meanwhile starts over) is not done: the memory and count
// bounds hold without it.
//
// # Fragmentation
//
// Fragmenter cuts an IP packet larger than the MTU into fragments: IPv4
// with 8-byte-aligned offsets, the first fragment's header options in the
// first and only the copied options in the rest (Linux writes No
// Operations over the others, keeping one header length); a packet with DF
// set is refused and counted in IpFragFails. IPv6 gets a Fragment header
// with the caller's ID after the unfragmentable part (RFC 8200 4.5).
package frag
