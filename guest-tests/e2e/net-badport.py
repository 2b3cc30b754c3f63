#!/usr/bin/env python3
"""Joins switch socket argv[1] as a port and sends malformed frames: a message shorter than the
virtio-net header, a runt, an oversize frame without GSO, a header with unknown flags, checksum
offsets past the end, GSO without NEEDS_CSUM, GSO with segment size 0, an unknown GSO type;
then one good frame to an unknown MAC.  Prints how many malformed frames it sent; the switch must
drop and count every one, and flood the good one."""
import json
import socket
import struct
import sys

s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
s.send(json.dumps({"version": 1, "op": "join", "name": "badport", "mac": "02:00:00:00:0b:ad"}).encode())
reply = json.loads(s.recv(4096))
assert reply.get("ok"), reply


def hdr(flags=0, gso=0, hdr_len=0, gso_size=0, cs=0, co=0):
    return struct.pack("<BBHHHHH", flags, gso, hdr_len, gso_size, cs, co, 0)


eth = b"\xff" * 6 + b"\x02\x00\x00\x00\x0b\xad" + b"\x08\x00"
frames = [
    b"\x00" * 5,
    hdr() + eth[:10],
    hdr() + eth + b"\x00" * 1600,
    hdr(flags=0x80) + eth + b"\x00" * 46,
    hdr(flags=1, cs=40, co=30) + eth + b"\x00" * 46,
    hdr(gso=1, hdr_len=54, gso_size=1448) + eth + b"\x00" * 3000,
    hdr(flags=1, gso=1, hdr_len=54, gso_size=0, cs=34, co=16) + eth + b"\x00" * 3000,
    hdr(flags=1, gso=9, hdr_len=54, gso_size=1448, cs=34, co=16) + eth + b"\x00" * 3000,
]
for f in frames:
    s.send(f)
# then one good frame to a MAC nobody has: the switch floods it (and learns this port's MAC)
s.send(hdr() + b"\x02\x00\x00\x00\x0e\xe0" + eth[6:] + b"\x00" * 46)
# a request on a new connection is served after these frames were read (one loop, in order)
print(len(frames))
sys.stdout.flush()
input()  # keep the port until the test has read the counters
