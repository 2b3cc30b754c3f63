# shellcheck shell=bash
# Helpers of the switch and virtio-net e2e tests (sourced after ../lib/guest.sh; needs $W, the
# initramfs $W/init.cpio built from net-init.sh, and $GT_MINIVMM).

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
