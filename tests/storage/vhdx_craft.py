#!/usr/bin/env python3
"""Craft VHDX and Parallels files for the driver tests (independent of minivmm's code).

  vhdx_craft.py dirty-log IMG      point block 0 of a dynamic VHDX (1 MiB blocks) at a new block
                                   holding 'LOGGED!\n' x 512 by a log entry that is not replayed
  vhdx_craft.py zero-log IMG OFF LEN
                                   leave an unreplayed log entry with one zero descriptor of LEN
                                   bytes at file offset OFF (its last file offset OFF + LEN)
  vhdx_craft.py corrupt IMG WHAT   damage one structure: header-crc, both-headers, region-crc,
                                   bat-beyond-eof, bat-overlap, block-size, disk-size, bat-state,
                                   log-huge, prl-bat-beyond-eof, prl-cluster, prl-bat-entries,
                                   prl-magic, prl-overlap
"""
import struct, sys, uuid

def crc32c(data):
    crc = 0xffffffff
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82f63b78 if crc & 1 else crc >> 1
    return crc ^ 0xffffffff

try:  # the table version is much faster; the bit loop above is the reference
    _T = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82f63b78 if c & 1 else c >> 1
        _T.append(c)
    def crc32c(data, _T=_T):
        crc = 0xffffffff
        for b in data:
            crc = _T[(crc ^ b) & 0xff] ^ (crc >> 8)
        return crc ^ 0xffffffff
except Exception:
    pass

MIB = 1 << 20
BAT_GUID = uuid.UUID("2DC27766-F623-4200-9D64-115E9BFD4A08").bytes_le
META_GUID = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E").bytes_le
FP_GUID = uuid.UUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B").bytes_le
SIZE_GUID = uuid.UUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8").bytes_le

def rd(f, off, n):
    f.seek(off)
    return bytearray(f.read(n))

def wr(f, off, data):
    f.seek(off)
    f.write(data)

def cur_header(f):
    hs = []
    for off in (64 << 10, 128 << 10):
        h = rd(f, off, 4096)
        ok = h[:4] == b"head" and struct.unpack_from("<I", h, 4)[0] == crc32c(h[:4] + b"\0" * 4 + h[8:])
        hs.append((struct.unpack_from("<Q", h, 8)[0] if ok else -1, off, h))
    return max(hs)

def set_header(f, h, seq, off):
    struct.pack_into("<Q", h, 8, seq)
    struct.pack_into("<I", h, 4, 0)
    struct.pack_into("<I", h, 4, crc32c(bytes(h)))
    wr(f, off, h)

def regions(f):
    r = rd(f, 192 << 10, 64 << 10)
    out = {}
    for i in range(struct.unpack_from("<I", r, 8)[0]):
        e = r[16 + 32 * i:48 + 32 * i]
        out[bytes(e[:16])] = struct.unpack_from("<QI", e, 16)
    return out

def meta_item(f, guid):
    moff = regions(f)[META_GUID][0]
    t = rd(f, moff, 64 << 10)
    for i in range(struct.unpack_from("<H", t, 10)[0]):
        e = t[32 + 32 * i:64 + 32 * i]
        if bytes(e[:16]) == guid:
            return moff + struct.unpack_from("<I", e, 16)[0]
    raise SystemExit("metadata item missing")

def dirty_log(f):
    seq, hoff, h = cur_header(f)
    log_len, log_off = struct.unpack_from("<IQ", h, 68)
    bat_off = regions(f)[BAT_GUID][0]
    f.seek(0, 2)
    size = f.tell()
    block = (size + MIB - 1) // MIB * MIB
    wr(f, block, b"LOGGED!\n" * 512)
    f.truncate(block + MIB)
    fsize = block + MIB
    sector = rd(f, bat_off, 4096)
    struct.pack_into("<Q", sector, 0, block | 6)
    lseq = 0x1234567890
    guid = uuid.uuid4().bytes_le
    e = bytearray(8192)
    struct.pack_into("<4sIIIQII16sQQ", e, 0, b"loge", 0, 8192, 0, lseq, 1, 0, guid, fsize, fsize)
    struct.pack_into("<4s4s8sQQ", e, 64, b"desc", bytes(sector[4092:]), bytes(sector[:8]), bat_off, lseq)
    struct.pack_into("<4sI", e, 4096, b"data", lseq >> 32)
    e[4104:8188] = sector[8:4092]
    struct.pack_into("<I", e, 8188, lseq & 0xffffffff)
    struct.pack_into("<I", e, 4, crc32c(bytes(e)))
    wr(f, log_off, e)
    h[48:64] = guid
    set_header(f, h, seq + 1, (64 << 10) if hoff == (128 << 10) else (128 << 10))

def zero_log(f, off, length):
    seq, hoff, h = cur_header(f)
    log_off = struct.unpack_from("<IQ", h, 68)[1]
    f.seek(0, 2)
    fsize = f.tell()
    last = (off + length + MIB - 1) // MIB * MIB
    lseq = 0x77
    guid = uuid.uuid4().bytes_le
    e = bytearray(4096)
    struct.pack_into("<4sIIIQII16sQQ", e, 0, b"loge", 0, 4096, 0, lseq, 1, 0, guid, fsize, last)
    struct.pack_into("<4sIQQQ", e, 64, b"zero", 0, length, off, lseq)
    struct.pack_into("<I", e, 4, crc32c(bytes(e)))
    wr(f, log_off, e)
    h[48:64] = guid
    set_header(f, h, seq + 1, (64 << 10) if hoff == (128 << 10) else (128 << 10))

def corrupt(f, what):
    if what.startswith("prl-"):
        h = rd(f, 0, 64)
        if what == "prl-magic":
            wr(f, 0, b"WithoutFreeSpacX")
        elif what == "prl-cluster":
            wr(f, 28, struct.pack("<I", 0))
        elif what == "prl-bat-entries":
            wr(f, 32, struct.pack("<I", 0xffffffff))
        else:
            tracks = struct.unpack_from("<I", h, 28)[0]
            data_off = struct.unpack_from("<I", h, 48)[0]
            e = 0x7fffffff if what == "prl-bat-beyond-eof" else 0
            if what == "prl-overlap":  # entry 1 points at entry 0's cluster
                e = struct.unpack_from("<I", rd(f, 64, 4))[0]
                assert e, "entry 0 must be allocated"
                wr(f, 68, struct.pack("<I", e))
                return
            wr(f, 64, struct.pack("<I", e))
        return
    seq, hoff, h = cur_header(f)
    if what == "header-crc":
        h[200] ^= 0xff
        wr(f, hoff, h)  # the other header is older but valid: must still open
    elif what == "both-headers":
        for off in (64 << 10, 128 << 10):
            wr(f, off + 300, b"\xff")
    elif what == "region-crc":
        for off in (192 << 10, 256 << 10):
            wr(f, off + 100, b"\xff")
    elif what == "log-huge":
        struct.pack_into("<I", h, 68, 0xfff00000)
        set_header(f, h, seq + 1, hoff)
    elif what in ("bat-beyond-eof", "bat-overlap", "bat-state"):
        bat_off = regions(f)[BAT_GUID][0]
        e = {"bat-beyond-eof": (1 << 40) | 6, "bat-overlap": (1 << 20) | 6, "bat-state": 5}[what]
        wr(f, bat_off, struct.pack("<Q", e))
    elif what == "block-size":
        wr(f, meta_item(f, FP_GUID), struct.pack("<I", 3 << 20))
    elif what == "disk-size":
        wr(f, meta_item(f, SIZE_GUID), struct.pack("<Q", 1 << 62))
    else:
        raise SystemExit("unknown corruption " + what)

with open(sys.argv[2], "r+b") as f:
    if sys.argv[1] == "dirty-log":
        dirty_log(f)
    elif sys.argv[1] == "zero-log":
        zero_log(f, int(sys.argv[3], 0), int(sys.argv[4], 0))
    else:
        corrupt(f, sys.argv[3])
