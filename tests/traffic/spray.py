#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""One UDP packet per client, from any source address, and the scheduling
decisions IPVS recorded for them (inside the VM, for tests/traffic/upstream.sh).

    spray.py send IFACE DST_MAC VIP PORT CLIENTS
        From namespace c: for each CLIENTS line (ADDR:PORT or [V6]:PORT) an
        Ethernet frame with a UDP packet from that address and port to
        VIP:PORT, written to IFACE (AF_PACKET: the source address need not be
        the sender's). Checksums are computed (IPv6 needs them).
    spray.py send-icmp IFACE DST_MAC VIP PORT CLIENTS
        The same, but for each client an ICMP error about a UDP packet the
        service VIP:PORT sent to it (the director got the error, not the
        flow): from the router 10.0.1.2 or fd00:1::2, "fragmentation needed"
        (IPv4) or "packet too big" (IPv6), quoting the packet's IP header
        and its UDP header from VIP:PORT to the client's address and port.
    spray.py clients 4|6 N [SEED]
        N distinct clients, the same for the same SEED: addresses in
        10.200.0.0/16 or 2001:db8:c0::/96, ports 1024-65535.
    spray.py decisions VPORT CLIENTS
        From the director's namespace: /proc/net/ip_vs_conn (IPVS's file)
        read for the UDP entries to virtual port VPORT; prints "client
        server" for each client of CLIENTS, "client NONE" where IPVS made no
        entry (the scheduler refused the flow).
"""

import ipaddress
import random
import socket
import struct
import sys


def parse_client(text):
    text = text.strip()
    if text.startswith("["):
        addr, port = text[1:].split("]:")
    else:
        addr, port = text.rsplit(":", 1)
    return ipaddress.ip_address(addr), int(port)


def show(addr, port):
    return f"[{addr}]:{port}" if addr.version == 6 else f"{addr}:{port}"


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip_header(src, dst, proto, payload_len):
    if src.version == 4:
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, 0, 0, 64, proto, 0,
                         src.packed, dst.packed)
        return ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return struct.pack("!IHBB16s16s", 6 << 28, payload_len, proto, 64, src.packed, dst.packed)


def frame(dst_mac, src, sport, dst, dport):
    payload = b"mh"
    ulen = 8 + len(payload)
    if src.version == 4:
        pseudo = src.packed + dst.packed + struct.pack("!BBH", 0, socket.IPPROTO_UDP, ulen)
    else:
        pseudo = src.packed + dst.packed + struct.pack("!I3xB", ulen, socket.IPPROTO_UDP)
    udp = struct.pack("!HHHH", sport, dport, ulen, 0) + payload
    c = csum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", c) + udp[8:]
    ethertype = 0x0800 if src.version == 4 else 0x86DD
    return (dst_mac + b"\0\x16\x3e\0\0\1" + struct.pack("!H", ethertype)
            + ip_header(src, dst, socket.IPPROTO_UDP, ulen) + udp)


def icmp_frame(dst_mac, client, cport, vip, vport):
    # The quoted packet: what the service would have sent the client.
    quoted_udp = struct.pack("!HHHH", vport, cport, 8 + 2, 0)
    if vip.version == 4:
        router = ipaddress.ip_address("10.0.1.2")
        quoted = ip_header(vip, client, socket.IPPROTO_UDP, 10) + quoted_udp
        # Destination unreachable, fragmentation needed, next-hop MTU 1400.
        icmp = struct.pack("!BBHHH", 3, 4, 0, 0, 1400) + quoted
        icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
        outer = ip_header(router, vip, socket.IPPROTO_ICMP, len(icmp))
        ethertype = 0x0800
    else:
        router = ipaddress.ip_address("fd00:1::2")
        quoted = ip_header(vip, client, socket.IPPROTO_UDP, 10) + quoted_udp
        # Packet too big, MTU 1280.
        icmp = struct.pack("!BBHI", 2, 0, 0, 1280) + quoted
        pseudo = router.packed + vip.packed + struct.pack("!I3xB", len(icmp), 58)
        icmp = icmp[:2] + struct.pack("!H", csum(pseudo + icmp)) + icmp[4:]
        outer = ip_header(router, vip, 58, len(icmp))
        ethertype = 0x86DD
    return dst_mac + b"\0\x16\x3e\0\0\1" + struct.pack("!H", ethertype) + outer + icmp


def send(iface, dst_mac, vip, port, clients, make=frame, what="packets"):
    dst = ipaddress.ip_address(vip)
    mac = bytes.fromhex(dst_mac.replace(":", ""))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    n = 0
    with open(clients) as f:
        for line in f:
            if line.strip():
                addr, cport = parse_client(line)
                s.send(make(mac, addr, cport, dst, int(port)))
                n += 1
    print(f"sent {n} {what} to {vip}:{port}")


def conn_addr(text):
    if ":" in text:
        return ipaddress.ip_address(text)
    return ipaddress.ip_address(int(text, 16))


def decisions(vport, clients):
    got = {}
    with open("/proc/net/ip_vs_conn") as f:
        next(f)
        for line in f:
            w = line.split()
            if len(w) < 7 or w[0] != "UDP" or int(w[4], 16) != int(vport):
                continue
            client = show(conn_addr(w[1]), int(w[2], 16))
            got[client] = show(conn_addr(w[5]), int(w[6], 16))
    with open(clients) as f:
        for line in f:
            if line.strip():
                addr, cport = parse_client(line)
                c = show(addr, cport)
                print(c, got.get(c, "NONE"))


def clients(family, n, seed="0"):
    rng = random.Random(f"{n} {seed}")
    seen = set()
    base = ipaddress.ip_address("10.200.0.0" if family == "4" else "2001:db8:c0::")
    bits = 16 if family == "4" else 32
    while len(seen) < int(n):
        c = (base + rng.randrange(1, 1 << bits), rng.randrange(1024, 65536))
        if c not in seen:
            seen.add(c)
            print(show(*c))


def main(argv):
    if len(argv) in (3, 4) and argv[0] == "clients":
        clients(*argv[1:])
    elif len(argv) == 6 and argv[0] == "send":
        send(*argv[1:])
    elif len(argv) == 6 and argv[0] == "send-icmp":
        send(*argv[1:], make=icmp_frame, what="ICMP errors about flows of")
    elif len(argv) == 3 and argv[0] == "decisions":
        decisions(*argv[1:])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
