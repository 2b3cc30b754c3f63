#!/usr/bin/env python3
"""A fake VM port pinging 169.254.50.1 from 169.254.1.1 (MAC 02:00:00:00:01:01), for
bench/net-hop.sh.  argv: PATH DEST-MAC COUNT, where PATH is a switch's socket (the port joins it)
or tap:NAME (the port writes the TAP itself, with a 12-byte virtio-net header).  Prints the
median, mean, 90th and 99th percentile round trip in microseconds.  A reply missing for 2 s ends
it with an error (waits are bounded only against hangs)."""
import fcntl
import json
import os
import select
import socket
import statistics
import struct
import sys
import time

TUNSETIFF, TUNSETVNETHDRSZ = 0x400454CA, 0x400454D8
IFF_TAP, IFF_NO_PI, IFF_VNET_HDR = 0x0002, 0x1000, 0x4000
MINE = bytes.fromhex("020000000101")


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def echo_request(dst_mac, seq):
    icmp = struct.pack("!BBHHH", 8, 0, 0, 0x4D56, seq & 0xFFFF) + b"x" * 56
    icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), seq & 0xFFFF, 0, 64, 1, 0,
                     socket.inet_aton("169.254.1.1"), socket.inet_aton("169.254.50.1"))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return b"\0" * 12 + dst_mac + MINE + b"\x08\x00" + ip + icmp


def is_reply(m, seq):
    # vnet header (12), Ethernet (14), IPv4 without options (20), ICMP echo reply with our seq
    return (len(m) >= 12 + 14 + 20 + 8 and m[24:26] == b"\x08\x00" and m[26 + 9] == 1
            and m[46] == 0 and struct.unpack("!H", m[52:54])[0] == seq & 0xFFFF)


def main():
    path, dst_mac, count = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", "")), int(sys.argv[3])
    if path.startswith("tap:"):
        fd = os.open("/dev/net/tun", os.O_RDWR)
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", path[4:].encode(), IFF_TAP | IFF_NO_PI | IFF_VNET_HDR))
        fcntl.ioctl(fd, TUNSETVNETHDRSZ, struct.pack("i", 12))
        send, recv = lambda b: os.write(fd, b), lambda: os.read(fd, 70000)
    else:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(path)
        s.send(json.dumps({"version": 1, "op": "join", "name": "net-hop",
                           "mac": "02:00:00:00:01:01"}).encode())
        reply = json.loads(s.recv(4096))
        if not reply.get("ok"):
            sys.exit("net-hop: the switch refused the port: %s" % reply)
        fd, send, recv = s.fileno(), s.send, lambda: s.recv(70000)
    # One exchange before timing: a TAP whose queue was just attached drops the host's answers
    # until the kernel's link watch (up to a second later) turns its carrier on.
    for attempt in range(10):
        send(echo_request(dst_mac, 0xFFFF))
        if select.select([fd], [], [], 0.5)[0] and is_reply(recv(), 0xFFFF):
            break
    else:
        sys.exit("net-hop: no reply to the first ping in 5 s")
    while select.select([fd], [], [], 0.2)[0]:  # late answers of the retries
        recv()
    rtts = []
    for seq in range(count):
        t0 = time.perf_counter()
        send(echo_request(dst_mac, seq))
        while True:
            if not select.select([fd], [], [], 2)[0]:
                sys.exit("net-hop: no reply to ping %d within 2 s" % seq)
            if is_reply(recv(), seq):
                break
        rtts.append((time.perf_counter() - t0) * 1e6)
    q = statistics.quantiles(rtts, n=100)
    print("median %.1f mean %.1f p90 %.1f p99 %.1f" % (statistics.median(rtts), statistics.mean(rtts), q[89], q[98]))


main()
