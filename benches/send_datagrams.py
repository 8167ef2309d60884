#!/usr/bin/env python3
"""Sends the UDP payloads of a classic pcap (Ethernet/IPv4/UDP frames, as capgen's telemetry
exporters write them) to HOST:PORT at RATE datagrams per second, paced every millisecond.
Prints how many were sent and at what rate.

    python3 benches/send_datagrams.py FILE HOST:PORT RATE
"""
import socket
import struct
import sys
import time


def payloads(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack_from("<I", data, 0)[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    at = 24
    out = []
    while at + 16 <= len(data):
        incl = struct.unpack_from(endian + "I", data, at + 8)[0]
        frame = data[at + 16 : at + 16 + incl]
        at += 16 + incl
        # Ethernet (14) + IPv4 (IHL) + UDP (8).
        if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
            continue
        ihl = (frame[14] & 0x0F) * 4
        out.append(frame[14 + ihl + 8 :])
    return out


def main():
    path, target, rate = sys.argv[1], sys.argv[2], int(sys.argv[3])
    host, port = target.rsplit(":", 1)
    datagrams = payloads(path)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    addr = (host, int(port))
    per_ms = max(1, rate // 1000)
    start = time.perf_counter()
    sent = 0
    for i in range(0, len(datagrams), per_ms):
        for d in datagrams[i : i + per_ms]:
            sock.sendto(d, addr)
        sent += len(datagrams[i : i + per_ms])
        due = start + sent / rate
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
    elapsed = time.perf_counter() - start
    print(f"{sent} {elapsed:.3f} {sent / elapsed:.0f}")


if __name__ == "__main__":
    main()
