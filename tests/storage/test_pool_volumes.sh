#!/bin/bash
# Storage pools and volumes (`minivmm pool`, `minivmm vol`; storage/pool, tools/pool): pools
# defined, listed, refused (taken names, one directory twice, bad names, broken definitions);
# volumes in every format, thin and thick, checked against qemu-img (format, size, allocation,
# `check` clean); backing volumes and clones with their data (qemu-img compare); a volume a running
# VM holds (`minivmm disk-lock-hold`, a VM's own open path) is listed as in use by that VM and
# cannot be deleted or resized; nor can a volume another one backs onto; a flat VMDK goes with its
# extent; `run --disk pool:POOL/VOL` resolves to the volume (and says so when it cannot).
set -u
cd "$(dirname "$0")/../.."
. tests/storage/img_test_lib.sh
img_holder_setup
trap '[ -n "$HOLD_PID" ] && kill -9 "$HOLD_PID" 2>/dev/null; rm -rf "$T"' EXIT
export MINIVMM_CONFIG_DIR="$T/cfg"
cd "$T"

# one_line_error NAME CMD...: CMD fails (non-zero) with exactly one line on stderr.
one_line_error() {
	local name=$1
	shift
	"$@" >"$T/e.out" 2>"$T/e.err"
	local rc=$?
	if [ $rc = 0 ]; then
		fail "$name" "it succeeded"
	elif [ "$(wc -l <"$T/e.err")" != 1 ]; then
		fail "$name" "stderr: $(head -c 300 "$T/e.err" | tr '\n' '|')"
	else
		pass "$name"
	fi
}
qfield() { # FILE KEY: a field of qemu-img info's JSON
	qemu-img info -U --output=json "$1" | python3 -c "import json,sys; print(json.load(sys.stdin).get('$2'))"
}
vfield() { # POOL/VOL KEY: a field of vol info --json
	$M vol info "$1" --json | python3 -c "import json,sys; print(json.load(sys.stdin).get('$2'))"
}

# ---- pools ----
check "pool create makes the directory" $M pool create p1 store/one
[ -d store/one ] && pass "pool directory exists" || fail "pool directory exists"
one_line_error "a taken pool name is refused" $M pool create p1 elsewhere
one_line_error "one directory under two names is refused" $M pool create p2 ./store/../store/one
one_line_error "a pool name with a slash is refused" $M pool create a/b x
one_line_error "a pool name starting with a dot is refused" $M pool create .p x
one_line_error "an unknown pool is refused" $M pool info nosuch
check "a second pool" $M pool create p2 store/two
$M pool list >list.out 2>&1
grep -q "^p1 .*$T/store/one" list.out && grep -q "^p2 " list.out && pass "pool list shows both" ||
	fail "pool list shows both" "$(tr '\n' '|' <list.out)"
[ "$($M pool list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 2 ] &&
	pass "pool list --json" || fail "pool list --json"
echo '{"name":"p3","type":"dir"' >"$T/cfg/pools/p3.json"
one_line_error "a broken definition is a one-line error" $M pool info p3
rm "$T/cfg/pools/p3.json"

# ---- volumes in every format, thin and thick ----
declare -A EXT=([raw]=img [qcow2]=qcow2 [vdi]=vdi [vmdk]=vmdk [vpc]=vhd [vhdx]=vhdx [parallels]=hdd)
for fmt in $(img_formats); do
	ext=${EXT[$fmt]}
	# The size qemu-img gives this format for 64M (VHD rounds to its disk geometry).
	qemu-img create -q -f $fmt ref.$ext 64M
	want=$(img_vsize ref.$ext)
	check "vol create thin $fmt" $M vol create p1/thin.$ext 64M
	check "vol create -f $fmt (no extension)" $M vol create p1/plain-$fmt 16M -f $fmt
	got=$(qfield store/one/thin.$ext format)
	[ "$got" = "$fmt" ] && pass "qemu-img sees $fmt" || fail "qemu-img sees $fmt" "$got"
	[ "$(vfield p1/thin.$ext capacity)" = "$want" ] && pass "vol info capacity ($fmt)" ||
		fail "vol info capacity ($fmt)" "$(vfield p1/thin.$ext capacity), want $want"
	[ "$(img_vsize store/one/thin.$ext)" = "$want" ] && pass "qemu-img size ($fmt)" ||
		fail "qemu-img size ($fmt)" "$(img_vsize store/one/thin.$ext)"
	case $fmt in raw | vpc) ;; *)
		check "qemu-img check clean (thin $fmt)" qemu-img check -q store/one/thin.$ext ;;
	esac
	if [ $fmt = parallels ]; then
		one_line_error "thick parallels is refused" $M vol create p1/thick.$ext 64M --thick
		[ ! -e store/one/thick.$ext ] && pass "nothing left by the refused create" ||
			fail "nothing left by the refused create"
		continue
	fi
	check "vol create thick $fmt" $M vol create p1/thick.$ext 64M --thick
	alloc=$(vfield p1/thick.$ext allocation)
	[ "$alloc" -ge 67108864 ] && pass "thick $fmt reserves its size ($alloc)" ||
		fail "thick $fmt reserves its size" "$alloc"
	[ "$(vfield p1/thin.$ext allocation)" -lt 16777216 ] && pass "thin $fmt does not" ||
		fail "thin $fmt does not" "$(vfield p1/thin.$ext allocation)"
	# A fixed VHD has no header to probe: qemu-img is told the format, as minivmm's volumes are.
	got=$(qemu-img info -f $fmt --output=json store/one/thick.$ext | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
	[ "$got" = "$want" ] && pass "qemu-img size (thick $fmt)" ||
		fail "qemu-img size (thick $fmt)"
	case $fmt in raw | vpc) ;; *)
		check "qemu-img check clean (thick $fmt)" qemu-img check -q store/one/thick.$ext ;;
	esac
done
one_line_error "a name saying another format than -f is refused" $M vol create p1/x.img 1M -f qcow2
one_line_error "a name without a format needs -f" $M vol create p1/noformat 1M
one_line_error "an existing volume is not overwritten" $M vol create p1/thin.qcow2 1M
one_line_error "a volume name with a slash is refused" $M vol create p1/a/b.qcow2 1M
one_line_error "a volume name .. is refused" $M vol create p1/.. 1M
one_line_error "a volume in an unknown pool is refused" $M vol create nosuch/a.qcow2 1M

# ---- backing volumes and clones ----
check "base volume" $M vol create p1/base.qcow2 8M
qemu-io -c 'write -P 0x5a 0 1M' -c 'write -P 0xa5 6M 512k' store/one/base.qcow2 >/dev/null
check "a volume backed by another" $M vol create p1/child.qcow2 -b base.qcow2
[ "$(qfield store/one/child.qcow2 backing-filename)" = base.qcow2 ] &&
	pass "the child names its backing relative to the pool" ||
	fail "the child names its backing relative to the pool" "$(qfield store/one/child.qcow2 backing-filename)"
qemu-io -c 'write -P 0x33 2M 64k' store/one/child.qcow2 >/dev/null
check "vol clone to VDI" $M vol clone p1/child.qcow2 copy.vdi
check "the clone holds what the chain shows" qemu-img compare -q store/one/child.qcow2 store/one/copy.vdi
[ "$(qfield store/one/copy.vdi backing-filename)" = None ] && pass "the clone stands alone" ||
	fail "the clone stands alone"
check "vol clone into another pool, thick raw" $M vol clone p1/child.qcow2 p2/copy.img --thick
check "the other pool's clone matches" qemu-img compare -q store/one/child.qcow2 store/two/copy.img
one_line_error "a clone over an existing volume is refused" $M vol clone p1/child.qcow2 copy.vdi
one_line_error "a backing volume cannot be deleted" $M vol delete p1/base.qcow2
[ -e store/one/base.qcow2 ] && pass "the backing volume is still there" || fail "the backing volume is still there"

# ---- a volume a running VM holds ----
if hold vm1 normal store/one/thin.qcow2; then
	pass "holder started"
	$M vol list p1 >vl.out 2>&1
	grep -q "^thin.qcow2 .* vm1$" vl.out && pass "vol list names the VM using it" ||
		fail "vol list names the VM using it" "$(grep thin.qcow2 vl.out)"
	[ "$(vfield p1/thin.qcow2 in-use)" = True ] && pass "vol info --json in-use" ||
		fail "vol info --json in-use"
	cp store/one/thin.qcow2 before
	$M vol delete p1/thin.qcow2 >d.out 2>d.err
	rc=$?
	[ $rc != 0 ] && grep -q "in use by running VM 'vm1'" d.err && [ -e store/one/thin.qcow2 ] &&
		pass "a held volume is not deleted" ||
		fail "a held volume is not deleted" "rc $rc: $(tr '\n' '|' <d.err)"
	one_line_error "a held volume is not resized" $M vol resize p1/thin.qcow2 128M
	one_line_error "a pool with a held volume is not deleted" $M pool delete p1
	cmp -s before store/one/thin.qcow2 && pass "the held volume is unchanged" ||
		fail "the held volume is unchanged"
	unhold
else
	fail "holder started" "$(cat "$T/hold.err")"
fi
check "free again: resize" $M vol resize p1/thin.qcow2 128M
[ "$(img_vsize store/one/thin.qcow2)" = 134217728 ] && pass "resized" || fail "resized"
check "free again: delete" $M vol delete p1/thin.qcow2
[ ! -e store/one/thin.qcow2 ] && pass "deleted" || fail "deleted"
if [ -e store/one/thick.vmdk ]; then
	ext_file=$(ls store/one | grep -- '-flat.vmdk$' | head -1)
	[ -n "$ext_file" ] && ! $M vol list p1 | grep -q "^$ext_file " &&
		pass "a flat VMDK's extent is not a volume of its own" ||
		fail "a flat VMDK's extent is not a volume of its own"
	check "delete the flat VMDK" $M vol delete p1/thick.vmdk
	[ -z "$(ls store/one | grep -- '-flat.vmdk$')" ] && pass "its extent went with it" ||
		fail "its extent went with it"
fi

# A descriptor naming an extent in a subdirectory: that extent is not a file of the pool, and the
# pool's file with the same last name (another volume's extent) is never taken for it.
if img_formats | grep -qx vmdk; then
	$M vol create p1/e1.vmdk 1M --thick >/dev/null && $M vol create p1/e2.vmdk 1M --thick >/dev/null
	mkdir -p store/one/sub && cp store/one/e2-flat.vmdk store/one/sub/e2-flat.vmdk
	sed -i 's#"e1-flat.vmdk"#"sub/e2-flat.vmdk"#' store/one/e1.vmdk
	$M vol delete p1/e1.vmdk >/dev/null 2>&1
	[ -e store/one/e2-flat.vmdk ] && [ -e store/one/sub/e2-flat.vmdk ] &&
		pass "deleting a volume never removes another's extent of the same name" ||
		fail "deleting a volume never removes another's extent of the same name"
fi

# ---- VMs name volumes as pool:POOL/VOL ----
$M run --disk pool:p1/missing.qcow2 >r.out 2>r.err
grep -q "$T/store/one/missing.qcow2" r.err && pass "run resolves pool:POOL/VOL to the pool's file" ||
	fail "run resolves pool:POOL/VOL to the pool's file" "$(head -c 300 r.err)"
one_line_error "run refuses an unknown pool" $M run --disk pool:nosuch/a.qcow2
one_line_error "run refuses a volume name leaving the pool" $M run --disk pool:p1/../x.img

check "pool delete forgets the pool" $M pool delete p2
[ -e store/two/copy.img ] && pass "its files stay" || fail "its files stay"
one_line_error "the deleted pool is gone" $M vol list p2
img_done
