#!/usr/bin/env python3
"""Check that a differencing VHD names PARENT as Microsoft's VHD specification 1.0 says
(independent of minivmm's code; qemu-img ignores a VHD's parent, so it cannot be the oracle).

  vhd_parent_check.py CHILD PARENT NAME

CHILD's trailing footer and dynamic header must be intact (cookies, checksums, type 4); the
header's parent UUID and time stamp must be PARENT's (from its footer), its parent unicode name
(UTF-16BE) the last component of NAME, and a W2ru (relative, ".\\NAME") or W2ku (absolute NAME)
locator must hold NAME in UTF-16LE, its data inside the file, clear of the header, the BAT and
every allocated block. Exit 0 when all holds, 1 with a message otherwise.
"""
import struct, sys


def checksum(buf, skip):
    return (~sum(b for i, b in enumerate(buf) if not skip <= i < skip + 4)) & 0xffffffff


def fail(msg):
    print("vhd_parent_check: " + msg, file=sys.stderr)
    sys.exit(1)


def footer(path):
    with open(path, "rb") as f:
        data = f.read()
    foot = data[-512:]
    if foot[:8] != b"conectix":
        fail(path + ": no trailing footer")
    if struct.unpack(">I", foot[64:68])[0] != checksum(foot, 64):
        fail(path + ": footer checksum")
    return data, foot


def main():
    child, parent, name = sys.argv[1], sys.argv[2], sys.argv[3]
    data, foot = footer(child)
    _, pfoot = footer(parent)
    if struct.unpack(">I", foot[60:64])[0] != 4:
        fail(child + ": not a differencing VHD")
    hoff = struct.unpack(">Q", foot[16:24])[0]
    hdr = data[hoff:hoff + 1024]
    if hdr[:8] != b"cxsparse" or struct.unpack(">I", hdr[36:40])[0] != checksum(hdr, 36):
        fail(child + ": dynamic header cookie or checksum")
    if hdr[40:56] != pfoot[68:84]:
        fail(child + ": parent UUID is not " + parent + "'s")
    if hdr[56:60] != pfoot[24:28]:
        fail(child + ": parent time stamp is not " + parent + "'s")
    base = name.rsplit("/", 1)[-1]
    if hdr[64:576].decode("utf-16-be").rstrip("\0") != base:
        fail(child + ": parent name field is not " + base)
    bat_off, entries, block = (struct.unpack(">Q", hdr[16:24])[0],
                               struct.unpack(">I", hdr[28:32])[0],
                               struct.unpack(">I", hdr[32:36])[0])
    bitmap = (block // 512 // 8 + 511) // 512 * 512
    used = [(hoff, hoff + 1024), (bat_off, bat_off + entries * 4), (0, 512),
            (len(data) - 512, len(data))]
    for i in range(entries):
        e = struct.unpack(">I", data[bat_off + 4 * i:bat_off + 4 * i + 4])[0]
        if e != 0xffffffff:
            used.append((e * 512, e * 512 + bitmap + block))
    want = {b"W2ru": ".\\" + name.replace("/", "\\"), b"W2ku": name.replace("/", "\\")}
    found = False
    for i in range(8):
        loc = hdr[576 + 24 * i:600 + 24 * i]
        code, length, off = loc[:4], struct.unpack(">I", loc[8:12])[0], struct.unpack(
            ">Q", loc[16:24])[0]
        if code not in want:
            continue
        if off + length > len(data) or any(off < b and off + length > a for a, b in used):
            fail(child + ": locator %d data at %d (%d bytes) overlaps metadata or data" %
                 (i, off, length))
        text = data[off:off + length].decode("utf-16-le")
        if text != want[code]:
            fail(child + ": locator %s holds %r, expected %r" % (code, text, want[code]))
        found = True
    if not found:
        fail(child + ": no W2ru/W2ku locator")


main()
