#!/bin/bash
# `minivmm control` and `minivmm list` against `minivmm control-test-server` (fake verbs echo, fail,
# info).  One line per case: PASS: name / FAIL: name.  Needs ./minivmm built.
set -u
export XDG_RUNTIME_DIR=$(mktemp -d)
RT=$XDG_RUNTIME_DIR/minivmm
OUT=$XDG_RUNTIME_DIR/out
ERR=$XDG_RUNTIME_DIR/err
pids=()

cleanup() {
	for p in "${pids[@]+"${pids[@]}"}"; do kill -TERM "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$XDG_RUNTIME_DIR"
}
trap cleanup EXIT

check() { # $1 name, then a command: PASS when it succeeds
	local name=$1
	shift
	if "$@"; then echo "PASS: $name"; else echo "FAIL: $name"; fi
}

# Starts a server in the background; sets $server_pid once it printed "ready" (no sleeps: the
# fifo read returns when the line comes, or at EOF if the server died).
start_server() {
	local fifo=$XDG_RUNTIME_DIR/fifo.$1 line=""
	mkfifo "$fifo"
	./minivmm control-test-server "$@" >"$fifo" 2>"$ERR.server" &
	server_pid=$!
	pids+=("$server_pid")
	read -r line <"$fifo"
	rm -f "$fifo"
	[ "$line" = ready ]
}

run() { # runs ./minivmm "$@", stdout in $OUT, stderr in $ERR, exit code in $rc
	./minivmm "$@" >"$OUT" 2>"$ERR"
	rc=$?
}

expect() { # $1 expected rc, $2 expected stdout, $3 expected stderr
	[ "$rc" = "$1" ] && [ "$(cat "$OUT")" = "$2" ] && [ "$(cat "$ERR")" = "$3" ]
}

check server_starts start_server cli1
pid1=$server_pid

run control cli1 echo a "b c"
check human_output expect 0 "verb: echo
count: 2
args: a,b c
nested.first: a
nested.last: b c" ""

run control cli1 echo x --json
check json_output expect 0 \
	'{"version":1,"id":1,"ok":true,"result":{"verb":"echo","count":1,"args":["x"],"nested":{"first":"x","last":"x"}}}' ""

run control cli1 echo -- --json -x
check double_dash_passes_options expect 0 "verb: echo
count: 2
args: --json,-x
nested.first: --json
nested.last: -x" ""

run control cli1 fail disk full
check error_reply_exit_1 expect 1 "" "minivmm: control: cli1: failed on request: disk full"

run control cli1 fail --json
check error_reply_json expect 1 '{"version":1,"id":1,"ok":false,"error":"failed on request"}' \
	"minivmm: control: cli1: failed on request"

run control cli1 nosuchverb
check unknown_verb expect 1 "" "minivmm: control: cli1: unknown verb 'nosuchverb' (try 'help')"

run control cli1 help
check help_lists_verbs expect 0 "help: help
version: version
echo: echo [ARGS...]
fail: fail [WORDS...]
info: info" ""

run control cli1 version
check version_verb grep -qx "protocol: 1" "$OUT"

run control nosuch info
check unknown_vm expect 1 "" "minivmm: control: nosuch: no VM named 'nosuch' is running"

run control
check usage_no_args [ "$rc" = 2 ]
run control cli1
check usage_no_verb [ "$rc" = 2 ]
run control ../etc info
check usage_bad_name expect 2 "" "minivmm: control: invalid VM name '../etc'"
run control cli1 echo --timeout=abc
check usage_bad_timeout [ "$rc" = 2 ]
run control --help
check help_flag bash -c '[ $0 = 0 ] && grep -q "^usage: minivmm control" "$1"' "$rc" "$OUT"

check duplicate_name_refused bash -c \
	'./minivmm control-test-server cli1 >/dev/null 2>"$1"; [ $? = 1 ] && grep -q "'"'"'cli1'"'"' is already running" "$1"' \
	_ "$ERR"

check socket_modes bash -c '[ "$(stat -c %a "$1")" = 700 ] && [ "$(stat -c %a "$1/cli1.sock")" = 600 ]' _ "$RT"

start_server cli2 --no-info
pid2=$server_pid

run list
check list_lines expect 0 "$(printf '%-20s %-8s %s\n%-20s %-8s %s' cli1 "$pid1" running cli2 "$pid2" unknown)" ""

run list --json
check list_json expect 0 "[{\"name\":\"cli1\",\"pid\":$pid1,\"state\":\"running\",\"info\":{\"name\":\"cli1\",\"pid\":$pid1,\"state\":\"running\"}},{\"name\":\"cli2\",\"pid\":$pid2,\"state\":\"unknown\"}]" ""

# A killed VM leaves its socket behind: list drops it and removes the file.
start_server cli3
pid3=$server_pid
{
	kill -KILL "$pid3"
	wait "$pid3"
} 2>/dev/null
check killed_vm_leaves_socket [ -S "$RT/cli3.sock" ]
run list
check list_removes_stale bash -c '[ "$(wc -l <"$1")" = 2 ] && ! grep -q cli3 "$1" && [ ! -e "$2" ]' _ "$OUT" "$RT/cli3.sock"
check stale_name_reusable start_server cli3
kill -TERM "$server_pid"
wait "$server_pid"
check sigterm_exit_0 [ $? = 0 ]

kill -TERM "$pid1" "$pid2"
wait "$pid1"
r1=$?
wait "$pid2"
r2=$?
check stop_removes_sockets bash -c '[ $0 = 0 ] && [ $1 = 0 ] && [ -z "$(ls -A "$2")" ]' "$r1" "$r2" "$RT"

run list
check list_empty expect 0 "" ""
run list --json
check list_empty_json expect 0 "[]" ""

chmod 777 "$RT"
run list
check insecure_dir_refused bash -c '[ $0 = 1 ] && grep -q "writable by group or others" "$1"' "$rc" "$ERR"
chmod 700 "$RT"
