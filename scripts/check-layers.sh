#!/bin/bash
# Layers point down only: tools, vmm -> cpu, devices -> storage, memory, net -> lib.  Each folder
# may include only from itself and the folders below it; one PASS/FAIL line per folder, the
# offending #include lines after a FAIL.  Usage: scripts/check-layers.sh [ROOT] (default: the
# repository this script is in).  Exit 1 on any violation.
set -u
root=${1:-"$(dirname "$0")/.."}
cd "$root" || exit 2

# folder: the folders it may include from (besides itself and system headers)
rules=(
	"lib:"
	"memory:lib"
	"storage:lib"
	"net:lib"
	"devices:lib memory storage net"
	"cpu:lib memory devices"
)
bad=0
for rule in "${rules[@]}"; do
	dir=${rule%%:*}
	allowed="$dir ${rule#*:}"
	[ -d "$dir" ] || continue
	pattern=$(echo "$allowed" | tr ' ' '\n' | grep -v '^$' | paste -sd'|')
	# Every quoted include that names a folder (a slash) outside the allowed ones.
	hits=$(grep -rnE --include='*.c' --include='*.h' '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[^"]*/' "$dir" |
		grep -vE "#[[:space:]]*include[[:space:]]*\"($pattern)/")
	if [ -n "$hits" ]; then
		echo "FAIL: $dir/ includes from above its layer (allowed: $allowed)"
		echo "$hits" | sed 's/^/    /'
		bad=1
	else
		echo "PASS: $dir/ includes only from: $allowed"
	fi
done
exit $bad
