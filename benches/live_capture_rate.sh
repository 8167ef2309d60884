#!/usr/bin/env bash
# Live capture side by side with tcpdump: a veth between two namespaces flooded by trafgen.
#
#   sudo bash benches/live_capture_rate.sh                       # everything (about 10 min)
#   sudo FW_LIVE_RATES="300000 max" FW_LIVE_LOADS=calm bash benches/live_capture_rate.sh
#
# For each load (`calm`; `busy`: one core kept busy by a shell loop), flood (60-byte UDP
# datagrams, 60-byte SYNs, random source ports), offered rate (pps, or `max`: trafgen's
# fastest) and tool (floodwatch with its default backend, the same with --capture-threads 2,
# floodwatch --backend af_packet, tcpdump -B 65536 -w /dev/null), trafgen sends for 3 s. Each row: what the veth sent (its tx
# counter), what the tool captured, what the kernel dropped, the share captured.
# Then, on a calm machine: the whole daemon (alerts, blocklist, evidence) under a UDP flood
# at 1 Mpps (share, and the flood's detection delay from the daemon's metrics); the daemon's
# CPU over 10 s with no traffic; its RSS every 10 s through a 60 s flood at FW_LIVE_SUSTAINED
# pps (default 1000000).
# Needs root, iproute2, netsniff-ng (trafgen), tcpdump, curl. Traffic stays on the veth the
# script makes.
set -euo pipefail
cd "$(dirname "$0")/.."
read -r -a rates <<<"${FW_LIVE_RATES:-100000 300000 1000000 max}"
read -r -a loads <<<"${FW_LIVE_LOADS:-calm busy}"
sustained=${FW_LIVE_SUSTAINED:-1000000}
seconds=3

cargo build --release -q --bin floodwatch
fw=$PWD/target/release/floodwatch
victim=fwlive-v-$$
attacker=fwlive-a-$$
vif=fwlv$$
aif=fwla$$
work=$(mktemp -d)
busy_pid=
cleanup() {
    [ -n "$busy_pid" ] && kill "$busy_pid" 2>/dev/null || true
    ip netns del "$victim" 2>/dev/null || true
    ip netns del "$attacker" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$victim"
ip netns add "$attacker"
ip link add "$vif" netns "$victim" type veth peer name "$aif" netns "$attacker"
ip -n "$victim" addr add 192.0.2.1/24 dev "$vif"
ip -n "$attacker" addr add 192.0.2.2/24 dev "$aif"
for ns in "$victim" "$attacker"; do ip -n "$ns" link set lo up; done
ip -n "$victim" link set "$vif" up
ip -n "$attacker" link set "$aif" up
mac=$(ip netns exec "$victim" cat "/sys/class/net/$vif/address")
# Toward an address behind the victim's end (as on a mirror port): its kernel drops the frames
# without answering, so every tool counts the flood alone.
echo "{ eth(da=$mac, type=0x0800), ipv4(sa=192.0.2.2, da=198.51.100.7), udp(sp=drnd(), dp=9), fill(0x41, 18) }" >"$work/udp.cfg"
echo "{ eth(da=$mac, type=0x0800), ipv4(sa=192.0.2.2, da=198.51.100.7), tcp(sp=drnd(), dp=80, seq=drnd(), syn), fill(0x00, 6) }" >"$work/syn.cfg"

tx() { ip netns exec "$attacker" cat "/sys/class/net/$aif/statistics/tx_packets"; }

# flood CFG RATE SECONDS: trafgen from the attacker's end; prints the frames the veth sent.
flood() {
    local before after limit=()
    [ "$2" = max ] || limit=(-b "${2}pps")
    before=$(tx)
    ip netns exec "$attacker" timeout -s INT "$3" trafgen -o "$aif" -i "$1" -q -P 1 "${limit[@]}" >/dev/null 2>&1 || true
    after=$(tx)
    echo $((after - before))
}

# wait_for FILE TEXT: until FILE contains TEXT (10 s at most).
wait_for() {
    for _ in $(seq 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    echo "no \"$2\" in $1" >&2
    cat "$1" >&2
    return 1
}

# floodwatch_run LOG ARGS...: starts the daemon in the victim's namespace; sets $daemon.
floodwatch_run() {
    local log=$1
    shift
    ip netns exec "$victim" "$fw" run --interface "$vif" --log-format json "$@" 2>"$log" &
    daemon=$!
    wait_for "$log" "capture started"
}

# floodwatch_stop LOG: stops the daemon (in this shell: `wait` needs its parent); sets
# $counts to "captured dropped".
floodwatch_stop() {
    kill -TERM "$daemon"
    wait "$daemon" || true
    counts=$(grep '"capture stopped"' "$1" | tail -1 | sed -E 's/.*"packets":([0-9]+).*"kernel_dropped":([0-9]+).*/\1 \2/')
}

# measure TOOL CFG RATE: one row's "sent captured dropped".
measure() {
    local tool=$1 cfg=$2 rate=$3 log=$work/$1.log sent counts
    case $tool in
    tcpdump)
        ip netns exec "$victim" tcpdump -B 65536 -n -i "$vif" -w /dev/null 2>"$log" &
        daemon=$!
        wait_for "$log" "listening on"
        sent=$(flood "$cfg" "$rate" "$seconds")
        sleep 0.5
        kill -INT "$daemon"
        wait "$daemon" || true
        counts="$(sed -n 's/^\([0-9]*\) packets captured.*/\1/p' "$log") $(sed -n 's/^\([0-9]*\) packets dropped by kernel.*/\1/p' "$log")"
        ;;
    floodwatch)
        floodwatch_run "$log" --alerts /dev/null
        sent=$(flood "$cfg" "$rate" "$seconds")
        sleep 0.5
        floodwatch_stop "$log"
        ;;
    floodwatch-2-threads)
        floodwatch_run "$log" --alerts /dev/null --capture-threads 2
        sent=$(flood "$cfg" "$rate" "$seconds")
        sleep 0.5
        floodwatch_stop "$log"
        ;;
    floodwatch-af_packet)
        floodwatch_run "$log" --alerts /dev/null --backend af_packet
        sent=$(flood "$cfg" "$rate" "$seconds")
        sleep 0.5
        floodwatch_stop "$log"
        ;;
    esac
    echo "$sent $counts"
}

echo "== capture side by side: $(nproc) cores, $(uname -r), trafgen $(trafgen -v 2>&1 | head -1 | grep -oE '[0-9]+\.[0-9.]+' | head -1), $(tcpdump --version 2>&1 | head -1)"
echo
echo "| load | flood | offered | tool | sent | captured | kernel drops | share |"
echo "| --- | --- | --- | --- | ---: | ---: | ---: | ---: |"
for load in "${loads[@]}"; do
    if [ "$load" = busy ]; then
        sh -c 'while :; do :; done' &
        busy_pid=$!
    fi
    for kind in udp syn; do
        for rate in "${rates[@]}"; do
            for tool in floodwatch floodwatch-2-threads tcpdump floodwatch-af_packet; do
                read -r sent captured dropped < <(measure "$tool" "$work/$kind.cfg" "$rate")
                share=$(awk -v c="$captured" -v s="$sent" 'BEGIN { printf "%.4f", s ? c / s : 0 }')
                echo "| $load | $kind | $rate | $tool | $sent | $captured | $dropped | $share |"
            done
        done
    done
    if [ -n "$busy_pid" ]; then
        kill "$busy_pid"
        busy_pid=
    fi
done

echo
echo "== the whole daemon (alerts, blocklist, evidence, metrics) under a UDP flood at 1 Mpps"
port=$((20000 + $$ % 10000))
log=$work/daemon.log
floodwatch_run "$log" --alerts "$work/alerts.jsonl" --blocklist "$work/blocklist" --evidence-dir "$work/evidence" \
    --metrics "127.0.0.1:$port"
sent=$(flood "$work/udp.cfg" 1000000 "$seconds")
sleep 0.5
metrics=$(ip netns exec "$victim" curl -s "http://127.0.0.1:$port/metrics")
floodwatch_stop "$log"
read -r captured dropped <<<"$counts"
echo "sent $sent, captured $captured, kernel drops $dropped, share $(awk -v c="$captured" -v s="$sent" 'BEGIN { printf "%.4f", c / s }')"
echo "alerts: $(grep -c attack_start "$work/alerts.jsonl") attack_start, $(grep -c attack_end "$work/alerts.jsonl") attack_end; blocklist $(wc -l <"$work/blocklist") lines; evidence files $(ls "$work/evidence" | wc -l)"
echo "detection delay (first flood packet to attack_start, packet time):"
grep '^floodwatch_detection_delay_seconds' <<<"$metrics" || echo "   (no metric)"

echo
echo "== the daemon's CPU with no traffic, over 10 s"
floodwatch_run "$log" --alerts /dev/null
sleep 1
pid=$(pgrep -f "$fw run --interface $vif" | head -1)
ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
t0=$(ticks)
sleep 10
t1=$(ticks)
awk -v t="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f %% of one core (%d ticks of 1/%d s in 10 s)\n", t / hz / 10 * 100, t, hz }'
floodwatch_stop "$log"

echo
echo "== RSS through a 60 s UDP flood at $sustained pps"
floodwatch_run "$log" --alerts /dev/null
pid=$(pgrep -f "$fw run --interface $vif" | head -1)
flood "$work/udp.cfg" "$sustained" 60 >"$work/sent" &
flooder=$!
for t in 0 10 20 30 40 50 60; do
    echo "   t=${t}s RSS $(awk '/VmRSS/ { print $2, $3 }' "/proc/$pid/status")"
    [ "$t" = 60 ] || sleep 10
done
wait "$flooder"
floodwatch_stop "$log"
read -r captured dropped <<<"$counts"
sent=$(cat "$work/sent")
echo "sent $sent, captured $captured, kernel drops $dropped, share $(awk -v c="$captured" -v s="$sent" 'BEGIN { printf "%.4f", c / s }')"
