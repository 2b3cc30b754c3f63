#!/bin/bash
# VDI through the `minivmm img` command line, checked with qemu-img: create (dynamic, static,
# differencing with -b), convert both ways, check (clean and corrupt), resize, rebase, info.
set -u
cd "$(dirname "$0")/../.."
M=./minivmm
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1"; }
ok() { # name, command...
	local name=$1
	shift
	if "$@" >"$T/out" 2>&1; then pass "$name"; else fail "$name ($(head -c 300 "$T/out"))"; fi
}
not() { ! "$@"; }

# A raw pattern: data, zeroes, holes, a partial last block.
truncate -s $((9 * 1048576 + 1536)) "$T/src.raw"
qemu-io -f raw -c 'write -P 0x5a 0 1M' -c 'write -P 0 3M 1M' -c 'write -P 0xc3 5M 1536' \
	-c 'write -P 0x11 9M 1536' "$T/src.raw" >/dev/null

ok "create dynamic" $M img create -f vdi "$T/d.vdi" 64M
ok "dynamic: qemu-img check" qemu-img check "$T/d.vdi"
ok "create static" $M img create -f vdi -o static=on "$T/s.vdi" 8M
ok "static: qemu-img check" qemu-img check "$T/s.vdi"
ok "static: fully allocated for qemu-img" not grep -q '"data": false' \
	<(qemu-img map --output=json "$T/s.vdi")
ok "bad block_size refused" not $M img create -f vdi -o block_size=3M "$T/x.vdi" 8M
ok "bad option refused" not $M img create -f vdi -o cluster_bits=9 "$T/y.vdi" 8M

ok "convert raw -> vdi" $M img convert -f raw -O vdi "$T/src.raw" "$T/c.vdi"
ok "convert: qemu-img check" qemu-img check "$T/c.vdi"
ok "convert: qemu-img compare" qemu-img compare -f vdi -F raw "$T/c.vdi" "$T/src.raw"
ok "convert -o static=on" $M img convert -f raw -O vdi -o static=on "$T/src.raw" "$T/cs.vdi"
ok "static convert: qemu-img compare" qemu-img compare -f vdi -F raw "$T/cs.vdi" "$T/src.raw"
qemu-img convert -f raw -O vdi "$T/src.raw" "$T/q.vdi"
ok "qemu-made vdi -> raw" $M img convert -f vdi -O raw "$T/q.vdi" "$T/q.raw"
ok "qemu-made vdi reads identically" cmp "$T/q.raw" "$T/src.raw"
ok "img compare vdi vs raw" $M img compare "$T/q.vdi" "$T/src.raw"

# Differencing image over a base: reads the base; writes stay in the diff.
ok "create diff -b base.vdi -F vdi" $M img create -f vdi -b c.vdi -F vdi "$T/diff.vdi"
ok "diff: info shows the parent" grep -q 'backing file: c.vdi' <($M img info "$T/diff.vdi")
ok "diff: type diff" grep -q '"type": "diff"' <($M img info --output=json "$T/diff.vdi")
ok "diff reads the base" $M img compare "$T/diff.vdi" "$T/src.raw"
ok "diff: check clean" $M img check "$T/diff.vdi"
ok "diff -> raw" $M img convert -O raw "$T/diff.vdi" "$T/diff.raw"
ok "diff -> raw identical" cmp "$T/diff.raw" "$T/src.raw"
cp "$T/c.vdi" "$T/c.keep"
rm -f "$T/c.vdi"
$M img create -f vdi "$T/c.vdi" 9M >/dev/null
ok "parent with another UUID refused" not $M img compare "$T/diff.vdi" "$T/src.raw"
grep -q 'UUID' "$T/out" && pass "UUID mismatch named" || fail "UUID mismatch named ($(cat "$T/out"))"
mv "$T/c.keep" "$T/c.vdi"

# Resize: grows, and qemu-img sees the new size with the data intact.
ok "resize +100M" $M img resize "$T/q.vdi" +100M
ok "resize: qemu-img check" qemu-img check "$T/q.vdi"
ok "resize: size" grep -q "$((9 * 1048576 + 1536 + 100 * 1048576)) bytes" <(qemu-img info "$T/q.vdi")
qemu-img convert -O raw "$T/q.vdi" "$T/q2.raw"
ok "resize: data intact" cmp -n $((9 * 1048576 + 1536)) "$T/q2.raw" "$T/src.raw"

# A corrupt map: check reports it and fails; the file is left alone.
cp "$T/q.vdi" "$T/bad.vdi"
printf '\0\0\0\0' | dd of="$T/bad.vdi" bs=1 seek=$((0x200 + 4 * 3)) conv=notrunc 2>/dev/null
sum=$(md5sum <"$T/bad.vdi")
ok "check finds a duplicate entry" not $M img check "$T/bad.vdi"
ok "open refuses it" not $M img info "$T/bad.vdi"
grep -q 'bad.vdi' "$T/out" && pass "error names the file" || fail "error names the file ($(cat "$T/out"))"
[ "$(md5sum <"$T/bad.vdi")" = "$sum" ] && pass "corrupt file unchanged" || fail "corrupt file unchanged"

# Rebase: safe onto another parent keeps the content; -u onto a copy of the parent; -u to none.
$M img create -f vdi -b c.vdi -F vdi "$T/r.vdi" >/dev/null
cp "$T/src.raw" "$T/other.raw"
qemu-io -f raw -c 'write -P 0x99 2M 3M' "$T/other.raw" >/dev/null
$M img convert -O vdi "$T/other.raw" "$T/other.vdi" >/dev/null
ok "rebase onto another parent" $M img rebase -b other.vdi -F vdi "$T/r.vdi"
ok "rebase: parent recorded" grep -q 'backing file: other.vdi' <($M img info "$T/r.vdi")
ok "rebase: content kept" $M img compare "$T/r.vdi" "$T/src.raw"
cp "$T/other.vdi" "$T/other-copy.vdi"
ok "rebase -u onto a copy" $M img rebase -u -b other-copy.vdi -F vdi "$T/r.vdi"
ok "rebase -u: content kept" $M img compare "$T/r.vdi" "$T/src.raw"
ok "rebase -u to no parent" $M img rebase -u -b "" "$T/r.vdi"
ok "no parent: plain dynamic" grep -q '"type": "dynamic"' <($M img info --output=json "$T/r.vdi")
ok "no parent: qemu-img check" qemu-img check "$T/r.vdi"

# Preallocation: full and falloc reserve the space, plain static=on stays sparse (as qemu-img).
alloc_kib() { du -k "$1" | cut -f1; }
$M img create -f vdi -o preallocation=full "$T/pf.vdi" 16M >/dev/null
$M img create -f vdi -o preallocation=falloc "$T/pa.vdi" 16M >/dev/null
$M img create -f vdi -o static=on "$T/ps.vdi" 16M >/dev/null
[ "$(alloc_kib "$T/pf.vdi")" -ge 16384 ] && pass "preallocation=full allocates" || fail "preallocation=full allocates"
[ "$(alloc_kib "$T/pa.vdi")" -ge 16384 ] && pass "preallocation=falloc allocates" || fail "preallocation=falloc allocates"
[ "$(alloc_kib "$T/ps.vdi")" -lt 1024 ] && pass "static=on is sparse" || fail "static=on is sparse"
ok "preallocated: fixed type" grep -q '"type": "fixed"' <($M img info --output=json "$T/pf.vdi")
ok "preallocated: qemu-img check" qemu-img check "$T/pf.vdi"

# A differencing VDI links by UUID: a parent format without one is refused with a clear error.
ok "diff over raw refused" not $M img create -f vdi -b src.raw -F raw "$T/dr.vdi"
grep -q 'UUID' "$T/out" && pass "no-UUID parent named" || fail "no-UUID parent named ($(cat "$T/out"))"
