#!/usr/bin/env bash
# Load test of the live detector (issue 5 point 5). Needs root, hping3 and iproute2.
#
# Runs the release `portsentry` (stcp+sudp, log only) in a network namespace, then from a
# second namespace joined by a veth pair (private: nothing leaves the machine):
#   1. floods it with bare ACKs (ordinary traffic: the BPF filter should drop it in the kernel),
#   2. sends SYN probes from fixed sources (203.0.113.x and 198.51.100.x): 4 sources paced,
#      then 2 and 8 sources flooding (the first phase that sees a source detects it, so each
#      probe phase uses sources of its own where it can),
# each phase bounded by `timeout`. It reports, per phase: packets that reached the victim's
# interface, the rate, the daemon's CPU seconds (utime+stime from /proc/PID/stat) and CPU
# seconds per million packets, the frames that passed the kernel filter, the kernel's drop
# count (from the daemon's status file), and whether every probing source was detected.
#
#   benches/load.sh [SECONDS_PER_PHASE]      (default 5)
#
# Output: a Markdown table on stdout (docs/load.md holds a measured one).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-5}
if [ "$(id -u)" -ne 0 ]; then echo "load.sh: needs root (network namespaces)" >&2; exit 1; fi
for tool in hping3 ip timeout; do
    command -v "$tool" >/dev/null || { echo "load.sh: $tool is missing (scripts/install-test-deps)" >&2; exit 1; }
done

cargo build --release --quiet -p portsentry-cli
bin=$PWD/target/release/portsentry

victim=psload-v-$$
attacker=psload-a-$$
work=$(mktemp -d /tmp/psload.XXXXXX)
chmod 755 "$work"
daemon_pid=
cleanup() {
    if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
        kill -TERM "$daemon_pid"; wait "$daemon_pid" 2>/dev/null || true
    fi
    ip netns del "$victim" 2>/dev/null || true
    ip netns del "$attacker" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$victim"
ip netns add "$attacker"
ip link add psv0 netns "$victim" type veth peer name psa0 netns "$attacker"
ip -n "$victim" addr add 203.0.113.2/24 dev psv0
ip -n "$attacker" addr add 203.0.113.1/24 dev psa0
sources=(203.0.113.10 203.0.113.11 203.0.113.12 203.0.113.13 198.51.100.10 198.51.100.11 198.51.100.12 198.51.100.13)
for n in "$victim" "$attacker"; do ip -n "$n" link set lo up; done
ip -n "$victim" link set psv0 up
ip -n "$attacker" link set psa0 up
ip -n "$victim" route add 198.51.100.0/24 dev psv0
# Static neighbour entries: no ARP traffic during the floods.
victim_mac=$(ip -n "$victim" -br link show psv0 | awk '{print $3}')
ip -n "$attacker" neigh replace 203.0.113.2 lladdr "$victim_mac" dev psa0 nud permanent

cat > "$work/portsentry.conf" <<EOF
TCP_PORTS="1-1023"
UDP_PORTS="1-1023"
HISTORY_FILE="$work/history"
BLOCKED_FILE="$work/blocked"
BLOCK_TCP="0"
BLOCK_UDP="0"
EOF
chmod 644 "$work/portsentry.conf"

STATE_DIRECTORY=$work ip netns exec "$victim" "$bin" -c "$work/portsentry.conf" -stcp -sudp \
    >"$work/out" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do grep -q 'now active and listening' "$work/out" && break; sleep 0.1; done
grep -q 'now active and listening' "$work/out" || { cat "$work/out"; exit 1; }

tck=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$daemon_pid/stat"; }
rx_packets() { ip netns exec "$victim" cat /sys/class/net/psv0/statistics/rx_packets; }
status_counter() { # $1: jq-like path in counters.capture
    python3 -c "import json,sys; print(json.load(open('$work/portsentry.status'))['counters']['capture']['$1'])"
}
settle() { sleep 3; } # the status file is rewritten every 2 s

printf '| phase | packets at the victim | rate (pkt/s) | daemon CPU (s) | CPU s per M packets | passed the BPF filter | kernel drops | sources detected |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---|\n'

active=("${sources[@]}") # the sources of the current phase
detected() { # how many of them have an alert line
    local found=0 src
    for src in "${active[@]}"; do
        grep -q "scan from host: $src/$src" "$work/out" && found=$((found + 1))
    done
    echo "$found of ${#active[@]}"
}

phase() { # name, probes (yes/no), then the flood command (bounded by timeout)
    local name=$1 probes=$2; shift 2
    settle
    local c0 r0 p0 d0 t0 c1 r1 p1 d1 t1 found="n/a (no probe)"
    c0=$(cpu_ticks); r0=$(rx_packets); p0=$(status_counter received); d0=$(status_counter dropped)
    t0=$(date +%s.%N)
    "$@"
    t1=$(date +%s.%N)
    settle
    c1=$(cpu_ticks); r1=$(rx_packets); p1=$(status_counter received); d1=$(status_counter dropped)
    [ "$probes" = yes ] && found=$(detected)
    python3 - "$name" "$c0" "$c1" "$r0" "$r1" "$p0" "$p1" "$d0" "$d1" "$t0" "$t1" "$tck" "$found" <<'PY'
import sys
name, c0, c1, r0, r1, p0, p1, d0, d1, t0, t1, tck, found = sys.argv[1:]
cpu = (int(c1) - int(c0)) / int(tck)
packets = int(r1) - int(r0)
rate = packets / (float(t1) - float(t0))
per_m = cpu / (packets / 1e6) if packets else 0.0
print(f"| {name} | {packets:,} | {rate:,.0f} | {cpu:.2f} | {per_m:.3f} | {int(p1) - int(p0):,} | {int(d1) - int(d0):,} | {found} |")
PY
}

ack_flood() {
    ip netns exec "$attacker" timeout -s INT "$seconds" hping3 -q -A --flood -p 80 203.0.113.2 \
        >/dev/null 2>&1 || true
}

syn_probes() { # hping3's pacing option: --flood, or -i uN (N µs between packets, per source)
    local pids=() src pid
    for src in "${active[@]}"; do
        ip netns exec "$attacker" timeout -s INT "$seconds" hping3 -q -S "$@" -a "$src" -p 22 \
            203.0.113.2 >/dev/null 2>&1 &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid" || true; done
}
syn_paced() { syn_probes -i u80; } # paced: hping3 sleeps longer than asked (about 45,000/s in all here)
syn_flood() { syn_probes --flood; }

phase "bare ACK flood (ordinary traffic)" no ack_flood
active=("${sources[@]:0:4}")
phase "SYN probes, ${#active[@]} sources paced" yes syn_paced
active=("${sources[@]:4:2}")
phase "SYN probes, ${#active[@]} sources flooding" yes syn_flood
active=("${sources[@]}")
phase "SYN probes, ${#active[@]} sources flooding" yes syn_flood

echo
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; ${seconds} s per phase; hping3 runs on the same cores as the daemon"
