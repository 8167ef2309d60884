#!/usr/bin/env bash
# Replay benchmark: floodwatch against cat, tcpdump and (when installed) suricata on three
# generated 10M-packet captures, then the analyzer alone on the records of each.
#
#   bash benches/replay.sh                 # inputs in a temp dir, removed afterwards
#   FW_BENCH_DIR=/data/fw bash benches/replay.sh   # keep (and reuse) the inputs there
#   FW_BENCH_PACKETS=1000000 FW_BENCH_SOURCES=500000 bash benches/replay.sh   # smaller run
#
# (a) bench_mix: benign IPv4/IPv6 background with a SYN flood, a UDP flood and a DNS
#     amplification inside (about 7 % of the packets each, ~70,000 pps each in packet time);
# (b) bench_spoofed: a SYN flood against one victim from exactly FW_BENCH_SOURCES distinct
#     random IPv4 sources;
# (c) bench_flood: the floods are the traffic: a SYN flood (4,000 bots), a UDP flood (2,000)
#     and a DNS amplification (3,000 reflectors) make 78 % of the packets, frames of 60-1,514
#     bytes (5.5 GB for 10M packets);
# (d) bench_sflow: (c)'s first FW_BENCH_SFLOW_PACKETS frames as sFlow (every frame sampled),
#     read with replay --telemetry (samples decoded and analyzed per second);
# (e) bench_netflow: (c)'s first FW_BENCH_NETFLOW_PACKETS frames metered into NetFlow v9
#     flows, read with replay --telemetry (flow records per second);
# (f) (d)'s datagrams sent over loopback at FW_BENCH_DATAGRAM_RATE (100,000/s) to the daemon
#     collecting sFlow: datagrams sent against datagrams read.
# Every tool runs 3 times per input after the input is read into the page cache (see below);
# the best wall time counts.
set -euo pipefail

cd "$(dirname "$0")/.."
PACKETS=${FW_BENCH_PACKETS:-10000000}
SOURCES=${FW_BENCH_SOURCES:-5000000}
RUNS=${FW_BENCH_RUNS:-3}
CARGO=(cargo)
if command -v flock >/dev/null && [ -n "${FW_CARGO_LOCK:-/tmp/fw-cargo.lock}" ]; then
    CARGO=(flock "${FW_CARGO_LOCK:-/tmp/fw-cargo.lock}" cargo)
fi

echo "== building release binaries"
"${CARGO[@]}" build --release --quiet --bin floodwatch --bin capgen
FW=$PWD/target/release/floodwatch
CAPGEN=$PWD/target/release/capgen

if [ -n "${FW_BENCH_DIR:-}" ]; then
    DIR=$FW_BENCH_DIR
    mkdir -p "$DIR"
else
    DIR=$(mktemp -d /tmp/fw-bench.XXXXXX)
    trap 'rm -rf "$DIR"' EXIT
fi
MIX=$DIR/bench_mix_$PACKETS.pcap
SPOOFED=$DIR/bench_spoofed_${PACKETS}_$SOURCES.pcap
FLOOD=$DIR/bench_flood_$PACKETS.pcap
WORK=$(mktemp -d /tmp/fw-bench-work.XXXXXX)
trap 'rm -rf "$WORK"; [ -n "${FW_BENCH_DIR:-}" ] || rm -rf "$DIR"' EXIT

echo "== generating inputs in $DIR"
gen() { # name file args...
    local name=$1 file=$2
    shift 2
    if [ -s "$file" ] && [ -s "$file.facts" ]; then
        echo "   reusing $file"
    else
        local t0 t1
        t0=$(date +%s.%N)
        "$CAPGEN" "$name" "$@" --out "$file" >"$file.facts"
        t1=$(date +%s.%N)
        awk -v a="$t0" -v b="$t1" -v n="$PACKETS" 'BEGIN { printf "   generated in %.2f s (%.2f Mpps)\n", b - a, n / (b - a) / 1e6 }'
    fi
    cat "$file.facts"
}
gen bench-mix "$MIX" --packets "$PACKETS"
gen bench-spoofed "$SPOOFED" --packets "$PACKETS" --sources "$SOURCES"
gen bench-flood "$FLOOD" --packets "$PACKETS"
TRUE_SOURCES=$(sed -n 's/.*distinct attack sources \([0-9]*\).*/\1/p' "$SPOOFED.facts")

# evict FILE: drops FILE's pages from the page cache (clean pages only, hence the sync).
evict() {
    sync "$1"
    if ! dd if="$1" iflag=nocache count=0 status=none 2>/dev/null; then
        python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' "$1"
    fi
}

# best_of CMD...: runs CMD $RUNS times (output discarded), prints the best wall time in seconds.
best_of() {
    local best="" t0 t1 dt
    for _ in $(seq "$RUNS"); do
        t0=$(date +%s%N)
        "$@" >/dev/null 2>&1
        t1=$(date +%s%N)
        dt=$(((t1 - t0) / 1000))
        if [ -z "$best" ] || [ "$dt" -lt "$best" ]; then best=$dt; fi
    done
    awk -v us="$best" 'BEGIN { printf "%.3f", us / 1e6 }'
}

# peak_rss_kib CMD...: maximum resident set size of one run of CMD (KiB). The run's CPU
# time (user + system, all threads) is left in $WORK/cpu for the next row.
peak_rss_kib() {
    echo "-" >"$WORK/cpu"
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -f '%M %U %S' -o "$WORK/rss" "$@" >/dev/null 2>&1
        awk '{ printf "%.2f\n", $2 + $3 }' "$WORK/rss" >"$WORK/cpu"
        awk '{ print $1 }' "$WORK/rss"
    else
        # Fallback: poll VmHWM of the process while it runs.
        "$@" >/dev/null 2>&1 &
        local pid=$! hwm=0 v
        while kill -0 "$pid" 2>/dev/null; do
            v=$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
            [ -n "$v" ] && hwm=$v
            sleep 0.01
        done
        wait "$pid" || true
        echo "$hwm"
    fi
}

# Suricata: four threshold rules equivalent to floodwatch's defaults (per destination, 1000/s).
SURICATA_RULES=$WORK/flood.rules
cat >"$SURICATA_RULES" <<'EOF'
alert tcp any any -> any any (msg:"SYN flood"; flags:S,12; threshold:type threshold, track by_dst, count 1000, seconds 1; sid:9000001; rev:1;)
alert udp any any -> any any (msg:"UDP flood"; threshold:type threshold, track by_dst, count 1000, seconds 1; sid:9000002; rev:1;)
alert icmp any any -> any any (msg:"ICMP flood"; threshold:type threshold, track by_dst, count 1000, seconds 1; sid:9000003; rev:1;)
alert udp any 53 -> any any (msg:"DNS amplification"; threshold:type threshold, track by_dst, count 1000, seconds 1; sid:9000004; rev:1;)
EOF
run_suricata() {
    rm -rf "$WORK/suricata"
    mkdir -p "$WORK/suricata"
    suricata -r "$1" -S "$SURICATA_RULES" -l "$WORK/suricata" -k none
}

ROWS=$WORK/rows
: >"$ROWS"
# row TOOL INPUT SECONDS RSS_KIB (after peak_rss_kib, whose run's CPU time it adds)
row() { echo "$1|$2|$3|$4|$(cat "$WORK/cpu")" >>"$ROWS"; }

for input in mix spoofed flood; do
    case $input in
        mix) file=$MIX ;;
        spoofed) file=$SPOOFED ;;
        flood) file=$FLOOD ;;
    esac
    echo "== $input: dropping it from the page cache, then reading it back ($(du -h "$file" | cut -f1))"
    # The same page cache state for every run and every tool: that of a file read from disk.
    # A file just written (by capgen) or faulted in through a mapping sits in 4 KiB pages; one
    # read back with read(2) sits in large folios on kernels whose filesystem has them (ext4
    # since 6.16), and mapping those costs several times less. (Some VMs also page out cache
    # untouched for a minute, so each input is read back right before its own runs.)
    evict "$file"
    if command -v fincore >/dev/null; then
        # tmpfs, for one, keeps its pages whatever it is told: then the state is not a disk's.
        echo "   resident after dropping: $(fincore --bytes --noheadings --output RES "$file" | tr -d ' ') bytes"
    fi
    cat "$file" >/dev/null

    echo "   floodwatch (summary kept, alerts to a file)"
    "$FW" replay --no-progress --alerts "$WORK/alerts_$input.jsonl" "$file" 2>"$WORK/summary_$input.txt" >/dev/null
    sed 's/^/     | /' "$WORK/summary_$input.txt"

    fw_s=$(best_of "$FW" replay --no-progress --no-summary --alerts /dev/null "$file")
    fw_rss=$(peak_rss_kib "$FW" replay --no-progress --no-summary --alerts /dev/null "$file")
    row floodwatch $input "$fw_s" "$fw_rss"
    echo "   floodwatch: $fw_s s, peak RSS $fw_rss KiB"

    # Scaling with --threads (the reader decodes and routes; workers analyze their victims).
    for threads in ${FW_BENCH_THREADS:-2}; do
        s=$(best_of "$FW" replay --threads "$threads" --no-progress --no-summary --alerts /dev/null "$file")
        row "floodwatch --threads $threads" $input "$s" \
            "$(peak_rss_kib "$FW" replay --threads "$threads" --no-progress --no-summary --alerts /dev/null "$file")"
        echo "   floodwatch --threads $threads: $s s"
        # Same alerts as one thread? (fixed hash key; order within one timestamp aside)
        rm -f "$WORK/a1.jsonl" "$WORK/an.jsonl"
        "$FW" replay --hash-seed 1 --no-progress --no-summary --alerts "$WORK/a1.jsonl" "$file" >/dev/null 2>&1
        "$FW" replay --hash-seed 1 --threads "$threads" --no-progress --no-summary --alerts "$WORK/an.jsonl" "$file" >/dev/null 2>&1
        if cmp -s <(sort "$WORK/a1.jsonl") <(sort "$WORK/an.jsonl"); then
            echo "   floodwatch --threads $threads: alerts identical to one thread ($(wc -l <"$WORK/a1.jsonl") alerts)"
        else
            echo "   floodwatch --threads $threads: ALERTS DIFFER from one thread"
        fi
    done

    s=$(best_of cat "$file")
    row cat $input "$s" "$(peak_rss_kib cat "$file")"
    echo "   cat: $s s"

    s=$(best_of tcpdump -r "$file" -w /dev/null)
    row "tcpdump -w /dev/null" $input "$s" "$(peak_rss_kib tcpdump -r "$file" -w /dev/null)"
    echo "   tcpdump: $s s"

    if command -v suricata >/dev/null; then
        s=$(best_of run_suricata "$file")
        row suricata $input "$s" "$(peak_rss_kib suricata -r "$file" -S "$SURICATA_RULES" -l "$WORK/suricata" -k none)"
        echo "   suricata: $s s"
    else
        echo "   suricata: not installed, skipped"
    fi
done

echo
echo "== results ($PACKETS packets per input, best of $RUNS runs, page cache warm)"
echo
awk -F'|' -v n="$PACKETS" '
    { tool[NR] = $1; input[NR] = $2; s[NR] = $3; rss[NR] = $4; cpu[NR] = $5; if ($1 == "floodwatch") fw[$2] = $3 }
    END {
        printf "| tool | input | seconds | Mpps | floodwatch time / tool time | peak RSS | CPU seconds |\n"
        printf "| --- | --- | ---: | ---: | ---: | ---: | ---: |\n"
        for (i = 1; i <= NR; i++) {
            ratio = (tool[i] == "floodwatch") ? "1.00" : sprintf("%.2f", fw[input[i]] / s[i])
            printf "| %s | %s | %.3f | %.2f | %s | %.1f MiB | %s |\n", tool[i], input[i], s[i], n / s[i] / 1e6, ratio, rss[i] / 1024, cpu[i]
        }
    }' "$ROWS"
echo
echo "(ratio > 1: floodwatch is slower than the tool by that factor; < 1: faster; for the"
echo " --threads rows it is the speed-up over one thread. seconds: best wall time; CPU seconds:"
echo " user + system of one run, all threads: floodwatch replay runs a capture thread beside"
echo " its one analyzer thread)"

echo
echo "== floodwatch on (a) bench_mix: attacks reported"
grep -E '^\s+(syn_flood|synack_flood|udp_flood|amplification|icmp_flood|fragment_flood)' "$WORK/summary_mix.txt" || echo "   none"

echo
echo "== floodwatch on (b) bench_spoofed: distinct-source estimate"
python3 - "$WORK/alerts_spoofed.jsonl" "$TRUE_SOURCES" <<'EOF'
import json, sys
path, truth = sys.argv[1], int(sys.argv[2])
ends = [json.loads(l) for l in open(path) if l.strip()]
ends = [e for e in ends if e.get("event") == "attack_end"]
if not ends:
    print("   no attack_end in the alerts")
for e in ends:
    est = e["sources"]["distinct_estimate"]
    print(f"   {e['kind']} {e['victim']}: estimate {est:,} vs true {truth:,}: "
          f"error {100.0 * (est - truth) / truth:+.2f} %, spoofed_likely={e['sources']['spoofed_likely']}, "
          f"offending_ips={len(e.get('offending_ips', []))}")
EOF

echo
echo "== floodwatch on (c) bench_flood: attacks and their offending IPs against the true sources"
python3 - "$WORK/alerts_flood.jsonl" <<'EOF'
import ipaddress, json, sys
# capgen's pools (crates/capgen/src/bench.rs): victim -> (address before the first source, sources)
pools = {"198.51.100.10": ("100.64.0.0", 4000), "198.51.100.20": ("100.80.0.0", 2000),
         "192.0.2.50": ("100.96.0.0", 3000)}
ends = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ends = [e for e in ends if e.get("event") == "attack_end"]
for e in ends:
    found = set(e.get("offending_ips", []))
    base, n = pools.get(e["victim"], ("0.0.0.0", 0))
    truth = {str(ipaddress.IPv4Address(int(ipaddress.IPv4Address(base)) + i + 1)) for i in range(n)}
    hits = len(found & truth)
    precision = hits / len(found) if found else 1.0
    recall = hits / len(truth) if truth else 1.0
    print(f"   {e['kind']} {e['victim']}: {len(found):,} offending IPs, precision {precision:.4f}, "
          f"recall {recall:.4f}; distinct estimate {e['sources']['distinct_estimate']:,} (true {n:,})")
EOF

echo
echo "== the analyzer alone (records decoded in memory first; one analyzer thread, default settings)"
"${CARGO[@]}" bench --quiet --bench analyzer -- "$MIX" "$SPOOFED" "$FLOOD"

# time_telemetry FILE COUNT UNIT: replay --telemetry of FILE (COUNT UNIT in it) from disk: its
# summary, the best of $RUNS wall times, and one run's CPU time and peak RSS.
time_telemetry() {
    local file=$1 count=$2 unit=$3 s rss
    evict "$file"
    cat "$file" >/dev/null
    "$FW" replay --telemetry --no-progress --alerts /dev/null "$file" 2>&1 >/dev/null | sed 's/^/     | /'
    s=$(best_of "$FW" replay --telemetry --no-progress --no-summary --alerts /dev/null "$file")
    awk -v s="$s" -v n="$count" -v u="$unit" 'BEGIN { printf "   floodwatch replay --telemetry: %.3f s for %d %s, %.2f M %s/s\n", s, n, u, n / s / 1e6, u }'
    rss=$(peak_rss_kib "$FW" replay --telemetry --no-progress --no-summary --alerts /dev/null "$file")
    awk -v c="$(cat "$WORK/cpu")" -v n="$count" -v u="$unit" -v r="$rss" 'BEGIN { printf "   CPU time of one run (all threads): %.2f s, %.2f M %s per CPU second; peak RSS %.0f MiB\n", c, n / c / 1e6, u, r / 1024 }'
}

# (d) telemetry: bench_flood's first frames sampled 1 in 1 (every frame, so the analysis has
# the whole flood) into sFlow datagrams by capgen's exporter, 8 samples per datagram, read
# back with `replay --telemetry`: samples decoded and analyzed per second, on one analyzer.
SFLOW_PACKETS=${FW_BENCH_SFLOW_PACKETS:-2000000}
SFLOW=$DIR/bench_sflow_$SFLOW_PACKETS.pcap
echo "== (d) sFlow: $SFLOW_PACKETS frames of bench_flood, every one sampled, read with replay --telemetry"
gen bench-sflow "$SFLOW" --packets "$SFLOW_PACKETS" --rate 1
SAMPLES=$(sed -n 's/.*: \([0-9]*\) samples in .*/\1/p' "$SFLOW.facts")
time_telemetry "$SFLOW" "$SAMPLES" samples

# (e) NetFlow v9: bench_flood's first frames metered into flows by capgen's exporter (flows
# cut after 1 s idle or 1 s long, 30 records a datagram, templates every 20th datagram), read
# back with `replay --telemetry`: flow records decoded, spread and analyzed per second.
NETFLOW_PACKETS=${FW_BENCH_NETFLOW_PACKETS:-2000000}
NETFLOW=$DIR/bench_netflow_$NETFLOW_PACKETS.pcap
echo "== (e) NetFlow v9: $NETFLOW_PACKETS frames of bench_flood metered into flows, read with replay --telemetry"
gen bench-netflow "$NETFLOW" --packets "$NETFLOW_PACKETS"
RECORDS=$(sed -n 's/.*: \([0-9]*\) flow records in .*/\1/p' "$NETFLOW.facts")
time_telemetry "$NETFLOW" "$RECORDS" records

# (f) Loopback reception: `floodwatch run --sflow` on 127.0.0.1 while benches/send_datagrams.py
# sends (d)'s datagrams at FW_BENCH_DATAGRAM_RATE a second; every datagram sent must be read
# (floodwatch_telemetry_datagrams_total), and the kernel's UDP receive-buffer errors (from
# /proc/net/snmp, machine-wide) say whether any were lost before floodwatch read them.
RATE=${FW_BENCH_DATAGRAM_RATE:-100000}
PORT=${FW_BENCH_SFLOW_PORT:-16343}
METRICS=${FW_BENCH_METRICS_PORT:-19477}
echo "== (f) loopback: (d)'s datagrams sent at $RATE/s to floodwatch run --sflow 127.0.0.1:$PORT"
udp_rcvbuf_errors() { awk '/^Udp:/ { if (seen) print $6; seen = 1 }' /proc/net/snmp; }
scrape() {
    python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode())' \
        "http://127.0.0.1:$METRICS/metrics" 2>/dev/null || true
}
"$FW" run --sflow "127.0.0.1:$PORT" --metrics "127.0.0.1:$METRICS" --alerts /dev/null >"$WORK/run.log" 2>&1 &
RUN=$!
for _ in $(seq 100); do
    scrape | grep -q '^floodwatch_telemetry_datagrams_total' && break
    sleep 0.1
done
before=$(udp_rcvbuf_errors)
read -r sent secs achieved < <(python3 benches/send_datagrams.py "$SFLOW" "127.0.0.1:$PORT" "$RATE")
sleep 2.5
got=$(scrape | awk '/^floodwatch_telemetry_datagrams_total\{protocol="sflow"\}/ { print $2 }')
after=$(udp_rcvbuf_errors)
kill -TERM "$RUN"
wait "$RUN" || true
echo "   sent $sent datagrams in $secs s ($achieved/s); floodwatch read ${got:-?}; kernel UDP receive-buffer errors meanwhile: $((after - before))"
