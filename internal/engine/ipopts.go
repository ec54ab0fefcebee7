package engine

// IP-level options of a TCP connection (IPv4): IP_TOS and IP_MTU_DISCOVER,
// as Linux applies them to TCP. The TOS byte goes in every segment's
// header, its two ECN bits left to TCP. DF is set in the modes that do
// path-MTU discovery on the segments themselves, IP_PMTUDISC_WANT (the
// default) and _DO; _DONT, _PROBE, _INTERFACE and _OMIT send without it
// (Linux's ip_dont_fragment; checked on Linux 6.18). The path MTU an
// ICMP "fragmentation needed" reports lowers the MSS except under _DONT,
// _INTERFACE and _OMIT (Linux's tcp_v4_mtu_reduced and
// ip_sk_accept_pmtu).

// IP_MTU_DISCOVER's modes, Linux's values.
const (
	pmtuDiscDont      = 0
	pmtuDiscWant      = 1
	pmtuDiscDo        = 2
	pmtuDiscInterface = 4
	pmtuDiscOmit      = 5
)

// ipTOSECNMask are the TOS byte's ECN bits, which IP_TOS does not set on a
// TCP socket.
const ipTOSECNMask = 0x3

// ipOpts packs what a connection needs of its IP-level options in one
// byte: the TOS byte's six high bits (IP_TOS; the two ECN bits are
// TCP's), and in those two bits whether DF is clear and whether the path
// MTU is ignored (IP_MTU_DISCOVER).
type ipOpts uint8

const (
	ipOptNoDF   ipOpts = 1 << 0
	ipOptNoPMTU ipOpts = 1 << 1
)

// ipOptsOf returns the ipOpts of the options o (nil: the defaults).
func ipOptsOf(o *Options) ipOpts {
	if o == nil {
		return 0
	}
	v := ipOpts(o.TOS &^ ipTOSECNMask)
	switch o.PMTUDiscMode() {
	case pmtuDiscWant, pmtuDiscDo:
	case pmtuDiscDont, pmtuDiscInterface, pmtuDiscOmit:
		v |= ipOptNoDF | ipOptNoPMTU
	default: // IP_PMTUDISC_PROBE: no DF, the path MTU used
		v |= ipOptNoDF
	}
	return v
}

// tos is the TOS byte of the connection's IPv4 segments.
func (v ipOpts) tos() uint8 { return uint8(v) &^ ipTOSECNMask }

// dontFragment reports whether the connection's IPv4 segments carry DF.
func (v ipOpts) dontFragment() bool { return v&ipOptNoDF == 0 }

// acceptsPathMTU reports whether an ICMP "fragmentation needed" lowers the
// connection's MSS.
func (v ipOpts) acceptsPathMTU() bool { return v&ipOptNoPMTU == 0 }

// PMTUDiscMode is IP_MTU_DISCOVER's mode: as set, else IP_PMTUDISC_WANT.
func (o *Options) PMTUDiscMode() int {
	if o.MTUDiscover == 0 {
		return pmtuDiscWant
	}
	return int(o.MTUDiscover) - 1
}

// SetPMTUDiscMode sets IP_MTU_DISCOVER's mode (0..5, Linux's values).
func (o *Options) SetPMTUDiscMode(mode int) { o.MTUDiscover = int8(mode + 1) }
