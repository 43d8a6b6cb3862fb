#!/usr/bin/env python3
"""Sends an exact number of forged IPv4 frames on a network interface (AF_PACKET), for
benches/load.sh. Run it inside the attacker's network namespace: the frames only travel the
private veth pair of the load test (addresses are TEST-NET or random bytes in a frame, and
the victim namespace is the only receiver).

    send_frames.py IFACE DST_MAC DST_IP COUNT KIND SOURCE PORT [RATE]

KIND:   syn | ack | udp
SOURCE: one IPv4 address, or "random" (a new pseudo-random public-looking source per frame,
        from a fixed seed, never 0/8, 10/8, 127/8, 224/3)
PORT:   destination port
RATE:   frames per second at most (default: as fast as Python sends)

Prints one line: frames sent, distinct sources, seconds."""
import random
import socket
import struct
import sys
import time


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def main() -> None:
    iface, dst_mac, dst_ip, count, kind, source, port = sys.argv[1:8]
    rate = float(sys.argv[8]) if len(sys.argv) > 8 else 0.0
    count, port = int(count), int(port)
    dst = socket.inet_aton(dst_ip)
    dmac = bytes.fromhex(dst_mac.replace(":", ""))
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((iface, 0))
    smac = sock.getsockname()[4][:6]
    eth = dmac + smac + b"\x08\x00"
    rng = random.Random(11)
    fixed = None if source == "random" else socket.inet_aton(source)
    sources = set()

    def random_source() -> bytes:
        while True:
            a = rng.randrange(0x01000000, 0xE0000000)
            if (a >> 24) not in (0, 10, 127):
                return struct.pack("!I", a)

    if kind == "udp":
        proto, l4_len = 17, 8
    else:
        proto, l4_len = 6, 20
    flags = {"syn": 0x02, "ack": 0x10}.get(kind, 0)
    start = time.monotonic()
    for i in range(count):
        src = fixed or random_source()
        if fixed is None:
            sources.add(src)
        sport = 1024 + i % 60000
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + l4_len, i & 0xFFFF, 0, 64, proto, 0, src, dst)
        ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
        if proto == 17:
            l4 = struct.pack("!HHHH", sport, port, 8, 0)  # checksum 0: none (IPv4)
        else:
            tcp = struct.pack("!HHIIBBHHH", sport, port, i, 1 if flags & 0x10 else 0, 5 << 4, flags, 1024, 0, 0)
            pseudo = src + dst + struct.pack("!BBH", 0, 6, 20)
            l4 = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
        sock.send(eth + ip + l4)
        if rate and i % 256 == 255:
            ahead = (i + 1) / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
    seconds = time.monotonic() - start
    print(f"{count} {len(sources) if fixed is None else 1} {seconds:.3f}")


if __name__ == "__main__":
    main()
