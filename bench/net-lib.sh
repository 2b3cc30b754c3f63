# shellcheck shell=bash
# The set-up bench/net.sh and bench/net-profile.sh share (sourced from the repository's root, after
# guest-tests/lib/level1.sh and guest-tests/lib/guest.sh): into level 1 when there is no usable
# /dev/kvm, a work directory with the guests' initramfs (guest-tests/e2e/net-init.sh), network
# namespaces, guests on a minivmm switch or TAP or on QEMU's -netdev tap, the host end with its
# HTTP server, and commands run in the guests.  Link-local addresses only: A is 169.254.1.1, B
# 169.254.1.2, the host end 169.254.50.1.

# Run SCRIPT inside level 1 (and exit with its status) when this machine has no usable /dev/kvm.
net_bench_level1() { # SCRIPT
	local rc
	[ "${GT_LEVEL:-}" = 1 ] && return 0
	[ -x ./minivmm ] || { echo "$1: ./minivmm is not built (run make)" >&2; exit 1; }
	gt_host_kvm_usable && return 0
	echo "# net: no usable /dev/kvm here: measuring inside level 1 (QEMU TCG, nested KVM)"
	level1_run "$1"
	rc=$?
	level1_cleanup
	exit $rc
}

NET_NS=()
NET_SWITCHES=()
NET_HTTPD=()
net_bench_teardown() {
	local n p
	for n in "${!_gt_pid[@]}"; do kill -KILL "${_gt_pid[$n]}" 2>/dev/null; done
	for p in "${NET_HTTPD[@]}"; do kill "$p" 2>/dev/null; done
	for n in "${NET_SWITCHES[@]}"; do "$GT_MINIVMM" switch stop "$n" >/dev/null 2>&1; done
	for n in "${NET_NS[@]}"; do ip netns del "$n" 2>/dev/null; done
	rm -rf "$W"
}

# W (the work directory), XDG_RUNTIME_DIR in it, $W/net.cpio; everything undone at exit.
net_bench_setup() {
	gt_setup
	W=$GT_WORK
	export XDG_RUNTIME_DIR=$W/run
	mkdir -m 700 "$XDG_RUNTIME_DIR"
	trap net_bench_teardown EXIT
	PATH=$PATH:/sbin:/usr/sbin
	[ -e /dev/net/tun ] || modprobe tun
	modprobe bridge 2>/dev/null
	initramfs_build "$W/net.cpio" guest-tests/e2e/net-init.sh -m "virtio_pci virtio_net"
}

net_ns_add() { # NS
	ip netns add "$1" && NET_NS+=("$1")
}

# Switch NAME in namespace NS with its TAP uplink TAP.
net_switch_start() { # NS NAME TAP
	ip netns exec "$1" "$GT_MINIVMM" switch start "$2" --uplink "$3" >/dev/null && NET_SWITCHES+=("$2")
}

# The host end in NS on interface IF (169.254.50.1), with an HTTP server on port 8081 serving
# DIR when given.
net_host_end() { # NS IF [DIR]
	ip netns exec "$1" ip addr add 169.254.50.1/16 dev "$2" && ip netns exec "$1" ip link set "$2" up || return 1
	[ -n "${3:-}" ] || return 0
	ip netns exec "$1" busybox httpd -f -p 8081 -h "$3" &
	NET_HTTPD+=($!)
}

# A guest with one NIC, run in namespace NS.  minivmm: NIC is its --nic value (switch=S or
# tap=T); qemu: NIC is the TAP QEMU creates (-netdev tap, virtio-net-pci, modern only).
net_vm_start() { # VMM NAME IP MAC MEMORY NS NIC
	local vmm=$1 name=$2 ip=$3 mac=$4 mem=$5 ns=$6 nic=$7 fd append
	append="console=ttyS0 quiet panic=-1 gt_net=eth0:$ip/16"
	mkfifo "$W/$name.in" || return 1
	exec {fd}<>"$W/$name.in"
	case $vmm in
	minivmm)
		ip netns exec "$ns" "$GT_MINIVMM" run --name "$name" --memory "$mem" --kernel "$(gt_kernel)" \
			--initrd "$W/net.cpio" --append "$append" --console stdio --nic "$nic,mac=$mac" \
			<"$W/$name.in" >"$W/$name.console" 2>"$W/$name.stderr" &
		;;
	qemu)
		ip netns exec "$ns" qemu-system-x86_64 -accel kvm -M q35 -cpu host -smp 1 -m "$mem" \
			-nodefaults -display none -no-reboot -serial stdio -kernel "$(gt_kernel)" \
			-initrd "$W/net.cpio" -append "$append" \
			-netdev "tap,id=n0,ifname=$nic,script=no,downscript=no" \
			-device "virtio-net-pci,netdev=n0,mac=$mac,disable-legacy=on" \
			<"$W/$name.in" >"$W/$name.console" 2>"$W/$name.stderr" &
		;;
	esac
	_gt_pid[$name]=$!
	_gt_fd[$name]=$fd
	_gt_last=$name
}

# Guests A (169.254.1.1) and B (169.254.1.2) of VMM, each with NIC NICA / NICB, up and warm (ARP
# done both ways to each other and to the host end).
net_two_vms() { # VMM A B MEMORY NS NICA NICB
	local t k
	net_vm_start "$1" "$2" 169.254.1.1 02:00:00:00:01:01 "$4" "$5" "$6" || return 1
	net_vm_start "$1" "$3" 169.254.1.2 02:00:00:00:01:02 "$4" "$5" "$7" || return 1
	if [ "$1" = qemu ]; then
		for t in "$6" "$7"; do # QEMU made its TAPs: onto the bridge
			for k in $(seq 100); do ip netns exec "$5" ip link show "$t" >/dev/null 2>&1 && break; sleep 0.2; done
			ip netns exec "$5" ip link set "$t" master "$NET_BRIDGE" up || return 1
		done
	fi
	guest_wait "$2" '^GT: ready' && guest_wait "$3" '^GT: ready' || {
		echo "# net: $1: guests did not come up"
		_gt_tail
		return 1
	}
	net_run "$2" warm 'ping -c 2 169.254.1.2 >/dev/null; ping -c 2 169.254.50.1 >/dev/null; echo GT: warm=1'
}

# Run a command line in a guest and wait for the GT line it prints.
net_run() { # NAME KEY COMMAND
	guest_send "$1" "$3"
	guest_wait "$1" "^GT: $2=" 600
}

# The average round trip (ms) of COUNT pings from guest NAME to DEST, INTERVAL s apart (ping's
# default 1 s when not given).
net_ping_avg() { # NAME KEY DEST COUNT [INTERVAL]
	net_run "$1" "$2" "echo GT: $2=\$(ping -c $4 ${5:+-i $5} $3 | sed -n 's|.*= [0-9.]*/\\([0-9.]*\\)/.*|\\1|p')"
	guest_value "$1" "$2"
}

net_poweroff() { # NAME...
	local t
	for t in "$@"; do
		guest_send "$t" 'poweroff -f'
		guest_wait_exit "$t" 120
	done
}
