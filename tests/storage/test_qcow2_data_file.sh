#!/bin/bash
# qcow2 external data files (data_file, data_file_raw) both ways with Debian's qemu-img: images
# qemu-img made are read, written and checked by minivmm, and `qemu-img check`/`compare` accept
# what minivmm wrote; images minivmm made are read by qemu-img.  The name an image records is a
# host path chosen by whoever made the image: it must stay inside the image's directory and must
# not be a device node (block_image_path_allowed).  Everything runs in the images' directory:
# qemu-img 7.2 resolves a data file name against its working directory, minivmm against the
# image's directory, and the two agree there.
set -u
cd "$(dirname "$0")/../.."
. tests/storage/img_test_lib.sh

cd "$T"
img_make_pattern pat.raw # 8 MiB: data, zeroes, holes, unaligned pieces

# same NAME A B: qemu-img compare says identical
same() {
	local name=$1 a=$2 b=$3 out
	if out=$(qemu-img compare "$a" "$b" 2>&1); then pass "$name"; else fail "$name" "$out"; fi
}
clean() { # NAME IMAGE: qemu-img check and minivmm img check both clean
	local out
	if ! out=$(qemu-img check "$2" 2>&1); then
		fail "$1" "qemu-img check: $out"
	elif ! out=$($M img check "$2" 2>&1); then
		fail "$1" "minivmm img check: $out"
	else
		pass "$1"
	fi
}

# ---- made by qemu-img, raw data file ----
qemu-img create -q -f qcow2 -o data_file=q.data,data_file_raw=on q.qcow2 8M
qemu-io -c "write -P 0x5a 0 64k" -c "write -P 0x6b 1M 100k" -c "write -P 0x11 8128k 64k" \
	q.qcow2 >/dev/null
out=$($M img info q.qcow2 2>&1)
grep -q '^    data file: q.data$' <<<"$out" && grep -q '^    data file raw: true$' <<<"$out" &&
	pass "info shows the data file as qemu-img does" || fail "info shows the data file" "$out"
$M img info --output=json q.qcow2 >m.json && qemu-img info --output=json q.qcow2 >q.json
python3 - m.json q.json <<'PY' && pass "info --output=json: format-specific as qemu-img's" ||
import json, sys
m, q = (json.load(open(f)) for f in sys.argv[1:])
sys.exit(m["format-specific"] != q["format-specific"])
PY
	fail "info --output=json: format-specific as qemu-img's" "$(cat m.json)"
clean "check: qemu-img's raw data file image" q.qcow2
$M img convert -O raw q.qcow2 m.raw && cmp -s m.raw q.data &&
	pass "convert reads the data file" || fail "convert reads the data file"
# guest cluster 0 lives at data file offset 0: told from unallocated by COPIED
$M img convert -O raw q.qcow2 m.raw && [ "$(head -c 1 m.raw | od -An -tx1 | tr -d ' ')" = 5a ] &&
	pass "cluster 0 at data file offset 0 reads" || fail "cluster 0 at data file offset 0 reads"
# minivmm writes into it (data, zeroes via write_zeroes): qemu-img sees the same, and the data
# file stays a raw image of the disk
$M img convert -n -f raw -O qcow2 pat.raw q.qcow2 || fail "convert -n into a raw data file image"
same "qemu-img reads what minivmm wrote (raw data file)" pat.raw q.qcow2
cmp -s pat.raw q.data && pass "the raw data file stays the disk itself" ||
	fail "the raw data file stays the disk itself"
clean "check after minivmm's writes (raw data file)" q.qcow2

# ---- made by qemu-img, data file not raw ----
qemu-img create -q -f qcow2 -o data_file=n.data n.qcow2 8M
qemu-io -c "write -P 0x77 0 8M" -c "write -z 2M 1M" -c "discard 4M 64k" n.qcow2 >/dev/null
qemu-img convert -O raw n.qcow2 q.raw
$M img convert -O raw n.qcow2 m.raw && cmp -s q.raw m.raw &&
	pass "reads qemu-img's data file image (zero and discarded clusters)" ||
	fail "reads qemu-img's data file image (zero and discarded clusters)"
$M img convert -n -f raw -O qcow2 pat.raw n.qcow2 || fail "convert -n into a data file image"
same "qemu-img reads what minivmm wrote (data file)" pat.raw n.qcow2
clean "check after minivmm's writes (data file)" n.qcow2

# ---- made by minivmm ----
$M img create -f qcow2 -o data_file=m.data,data_file_raw=on m.qcow2 8M >/dev/null
out=$(qemu-img info m.qcow2 2>&1)
grep -q 'data file: m.data' <<<"$out" && grep -q 'data file raw: true' <<<"$out" &&
	pass "qemu-img sees minivmm's data file" || fail "qemu-img sees minivmm's data file" "$out"
[ "$(stat -c %s m.data)" = 8388608 ] && pass "the raw data file has the disk's size" ||
	fail "the raw data file has the disk's size"
clean "check: minivmm's raw data file image" m.qcow2
$M img convert -n -f raw -O qcow2 pat.raw m.qcow2
same "minivmm's raw data file image as qemu-img reads it" pat.raw m.qcow2
cmp -s pat.raw m.data && pass "minivmm's raw data file is the disk" || fail "minivmm's raw data file is the disk"
qemu-io -c "write -P 0x42 3M 64k" m.qcow2 >/dev/null
qemu-img convert -O raw m.qcow2 q.raw
$M img convert -O raw m.qcow2 m.raw && cmp -s q.raw m.raw &&
	pass "qemu-img's write into minivmm's image reads back" || fail "qemu-img's write into minivmm's image reads back"
$M img convert -f raw -O qcow2 -o data_file=c.data pat.raw c.qcow2 >/dev/null &&
	pass "convert -O qcow2 -o data_file=" || fail "convert -O qcow2 -o data_file="
same "qemu-img reads minivmm's converted data file image" pat.raw c.qcow2
clean "check: minivmm's converted data file image" c.qcow2
# an existing raw file gets metadata over it, its data kept (as qemu-img does)
cp pat.raw keep.data
$M img create -f qcow2 -o data_file=keep.data,data_file_raw=on keep.qcow2 8M >/dev/null
same "metadata over an existing raw file keeps its data" pat.raw keep.qcow2

# ---- resize: grown and shrunk as qemu-img does (two identical images in two directories) ----
for who in m q; do
	mkdir -p "rs-$who"
	(cd "rs-$who" &&
		qemu-img create -q -f qcow2 -o data_file=raw.data,data_file_raw=on raw.qcow2 2M &&
		qemu-img create -q -f qcow2 -o data_file=plain.data plain.qcow2 2M &&
		qemu-io -c "write -P 7 0 2M" raw.qcow2 >/dev/null &&
		qemu-io -c "write -P 7 0 2M" plain.qcow2 >/dev/null)
done
for i in raw plain; do
	(cd rs-m && $M img resize $i.qcow2 5M >/dev/null && $M img resize $i.qcow2 +1M >/dev/null &&
		$M img resize --shrink $i.qcow2 3M >/dev/null) || fail "resize: $i data file"
	(cd rs-q && qemu-img resize -q $i.qcow2 5M && qemu-img resize -q $i.qcow2 +1M &&
		qemu-img resize -q --shrink $i.qcow2 3M)
	(cd rs-m && qemu-img convert -O raw $i.qcow2 ../rs-m.out && qemu-img check -q $i.qcow2) &&
		(cd rs-q && qemu-img convert -O raw $i.qcow2 ../rs-q.out) && cmp -s rs-m.out rs-q.out &&
		[ "$(stat -c %s rs-m/$i.data)" = "$(stat -c %s rs-q/$i.data)" ] &&
		pass "resize with a $i data file as qemu-img" || fail "resize with a $i data file as qemu-img"
done
(cd rs-m && qemu-img convert -O raw raw.qcow2 ../rs-m.out) && cmp -s rs-m/raw.data rs-m.out && pass "a resized raw data file is still the disk" ||
	fail "a resized raw data file is still the disk"

# ---- errors: one line, exit 1 ----
expect_error() { # NAME NEEDLE COMMAND...
	local name=$1 needle=$2; shift 2
	"$@" >stdout 2>err
	local rc=$?
	if [ $rc -ne 1 ]; then
		fail "$name" "exit $rc, want 1: $(cat err)"
	elif [ "$(wc -l <err)" -ne 1 ] || ! grep -qF -- "$needle" err; then
		fail "$name" "want one line with '$needle': $(tr '\n' '|' <err)"
	else
		pass "$name"
	fi
}
mv n.data n.moved
expect_error "check: missing data file" "n.qcow2: cannot open" $M img check n.qcow2
expect_error "info: missing data file" "n.data" $M img info n.qcow2
mv n.moved n.data
expect_error "snapshot -c refused with a data file" "not supported with an external data file" \
	$M img snapshot -c s1 n.qcow2
expect_error "compressed convert refused with a data file" "not supported with an external data file" \
	$M img convert -c -f raw -O qcow2 -o data_file=z.data pat.raw z.qcow2
expect_error "data_file_raw without data_file" "data_file_raw requires data_file" \
	$M img create -f qcow2 -o data_file_raw=on r.qcow2 1M
$M img create -f raw base.raw 1M >/dev/null
expect_error "data_file_raw with a backing file" "data_file_raw cannot be used with a backing file" \
	$M img create -f qcow2 -b base.raw -F raw -o data_file=b.data,data_file_raw=on b.qcow2
expect_error "create: data file outside the image's directory" "image's own directory" \
	$M img create -f qcow2 -o data_file=../escape.data e.qcow2 1M
[ ! -e ../escape.data ] && pass "nothing created outside" || fail "nothing created outside"
expect_error "create: the image itself as data file" "cannot be the image itself" \
	$M img create -f qcow2 -o data_file=self.qcow2 self.qcow2 1M
[ ! -e self.qcow2 ] && pass "no file left by the refused create" || fail "no file left by the refused create"

# ---- hostile names in the header ----
# rename NAME IMAGE: rewrite the data file name extension (0x44415441) of IMAGE to NAME; the other
# extensions move with it, as qemu-img would write them
rename_data_file() {
	python3 - "$@" <<'PY'
import struct, sys
name, path = sys.argv[1].encode(), sys.argv[2]
f = open(path, "r+b"); h = bytearray(f.read(65536))
hl = struct.unpack(">I", h[100:104])[0]
pos, exts = hl, []
while True:
    t, l = struct.unpack(">II", h[pos:pos + 8])
    if t == 0: break
    exts.append((t, bytes(h[pos + 8:pos + 8 + l]))); pos += 8 + ((l + 7) & ~7)
out = b""
for t, d in exts:
    if t == 0x44415441: d = name
    out += struct.pack(">II", t, len(d)) + d + b"\0" * ((-len(d)) % 8)
out += b"\0" * 8
h[hl:hl + len(out)] = out
f.seek(0); f.write(h)
PY
}
mkdir -p img
qemu-img create -q -f qcow2 -o data_file=img/d.data,data_file_raw=on img/h.qcow2 1M 2>/dev/null ||
	$M img create -f qcow2 -o data_file=d.data img/h.qcow2 1M >/dev/null
echo secret >outside.data
for name in ../outside.data /etc/passwd "$T/outside.data"; do
	cp img/h.qcow2 img/x.qcow2
	rename_data_file "$name" img/x.qcow2
	expect_error "refused: data file '$name'" "outside img/x.qcow2's directory" $M img info img/x.qcow2
done
ln -sf ../outside.data img/link.data
cp img/h.qcow2 img/x.qcow2 && rename_data_file link.data img/x.qcow2
expect_error "refused: a symlink out of the directory" "outside img/x.qcow2's directory" $M img check img/x.qcow2
cp img/h.qcow2 img/x.qcow2 && rename_data_file x.qcow2 img/x.qcow2
expect_error "refused: the image itself as its data file" "is the image itself" $M img info img/x.qcow2
if mknod img/zero.dev c 1 5 2>/dev/null; then
	cp img/h.qcow2 img/x.qcow2 && rename_data_file zero.dev img/x.qcow2
	expect_error "refused: a device node in the directory" "a device node" \
		$M img convert -O raw img/x.qcow2 x.raw
else
	echo "note: mknod not permitted; device node case not run"
fi
cp img/h.qcow2 img/x.qcow2 && rename_data_file ./d.data img/x.qcow2
out=$($M img check img/x.qcow2 2>&1) && pass "a name inside the directory is accepted" ||
	fail "a name inside the directory is accepted" "$out"

# ---- locks: the data file is locked with the image, as a running VM holds it ----
export XDG_RUNTIME_DIR="$T/run"
mkdir -m 700 "$XDG_RUNTIME_DIR"
mkdir lk && (cd lk && qemu-img create -q -f qcow2 -o data_file=shared.data one.qcow2 1M &&
	qemu-img create -q -f qcow2 -o data_file=shared.data two.qcow2 1M)
mkfifo hold.in hold.out
$M disk-lock-hold vm1 normal lk/one.qcow2 <hold.in >hold.out 2>hold.err &
hold_pid=$!
exec 8>hold.in 7<hold.out
read -r line <&7
if [ "$line" = locked ]; then
	# another image naming the same data file cannot write it while the VM does
	expect_error "a data file a running VM writes is refused" "in use by running VM 'vm1'" \
		$M img convert -n -f raw -O qcow2 pat.raw lk/two.qcow2
else
	fail "disk-lock-hold on a data file image" "$(cat hold.err)"
fi
exec 8>&-
wait "$hold_pid"
exec 7<&-
out=$($M img convert -n -f raw -O qcow2 base.raw lk/two.qcow2 2>&1) &&
	pass "free again once the VM is gone" || fail "free again once the VM is gone" "$out"

# an L2 entry whose data file offset is not its guest offset (qemu calls the image corrupt)
qemu-img create -q -f qcow2 -o data_file=bad.data,data_file_raw=on bad.qcow2 1M
python3 - bad.qcow2 <<'PY'
import struct, sys
f = open(sys.argv[1], "r+b"); h = f.read(112)
l1 = struct.unpack(">Q", h[40:48])[0]
f.seek(l1); l2 = struct.unpack(">Q", f.read(8))[0] & 0x00fffffffffffe00
f.seek(l2 + 8); f.write(struct.pack(">Q", (1 << 63) | (2 * 65536)))  # cluster 1 -> offset of 2
PY
expect_error "refused: data file offset not the guest offset" "does not match" \
	$M img convert -O raw bad.qcow2 bad.raw
$M img check bad.qcow2 >/dev/null 2>&1
rc=$?
[ $rc -eq 2 ] && pass "check: offset mismatch is a corruption (exit 2)" ||
	fail "check: offset mismatch is a corruption (exit 2)" "exit $rc"

img_done
