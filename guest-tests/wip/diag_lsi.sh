#!/bin/bash
# Diagnosis of the LSI firmware-boot stall (guest-tests/wip/test_firmware_hba.sh), not a test: run
# with `/work/wt/e2e-slot guest-tests/run-e2e.sh guest-tests/wip/diag_lsi.sh` (GT_DIAG_BUS=sas for
# the SAS1068, GT_DIAG_WAIT seconds, 240 by default).  Boots the firmware-boot disk on the LSI HBA
# with MINIVMM_LOG=debug,trace=lsi and prints the console, SeaBIOS's debug lines, every SCSI IO and
# its completion, and whether the data each READ(10) put in guest memory matches the image (the
# trace's FNV-1a hash against the same sectors of os.raw).
cd "$(dirname "$0")/../.." || exit 1
. guest-tests/lib/fwboot.sh
fwboot_setup diag-lsi
bus=${GT_DIAG_BUS:-scsi}
export MINIVMM_LOG=debug,trace=lsi
GT_RUN_ARGS=(--disk "$W/os.raw,bus=$bus,format=raw")
guest_start_fw d1 1 512
if guest_wait d1 '^GT: done' "${GT_DIAG_WAIT:-240}"; then
	echo "# diag: booted to /init"
else
	echo "# diag: no 'GT: done'"
fi
err=$W/d1.stderr
echo "# === console"
tr -d '\r' <"$W/d1.console" | grep -av GT-TICK | tail -30
echo "# === stderr: $(wc -l <"$err") lines; SCSI IO $(grep -c 'SCSI IO frame' "$err"), done $(grep -c 'done context' "$err")"
grep -v 'trace ' "$err" | head -150
echo "# === SCSI IO, the last 150 trace lines"
grep 'trace ' "$err" | tail -150
echo "# === READ(10) data against the image"
python3 - "$W/os.raw" "$err" <<'PY' || echo "# (no python3 here)"
import re, sys
disk = open(sys.argv[1], 'rb').read()
def fnv(b):
    h = 14695981039346656037
    for x in b:
        h = ((h ^ x) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h
pat = re.compile(r'done context (\S+) CDB 28 lba (\d+) count (\d+), (\d+) bytes: status (\S+), (\d+) moved, hash (\w+)')
good = bad = 0
for line in open(sys.argv[2], errors='replace'):
    m = pat.search(line)
    if not m:
        continue
    lba, cnt = int(m.group(2)), int(m.group(3))
    if fnv(disk[lba * 512:(lba + cnt) * 512]) == int(m.group(7), 16):
        good += 1
    else:
        bad += 1
        print('# BAD data: lba %d count %d' % (lba, cnt))
print('# READ(10): %d matched the image, %d did not' % (good, bad))
PY
kill "$(guest_pid d1)" 2>/dev/null
exit 0
