#!/bin/bash
# Storage benchmark: minivmm img against qemu-img, side by side, in one run on one image.
#
#   bench/storage.sh            2 GiB raw image, half of it data (4 MiB of data, 4 MiB of hole, ...)
#   BENCH_SIZE_MB=256 bench/storage.sh   a smaller image for a quick look
#   BENCH_REPEAT=5 bench/storage.sh      5 runs per cell (default 3): the best for convert rows,
#                                        the median of turns taken with qemu-img/fio for the
#                                        bench and qcow2 rows
#   BENCH_ROWS=compressed BENCH_SIZE_MB=256 bench/storage.sh   only some row groups: a comma list
#                                        of convert, compressed, bench, qcow2 (default: all)
#   BENCH_BLOCK_SIZES="64k 1M" bench/storage.sh   only these of the bench rows' sizes (4k 64k 1M)
#
# Rows: convert raw->qcow2, raw->vdi/vmdk/vpc/vhdx/parallels, qcow2->raw, raw->qcow2 compressed (each when minivmm can
# create the format / write compressed), then qemu-img bench against minivmm img bench with the same
# options (4 KiB, 64 KiB and 1 MiB, reads and writes, O_DIRECT), minivmm's random-offset variant
# (random reads against fio's io_uring engine on the same file), and qcow2: allocating 64 KiB
# writes into an empty image, 64 KiB overwrites and 4 KiB random reads of a full one (fio on the
# file as reference for the reads).
# Each row prints both times in seconds and the ratio minivmm/qemu-img (below 1: minivmm faster);
# the bench and qcow2 rows also the lowest and highest ratio of a single round (see paired below),
# and the sequential rows fio's median time on the same file (io_uring, O_DIRECT, depth 32):
# wall, and the I/O time fio reports itself (without its start-up).
# Files live under /var/tmp (a real disk: /tmp may be tmpfs) and are removed at the end.
set -u
cd "$(dirname "$0")/.."
M=./minivmm
[ -x $M ] || { echo "bench/storage.sh: build ./minivmm first (make)" >&2; exit 1; }
command -v qemu-img >/dev/null || { echo "bench/storage.sh: qemu-img is not installed" >&2; exit 1; }
SIZE_MB=${BENCH_SIZE_MB:-2048}
D=$(mktemp -d /var/tmp/minivmm-bench.XXXXXX)
trap 'rm -rf "$D"' EXIT

now() { date +%s.%N; }
# timed OUTVAR COMMAND...: run quietly $REPEAT times, store the best time in seconds (or "fail").
# The best of several runs, because the machine's disk is shared and single runs are noisy.
REPEAT=${BENCH_REPEAT:-3}
timed() {
	local var=$1 t0 t1 best="" i; shift
	for ((i = 0; i < REPEAT; i++)); do
		[ -n "${PRE:-}" ] && $PRE
		t0=$(now)
		if ! "$@" >"$D/log" 2>&1; then
			printf -v "$var" 'fail'
			echo "  ($* failed: $(head -c 200 "$D/log"))" >&2
			return
		fi
		t1=$(now)
		local t
		t=$(echo "$t1 - $t0" | bc -l)
		if [ -z "$best" ] || [ "$(echo "$t < $best" | bc -l)" = 1 ]; then best=$t; fi
	done
	printf -v "$var" '%.3f' "$best"
}
row() { # NAME QEMU_SECONDS MINIVMM_SECONDS [RANGE]
	local ratio=-
	local num='^[0-9]+\.?[0-9]*$'
	if [[ $2 =~ $num ]] && [[ $3 =~ $num ]] && [ "$(echo "$2 > 0" | bc)" = 1 ]; then
		ratio=$(printf '%.2f' "$(echo "$3 / $2" | bc -l)")
	fi
	printf '%-36s %10s %10s %8s %s\n' "$1" "$2" "$3" "$ratio" "${4:-}"
}

# The bench and qcow2 rows: the shared disk's speed swings by 2-3x within seconds (other jobs'
# I/O), the same for every program (fio included), so a best-of-N per tool compares one tool's
# lucky moment with the other's.  paired QVAR MVAR runs the command lines in the arrays QCMD and
# MCMD in turns (which one goes first alternates), $REPEAT rounds, PRE before every run, and
# stores each tool's median time; RANGE gets the lowest and highest per-round ratio.
once() { # prints the seconds one run of "$@" took, after PRE; 1 if it failed
	local t0 t1
	[ -n "${PRE:-}" ] && $PRE
	t0=$(now)
	if ! "$@" >"$D/log" 2>&1; then
		echo "  ($* failed: $(head -c 200 "$D/log"))" >&2
		return 1
	fi
	t1=$(now)
	echo "$t1 - $t0" | bc -l
}
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
	printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# fio_once FIO...: one run of that fio command line; prints its wall seconds and the seconds of I/O fio itself reports
# (its "run=" line).  fio spends 0.4-0.7 s starting up on this machine (qemu-img and minivmm
# 0.01-0.04 s, measured with -c 1), as much as a whole 64 KiB row, so its own figure is the
# reference for how fast the disk is.
fio_once() {
	local t ms
	t=$(once "$@") || return 1
	ms=$(grep -o 'run=[0-9]*' "$D/log" | head -1 | cut -d= -f2)
	[ -n "$ms" ] && [ "$ms" -gt 0 ] || { echo "  (fio printed no run time: $(head -c 200 "$D/log"))" >&2; return 1; }
	echo "$t $(echo "$ms / 1000" | bc -l)"
}
qcmd_once() { # once QCMD; fio_once's two figures when QCMD is fio
	if [ "${QCMD[0]}" = fio ]; then fio_once "${QCMD[@]}"; else once "${QCMD[@]}"; fi
}
# With FCMD set (an array: fio on the same file), each round runs it too, between the two or
# around them in turn, and RANGE ends with fio's median time (wall, and its own I/O time) and
# minivmm's ratio to both.
paired() {
	local qv=$1 mv=$2 i tq tm tf qs=() ms=() fs=() fr=() qr=() rs=()
	RANGE=""
	for ((i = 0; i < REPEAT; i++)); do
		tf=""
		if ((i % 2 == 0)); then
			tq=$(qcmd_once) && { [ -z "${FCMD+x}" ] || tf=$(fio_once "${FCMD[@]}"); } &&
				tm=$(once "${MCMD[@]}")
		else
			tm=$(once "${MCMD[@]}") && { [ -z "${FCMD+x}" ] || tf=$(fio_once "${FCMD[@]}"); } &&
				tq=$(qcmd_once)
		fi || {
			printf -v "$qv" fail
			printf -v "$mv" fail
			return
		}
		if [ "${QCMD[0]}" = fio ]; then # QCMD is fio (random rows): its wall, and its own I/O
			qr+=("${tq#* }") tq=${tq% *}
		fi
		qs+=("$tq") ms+=("$tm") rs+=("$(echo "$tm / $tq" | bc -l)")
		[ -n "$tf" ] && fs+=("${tf% *}") fr+=("${tf#* }")
	done
	printf -v "$qv" '%s' "$(median "${qs[@]}")"
	printf -v "$mv" '%s' "$(median "${ms[@]}")"
	RANGE=$(printf '%s\n' "${rs[@]}" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 }
		END { printf "(rounds %.2f-%.2f)", lo, hi }')
	if ((${#qr[@]})); then
		local r
		r=$(median "${qr[@]}")
		RANGE+=$(printf ' fio'"'"'s own I/O %s, ratio to it %.2f' "$r" "$(echo "${!mv} / $r" | bc -l)")
	fi
	if ((${#fs[@]})); then
		local f r
		f=$(median "${fs[@]}")
		r=$(median "${fr[@]}")
		RANGE+=$(printf ' fio %s (its I/O %s), ratio to fio %.2f (to its I/O %.2f)' "$f" "$r" \
			"$(echo "${!mv} / $f" | bc -l)" "$(echo "${!mv} / $r" | bc -l)")
	fi
}
want() { [[ ",${BENCH_ROWS:-convert,compressed,bench,qcow2}," == *",$1,"* ]]; }
# fio_rand FILE SIZE COUNT: QCMD becomes COUNT random reads of SIZE from FILE through fio's
# io_uring engine, O_DIRECT, queue depth 32 (1 without fio).  io_size: without it fio stops after
# one file's worth (16384 of the 20000 64 KiB reads of a 1 GiB image).
fio_rand() {
	command -v fio >/dev/null || return 1
	QCMD=(fio --name=rand --filename="$1" --readonly --rw=randread --bs="$2" --direct=1
		--ioengine=io_uring --iodepth=32 --number_ios="$3" --norandommap --randrepeat=1
		--io_size=$(($(numfmt --from=iec "${2^^}") * $3)) --size="$(stat -c %s "$1")")
}
# fio_seq FILE SIZE COUNT [-w]: FCMD becomes the same sequential stream through fio's io_uring
# engine (O_DIRECT, queue depth 32, COUNT * SIZE bytes, wrapping at the end of the file as the
# bench tools do; writes fdatasync at the end as both bench tools do): the physical reference for the sequential rows.
fio_seq() {
	command -v fio >/dev/null || return 1
	FCMD=(fio --name=seq --filename="$1" --rw="$([ -n "${4:-}" ] && echo write || echo read)"
		--bs="$2" --direct=1 --ioengine=io_uring --iodepth=32
		--io_size=$(($(numfmt --from=iec "${2^^}") * $3)) --size="$(stat -c %s "$1")")
	[ -n "${4:-}" ] && FCMD+=(--end_fsync=1)
	[ -z "${4:-}" ] && FCMD+=(--readonly)
	return 0
}
can_create() { rm -f "$D/probe"; $M img create -f "$1" "$D/probe" 1M >/dev/null 2>&1; local r=$?; rm -f "$D/probe"; return $r; }

echo "Preparing a ${SIZE_MB} MiB raw image, half data..."
truncate -s "${SIZE_MB}M" "$D/src.raw"
for ((mb = 0; mb < SIZE_MB; mb += 8)); do
	# incompressible data: /dev/urandom is fast enough for 1 GiB
	dd if=/dev/urandom of="$D/src.raw" bs=1M count=4 seek=$mb conv=notrunc status=none
done
sync

printf '%-36s %10s %10s %8s\n' "operation (seconds)" "qemu-img" "minivmm" "ratio"
drop() { rm -f "$D"/out.* ; sync; }

if want convert; then
	PRE=drop timed q qemu-img convert -f raw -O qcow2 "$D/src.raw" "$D/out.q"
	PRE=drop timed m $M img convert -f raw -O qcow2 "$D/src.raw" "$D/out.m"
	row "convert raw->qcow2" "$q" "$m"
	qemu-img convert -f raw -O qcow2 "$D/src.raw" "$D/src.qcow2"

	# Every other format both tools write (issue: "convert rows for each format").
	for fmt in vdi vmdk vpc vhdx parallels; do
		if can_create "$fmt"; then
			PRE=drop timed q qemu-img convert -f raw -O "$fmt" "$D/src.raw" "$D/out.q"
			PRE=drop timed m $M img convert -f raw -O "$fmt" "$D/src.raw" "$D/out.m"
			row "convert raw->$fmt" "$q" "$m"
		else
			printf '%-34s (minivmm has no %s driver in this build)\n' "convert raw->$fmt" "$fmt"
		fi
	done

	PRE=drop timed q qemu-img convert -f qcow2 -O raw "$D/src.qcow2" "$D/out.q"
	PRE=drop timed m $M img convert -f qcow2 -O raw "$D/src.qcow2" "$D/out.m"
	row "convert qcow2->raw" "$q" "$m"
fi

if want compressed; then
	# compressed output of a smaller slice: zlib over 1 GiB of random data takes minutes
	truncate -s 256M "$D/slice.raw"
	dd if="$D/src.raw" of="$D/slice.raw" bs=1M count=256 conv=notrunc,sparse status=none
	truncate -s 64k "$D/tiny.raw"
	if $M img convert -c -O qcow2 "$D/tiny.raw" "$D/tiny.qcow2" >/dev/null 2>&1; then
		PRE=drop timed q qemu-img convert -c -f raw -O qcow2 "$D/slice.raw" "$D/out.q"
		qsize=$(stat -c %s "$D/out.q" 2>/dev/null) # the next run's drop removes it
		PRE=drop timed m $M img convert -c -f raw -O qcow2 "$D/slice.raw" "$D/out.m"
		row "convert -c raw->qcow2 (256 MiB)" "$q" "$m"
		printf '%-34s %10s %10s\n' "  output size (bytes)" "$qsize" \
			"$(stat -c %s "$D/out.m" 2>/dev/null)"
	else
		echo "convert -c raw->qcow2              (minivmm's qcow2 cannot write compressed clusters in this build)"
	fi
	rm -f "$D/slice.raw" "$D/tiny.raw" "$D/tiny.qcow2"
	drop
fi

if want bench; then
	# qemu-img bench and minivmm img bench, same options; the raw image fully allocated first
	qemu-img convert -S 0 -f raw -O raw "$D/src.raw" "$D/bench.raw"
	for spec in "4k 200000" "64k 20000" "1M 2000"; do
		set -- $spec
		[[ " ${BENCH_BLOCK_SIZES:-4k 64k 1M} " == *" $1 "* ]] || continue
		for w in "" "-w"; do
			what="read"; [ -n "$w" ] && what="write"
			opts="-f raw -t none -d 32 -s $1 -c $2 $w"
			QCMD=(qemu-img bench $opts "$D/bench.raw")
			MCMD=($M img bench $opts "$D/bench.raw")
			fio_seq "$D/bench.raw" "$1" "$2" "$w" || unset FCMD
			paired q m
			unset FCMD
			row "bench $1 seq $what qd32 x$2" "$q" "$m" "$RANGE"
		done
		[ "$1" = 1M ] && continue
		# qemu-img bench has no random offsets: fio (io_uring) reads the same file as the
		# physical reference; random writes are minivmm's alone
		if fio_rand "$D/bench.raw" "$1" "$2"; then
			MCMD=($M img bench -f raw -t none -d 32 -s "$1" -c "$2" --random "$D/bench.raw")
			paired q m
			row "bench $1 rand read x$2 (fio)" "$q" "$m" "$RANGE"
		else
			row "bench $1 rand read x$2 (fio)" "n/a" "-"
		fi
		timed m $M img bench -f raw -t none -d 32 -s "$1" -c "$2" --random -w "$D/bench.raw"
		row "bench $1 rand write x$2" "n/a" "$m"
	done
fi

if want qcow2; then
	# Allocating writes into an empty 4 GiB qcow2 (refcounts and L2 tables written at the
	# flush, not per cluster), then 4 KiB random reads of a fully allocated one against fio
	# reading its file directly (the host's own speed: what no qcow2 reader can beat).
	mkq() { rm -f "$D/alloc.qcow2"; qemu-img create -q -f qcow2 "$D/alloc.qcow2" 4G; sync; }
	QCMD=(qemu-img bench -f qcow2 -t none -w -d 32 -s 64k -c 16384 "$D/alloc.qcow2")
	MCMD=($M img bench -f qcow2 -t none -w -d 32 -s 64k -c 16384 "$D/alloc.qcow2")
	PRE=mkq paired q m
	row "qcow2 64k allocating write x16384" "$q" "$m" "$RANGE"
	rm -f "$D/alloc.qcow2"
	[ -f "$D/bench.raw" ] || qemu-img convert -S 0 -f raw -O raw "$D/src.raw" "$D/bench.raw"
	qemu-img convert -S 0 -f raw -O qcow2 "$D/bench.raw" "$D/full.qcow2"
	# Overwrites of allocated clusters (no allocation, no metadata): the data path alone.
	n=$((SIZE_MB * 16))
	QCMD=(qemu-img bench -f qcow2 -t none -w -d 32 -s 64k -c $n "$D/full.qcow2")
	MCMD=($M img bench -f qcow2 -t none -w -d 32 -s 64k -c $n "$D/full.qcow2")
	paired q m
	row "qcow2 64k overwrite x$n" "$q" "$m" "$RANGE"
	if fio_rand "$D/full.qcow2" 4k 200000; then
		MCMD=($M img bench -f qcow2 -t none -d 32 -s 4k -c 200000 --random "$D/full.qcow2")
		paired q m
		row "qcow2 4k random read x200000 (fio)" "$q" "$m" "$RANGE"
	fi
	rm -f "$D/full.qcow2"
fi
