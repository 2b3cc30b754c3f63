# Shared helpers for tests/storage/test_img_*.sh (sourced; not a test itself).
# Each test prints "PASS: name" or "FAIL: name (why)"; run from the repository root.

# MINIVMM=path runs the tests against another build (e.g. ASan); absolute, so tests may cd
M=$(realpath "${MINIVMM:-./minivmm}")
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
FAILS=0

pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1${2:+ ($2)}"; FAILS=$((FAILS + 1)); }
check() { # check NAME COMMAND...: pass when the command succeeds
	local name=$1; shift
	if "$@" >"$T/check.out" 2>&1; then pass "$name"; else fail "$name" "$(head -c 300 "$T/check.out" | tr '\n' ' ')"; fi
}

# The formats this tree's minivmm can create, among those the tool knows.
img_formats() {
	local f
	for f in raw qcow2 vdi vmdk vpc vhdx parallels; do
		rm -f "$T/probe.$f"
		if $M img create -f "$f" "$T/probe.$f" 1M >/dev/null 2>&1; then echo "$f"; fi
		rm -f "$T/probe.$f"
	done
}

# A raw image with data, written zeroes, holes and unaligned pieces (8 MiB, fixed content).
img_make_pattern() { # FILE
	local f=$1
	truncate -s 8M "$f"
	# deterministic "random" data: the same bytes every run
	head -c 1048576 /dev/zero | tr '\0' 'A' >"$T/pa"
	python3 -c 'import sys,random; r=random.Random(42); sys.stdout.buffer.write(bytes(r.getrandbits(8) for _ in range(196608)))' >"$T/pb"
	dd if="$T/pb" of="$f" bs=64k seek=0 conv=notrunc status=none              # data at 0
	dd if="$T/pa" of="$f" bs=4k count=5 seek=100 conv=notrunc status=none       # 20 KiB at 400 KiB
	dd if=/dev/zero of="$f" bs=64k count=4 seek=20 conv=notrunc status=none     # written zeroes
	printf 'odd bytes in the middle' | dd of="$f" bs=1 seek=3000001 conv=notrunc status=none
	dd if="$T/pb" of="$f" bs=512 count=7 seek=10001 conv=notrunc status=none    # unaligned sectors
	dd if="$T/pa" of="$f" bs=64k count=2 seek=126 conv=notrunc status=none      # up to the end
}

# Normalise a `map --output=json` into "start length data|zero" lines, merging equal neighbours.
img_map_norm() { # FILE.json
	python3 - "$1" <<'PY'
import json, sys
runs = []
for e in json.load(open(sys.argv[1])):
    kind = "data" if e["data"] and not e["zero"] else "zero"
    if runs and runs[-1][2] == kind and runs[-1][0] + runs[-1][1] == e["start"]:
        runs[-1][1] += e["length"]
    else:
        runs.append([e["start"], e["length"], kind])
for r in runs:
    print(*r)
PY
}

img_vsize() { # FILE: virtual size according to qemu-img
	qemu-img info --output=json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])'
}

# Stand-ins for running VMs: `minivmm disk-lock-hold NAME MODE FILE` opens FILE as a VM does.
# Holders register in the runtime dir: a private one, so that no real VM interferes.
# img_holder_setup: that dir, before any hold.
img_holder_setup() {
	export XDG_RUNTIME_DIR="$T/run"
	mkdir -m 700 "$XDG_RUNTIME_DIR"
	HOLD_PID=
}

# hold NAME MODE FILE [STATE_DIR]: start a holder; returns once it holds the locks (it says so
# on a pipe: no sleeping), false when it could not.
hold() {
	rm -f "$T/hold.in" "$T/hold.out"
	mkfifo "$T/hold.in" "$T/hold.out"
	$M disk-lock-hold "$@" <"$T/hold.in" >"$T/hold.out" 2>"$T/hold.err" &
	HOLD_PID=$!
	exec 8>"$T/hold.in" 7<"$T/hold.out"
	local line=
	read -r line <&7
	[ "$line" = locked ]
}
# hold_once NAME MODE FILE: take the locks and let them go at once (a VM that starts and stops).
hold_once() {
	$M disk-lock-hold "$@" </dev/null
}
# unhold: close the holder's stdin (a clean exit); unhold_kill: kill -9 it.
unhold() {
	exec 8>&-
	wait "$HOLD_PID"
	exec 7<&-
	HOLD_PID=
}
unhold_kill() {
	kill -9 "$HOLD_PID"
	wait "$HOLD_PID" 2>/dev/null
	exec 8>&- 7<&-
	HOLD_PID=
}

img_done() {
	[ "$FAILS" -eq 0 ]
}
