#!/usr/bin/env bash
# Rebuilds the committed seed corpora under fuzz/seeds/ from the project's own captures/
# and example configs: the head of every capture (formats, headers, first records), single
# frames cut out of them (for the decoder), and the config files.
set -euo pipefail
cd "$(dirname "$0")/.."
# The telemetry_datagram seeds (hand-made datagrams, and inputs that once failed) and the
# sensor_summary seeds (summary version 2 of two seconds each of syn_flood_real_sources and
# carpet_bombing, hosts and prefixes, written once by the analyzer) are kept.
rm -rf fuzz/seeds/capture_reader fuzz/seeds/frame_decoder fuzz/seeds/config_parser
mkdir -p fuzz/seeds/capture_reader fuzz/seeds/frame_decoder fuzz/seeds/config_parser
python3 - <<'PY'
import glob, gzip, os, struct
for path in sorted(glob.glob("captures/*.pcap*")):
    name = os.path.basename(path)
    raw = open(path, "rb").read()
    open(f"fuzz/seeds/capture_reader/{name}.head", "wb").write(raw[:4096])
    data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    if data is not raw:
        open(f"fuzz/seeds/capture_reader/{name}.inner.head", "wb").write(data[:4096])
    if data[:4] != b"\xd4\xc3\xb2\xa1":   # little-endian classic pcap only
        continue
    at, n = 24, 0
    while at + 16 <= len(data) and n < 40:
        caplen = struct.unpack("<I", data[at + 8:at + 12])[0]
        frame = data[at + 16:at + 16 + caplen]
        if n % 4 == 0:
            open(f"fuzz/seeds/frame_decoder/{name}.{n}", "wb").write(frame)
        at += 16 + caplen
        n += 1
PY
cp systemd/floodwatch.toml fuzz/seeds/config_parser/floodwatch.toml
printf '[thresholds]\nsyn_flood = 5000\n[[prefix]]\nprefix = "198.51.100.0/24"\nudp_flood = 50000\n[allowlist]\nsources = ["192.0.2.1", "2001:db8::/32"]\n' \
    > fuzz/seeds/config_parser/prefixes.toml
