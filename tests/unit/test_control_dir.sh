#!/bin/bash
# The control directory cannot be taken by another local user (issue 10). Without XDG_RUNTIME_DIR
# and /run/user/UID, minivmm used /tmp/minivmm-UID, which anyone can create first: the victim then
# could not start or list a VM. Now a user without either uses ~/.local/state/minivmm/run (root:
# /run/minivmm). Needs root (to act as two other users); prints a note and no PASS otherwise.
# One line per case: PASS: name / FAIL: name.
set -u
cd "$(dirname "$0")/../.."
if [ "$(id -u)" != 0 ]; then
	echo "note: not root, cannot act as a second user: test_control_dir skipped"
	exit 0
fi
VICTIM=65534   # nobody
ATTACKER=65533 # any other uid
T=$(mktemp -d)
chmod 755 "$T"
cp ./minivmm "$T/minivmm"
chmod 755 "$T/minivmm"
mkdir -m 700 "$T/home"
chown "$VICTIM:$VICTIM" "$T/home"
TRAP=/tmp/minivmm-$VICTIM
made_trap=0
pids=()

cleanup() {
	for p in "${pids[@]+"${pids[@]}"}"; do kill -TERM "$p" 2>/dev/null; done
	# `as_victim ... &` runs in a subshell: $! is that subshell, not the server it starts, which
	# outlived the test (it held a make check's inherited fds for an hour).
	pkill -TERM -f "^$T/minivmm " 2>/dev/null
	wait 2>/dev/null
	[ $made_trap = 1 ] && rm -rf "$TRAP"
	rm -f "/run/minivmm/ctldir-root-$$.sock" "/run/minivmm/ctldir-root-$$.lock"
	rm -rf "$T"
}
trap cleanup EXIT

pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1${2:+ ($2)}"; }

as_victim() { # a login-less user: no XDG_RUNTIME_DIR, no /run/user/UID
	env -i PATH=/usr/bin:/bin HOME="$T/home" \
		setpriv --reuid=$VICTIM --regid=$VICTIM --clear-groups "$@"
}

# The attacker creates the old predictable directory first (mode 0777, so it even looks usable).
if [ ! -e "$TRAP" ]; then
	setpriv --reuid=$ATTACKER --regid=$ATTACKER --clear-groups mkdir -m 777 "$TRAP" && made_trap=1
fi
[ -d "$TRAP" ] && [ "$(stat -c %u "$TRAP")" != $VICTIM ] && pass "attacker owns $TRAP" ||
	fail "attacker owns $TRAP"

# The victim starts a control server (what `run` does first) and lists it.
fifo=$T/fifo
mkfifo "$fifo"
chmod 666 "$fifo"
as_victim "$T/minivmm" control-test-server ctldir-vm >"$fifo" 2>"$T/err" &
pids+=($!)
read -r line <"$fifo"
[ "$line" = ready ] && pass "victim starts a VM despite $TRAP" || fail "victim starts a VM despite $TRAP" "$(cat "$T/err")"
as_victim "$T/minivmm" list >"$T/out" 2>"$T/err"
grep -q '^ctldir-vm ' "$T/out" && pass "victim lists it" || fail "victim lists it" "$(cat "$T/out" "$T/err")"
as_victim "$T/minivmm" control ctldir-vm echo hi >"$T/out" 2>"$T/err"
grep -q '^args: hi$' "$T/out" && pass "victim controls it" || fail "victim controls it" "$(cat "$T/out" "$T/err")"
sock=$T/home/.local/state/minivmm/run/ctldir-vm.sock
[ -S "$sock" ] && [ "$(stat -c %a "$T/home/.local/state/minivmm/run")" = 700 ] &&
	pass "its socket is in ~/.local/state/minivmm/run (0700)" || fail "its socket is in ~/.local/state/minivmm/run (0700)"
[ -z "$(ls -A "$TRAP" 2>/dev/null)" ] && pass "nothing went into $TRAP" || fail "nothing went into $TRAP"

# XDG_STATE_HOME moves it.
mkdir -m 700 "$T/home/st"
chown "$VICTIM:$VICTIM" "$T/home/st"
env -i PATH=/usr/bin:/bin HOME="$T/home" XDG_STATE_HOME="$T/home/st" \
	setpriv --reuid=$VICTIM --regid=$VICTIM --clear-groups "$T/minivmm" list >"$T/out" 2>"$T/err"
[ $? = 0 ] && [ -d "$T/home/st/minivmm/run" ] && ! grep -q ctldir-vm "$T/out" &&
	pass "XDG_STATE_HOME/minivmm/run is used when set" || fail "XDG_STATE_HOME/minivmm/run is used when set" "$(cat "$T/out" "$T/err")"

# Root without XDG_RUNTIME_DIR and /run/user/0 uses /run/minivmm.
if [ ! -e /run/user/0 ]; then
	mkfifo "$T/fifo2"
	env -u XDG_RUNTIME_DIR "$T/minivmm" control-test-server "ctldir-root-$$" >"$T/fifo2" 2>"$T/err" &
	pids+=($!)
	read -r line <"$T/fifo2"
	[ "$line" = ready ] && [ -S "/run/minivmm/ctldir-root-$$.sock" ] &&
		[ "$(stat -c '%u %a' /run/minivmm)" = "0 700" ] &&
		pass "root uses /run/minivmm" || fail "root uses /run/minivmm" "$(cat "$T/err")"
	env -u XDG_RUNTIME_DIR "$T/minivmm" list >"$T/out" 2>&1
	grep -q "^ctldir-root-$$ " "$T/out" && pass "root lists it" || fail "root lists it" "$(cat "$T/out")"
fi
