#!/bin/sh
# netsplit.sh: issue 10's reference.  Builds a real partition (three
# network namespaces on a bridge, 10.99.0.0/24 only inside them), then runs
# the Erlang driver (epx_netsplit.erl), which plays every scenario on it and
# through epmdpxy in hold mode, and compares.  Run it with `make netsplit`
# (mk/netsplit.mk says which variables it reads).
#
#   <ns>-hub   a bridge br0 and the host ends v1..v3 of three veth pairs
#   <ns>-n1..3 eth0 = 10.99.0.X/24, lo; one epmd and one node nX@10.99.0.X
#
# NETSPLIT_CUT=network instead makes <ns>-hub a router (v1..v3 routed, proxy
# ARP, forwarding on; the nodes keep their addresses): the driver then cuts
# with FORWARD rules there, in the network, and not in n1's own namespace.
#
# Nothing in the root namespace is touched.  Everything made here goes on
# exit, also on failure or a signal: the processes the driver started
# (their pids are in $OUT/pids), every process inside our namespaces, the
# namespaces themselves (with their veths, bridge and iptables rules).  A
# crashed run's leftovers are removed the same way at start; a lock keeps
# two runs from sharing (and deleting) one set of namespaces.
#
# Needs root, ip, iptables working inside a namespace, epmd and erl; without
# them it says SKIP and exits 0.  Exit status: the driver's (0 as expected,
# 1 a row differs that is not a known difference, 2 a run failed).
set -eu

NS=${NETSPLIT_NS:-epxns}
OUT=${NETSPLIT_OUT:-build/netsplit}
BEAMS=${NETSPLIT_BEAMS:-$OUT}
AGENT=${EPX_AGENT_DIR:-build/agent}
BACKENDS=${NETSPLIT_BACKENDS:-real,epmdpxy}
CUT=${NETSPLIT_CUT:-host}
case "$CUT" in host|network) ;; *) echo "netsplit: NETSPLIT_CUT is host or network, not '$CUT'" >&2; exit 2 ;; esac
LOCK=${TMPDIR:-/tmp}/epx-netsplit-$NS.lock

skip() { echo "netsplit: SKIP: $*"; exit 0; }

case ",$BACKENDS," in *,real,*) need_ns=1 ;; *) need_ns=0 ;; esac

if [ "$need_ns" = 1 ]; then
    [ "$(id -u)" = 0 ] || skip "the real partition needs root (network namespaces, iptables); NETSPLIT_BACKENDS=epmdpxy runs the daemon's side alone"
    for t in ip iptables iptables-restore flock; do
        command -v "$t" >/dev/null 2>&1 || skip "$t is not installed (apt-get install iproute2 iptables util-linux)"
    done
fi
command -v erl >/dev/null 2>&1 || skip "erl is not installed"
command -v epmd >/dev/null 2>&1 || [ -x "$(dirname "$(readlink -f "$(command -v erl)")")/epmd" ] ||
    skip "epmd is not installed"
# OTP's epmd lives beside erl's erts; put it on the PATH if it is not there.
if ! command -v epmd >/dev/null 2>&1; then
    PATH="$(dirname "$(readlink -f "$(command -v erl)")"):$PATH"; export PATH
fi

mkdir -p "$OUT/run"
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/run/*.log "$OUT"/run/*.bin "$OUT"/run/rules-*
PIDS=$OUT/pids

# Ends what a run started: the recorded pids (only if they still are one of
# ours: beam, epmd, epmdpxy, sh), then whatever runs inside our namespaces,
# then the namespaces.
cleanup() {
    if [ -f "$PIDS" ]; then
        while read -r pid; do
            comm=$(cat "/proc/$pid/comm" 2>/dev/null) || continue
            case "$comm" in beam*|epmd|epmdpxy|sh|erl*) kill -9 "$pid" 2>/dev/null || : ;; esac
        done < "$PIDS"
        rm -f "$PIDS"
    fi
    [ "$need_ns" = 1 ] || return 0
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$NS-(hub|n[0-9]+)\$" || :); do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || :; done
        # A killed process can hold the namespace's files a moment; the
        # name goes at once anyway, the kernel frees the rest after.
        ip netns del "$ns" 2>/dev/null || echo "netsplit: could not delete namespace $ns" >&2
    done
}

# Also without namespaces: the clean-up below ends the pids in $OUT/pids.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$LOCK"
    flock -n 9 || { echo "netsplit: another run holds $LOCK" >&2; exit 2; }
fi
cleanup
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

if [ "$need_ns" = 1 ]; then
    ip netns add "$NS-hub"
    if [ "$CUT" = host ]; then
        ip -n "$NS-hub" link add br0 type bridge
        ip -n "$NS-hub" link set br0 up
    else
        # a router: 10.99.0.254 its own address, each node's /32 routed to
        # its veth, and proxy ARP so that the nodes' /24 stays on-link
        ip -n "$NS-hub" link set lo up
        ip -n "$NS-hub" addr add 10.99.0.254/32 dev lo
        ip netns exec "$NS-hub" sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'
    fi
    for i in 1 2 3; do
        ip netns add "$NS-n$i"
        ip -n "$NS-hub" link add "v$i" type veth peer name eth0 netns "$NS-n$i"
        if [ "$CUT" = host ]; then
            ip -n "$NS-hub" link set "v$i" master br0 up
        else
            # answer ARP for the other nodes at once (proxy_delay: up to
            # 0.8 s by default, noise at each pair's first contact)
            ip netns exec "$NS-hub" sh -c "echo 1 > /proc/sys/net/ipv4/conf/v$i/proxy_arp &&
                echo 0 > /proc/sys/net/ipv4/neigh/v$i/proxy_delay"
            ip -n "$NS-hub" link set "v$i" up
            ip -n "$NS-hub" route add "10.99.0.$i/32" dev "v$i"
        fi
        ip -n "$NS-n$i" addr add "10.99.0.$i/24" dev eth0
        ip -n "$NS-n$i" link set eth0 up
        ip -n "$NS-n$i" link set lo up
    done
    ip netns exec "$NS-n1" iptables -S >/dev/null 2>&1 ||
        skip "iptables does not work inside a network namespace here"
    how="on a bridge, cut in n1's namespace"
    [ "$CUT" = host ] || how="routed by $NS-hub, cut there"
    echo "netsplit: namespaces $NS-hub, $NS-n1..3 up (10.99.0.1-3 $how); tcp_syn_retries $(ip netns exec "$NS-n1" cat /proc/sys/net/ipv4/tcp_syn_retries)"
fi

# The driver runs in the background so that its pid is recorded too: a
# signal to this script ends it with everything else.
NETSPLIT_OUT=$OUT NETSPLIT_NS=$NS NETSPLIT_BACKENDS=$BACKENDS NETSPLIT_CUT=$CUT EPX_AGENT_DIR=$AGENT \
    erl -noshell -pa "$BEAMS" -run epx_netsplit main </dev/null &
echo $! >> "$PIDS"
rc=0
wait $! || rc=$?
exit "$rc"
