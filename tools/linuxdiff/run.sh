#!/bin/sh
# linuxdiff: run packet scripts against the real Linux kernel with a real
# packetdrill binary, each in a fresh network namespace, and say where Linux
# disagrees with them (or, with -corpus, where synstack disagrees with Linux).
#
# Not run by CI: packetdrill is not packaged. Build it from its public source
# outside this repository and pass its path. Needs root (unshare, tun).
#
#   tools/linuxdiff/run.sh [-j N] [-t SECS] PACKETDRILL [SCRIPT.pkt|DIR...]
#       Runs the project's scripts (default: testdata/scripts) under Linux
#       and lists those Linux fails, with packetdrill's first error.
#   tools/linuxdiff/run.sh -corpus DIR [-synstack BIN] [-j N] [-t SECS] PACKETDRILL
#       Runs every *.pkt under DIR (packetdrill's gtests/net/tcp, say) under
#       Linux from the script's own directory, and through
#       `synstack script --strict`, both with the options packetdrill's
#       run_all.py passes (its IPv4 variant; IPv6 for *v6.pkt), and prints
#       one row per script: LINUX SYNSTACK SCRIPT, then the counts.
#       Where synstack fails only on a packet it sends after the script's
#       last line (`--strict` counts it, packetdrill does not), that packet
#       is added to a copy of the script and run under Linux again: if
#       Linux sends it too, Linux would fail `--strict` there as well, and
#       the row says so (a second run adds the window, to say whether
#       Linux's window is the same).
#
# Each script gets `unshare -n -m`: a fresh network namespace (lo up; the
# per-namespace TCP sysctls at the kernel's defaults) and a mount namespace
# in which /sys/module/tcp_cubic/parameters is a private copy, so a script
# that writes a CUBIC module parameter cannot change the host's. The
# project's scripts get packetdrill's usual settings on top:
# tcp_rmem="4096 131072 15728640"; packetdrill's own scripts set theirs
# with their defaults.sh. Every socket a script creates gets cubic by
# setsockopt (see below).
set -u

# variant prints the command-line options packetdrill's run_all.py gives a
# script of its corpus: IPv6 for *v6.pkt, IPv4 for the others (run_all.py
# also runs those over IPv6 and IPv4-mapped IPv6; this takes one variant).
variant() {
	case $1 in
	*v6.pkt) echo "--ip_version=ipv6 --mtu=1520 --local_ip=fd3d:0a0b:17d6::1" \
		"--gateway_ip=fd3d:0a0b:17d6:8888::1 --remote_ip=fd3d:fa7b:d17d::1" \
		"-D TFO_COOKIE=c1d1e9742a47a9bc -D CMSG_LEVEL_IP=SOL_IPV6 -D CMSG_TYPE_RECVERR=IPV6_RECVERR" ;;
	*) echo "--ip_version=ipv4 --local_ip=192.168.0.1 --gateway_ip=192.168.0.1" \
		"--netmask_ip=255.255.0.0 --remote_ip=192.0.2.1 -D TFO_COOKIE=3021b9d889017eeb" \
		"-D CODE=host_unreachable -D CMSG_LEVEL_IP=SOL_IP -D CMSG_TYPE_RECVERR=IP_RECVERR" ;;
	esac
}

# One script under Linux; prints "ok" or "FAIL<TAB>first error".
if [ "${1:-}" = "--one-linux" ]; then
	pd=$2 secs=$3 extra=$4 f=$5
	dir=$(dirname "$f") base=$(basename "$f")
	flags=""
	[ "$extra" = corpus ] && flags=$(variant "$base")
	# The project's scripts name the error queue's control-message level
	# and type as packetdrill's corpus does; synstack's runner knows them
	# by the script's family, packetdrill only from run_all.py's -D.
	[ "$extra" = project ] && flags="-D CMSG_LEVEL_IP=SOL_IP -D CMSG_TYPE_RECVERR=IP_RECVERR"
	# The host's default congestion control may not be cubic, and a
	# namespace may not choose its own unless the host allows it: set cubic
	# on each socket the script creates (a listener's children inherit it),
	# in a copy bind-mounted over the script inside the mount namespace.
	copy=$(mktemp)
	if grep -q TCP_CONGESTION "$f"; then cp "$f" "$copy"; else
		sed -E 's/^( *[0-9.+]+ +socket\(\.\.\., SOCK_STREAM, IPPROTO_TCP\) = ([0-9]+))[[:space:]]*$/\1\n   +0 setsockopt(\2, SOL_TCP, TCP_CONGESTION, "cubic", 5) = 0/' "$f" > "$copy"
	fi
	out=$(cd "$dir" && timeout -k 5 "$secs" unshare -n -m sh -c '
		set -e
		ip link set lo up
		mount --bind "$4" "$3"
		p=/sys/module/tcp_cubic/parameters
		if [ -d $p ]; then
			t=$(mktemp -d)
			cp $p/* $t/ 2>/dev/null || true
			mount -t tmpfs none $p
			cp $t/* $p/ 2>/dev/null || true
			rm -rf $t
		fi
		if [ "$2" = project ]; then
			sysctl -q net.ipv4.tcp_rmem="4096 131072 15728640"
		fi
		set +e
		exec "$1" $5 "$3"
	' sh "$pd" "$extra" "$base" "$copy" "$flags" 2>&1)
	rc=$?
	rm -f "$copy"
	if [ $rc -eq 0 ]; then
		echo "ok"
	elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
		printf 'FAIL\ttimed out after %ss\n' "$secs"
	else
		msg=$(echo "$out" | grep -m1 "^$base:")
		[ -n "$msg" ] || msg=$(echo "$out" | grep -v '^$' | tail -1)
		printf 'FAIL\t%s\n' "${msg:-exit $rc}"
	fi
	exit 0
fi

jobs=2 secs=120 corpus="" synstack=""
while [ $# -gt 0 ]; do
	case $1 in
	-j) jobs=$2; shift 2 ;;
	-t) secs=$2; shift 2 ;;
	-corpus) corpus=$2; shift 2 ;;
	-synstack) synstack=$2; shift 2 ;;
	-h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "linuxdiff: unknown flag $1 (see -h)" >&2; exit 2 ;;
	*) break ;;
	esac
done
[ $# -ge 1 ] || { echo "usage: $0 [-corpus DIR] [-synstack BIN] [-j N] [-t SECS] PACKETDRILL [SCRIPT|DIR...]" >&2; exit 2; }
pd=$(readlink -f "$1"); shift
[ -x "$pd" ] || { echo "linuxdiff: $pd is not an executable packetdrill" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "linuxdiff: needs root (unshare -n, tun)" >&2; exit 2; }
self=$(readlink -f "$0")
repo=$(cd "$(dirname "$self")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ -n "$corpus" ]; then
	set -- "$corpus"
	mode=corpus
else
	[ $# -gt 0 ] || set -- "$repo/testdata/scripts"
	mode=project
fi
find "$@" -name "*.pkt" ! -name ".*" | sort | while read -r f; do readlink -f "$f"; done > "$work/list"
total=$(wc -l < "$work/list")
[ "$total" -gt 0 ] || { echo "linuxdiff: no .pkt scripts under $*" >&2; exit 2; }

# Linux, jobs at a time; each result goes to its own file, in list order.
n=0
while read -r f; do n=$((n+1)); echo "$n $f"; done < "$work/list" |
	xargs -P "$jobs" -L 1 sh -c '"$0" --one-linux "$1" "$2" "$3" "$6" > "$4/linux.$5" 2>&1' \
		"$self" "$pd" "$secs" "$mode" "$work" || true

strip() { sed "s|^$1/||"; }
base=$(dirname "$(head -1 "$work/list")")
[ "$mode" = corpus ] && base=$(readlink -f "$corpus")
[ "$mode" = project ] && base=$repo

if [ "$mode" = project ]; then
	bad=0 n=0
	while read -r f; do
		n=$((n+1))
		r=$(cat "$work/linux.$n" 2>/dev/null || echo "FAIL	no result")
		name=$(echo "$f" | strip "$base")
		case $r in
		ok) ;;
		*) bad=$((bad+1)); printf '%-60s %s\n' "$name" "$(echo "$r" | cut -f2-)" ;;
		esac
	done < "$work/list"
	echo "Linux disagrees with $bad of $total scripts"
	exit 0
fi

# tail FILE MSG: synstack's --strict failed on a packet after FILE's last
# line (MSG is its error). Adds that packet to a copy of FILE in the same
# directory, before a closing shell command if the script ends with one,
# and runs the copy under Linux: once without the window (does Linux send
# this segment?), once with it. Prints the verdict.
tail_check() {
	f=$1 msg=$2
	# The packet's time relative to the last line's: packetdrill's "+t"
	# counts from when that line ran, which a range (~) or a late run
	# moves, so an absolute time would compare the wrong instant.
	# A packet sent before the last line's time (while later lines were
	# calls or inbound packets) keeps its absolute time.
	at=$(echo "$msg" | sed -n 's/.*got > .* at \([0-9.]*\), \([0-9.]*\) before the last line.s time (the script expects no more packets).*/\1/p
		s/.*got > .* at [0-9.]*, \(+[0-9.]*\) after the last line.s time (the script expects no more packets).*/\1/p')
	pkt=$(echo "$msg" | sed -n 's/.*got \(> .*\) at [0-9.]*, +*[0-9.]* [a-z]* the last line.s time (the script expects no more packets).*/\1/p' |
		sed 's/ \[[0-9]* segments [a-z ]*\]//')
	[ -n "$at" ] || return 0
	nowin=$(echo "$pkt" | sed 's/ win [0-9]*//')
	copy=$(dirname "$f")/.linuxdiff-tail-$(basename "$f")
	for line in "$nowin" "$pkt"; do
		awk -v add="$at $line" '{ l[NR] = $0 } END {
			n = NR; while (n > 0 && l[n] ~ /^[ \t]*$/) n--
			at = (l[n] ~ /^[ \t]*`/) ? n : n + 1
			for (i = 1; i <= n; i++) { if (i == at) print add; print l[i] }
			if (at == n + 1) print add }' "$f" > "$copy"
		r=$("$self" --one-linux "$pd" "$secs" corpus "$copy")
		rm -f "$copy"
		if [ "$line" = "$nowin" ]; then
			case $r in
			ok) ;;
			*"live packet"*|*"timing error: expected outbound packet"*)
				# Linux sends a packet there too, only not this one.
				tails=$((tails+1))
				printf '        tail:     Linux sends a packet after the last line too (it fails --strict here too), a different one: %s\n' \
					"$(echo "$r" | cut -f2- | sed 's/.*error handling packet: //')"
				return 0 ;;
			*"timing error"*)
				# packetdrill itself ran late (a busy machine): no verdict.
				printf '        tail:     no verdict, the run was late: %s\n' "$(echo "$r" | cut -f2- | sed 's/.*: timing error/timing error/')"
				return 0 ;;
			*)
				printf '        tail:     Linux sends nothing like %s then (%s)\n' "$nowin" "$(echo "$r" | cut -f2-)"
				return 0 ;;
			esac
			tails=$((tails+1))
			[ "$nowin" = "$pkt" ] && break
		else
			[ "$r" = ok ] && printf '        tail:     Linux sends it too, window and all: it fails --strict here too\n' ||
				printf '        tail:     Linux sends it too (it fails --strict here too), but %s\n' "$(echo "$r" | cut -f2- | sed 's/.*error handling packet: //')"
			return 0
		fi
	done
	printf '        tail:     Linux sends it too: it fails --strict here too\n'
}

# Corpus: synstack too.
if [ -z "$synstack" ]; then
	synstack=$work/synstack
	(cd "$repo" && nice go build -o "$synstack" ./cmd/synstack) || exit 1
fi
lp=0 sp=0 both=0 n=0 tails=0
printf '%-7s %-8s %s\n' LINUX SYNSTACK SCRIPT
while read -r f; do
	n=$((n+1))
	r=$(cat "$work/linux.$n" 2>/dev/null || echo "FAIL	no result")
	name=$(echo "$f" | strip "$base")
	out=$(cd "$(dirname "$f")" && timeout 60 nice "$synstack" script --strict $(variant "$f") "$(basename "$f")" 2>&1)
	src=$?
	l=FAIL s=FAIL
	[ "$r" = ok ] && l=ok && lp=$((lp+1))
	[ $src -eq 0 ] && s=ok && sp=$((sp+1))
	[ $l = ok ] && [ $s = ok ] && both=$((both+1))
	printf '%-7s %-8s %s\n' $l $s "$name"
	[ $l = FAIL ] && printf '        linux:    %s\n' "$(echo "$r" | cut -f2-)"
	first=$(echo "$out" | grep -v '^warning' | sed -n 2p | sed 's/^ *//')
	[ $s = FAIL ] && printf '        synstack: %s\n' "$first"
	[ $l = ok ] && [ $s = FAIL ] && tail_check "$f" "$first"
done < "$work/list"
echo "Linux passes $lp of $total; synstack passes $sp; both $both"
[ "$lp" -gt 0 ] && echo "synstack passes $both of the $lp Linux passes ($((both*100/lp)) %)"
strict=$((lp-tails))
[ "$tails" -gt 0 ] && [ "$strict" -gt 0 ] &&
	echo "Linux sends a packet after the last line of $tails of those, so passes $strict under --strict's rule; synstack passes $both of them ($((both*100/strict)) %)"
exit 0
