package script

import "syscall"

// Linux's values of the symbolic constants scripts use. Scripts are written
// for Linux, so these are Linux's numbers whatever the host; the socket layer
// of synstack takes Linux's values too.
var symbols = map[string]int64{
	"AF_UNSPEC": 0, "AF_INET": 2, "AF_INET6": 10, "PF_UNSPEC": 0, "PF_INET": 2, "PF_INET6": 10,

	"SOCK_STREAM": 1, "SOCK_DGRAM": 2, "SOCK_RAW": 3,
	"SOCK_NONBLOCK": 0x800, "SOCK_CLOEXEC": 0x80000,

	"IPPROTO_IP": 0, "IPPROTO_TCP": 6, "IPPROTO_UDP": 17, "IPPROTO_IPV6": 41,

	"SOL_SOCKET": 1, "SOL_TCP": 6, "SOL_IP": 0, "SOL_IPV6": 41,

	"SO_DEBUG": 1, "SO_REUSEADDR": 2, "SO_TYPE": 3, "SO_ERROR": 4, "SO_DONTROUTE": 5,
	"SO_BROADCAST": 6, "SO_SNDBUF": 7, "SO_RCVBUF": 8, "SO_KEEPALIVE": 9, "SO_OOBINLINE": 10,
	"SO_LINGER": 13, "SO_REUSEPORT": 15, "SO_RCVLOWAT": 18, "SO_SNDLOWAT": 19,
	"SO_RCVTIMEO": 20, "SO_SNDTIMEO": 21, "SO_ACCEPTCONN": 30, "SO_SNDBUFFORCE": 32,
	"SO_RCVBUFFORCE": 33, "SO_MARK": 36, "SO_DOMAIN": 39, "SO_PROTOCOL": 38,

	"TCP_NODELAY": 1, "TCP_MAXSEG": 2, "TCP_CORK": 3, "TCP_KEEPIDLE": 4, "TCP_KEEPINTVL": 5,
	"TCP_KEEPCNT": 6, "TCP_SYNCNT": 7, "TCP_LINGER2": 8, "TCP_DEFER_ACCEPT": 9,
	"TCP_WINDOW_CLAMP": 10, "TCP_INFO": 11, "TCP_QUICKACK": 12, "TCP_CONGESTION": 13,
	"TCP_USER_TIMEOUT": 18, "TCP_FASTOPEN": 23, "TCP_NOTSENT_LOWAT": 25,

	"IPV6_V6ONLY": 26,

	"IP_TOS": 1, "IP_MTU_DISCOVER": 10, "IP_FREEBIND": 15, "IP_PMTUDISC_DONT": 0, "IP_PMTUDISC_WANT": 1,
	"IP_PMTUDISC_DO": 2, "IP_PMTUDISC_PROBE": 3, "IP_PMTUDISC_INTERFACE": 4, "IP_PMTUDISC_OMIT": 5,

	"SIOCINQ": 0x541b, "FIONREAD": 0x541b, "SIOCOUTQ": 0x5411, "TIOCOUTQ": 0x5411, "SIOCOUTQNSD": 0x894b,
	"SIOCATMARK": 0x8905,

	"SPLICE_F_MOVE": 0x1, "SPLICE_F_NONBLOCK": 0x2, "SPLICE_F_MORE": 0x4, "SPLICE_F_GIFT": 0x8,

	"SHUT_RD": 0, "SHUT_WR": 1, "SHUT_RDWR": 2,

	"F_DUPFD": 0, "F_GETFD": 1, "F_SETFD": 2, "F_GETFL": 3, "F_SETFL": 4, "FD_CLOEXEC": 1,
	"O_RDONLY": 0, "O_WRONLY": 1, "O_RDWR": 2, "O_NONBLOCK": 0x800, "O_NDELAY": 0x800,

	"POLLIN": 0x1, "POLLPRI": 0x2, "POLLOUT": 0x4, "POLLERR": 0x8, "POLLHUP": 0x10,
	"POLLNVAL": 0x20, "POLLRDNORM": 0x40, "POLLRDBAND": 0x80, "POLLWRNORM": 0x100,
	"POLLWRBAND": 0x200, "POLLMSG": 0x400, "POLLRDHUP": 0x2000,

	"MSG_OOB": 0x1, "MSG_PEEK": 0x2, "MSG_DONTROUTE": 0x4, "MSG_TRUNC": 0x20,
	"MSG_DONTWAIT": 0x40, "MSG_EOR": 0x80, "MSG_WAITALL": 0x100, "MSG_NOSIGNAL": 0x4000,
	"MSG_MORE": 0x8000,

	"EPOLL_CTL_ADD": 1, "EPOLL_CTL_DEL": 2, "EPOLL_CTL_MOD": 3, "EPOLL_CLOEXEC": 0x80000,
	"EPOLLIN": 0x1, "EPOLLPRI": 0x2, "EPOLLOUT": 0x4, "EPOLLERR": 0x8, "EPOLLHUP": 0x10,
	"EPOLLRDNORM": 0x40, "EPOLLRDBAND": 0x80, "EPOLLWRNORM": 0x100, "EPOLLWRBAND": 0x200,
	"EPOLLMSG": 0x400, "EPOLLRDHUP": 0x2000, "EPOLLEXCLUSIVE": 1 << 28, "EPOLLWAKEUP": 1 << 29,
	"EPOLLONESHOT": 1 << 30, "EPOLLET": 1 << 31,

	"NULL": 0,
}

// Linux values used by the runner itself.
const (
	linuxAFInet      = 2
	linuxAFInet6     = 10
	linuxSockNonblk  = 0x800
	linuxFGetFL      = 3
	linuxFSetFL      = 4
	linuxONonblock   = 0x800
	linuxMsgDontwait = 0x40
	linuxPollIn      = 0x1
	linuxPollOut     = 0x4
	linuxPollErr     = 0x8
	linuxPollHup     = 0x10
	linuxSolSocket   = 1
	linuxSoError     = 4
	linuxSoLinger    = 13
	linuxSolTCP      = 6
	linuxTCPInfo     = 11
)

// errnos maps the errno names of Linux that socket calls return to the
// values synstack's socket layer returns (syscall.Errno).
var errnos = map[string]syscall.Errno{
	"EPERM": syscall.EPERM, "ENOENT": syscall.ENOENT, "EINTR": syscall.EINTR,
	"EIO": syscall.EIO, "EBADF": syscall.EBADF, "EAGAIN": syscall.EAGAIN,
	"EWOULDBLOCK": syscall.EAGAIN, "ENOMEM": syscall.ENOMEM, "EACCES": syscall.EACCES,
	"EFAULT": syscall.EFAULT, "EBUSY": syscall.EBUSY, "EEXIST": syscall.EEXIST,
	"EINVAL": syscall.EINVAL, "ENFILE": syscall.ENFILE, "EMFILE": syscall.EMFILE,
	"ENOSPC": syscall.ENOSPC, "ESPIPE": syscall.ESPIPE, "EPIPE": syscall.EPIPE, "ENOSYS": syscall.ENOSYS,
	"ENOTSOCK": syscall.ENOTSOCK, "EDESTADDRREQ": syscall.EDESTADDRREQ,
	"EMSGSIZE": syscall.EMSGSIZE, "EPROTOTYPE": syscall.EPROTOTYPE,
	"ENOPROTOOPT": syscall.ENOPROTOOPT, "EPROTONOSUPPORT": syscall.EPROTONOSUPPORT,
	"ESOCKTNOSUPPORT": syscall.ESOCKTNOSUPPORT, "EOPNOTSUPP": syscall.EOPNOTSUPP,
	"ENOTSUP": syscall.EOPNOTSUPP, "EPFNOSUPPORT": syscall.EPFNOSUPPORT,
	"EAFNOSUPPORT": syscall.EAFNOSUPPORT, "EADDRINUSE": syscall.EADDRINUSE,
	"EADDRNOTAVAIL": syscall.EADDRNOTAVAIL, "ENETDOWN": syscall.ENETDOWN,
	"ENETUNREACH": syscall.ENETUNREACH, "ENETRESET": syscall.ENETRESET,
	"ECONNABORTED": syscall.ECONNABORTED, "ECONNRESET": syscall.ECONNRESET,
	"ENOBUFS": syscall.ENOBUFS, "EISCONN": syscall.EISCONN, "ENOTCONN": syscall.ENOTCONN,
	"ESHUTDOWN": syscall.ESHUTDOWN, "ETIMEDOUT": syscall.ETIMEDOUT,
	"ECONNREFUSED": syscall.ECONNREFUSED, "EHOSTDOWN": syscall.EHOSTDOWN,
	"EHOSTUNREACH": syscall.EHOSTUNREACH, "EALREADY": syscall.EALREADY,
	"EINPROGRESS": syscall.EINPROGRESS, "ENOTTY": syscall.ENOTTY,
}

// errnoName returns the name Linux gives e (EAGAIN rather than EWOULDBLOCK),
// or "errno N" for one the table lacks.
func errnoName(e syscall.Errno) string {
	best := ""
	for name, v := range errnos {
		if v != e {
			continue
		}
		// Prefer the canonical spelling of aliased values.
		if best == "" || name == "EAGAIN" || name == "EOPNOTSUPP" ||
			(best != "EAGAIN" && best != "EOPNOTSUPP" && name < best) {
			best = name
		}
	}
	if best == "" {
		return "errno " + itoa(int64(e))
	}
	return best
}

// linuxTCPStates are Linux's numbers for tcpi_state (include/net/tcp_states.h).
var linuxTCPStates = map[string]int64{
	"TCP_ESTABLISHED": 1, "TCP_SYN_SENT": 2, "TCP_SYN_RECV": 3, "TCP_FIN_WAIT1": 4,
	"TCP_FIN_WAIT2": 5, "TCP_TIME_WAIT": 6, "TCP_CLOSE": 7, "TCP_CLOSE_WAIT": 8,
	"TCP_LAST_ACK": 9, "TCP_LISTEN": 10, "TCP_CLOSING": 11,
}
