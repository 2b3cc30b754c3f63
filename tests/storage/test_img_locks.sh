#!/bin/bash
# `minivmm img` respects the locks of running VMs (storage/core/disk_lock.h): a VM is stood in for by
# `minivmm disk-lock-hold NAME MODE FILE`, which opens FILE the way a VM does. With a writer
# holding an image, every verb that writes it is refused naming the VM and leaves it byte for byte
# as it was, and every verb that reads it is refused unless -U; with a reader (readonly, immutable)
# holding it, reading verbs work and writing verbs are refused; after kill -9 of the holder,
# everything works again.
set -u
cd "$(dirname "$0")/../.."
. tests/storage/img_test_lib.sh

img_holder_setup
trap '[ -n "$HOLD_PID" ] && kill -9 "$HOLD_PID" 2>/dev/null; rm -rf "$T"' EXIT

# refused NAME IMAGE VM RC CMD...: CMD fails with exit RC and exactly one line on stderr naming
# IMAGE and "in use by running VM 'VM'", and IMAGE is byte for byte what it was.
refused() {
	local name=$1 img=$2 vm=$3 want=$4
	shift 4
	cp "$img" "$T/before"
	"$@" >"$T/r.out" 2>"$T/r.err"
	local rc=$?
	if [ $rc != "$want" ]; then
		fail "$name" "exit $rc, want $want: $(head -c 200 "$T/r.err")"
	elif [ "$(wc -l <"$T/r.err")" != 1 ] || ! grep -qF "$img" "$T/r.err" ||
		! grep -qF "in use by running VM '$vm'" "$T/r.err"; then
		fail "$name" "message: $(head -c 300 "$T/r.err" | tr '\n' '|')"
	elif ! cmp -s "$img" "$T/before"; then
		fail "$name" "the image changed"
	else
		pass "$name"
	fi
}
# works NAME CMD...: CMD succeeds and says nothing on stderr.
works() {
	local name=$1
	shift
	if "$@" >"$T/w.out" 2>"$T/w.err" && [ ! -s "$T/w.err" ]; then
		pass "$name"
	else
		fail "$name" "$(head -c 300 "$T/w.err" | tr '\n' '|')"
	fi
}

# A chain: base.qcow2 <- top.qcow2, each with data; top has an internal snapshot 's1'.
qemu-img create -q -f qcow2 "$T/base.qcow2" 4M
qemu-io -c 'write -P 0x11 0 1M' "$T/base.qcow2" >/dev/null
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$T/top.qcow2"
qemu-io -c 'write -P 0x22 1M 1M' "$T/top.qcow2" >/dev/null
qemu-img snapshot -c s1 "$T/top.qcow2"
qemu-img create -q -f qcow2 "$T/other.qcow2" 4M
qemu-img convert -O raw "$T/top.qcow2" "$T/top.raw"
B=$T/base.qcow2 TOP=$T/top.qcow2

# ---- nothing holds the file: output as before, no warning, nothing left locked ----
$M img info "$TOP" >"$T/i1" 2>"$T/i1.err"
$M img info -U "$TOP" >"$T/i2" 2>&1
[ -s "$T/i1" ] && [ ! -s "$T/i1.err" ] && cmp -s "$T/i1" "$T/i2" &&
	pass "unheld: info prints the same with and without -U, nothing on stderr" ||
	fail "unheld: info prints the same with and without -U, nothing on stderr"
qemu-img info "$TOP" >"$T/qi" 2>&1
cmp -s "$T/i1" "$T/qi" && pass "unheld: info output is qemu-img's" ||
	fail "unheld: info output is qemu-img's" "$(diff "$T/i1" "$T/qi" | head -4 | tr '\n' '|')"

# ---- a VM writes top.qcow2 (normal mode): write lock on top, read lock on base ----
if hold vm1 normal "$TOP"; then
	pass "normal holder: holds top.qcow2"
	refused "writer held: resize" "$TOP" vm1 1 $M img resize "$TOP" 8M
	refused "writer held: snapshot -c" "$TOP" vm1 1 $M img snapshot -c s2 "$TOP"
	refused "writer held: snapshot -a" "$TOP" vm1 1 $M img snapshot -a s1 "$TOP"
	refused "writer held: snapshot -d" "$TOP" vm1 1 $M img snapshot -d s1 "$TOP"
	refused "writer held: check -r all" "$TOP" vm1 1 $M img check -r all "$TOP"
	refused "writer held: check -r leaks" "$TOP" vm1 1 $M img check -r leaks "$TOP"
	refused "writer held: commit" "$TOP" vm1 1 $M img commit "$TOP"
	refused "writer held: rebase" "$TOP" vm1 1 $M img rebase -b other.qcow2 -F qcow2 "$TOP"
	refused "writer held: rebase -u" "$TOP" vm1 1 $M img rebase -u -b other.qcow2 -F qcow2 "$TOP"
	refused "writer held: convert -n into it" "$TOP" vm1 1 $M img convert -n -O qcow2 "$T/other.qcow2" "$TOP"
	# reading it while the VM writes: refused without -U
	refused "writer held: info" "$TOP" vm1 1 $M img info "$TOP"
	refused "writer held: info --backing-chain" "$TOP" vm1 1 $M img info --backing-chain "$TOP"
	refused "writer held: check" "$TOP" vm1 1 $M img check "$TOP"
	refused "writer held: map" "$TOP" vm1 1 $M img map "$TOP"
	refused "writer held: compare (exit 2 as qemu-img)" "$TOP" vm1 2 $M img compare "$TOP" "$T/top.raw"
	refused "writer held: snapshot -l" "$TOP" vm1 1 $M img snapshot -l "$TOP"
	refused "writer held: convert (input)" "$TOP" vm1 1 $M img convert -O raw "$TOP" "$T/c1.raw"
	[ ! -e "$T/c1.raw" ] && pass "writer held: convert created no output" || fail "writer held: convert created no output"
	refused "writer held: clonemedium (input)" "$TOP" vm1 1 $M img clonemedium "$TOP" "$T/c1.vdi"
	# ... and with -U (--force-share): read anyway, at the user's risk
	works "writer held: info -U" $M img info -U "$TOP"
	cmp -s "$T/w.out" "$T/i1" && pass "writer held: info -U prints what info printed unheld" ||
		fail "writer held: info -U prints what info printed unheld"
	works "writer held: info --force-share --backing-chain" $M img info --force-share --backing-chain "$TOP"
	works "writer held: check -U" $M img check -U "$TOP"
	works "writer held: map -U" $M img map -U "$TOP"
	works "writer held: compare -U" $M img compare -U "$TOP" "$T/top.raw"
	works "writer held: snapshot -l -U" $M img snapshot -l -U "$TOP"
	works "writer held: convert -U" $M img convert -U -O raw "$TOP" "$T/c2.raw"
	cmp -s "$T/c2.raw" "$T/top.raw" && pass "writer held: convert -U copied the data" || fail "writer held: convert -U copied the data"
	# -U never lets a command write
	cp "$TOP" "$T/before"
	$M img snapshot -U -c s3 "$TOP" >/dev/null 2>"$T/u.err"; rc=$?
	[ $rc = 1 ] && grep -q 'force-share' "$T/u.err" && cmp -s "$TOP" "$T/before" &&
		pass "writer held: snapshot -c -U is refused" || fail "writer held: snapshot -c -U is refused" "rc $rc $(cat "$T/u.err")"
	$M img check -U -r all "$TOP" >/dev/null 2>"$T/u.err"; rc=$?
	[ $rc = 1 ] && grep -q 'force-share' "$T/u.err" && cmp -s "$TOP" "$T/before" &&
		pass "writer held: check -r -U is refused" || fail "writer held: check -r -U is refused" "rc $rc $(cat "$T/u.err")"
	# the base is only read by the VM: reading it works, writing it does not
	works "writer held: info on its base" $M img info "$B"
	works "writer held: check on its base" $M img check "$B"
	refused "writer held: resize its base" "$B" vm1 1 $M img resize "$B" 8M
	# creating over it is refused as over any existing file
	cp "$TOP" "$T/before"
	$M img create -f qcow2 "$TOP" 1M >/dev/null 2>&1; rc=$?
	[ $rc = 1 ] && cmp -s "$TOP" "$T/before" && pass "writer held: create over it is refused" ||
		fail "writer held: create over it is refused" "rc $rc"
	# ---- kill -9: the OFD locks die with the process ----
	unhold_kill
	works "after kill -9: info" $M img info "$TOP"
	works "after kill -9: check" $M img check "$TOP"
	works "after kill -9: snapshot -c" $M img snapshot -c s2 "$TOP"
	works "after kill -9: snapshot -a" $M img snapshot -a s1 "$TOP"
	works "after kill -9: snapshot -d" $M img snapshot -d s2 "$TOP"
	works "after kill -9: snapshot -d the last one" $M img snapshot -d s1 "$TOP"
	works "after kill -9: resize" $M img resize "$TOP" 8M
	works "after kill -9: check -r all" $M img check -r all "$TOP"
	check "after kill -9: qemu-img check" qemu-img check -q "$TOP"
else
	fail "normal holder: holds top.qcow2" "$(cat "$T/hold.err")"
	unhold_kill
fi

# ---- a VM holds base.qcow2 read-only: reading verbs work, writing verbs are refused ----
qemu-img convert -O raw "$B" "$T/base.raw"
if hold vm-ro readonly "$B"; then
	pass "readonly holder: holds base.qcow2"
	works "reader held: info" $M img info "$B"
	works "reader held: info --backing-chain of the overlay" $M img info --backing-chain "$TOP"
	works "reader held: check" $M img check "$B"
	works "reader held: map" $M img map "$B"
	works "reader held: compare" $M img compare "$B" "$T/base.raw"
	works "reader held: snapshot -l" $M img snapshot -l "$B"
	works "reader held: convert" $M img convert -O raw "$B" "$T/c3.raw"
	works "reader held: clonemedium" $M img clonemedium "$B" "$T/c3.vdi"
	# a second reader beside the VM's read lock
	if hold_once vm-ro2 readonly "$B" >"$T/ro2.out" 2>&1 && grep -qx locked "$T/ro2.out"; then
		pass "reader held: a second readonly VM opens it too"
	else
		fail "reader held: a second readonly VM opens it too" "$(cat "$T/ro2.out")"
	fi
	refused "reader held: resize" "$B" vm-ro 1 $M img resize "$B" 8M
	refused "reader held: snapshot -c" "$B" vm-ro 1 $M img snapshot -c x "$B"
	refused "reader held: check -r all" "$B" vm-ro 1 $M img check -r all "$B"
	refused "reader held: commit of the overlay into it" "$B" vm-ro 1 $M img commit "$TOP"
	refused "reader held: rebase" "$B" vm-ro 1 $M img rebase -u -b other.qcow2 -F qcow2 "$B"
	refused "reader held: convert -n into it" "$B" vm-ro 1 $M img convert -n -O qcow2 "$T/other.qcow2" "$B"
	grep -q "it is being read" "$T/r.err" && pass "reader held: the message says the VM reads it" ||
		fail "reader held: the message says the VM reads it" "$(cat "$T/r.err")"
	unhold
	[ ! -e "$XDG_RUNTIME_DIR/minivmm/vm-ro.disks" ] && [ -e "$XDG_RUNTIME_DIR/minivmm/vm1.disks" ] &&
		pass "reader gone: its registry file went with it (vm1's, killed, stays and is ignored)" ||
		fail "reader gone: its registry file went with it (vm1's, killed, stays and is ignored)"
	works "reader gone: resize" $M img resize "$B" 8M
else
	fail "readonly holder: holds base.qcow2" "$(cat "$T/hold.err")"
	unhold_kill
fi

# ---- immutable: the VM writes a differencing image in its state dir over a read-locked base ----
mkdir "$T/state"
if hold vm-imm immutable "$B" "$T/state"; then
	pass "immutable holder: holds base.qcow2"
	works "immutable held: info on the base" $M img info "$B"
	works "immutable held: compare the base" $M img compare "$B" "$T/c3.raw"
	refused "immutable held: snapshot -c on the base" "$B" vm-imm 1 $M img snapshot -c x "$B"
	diff=$(ls "$T"/state/*.immutable.qcow2 2>/dev/null | head -1)
	if [ -n "$diff" ]; then
		refused "immutable held: info on the differencing image" "$diff" vm-imm 1 $M img info "$diff"
		works "immutable held: info -U on the differencing image" $M img info -U "$diff"
	else
		fail "immutable held: differencing image exists"
	fi
	unhold
else
	fail "immutable holder: holds base.qcow2" "$(cat "$T/hold.err")"
	unhold_kill
fi

# ---- the same for a format whose read-write open itself writes (Parallels sets an in-use flag)
if $M img create -f parallels "$T/p.hdd.img" 4M >/dev/null 2>&1; then
	if hold vm-prl normal "$T/p.hdd.img"; then
		refused "parallels held: resize (refused before the open touches the header)" "$T/p.hdd.img" vm-prl 1 $M img resize -f parallels "$T/p.hdd.img" 8M
		refused "parallels held: check" "$T/p.hdd.img" vm-prl 1 $M img check -f parallels "$T/p.hdd.img"
		# a second VM is refused by the lock too, not by the in-use flag its open would set
		refused "parallels held: a second VM is refused by the lock" "$T/p.hdd.img" vm-prl 1 \
			hold_once vm-prl2 normal "$T/p.hdd.img"
		unhold
		works "parallels released: check" $M img check -f parallels "$T/p.hdd.img"
	else
		fail "parallels holder" "$(cat "$T/hold.err")"
		unhold_kill
	fi
fi

# ---- a holder this user's runtime dir does not list (another user's VM): refused, unnamed ----
mkdir -m 700 "$T/run2"
if XDG_RUNTIME_DIR="$T/run2" hold vm-elsewhere normal "$B"; then
	cp "$B" "$T/before"
	$M img resize "$B" 16M >/dev/null 2>"$T/u.err"; rc=$?
	[ $rc = 1 ] && grep -qF "$B: locked by another process (it is being written)" "$T/u.err" &&
		cmp -s "$B" "$T/before" && pass "unlisted holder: refused as 'locked by another process'" ||
		fail "unlisted holder: refused as 'locked by another process'" "rc $rc $(cat "$T/u.err")"
	unhold
else
	fail "unlisted holder: holds base.qcow2" "$(cat "$T/hold.err")"
	unhold_kill
fi

# ---- the command's own locks: the input's chain is read-locked while the output is written ----
$M img convert -n -O qcow2 "$TOP" "$B" >/dev/null 2>"$T/u.err"; rc=$?
[ $rc = 1 ] && grep -qF "$B: is the input image's backing file" "$T/u.err" &&
	pass "convert -n into the input's own backing file: said so, not a lock conflict" ||
	fail "convert -n into the input's own backing file: said so, not a lock conflict" "rc $rc $(cat "$T/u.err")"
cp "$B" "$T/before"
$M img rebase -b base.qcow2 -F qcow2 "$B" >/dev/null 2>"$T/u.err"; rc=$?
[ $rc = 1 ] && grep -qF "$B: cannot be its own backing file" "$T/u.err" && cmp -s "$B" "$T/before" &&
	pass "rebase onto itself: said so, not a lock conflict" ||
	fail "rebase onto itself: said so, not a lock conflict" "rc $rc $(cat "$T/u.err")"
works "commit into a base the overlay's chain read-locks" $M img commit "$TOP"
check "commit: qemu-img compare overlay and base" qemu-img compare "$TOP" "$B"

# ---- holder misuse ----
$M disk-lock-hold 'bad/name' normal "$B" </dev/null >/dev/null 2>&1; rc=$?
[ $rc = 2 ] && pass "disk-lock-hold: a bad name is a usage error" || fail "disk-lock-hold: a bad name is a usage error" "rc $rc"
$M disk-lock-hold vm1 sideways "$B" </dev/null >/dev/null 2>&1; rc=$?
[ $rc = 2 ] && pass "disk-lock-hold: a bad mode is a usage error" || fail "disk-lock-hold: a bad mode is a usage error" "rc $rc"

img_done
