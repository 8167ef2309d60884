#!/usr/bin/env bash
# Highest packet rate a veth between two network namespaces carries into `floodwatch run`
# with zero capture drops, per capture backend.
#
#   sudo bash benches/live_capture_rate.sh [RATES...]
#
# Builds floodwatch with the libpcap backend (it has both backends), makes two namespaces
# joined by a veth pair, and for each backend and rate replays captures/udp_flood.pcap in a
# loop from the attacker side with `tcpreplay --pps RATE` for about 3 s. floodwatch reports
# what it captured and what the kernel dropped when it stops ("capture stopped" log line).
# Needs root, iproute2, tcpreplay. Traffic stays on the veth the script creates.
set -euo pipefail
cd "$(dirname "$0")/.."
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(50000 100000 200000 300000 400000 600000 800000)

cargo build --release --features libpcap -q
bin=$PWD/target/release/floodwatch
capture=$PWD/captures/udp_flood.pcap
victim=fwbench-v-$$
attacker=fwbench-a-$$
work=$(mktemp -d)
cleanup() {
    ip netns del "$victim" 2>/dev/null || true
    ip netns del "$attacker" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$victim"
ip netns add "$attacker"
ip link add fwbv$$ netns "$victim" type veth peer name fwba$$ netns "$attacker"
ip -n "$victim" link set lo up
ip -n "$attacker" link set lo up
ip -n "$victim" link set fwbv$$ up
ip -n "$attacker" link set fwba$$ up
# Frames in the capture, and how many of them are IP (floodwatch counts IP packets).
read -r packets_in_capture ip_in_capture < <(python3 -c "
import struct
f=open('$capture','rb'); f.read(24); n=ip=0
while True:
    h=f.read(16)
    if len(h)<16: break
    d=f.read(struct.unpack('<IIII',h)[2]); n+=1
    ip+=d[12:14] in (b'\x08\x00',b'\x86\xdd')
print(n,ip)")

printf '%-10s %10s %12s %12s %12s %8s\n' backend rate_pps sent captured kernel_drops result
for backend in af_packet libpcap; do
    for rate in "${rates[@]}"; do
        loops=$(( (rate * 3 + packets_in_capture - 1) / packets_in_capture ))
        sent=$(( loops * ip_in_capture ))
        log=$work/$backend-$rate.log
        ip netns exec "$victim" "$bin" run --interface fwbv$$ --backend "$backend" --log-format json \
            --alerts /dev/null 2>"$log" &
        pid=$!
        for _ in $(seq 50); do grep -q "capture started" "$log" && break; sleep 0.1; done
        ip netns exec "$attacker" tcpreplay -q --pps "$rate" --loop "$loops" --preload-pcap \
            -i fwba$$ "$capture" >"$work/tcpreplay.out" 2>&1 || true
        sleep 1
        kill -TERM "$pid"
        wait "$pid" || true
        line=$(grep '"capture stopped"' "$log" | tail -1)
        captured=$(sed -E 's/.*"packets":([0-9]+).*/\1/' <<<"$line")
        drops=$(sed -E 's/.*"kernel_dropped":([0-9]+).*/\1/' <<<"$line")
        actual=$(grep -oE 'Rated: [0-9.]+ Bps, [0-9.]+ Mbps, [0-9.]+ pps' "$work/tcpreplay.out" | grep -oE '[0-9.]+ pps' | head -1)
        result=ok
        if [ "$drops" != 0 ] || [ "$captured" -lt "$sent" ]; then result=LOSS; fi
        printf '%-10s %10s %12s %12s %12s %8s  (tcpreplay: %s)\n' "$backend" "$rate" "$sent" "$captured" "$drops" "$result" "${actual:-?}"
    done
done
