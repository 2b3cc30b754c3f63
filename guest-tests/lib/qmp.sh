# shellcheck shell=bash
# QMP, QEMU's JSON monitor, from bash over a pipe chardev: for benchmarks that drive QEMU as the
# peer of a minivmm control verb (sourced after guest.sh; needs $GT_WORK).
#
#   qmp_prepare NAME      makes the FIFOs $GT_WORK/NAME.qmp.in/.out, keeps them open and sets the
#                         array QMP_ARGS (-chardev pipe ... -mon ...,mode=control) for QEMU's line
#   qmp_connect NAME      reads QEMU's greeting and enters command mode (qmp_capabilities)
#   qmp NAME JSON         sends one command and prints its reply line ({"return": ...}); returns 1
#                         on an {"error": ...} reply (printed too) or when none comes in
#                         $QMP_WAIT (60) s.  Events arriving meanwhile are skipped.
declare -A _qmp_in=() _qmp_out=()
QMP_ARGS=()

qmp_prepare() {
	local p=$GT_WORK/$1.qmp fd
	mkfifo "$p.in" "$p.out" || return 1
	# Read-write opens of the FIFOs never block and keep them open for QEMU's whole life.
	exec {fd}<>"$p.in"
	_qmp_in[$1]=$fd
	exec {fd}<>"$p.out"
	_qmp_out[$1]=$fd
	QMP_ARGS=(-chardev "pipe,id=qmp-$1,path=$p" -mon "chardev=qmp-$1,mode=control")
}

_qmp_reply() { # NAME: the next line that is not an event
	local line
	while IFS= read -r -t "${QMP_WAIT:-60}" -u "${_qmp_out[$1]}" line; do
		line=${line%$'\r'}
		case $line in
		'{"return"'* | '{"QMP"'*) echo "$line"; return 0 ;;
		'{"error"'*) echo "$line"; return 1 ;;
		esac
	done
	echo "qmp: no reply from $1 within ${QMP_WAIT:-60} s" >&2
	return 1
}

qmp_connect() {
	_qmp_reply "$1" >/dev/null || return 1
	qmp "$1" '{"execute": "qmp_capabilities"}' >/dev/null
}

qmp() {
	printf '%s\n' "$2" >&"${_qmp_in[$1]}" || return 1
	_qmp_reply "$1"
}
