# shellcheck shell=bash
# Drives one level-2 guest from an e2e test or a benchmark (sourced, bash; needs a usable /dev/kvm).
#
#   gt_setup                          makes $GT_WORK (removed on exit, with any guest still running)
#   guest_start NAME CPUS MIB INITRD [APPEND]
#       boots the stock kernel with INITRD under $GT_VMM (default ./minivmm; "qemu" runs
#       qemu-system-x86_64 -accel kvm -M q35, the reference) with the console on a pipe we write
#       and a log we read: $GT_WORK/NAME.console.  NAME is also the minivmm --name; the array
#       GT_RUN_ARGS, when set, is added to minivmm's command line (disks, --state-dir, ...).
#   guest_wait NAME PATTERN [SECONDS]   waits until the console shows PATTERN (grep -E); 1 if the VMM
#                                       exits first or SECONDS (default $GT_WAIT, 300) pass: the bound
#                                       only stops a hang, no result depends on it.
#   guest_send NAME LINE                types LINE and Enter on the console
#   guest_value NAME KEY                last value printed by the guest as "GT: KEY=VALUE"
#   guest_wait_exit NAME [SECONDS]      waits for the VMM to end; its exit code in $GT_RC (timeout:
#                                       killed, 124).  Not in $(...): the VMM is this shell's child.
#   guest_start_fw NAME CPUS MIB    like guest_start, but with no --kernel: the firmware (SeaBIOS)
#                                   boots what GT_RUN_ARGS's disks hold (minivmm only)
#   guest_pid NAME
#   gt_pass NAME / gt_fail NAME WHY     one result line; gt_fail also shows the end of the console
#   gt_check NAME CMD...                gt_pass or gt_fail by CMD's exit status
#   gt_md5 FILE                         the md5 of FILE's contents
#   GT_TIMES=1                          each result line is followed by "# +N s" (since gt_setup)

GT_LIB=${GT_LIB:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
. "$GT_LIB/initramfs.sh"

GT_VMM=${GT_VMM:-minivmm}
GT_MINIVMM=${GT_MINIVMM:-./minivmm}
declare -A _gt_pid=() _gt_fd=()
_gt_last=""

gt_setup() {
	GT_WORK=$(mktemp -d "${TMPDIR:-/tmp}/gt-e2e.XXXXXX") || exit 1
	_gt_t0=$SECONDS
	trap gt_teardown EXIT
	# Killed by run-e2e.sh's timeout: say where the guest was before going.
	trap 'echo "# terminated; last console lines of ${_gt_last:-no guest}:"; _gt_tail; exit 143' TERM
}

_gt_tail() {
	[ -n "$_gt_last" ] && [ -f "$GT_WORK/$_gt_last.console" ] || return 0
	tr -d '\r' <"$GT_WORK/$_gt_last.console" | grep -a -v '^GT-TICK' | tail -15 | sed 's/^/    /'
	[ -s "$GT_WORK/$_gt_last.stderr" ] && sed 's/^/    stderr: /' "$GT_WORK/$_gt_last.stderr" | tail -5
	return 0
}

gt_teardown() {
	local n
	for n in "${!_gt_pid[@]}"; do
		kill -KILL "${_gt_pid[$n]}" 2>/dev/null
	done
	[ -n "${GT_WORK:-}" ] && rm -rf "$GT_WORK"
}

# GT_TIMES=1: a "# +N s" line (seconds since gt_setup) after each result, to see where a test's time goes.
_gt_time() { [ -z "${GT_TIMES:-}" ] || echo "# +$((SECONDS - _gt_t0)) s"; }
gt_pass() {
	echo "PASS: $1"
	_gt_time
}
gt_check() { # NAME, then a command: PASS if it succeeds
	local name=$1
	shift
	if "$@"; then gt_pass "$name"; else gt_fail "$name"; fi
}
gt_expect() { # NAME WANT GOT: PASS when GOT is WANT
	[ "$2" = "$3" ] && gt_pass "$1" || gt_fail "$1" "want '$2', got '$3'"
}
# gt_refused NAME PATTERN CMD...: CMD (a control request) exits non-zero and says PATTERN.
gt_refused() {
	local name=$1 pat=$2 out rc
	shift 2
	out=$("$@" 2>&1)
	rc=$?
	[ $rc -ne 0 ] && echo "$out" | grep -q "$pat" && gt_pass "$name refused ($out)" ||
		gt_fail "$name refused" "exit $rc: $out"
}
gt_md5() { md5sum <"$1" | cut -d' ' -f1; }
gt_fail() {
	echo "FAIL: $1${2:+ ($2)}"
	_gt_time
	echo "# last console lines of ${_gt_last:-no guest}:"
	_gt_tail
}

# Start CMD... as guest NAME with its console on a FIFO we write and a log we read.
_gt_spawn() {
	local name=$1 fifo=$GT_WORK/$1.in fd
	shift
	mkfifo "$fifo" || return 1
	# Read-write open of a FIFO does not block; keeping it open means the VMM never sees EOF.
	exec {fd}<>"$fifo"
	"$@" <"$fifo" >"$GT_WORK/$name.console" 2>"$GT_WORK/$name.stderr" &
	_gt_pid[$name]=$!
	_gt_fd[$name]=$fd
	_gt_last=$name
}

guest_start() {
	local name=$1 cpus=$2 mib=$3 initrd=$4 append="console=ttyS0 quiet panic=-1 ${5:-}"
	local kernel
	kernel=$(gt_kernel)
	case $GT_VMM in
	minivmm)
		_gt_spawn "$name" "$GT_MINIVMM" run --name "$name" --cpus "$cpus" --memory "$mib" \
			--kernel "$kernel" --initrd "$initrd" --append "$append" --console stdio \
			${GT_RUN_ARGS[@]+"${GT_RUN_ARGS[@]}"}
		;;
	qemu)
		# -cpu host: the guest sees the CPU features minivmm passes through too.
		_gt_spawn "$name" qemu-system-x86_64 -accel kvm -M q35 -cpu host -smp "$cpus" -m "$mib" \
			-nodefaults -display none -no-reboot -serial stdio -kernel "$kernel" \
			-initrd "$initrd" -append "$append"
		;;
	*)
		echo "guest_start: unknown GT_VMM $GT_VMM" >&2
		return 2
		;;
	esac
}

guest_start_fw() {
	_gt_spawn "$1" "$GT_MINIVMM" run --name "$1" --cpus "$2" --memory "$3" --console stdio \
		${GT_RUN_ARGS[@]+"${GT_RUN_ARGS[@]}"}
}

guest_pid() { echo "${_gt_pid[$1]}"; }

# The serial console ends lines with CR LF: drop the CR so that patterns may end with $.
_gt_seen() {
	tr -d '\r' <"$GT_WORK/$1.console" 2>/dev/null | grep -a -q -E "$2"
}

guest_wait() {
	local name=$1 pattern=$2 limit=$((${3:-${GT_WAIT:-300}} * 2)) i=0
	while [ $i -lt $limit ]; do
		_gt_seen "$name" "$pattern" && return 0
		kill -0 "${_gt_pid[$name]}" 2>/dev/null || {
			_gt_seen "$name" "$pattern"
			return
		}
		sleep 0.5 # each poll spawns processes: in level 1 (TCG) they compete with the guest
		i=$((i + 1))
	done
	return 1
}

guest_send() {
	printf '%s\r' "$2" >&"${_gt_fd[$1]}"
}

guest_value() {
	grep -a -o -E "^GT: $2=[^[:space:]]*" "$GT_WORK/$1.console" | tail -1 | sed "s/^GT: $2=//"
}

# guest_query NAME CMD [SECONDS]: run CMD in the guest's shell and print its output (one word).
# Each query has its own key, counted in a file because callers run it in $(...) subshells.
guest_query() {
	local name=$1 seq
	seq=$(($(cat "$GT_WORK/.query_seq" 2>/dev/null || echo 0) + 1))
	echo $seq >"$GT_WORK/.query_seq"
	# G""T: the console's echo of the command, wrapped at 80 columns, never reads as the answer.
	guest_send "$name" "echo \"G\"\"T: q$seq=\$($2)\""
	guest_wait "$name" "^GT: q$seq=" "${3:-120}" >/dev/null
	guest_value "$name" "q$seq"
}

guest_wait_exit() {
	local name=$1 limit=$((${2:-${GT_WAIT:-300}} * 2)) i=0 pid=${_gt_pid[$1]}
	while kill -0 "$pid" 2>/dev/null; do
		if [ $i -ge $limit ]; then
			kill -KILL "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
			unset "_gt_pid[$name]"
			export GT_RC=124
			return
		fi
		sleep 0.5
		i=$((i + 1))
	done
	wait "$pid"
	export GT_RC=$?
	unset "_gt_pid[$name]"
	local fd=${_gt_fd[$name]}
	exec {fd}>&-
}
