#!/usr/bin/env bash
# Live load test of the release daemon (issue 11 point 5). Needs root, python3 and iproute2.
#
# For each row of issue 11's table, with the same packet counts, it starts a fresh release
# `portsentry` in a network namespace with the row's configuration, sends the row's frames
# from a second namespace joined by a private veth pair (benches/send_frames.py: exact
# counts, AF_PACKET, nothing leaves the machine; forged sources are bytes in a frame), waits
# until the daemon's CPU time stops growing, stops it, and reports:
#
#   packets   frames that reached the victim's interface (its rx_packets counter)
#   CPU       the daemon's CPU time, user + system of all its threads (/proc/PID/stat),
#             from just before the first frame until it is idle again, and per packet
#   children  CPU of the commands it ran (cutime + cstime: nft, KILL_* commands)
#   BPF       frames that passed the kernel filter (capture counter of the status file)
#   drops     frames the kernel dropped before the daemon read them (PACKET_STATISTICS, and
#             for connect mode the UDP RcvbufErrors of /proc/net/snmp)
#   detected  distinct sources named by an alert line, plus the log-only alerts summarised
#             (more than 1,000 a second) and the alerts the block limits kept from blocking
#             (counted and summarised), of the distinct sources sent
#
#   benches/load.sh [ROW...]     (rows 1-7; default all; about 3 minutes)
#
# Output: a Markdown table on stdout (docs/load.md holds a measured one).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then echo "load.sh: needs root (network namespaces)" >&2; exit 1; fi
for tool in python3 ip timeout; do
    command -v "$tool" >/dev/null || { echo "load.sh: $tool is missing (scripts/install-test-deps)" >&2; exit 1; }
done
rows=("$@")
[ ${#rows[@]} -gt 0 ] || rows=(1 2 3 4 5 6 7)

cargo build --release --quiet -p portsentry-cli
bin=$PWD/target/release/portsentry
sender=$PWD/benches/send_frames.py

victim=psload-v-$$
attacker=psload-a-$$
work=$(mktemp -d /tmp/psload.XXXXXX)
chmod 755 "$work"
daemon_pid=
service_pid=
stop_daemon() {
    if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
        kill -TERM "$daemon_pid"; wait "$daemon_pid" 2>/dev/null || true
    fi
    daemon_pid=
}
cleanup() {
    stop_daemon
    if [ -n "$service_pid" ]; then kill "$service_pid" 2>/dev/null || true; wait "$service_pid" 2>/dev/null || true; fi
    ip netns del "$victim" 2>/dev/null || true
    ip netns del "$attacker" 2>/dev/null || true
    if [ -n "${LOAD_KEEP:-}" ]; then echo "load.sh: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

ip netns add "$victim"
ip netns add "$attacker"
ip link add psv0 netns "$victim" type veth peer name psa0 netns "$attacker"
ip -n "$victim" addr add 203.0.113.2/24 dev psv0
ip -n "$attacker" addr add 203.0.113.1/24 dev psa0
for n in "$victim" "$attacker"; do ip -n "$n" link set lo up; done
ip -n "$victim" link set psv0 up
ip -n "$attacker" link set psa0 up
# Only TEST-NET sources get a route back (over the veth pair): the victim never emits a reply
# to a forged random source, it has no route for one. rp_filter off, so that connect-mode
# sockets still receive datagrams from such sources.
ip -n "$victim" route add 198.51.100.0/24 dev psv0
ip netns exec "$victim" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.psv0.rp_filter=0
victim_mac=$(ip -n "$victim" -br link show psv0 | awk '{print $3}')
attacker_mac=$(ip -n "$attacker" -br link show psa0 | awk '{print $3}')
ip -n "$attacker" neigh replace 203.0.113.2 lladdr "$victim_mac" dev psa0 nud permanent
ip -n "$victim" neigh replace 203.0.113.1 lladdr "$attacker_mac" dev psv0 nud permanent
# The nftables set the blocking rows fill (inside the victim namespace only).
printf 'table inet psload {\n set blocked4 { type ipv4_addr; flags timeout; }\n set blocked6 { type ipv6_addr; flags timeout; }\n}\n' \
    > "$work/table.nft"
ip netns exec "$victim" nft -f "$work/table.nft"
# A real service on port 80 of the victim (row 5: SYNs to an open port).
ip netns exec "$victim" python3 -m http.server --bind 203.0.113.2 80 >/dev/null 2>&1 &
service_pid=$!

classic_udp="1,7,9,69,161,162,513,635,640,641,700,37444,34555,31335,32770,32771,32772,32773,32774,31337,54321"
tck=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15, $16 + $17}' "/proc/$daemon_pid/stat"; }
rx_packets() { ip netns exec "$victim" cat /sys/class/net/psv0/statistics/rx_packets; }
# Datagrams the kernel dropped because a UDP socket's queue was full (connect mode).
udp_drops() { ip netns exec "$victim" awk '/^Udp:/ { if (seen++) { print $6; exit } }' /proc/net/snmp; }
user_sys() { awk '{print $14, $15}' "/proc/$daemon_pid/stat"; }

start_daemon() { # extra config lines, then mode flags
    local extra=$1; shift
    rm -f "$work"/history "$work"/blocked "$work"/hosts.deny "$work"/portsentry.status
    ip netns exec "$victim" nft flush set inet psload blocked4
    cat > "$work/portsentry.conf" <<EOF
TCP_PORTS="1-1023"
UDP_PORTS="1-1023"
HISTORY_FILE="$work/history"
BLOCKED_FILE="$work/blocked"
HOSTS_DENY_FILE="$work/hosts.deny"
BLOCK_TCP="0"
BLOCK_UDP="0"
$extra
EOF
    chmod 644 "$work/portsentry.conf"
    : > "$work/out"
    STATE_DIRECTORY=$work ip netns exec "$victim" "$bin" -c "$work/portsentry.conf" "$@" \
        >"$work/out" 2>&1 &
    daemon_pid=$!
    for _ in $(seq 100); do grep -q 'now active and listening' "$work/out" && break; sleep 0.1; done
    grep -q 'now active and listening' "$work/out" || { cat "$work/out" >&2; exit 1; }
}

send() { # count kind source port
    ip netns exec "$attacker" timeout 300 python3 "$sender" psa0 "$victim_mac" 203.0.113.2 "$@"
}

wait_idle() { # until the daemon's CPU time has not grown for 1 s (at most 120 s)
    local last now
    last=$(cpu_ticks)
    for _ in $(seq 240); do
        sleep 1
        now=$(cpu_ticks)
        [ "$now" = "$last" ] && return
        last=$now
    done
}

printf '| # | flood | packets at the victim | daemon CPU, s (user + system) | µs per packet | children CPU (s) | passed the BPF filter | kernel drops | sources detected |\n'
printf '|---|---|---:|---:|---:|---:|---:|---:|---|\n'

row() { # number, name, count, kind, source, port, config lines, modes...
    local number=$1 name=$2 count=$3 kind=$4 source=$5 port=$6 extra=$7; shift 7
    start_daemon "$extra" "$@"
    sleep 1
    local c0 r0 c1 r1 u0 u1 s0 s1 sent
    c0=$(cpu_ticks); r0=$(rx_packets); u0=$(udp_drops); s0=$(user_sys)
    sent=$(send "$count" "$kind" "$source" "$port")
    wait_idle
    c1=$(cpu_ticks); r1=$(rx_packets); u1=$(udp_drops); s1=$(user_sys)
    stop_daemon
    cp "$work/out" "$work/out-$number"
    python3 - "$number" "$name" "$c0" "$c1" "$r0" "$r1" "$tck" "$sent" "$work/portsentry.status" "$work/out" "$source" "$u0" "$u1" "$s0" "$s1" <<'PY'
import json, re, sys
number, name, c0, c1, r0, r1, tck, sent, status_path, out_path, source, u0, u1, s0, s1 = sys.argv[1:]
(user0, sys0), (user1, sys1) = map(int, s0.split()), map(int, s1.split())
user = (user1 - user0) / int(tck); system = (sys1 - sys0) / int(tck)
own0, kids0 = map(int, c0.split()); own1, kids1 = map(int, c1.split())
cpu = (own1 - own0) / int(tck); kids = (kids1 - kids0) / int(tck)
packets = int(r1) - int(r0)
per = cpu / packets * 1e6 if packets else 0.0
frames, distinct, seconds = sent.split()
capture = (json.load(open(status_path)).get("counters", {}).get("capture") or {})
passed = capture.get("received", 0)
dropped = capture.get("dropped", 0) + int(u1) - int(u0)
alerted = set()
# Alert lines of every kind ("... scan from host:", "Connect from host:", "Unknown Type: ...
# from host:"); "Host: X is already blocked" and protected-host lines are no alerts.
pattern = re.compile(r"from host: ([0-9a-f.:]+)/")
with open(out_path, errors="replace") as f:
    for line in f:
        m = pattern.search(line) if line.startswith("attackalert") else None
        if m:
            alerted.add(m.group(1))
status = json.load(open(status_path))
counters = status.get("counters", {})
suppressed = counters.get("floods", {}).get("suppressed_alerts", 0)
limited = counters.get("not_blocked_by_limits", 0)
detected = f"{len(alerted):,} logged + {suppressed:,} summarised"
if limited:
    detected += f" + {limited:,} over the block limits"
detected += f" of {int(distinct):,}"
print(f"| {number} | {name} | {packets:,} | {cpu:.2f} ({user:.2f} + {system:.2f}) | {per:.2f} | {kids:.2f} | {passed:,} | {dropped:,} | {detected} |")
PY
}

for r in "${rows[@]}"; do
    case $r in
    1) row 1 "100,000 SYNs from random sources to a monitored TCP port, log only" \
           100000 syn random 1 "" -stcp ;;
    2) row 2 "100,000 UDP datagrams from random sources to a monitored UDP port, log only" \
           100000 udp random 7 "" -sudp ;;
    3) # The source alerts and is blocked on its first SYN; the rest are repeats.
       row 3 "200,000 SYNs from one source after its alert and block" \
           200000 syn 198.51.100.7 1 \
           "BLOCK_TCP=\"1\"
NFT_SET=\"inet psload blocked\"
KILL_HOSTS_DENY=\"ALL: \$TARGET\$ : DENY\"" -stcp ;;
    4) row 4 "100,000 SYNs from random sources, blocking on" \
           100000 syn random 1 \
           "BLOCK_TCP=\"1\"
NFT_SET=\"inet psload blocked\"
KILL_HOSTS_DENY=\"ALL: \$TARGET\$ : DENY\"" -stcp ;;
    5) row 5 "400,000 SYNs to an open (unmonitored) port" \
           400000 syn 198.51.100.9 80 "" -stcp ;;
    6) row 6 "200,000 bare ACKs, DETECT_ACK_SCANS=\"1\"" \
           200000 ack 198.51.100.8 1 "DETECT_ACK_SCANS=\"1\"" -stcp ;;
    7) row 7 "UDP connect mode (-udp), 100,000 datagrams from random sources, log only" \
           100000 udp random 7 "UDP_PORTS=\"$classic_udp\"" -udp ;;
    *) echo "load.sh: no row $r (1-7)" >&2; exit 2 ;;
    esac
done

echo
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; the sender (python3) runs on the same cores as the daemon"
