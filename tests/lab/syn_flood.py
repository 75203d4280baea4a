"""Sends COUNT TCP SYNs from SRC to DST:PORT (IPv4, raw socket) as fast as it can.

Run inside the lab's internet namespace only (the test does that); each SYN has its own
source port, so conntrack sees COUNT new connections. Prints the seconds it took.
"""

from __future__ import annotations

import socket
import struct
import sys
import time


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def syn(src: bytes, dst: bytes, sport: int, dport: int) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, 0x02, 64240, 0, 0)
    pseudo = src + dst + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return ip + tcp


def main() -> None:
    src_text, dst_text, port, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    src, dst = socket.inet_aton(src_text), socket.inet_aton(dst_text)
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    started = time.monotonic()
    for index in range(count):
        sock.sendto(syn(src, dst, 20000 + index % 40000, port), (dst_text, 0))
    print(round(time.monotonic() - started, 3))


if __name__ == "__main__":
    main()
