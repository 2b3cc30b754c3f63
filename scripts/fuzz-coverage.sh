#!/bin/bash
# Line and branch coverage of a fuzz target's corpus over some source files (clang's source-based
# coverage): the SRC files are compiled again with -fprofile-instr-generate -fcoverage-mapping and
# linked with the other objects of `make fuzz` (build/fuzzobj/), the corpus is run once, and
# llvm-cov reports on those files.
#   scripts/fuzz-coverage.sh TARGET [CORPUS_DIR] SRC.c...
# e.g. scripts/fuzz-coverage.sh fuzz_control build/fuzz-corpus/fuzz_control vmm/control_request.c
set -eu
cd "$(dirname "$0")/.."
t=$1
shift
corpus=build/fuzz-corpus/$t
[ -d "${1:-}" ] && { corpus=$1; shift; }
[ $# -gt 0 ] || { echo "usage: $0 TARGET [CORPUS_DIR] SRC.c..." >&2; exit 2; }
cc=$(command -v clang-14 || echo clang)
cov=$(command -v llvm-cov-14 || echo llvm-cov)
profdata=$(command -v llvm-profdata-14 || echo llvm-profdata)
out=build/cov/$t
mkdir -p "$out"
flags=(-g -std=gnu11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -I. -pthread -O1
	-fprofile-instr-generate -fcoverage-mapping)
objs=()
skip=()
for s in "$@"; do
	o=$out/$(echo "${s%.c}" | tr / _).o
	"$cc" "${flags[@]}" -fsanitize=fuzzer-no-link -c -o "$o" "$s"
	objs+=("$o")
	skip+=("build/fuzzobj/${s%.c}.o")
done
mapfile -t rest < <(find build/fuzzobj -name '*.o' | grep -v -x -F "$(printf '%s\n' "${skip[@]}")")
"$cc" "${flags[@]}" -fsanitize=fuzzer,address,undefined -o "$out/bin" "tests/fuzz/$t.c" \
	"${objs[@]}" "${rest[@]}" -luring -lz -lzstd -ljson-c -lseccomp -lcmocka
LLVM_PROFILE_FILE=$out/run.profraw "$out/bin" -runs=0 -close_fd_mask=3 "$corpus" >/dev/null 2>&1
"$profdata" merge -o "$out/run.profdata" "$out/run.profraw"
"$cov" report "$out/bin" -instr-profile="$out/run.profdata" "$@"
