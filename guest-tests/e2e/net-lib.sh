# shellcheck shell=bash
# Helpers of the switch and virtio-net e2e tests (sourced after ../lib/guest.sh; needs $W and
# $GT_MINIVMM; net_guest_start the initramfs $W/init.cpio built from net-init.sh).

# The switch tests' set-up: switch sockets under $W/run (XDG_RUNTIME_DIR), and at exit the
# switches started here stopped, the namespace deleted and the guests torn down.
net_setup() {
	export XDG_RUNTIME_DIR=$W/run
	mkdir -m 700 "$XDG_RUNTIME_DIR" || return 1
	_net_switches=()
	_net_ns=
	trap net_cleanup EXIT
}
net_cleanup() {
	local s
	for s in "${_net_switches[@]}"; do
		"$GT_MINIVMM" switch stop "$s" >/dev/null 2>&1
	done
	[ -z "$_net_ns" ] || ip netns del "$_net_ns" 2>/dev/null
	gt_teardown
}
# Start switch NAME (stopped at exit); its output in $W/NAME.out.
net_switch_start() { # NAME [OPTIONS...]
	_net_switches+=("$1")
	"$GT_MINIVMM" switch start "$@" >"$W/$1.out" 2>&1
}
# Start switch NAME with the TAP uplink TAP, both in a new network namespace NS (deleted at
# exit), the host end of the TAP up with ADDR/LEN; the switch's output in $W/NAME.out.
net_uplink_start() { # NS NAME TAP ADDR/LEN
	[ -e /dev/net/tun ] || modprobe tun
	ip netns add "$1" || return 1
	_net_ns=$1
	_net_switches+=("$2")
	ip netns exec "$1" "$GT_MINIVMM" switch start "$2" --uplink "$3" >"$W/$2.out" 2>&1 &&
		ip netns exec "$1" ip addr add "$4" dev "$3" &&
		ip netns exec "$1" ip link set "$3" up
}

# Start a guest whose init configures its NICs from gt_net (ethN:ADDR/LEN,...); NIC-ARGS are
# minivmm's --nic options.  NET_APPEND: more kernel arguments (gt_noblob: no file to serve).
net_guest_start() { # NAME GT_NET NIC-ARGS...
	local name=$1 net=$2 fd
	shift 2
	mkfifo "$W/$name.in" || return 1
	exec {fd}<>"$W/$name.in"
	"$GT_MINIVMM" run --name "$name" --memory 256 --kernel "$(gt_kernel)" --initrd "$W/init.cpio" \
		--append "console=ttyS0 quiet panic=-1 gt_net=$net ${NET_APPEND:-}" --console stdio "$@" \
		<"$W/$name.in" >"$W/$name.console" 2>"$W/$name.stderr" &
	_gt_pid["$name"]=$!
	_gt_fd["$name"]=$fd
	_gt_last=$name
}
# Run a command line in a guest and wait for the GT line it prints.
# The console echoes the typed command and wraps it at 80 columns, so a wrapped "GT: KEY=" of the
# command itself could start a line and pass for its answer: it is typed as G""T, which the
# guest's shell prints as GT, quoted or not.
run_in() { # NAME KEY COMMAND
	guest_send "$1" "${3//GT: /G\"\"T: }"
	guest_wait "$1" "^GT: $2=" 120 || return 1
}
v() { guest_value "$1" "$2"; }
# A comment line with the seconds since the test started: where a test's time goes.
net_mark() { echo "# at $SECONDS s: $*"; }
