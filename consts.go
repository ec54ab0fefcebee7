package synstack

// Constants of the socket layer, with Linux's values (what package syscall
// has on linux/amd64, plus the few it lacks, such as SO_REUSEPORT), so that
// the socket layer means the same thing on every platform.
const (
	AF_INET  = 2  // IPv4 socket domain
	AF_INET6 = 10 // IPv6 socket domain (also IPv4 through mapped addresses unless IPV6_V6ONLY)

	SOCK_STREAM    = 1       // stream socket type
	SOCK_DGRAM     = 2       // datagram socket type (UDP)
	SOCK_NONBLOCK  = 0x800   // socket type flag: O_NONBLOCK on the new socket
	SOCK_CLOEXEC   = 0x80000 // socket type flag: accepted and ignored
	sockTypeMask   = 0xf     // the type proper, below the flags
	sockMax        = 11      // SOCK_MAX: types at or above are invalid
	IPPROTO_IP     = 0       // "the default protocol"
	IPPROTO_TCP    = 6       // TCP (also the option level of TCP options)
	IPPROTO_UDP    = 17      // UDP
	IPPROTO_ICMP   = 1       // with SOCK_DGRAM on AF_INET: a ping socket (ICMP echo)
	IPPROTO_ICMPV6 = 58      // with SOCK_DGRAM on AF_INET6: a ping socket (ICMPv6 echo)
	IPPROTO_IPV6   = 41      // option level of IPv6 options
	SOL_SOCKET     = 1       // option level of socket options
	MSG_PEEK       = 0x2     // recv: look at the data without taking it
	MSG_DONTWAIT   = 0x40    // send, recv: do not block
	MSG_WAITALL    = 0x100   // recv: accepted and ignored
	MSG_NOSIGNAL   = 0x4000  // send: no SIGPIPE (there is none): accepted
	MSG_TRUNC      = 0x20    // recv on UDP: return the datagram's whole length; in flags: it was truncated
	O_RDWR         = 0x2     // fcntl F_GETFL access mode
	O_NONBLOCK     = 0x800   // fcntl file status flag
	F_GETFD        = 1       // fcntl: get descriptor flags
	F_SETFD        = 2       // fcntl: set descriptor flags
	F_GETFL        = 3       // fcntl: get file status flags
	F_SETFL        = 4       // fcntl: set file status flags
	SHUT_RD        = 0       // shutdown: stop receiving
	SHUT_WR        = 1       // shutdown: stop sending (send FIN)
	SHUT_RDWR      = 2       // shutdown: both

	SO_REUSEADDR    = 2  // share a port (see Bind); not with a listener
	SO_TYPE         = 3  // read-only: SOCK_STREAM or SOCK_DGRAM
	SO_ERROR        = 4  // read-only: pending error, cleared by the read
	SO_SNDBUF       = 7  // send buffer size (doubled on set, as Linux)
	SO_RCVBUF       = 8  // receive buffer size (doubled on set, as Linux)
	SO_KEEPALIVE    = 9  // send keepalive probes
	SO_OOBINLINE    = 10 // urgent data stays in the stream (MSG_OOB finds none)
	SO_LINGER       = 13 // see SetsockoptLinger
	SO_REUSEPORT    = 15 // share a port, listeners included, with load spreading
	SO_ACCEPTCONN   = 30 // read-only: 1 when listening
	SO_PROTOCOL     = 38 // read-only: IPPROTO_TCP or IPPROTO_UDP
	SO_DOMAIN       = 39 // read-only: AF_INET or AF_INET6
	SO_TIMESTAMPING = 37 // SOF_TIMESTAMPING_* flags: software timestamps (msg.go)
	SO_ZEROCOPY     = 60 // MSG_ZEROCOPY sends report completions on the error queue
	SO_MARK         = 36 // a mark for the host's routing and filtering: stored and read back, unused by the stack

	TCP_NODELAY       = 1  // disable Nagle's algorithm
	TCP_MAXSEG        = 2  // clamp the MSS (before connect); read the MSS in use
	TCP_KEEPIDLE      = 4  // seconds of idleness before the first keepalive probe
	TCP_KEEPINTVL     = 5  // seconds between keepalive probes
	TCP_KEEPCNT       = 6  // unanswered probes before the connection is dropped
	TCP_INFO          = 11 // see GetsockoptTCPInfo
	TCP_CORK          = 3  // hold partial segments (200 ms at most)
	TCP_SYNCNT        = 7  // SYN retransmissions before connect gives up (1..127; tcp_syn_retries by default)
	TCP_LINGER2       = 8  // seconds an orphan may wait in FIN_WAIT_2; -1: reset at once
	TCP_CONGESTION    = 13 // congestion control by name: see SetsockoptString
	TCP_USER_TIMEOUT  = 18 // milliseconds unacknowledged data may wait before ETIMEDOUT
	TCP_NOTSENT_LOWAT = 25 // bytes written and not yet sent above which the socket is not writable
	TCP_INQ           = 36 // recvmsg reports the bytes left to read (TCPInq)

	IPV6_V6ONLY  = 26 // an AF_INET6 socket takes IPv6 only (set before bind)
	IP_RECVERR   = 11 // level IPPROTO_IP: ICMP errors reach an unconnected UDP socket too (its next call returns them)
	IPV6_RECVERR = 25 // level IPPROTO_IPV6: the same for IPv6
	// IP_MTU_DISCOVER (level IPPROTO_IP) takes Linux's six modes; on TCP,
	// as Linux: DF only under IP_PMTUDISC_WANT and _DO, the path MTU from
	// ICMP lowers the MSS except under _DONT, _INTERFACE and _OMIT.
	IP_MTU_DISCOVER = 10
	IP_TOS          = 1  // level IPPROTO_IP: the IPv4 header's TOS byte (TCP keeps the two ECN bits)
	IP_FREEBIND     = 15 // level IPPROTO_IP: bind may name an address the stack does not have

	IP_PMTUDISC_DONT      = 0 // no DF, the path MTU not used
	IP_PMTUDISC_WANT      = 1 // path-MTU discovery (the default): DF
	IP_PMTUDISC_DO        = 2 // DF
	IP_PMTUDISC_PROBE     = 3 // no DF on TCP's segments, the path MTU used
	IP_PMTUDISC_INTERFACE = 4 // no DF, the path MTU not used
	IP_PMTUDISC_OMIT      = 5 // as INTERFACE
)

// Ioctl requests, Linux's values.
const (
	SIOCINQ     = 0x541b // bytes received and not yet read (FIONREAD)
	SIOCATMARK  = 0x8905 // 1 when the next read starts at the urgent mark
	SIOCOUTQ    = 0x5411 // bytes written and not yet acknowledged (TIOCOUTQ)
	SIOCOUTQNSD = 0x894b // bytes written and not yet sent
)

// Poll event bits, Linux's values.
const (
	POLLIN    = 0x1    // readable: data, end of stream, a connection to accept
	POLLPRI   = 0x2    // urgent data to read with MSG_OOB
	POLLOUT   = 0x4    // writable, or connect ended
	POLLERR   = 0x8    // pending error
	POLLHUP   = 0x10   // hang-up
	POLLNVAL  = 0x20   // not an open descriptor
	POLLRDHUP = 0x2000 // peer closed its writing side, or SHUT_RD
)
