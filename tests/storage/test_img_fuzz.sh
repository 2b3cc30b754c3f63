#!/bin/bash
# Seeded fuzz of `minivmm img` over damaged images: qcow2 and VDI images made by qemu-img get bytes
# of their first 320 KiB overwritten (fixed seed), and info/map/check/compare/convert must neither
# crash, hang nor print more than one error line.  MINIVMM=an ASan build makes this stricter.
set -u
cd "$(dirname "$0")/../.."
. tests/storage/img_test_lib.sh

formats=$(img_formats)
for f in qcow2 vdi; do
	echo "$formats" | grep -qx $f || continue
	qemu-img create -f $f "$T/base.$f" 4M >/dev/null
	qemu-io -f $f -c 'write -P 0x11 0 256k' -c 'write -P 0x22 2M 64k' "$T/base.$f" >/dev/null
done
python3 - "$M" "$T" $formats <<'PY'
import os, random, subprocess, sys
m, tmp, formats = sys.argv[1], sys.argv[2], sys.argv[3:]
rng = random.Random(20261124)
env = dict(os.environ, UBSAN_OPTIONS="halt_on_error=1")
for fmt in ("qcow2", "vdi"):
    if fmt not in formats:
        continue
    base = os.path.join(tmp, "base." + fmt)
    data = open(base, "rb").read()
    bad = []
    for i in range(40):
        d = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            d[rng.randrange(0, min(len(d), 0x50000))] = rng.randrange(256)
        img = os.path.join(tmp, "fuzz." + fmt)
        open(img, "wb").write(d)
        out = os.path.join(tmp, "out.img")
        for cmd in (["info", "--output=json"], ["map", "--output=json"], ["check"],
                    ["compare", base], ["convert", "-O", "raw"]):
            if os.path.exists(out):
                os.unlink(out)
            args = [m, "img"] + cmd + [img] + ([out] if cmd[0] == "convert" else [])
            try:
                p = subprocess.run(args, capture_output=True, timeout=60, env=env)
            except subprocess.TimeoutExpired:
                bad.append("%d %s: hang" % (i, cmd[0]))
                continue
            err = [l for l in p.stderr.decode(errors="replace").splitlines() if l]
            if p.returncode < 0 or p.returncode > 63 or len(err) > 1:
                bad.append("%d %s: exit %d %s" % (i, cmd[0], p.returncode, " | ".join(err)[:200]))
            elif err and not err[0].startswith("minivmm img: "):
                bad.append("%d %s: message %s" % (i, cmd[0], err[0][:200]))
            elif p.returncode == 1 and cmd[0] not in ("check", "compare") and not err:
                bad.append("%d %s: exit 1 without a message" % (i, cmd[0]))
        if open(img, "rb").read() != d:
            bad.append("%d: the damaged image was changed" % i)
    if bad:
        print("FAIL: %s fuzz (%s)" % (fmt, "; ".join(bad[:3])))
    else:
        print("PASS: %s fuzz: 40 damaged images x 5 verbs, no crash, hang or stray output" % fmt)
PY
