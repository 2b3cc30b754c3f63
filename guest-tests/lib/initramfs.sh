# shellcheck shell=bash
# Builds busybox initramfs images for test guests (sourced, bash).
#
#   gt_kernel                     path of the stock Debian kernel used for guests ($GT_KERNEL overrides)
#   gt_kernel_version KERNEL      its module directory name (6.1.0-56-amd64 for /boot/vmlinuz-6.1.0-56-amd64)
#   initramfs_modules KVER MOD... the .ko files of MODs and all their dependencies, dependencies first
#   initramfs_build OUT INIT [-m "MOD ..."] [-f SRC:DST]... [-z]
#       writes a newc cpio archive OUT holding busybox-static, the modules with their dependencies,
#       the extra files, and INIT as /init.main; the generated /init mounts proc, sys, devtmpfs, loads
#       the modules in dependency order and execs /init.main.  -z compresses with gzip; by default the
#       archive is left uncompressed because inside level 1 (QEMU TCG) CPU is far dearer than memory.

gt_kernel() {
	if [ -n "${GT_KERNEL:-}" ]; then
		echo "$GT_KERNEL"
		return
	fi
	# The generic flavour: cloud-amd64 lacks the AHCI and LSI drivers later tests need.
	local k
	for k in /boot/vmlinuz-*-amd64; do
		case $k in *cloud*) ;; *) [ -e "$k" ] && echo "$k" ;; esac
	done | sort -V | tail -1
}

gt_kernel_version() {
	basename "$1" | sed 's/^vmlinuz-//'
}

# Prints, dependencies first and each once, the module files needed for the named modules.  Built-in
# modules print nothing.  Returns 1 (with a message) if a module is unknown.  Reads depmod's
# modules.dep in one awk process: the same answer as `modinfo -F depends` walked recursively, but
# one process instead of two per module, which inside level 1 (TCG, files over 9p) saves ~20 s.
initramfs_modules() {
	local kver=$1
	shift
	local dir=/lib/modules/$kver
	[ -r "$dir/modules.dep" ] || { echo "initramfs: $dir/modules.dep: cannot read" >&2; return 1; }
	awk -v dir="$dir" -v want="$*" '
	function key(path, n) { n = path; sub(/.*\//, "", n); sub(/\.ko(\.(xz|zst|gz))?$/, "", n)
		gsub(/-/, "_", n); return n }
	function visit(m, i, n, d) {
		if (m in done) return
		done[m] = 1
		n = split(deps[m], d, " ")
		for (i = 1; i <= n; i++) visit(key(d[i]))
		print dir "/" file[m]
	}
	FILENAME ~ /modules.dep$/ { f = $1; sub(/:$/, "", f); k = key(f); file[k] = f
		deps[k] = ""; for (i = 2; i <= NF; i++) deps[k] = deps[k] " " $i; next }
	{ builtin[key($1)] = 1 }
	END {
		n = split(want, w, " ")
		for (i = 1; i <= n; i++) {
			m = w[i]; gsub(/-/, "_", m)
			if (m in file) visit(m)
			else if (!(m in builtin)) { print "initramfs: module " w[i] " not found in " dir > "/dev/stderr"; bad = 1 }
		}
		exit bad
	}' "$dir/modules.dep" "$dir/modules.builtin"
}

initramfs_build() {
	local out=$1 init=$2
	shift 2
	local mods="" files=() gzip=0 kver root f src dst ko
	while [ $# -gt 0 ]; do
		case $1 in
		-m) mods="$mods $2"; shift 2 ;;
		-f) files+=("$2"); shift 2 ;;
		-z) gzip=1; shift ;;
		*) echo "initramfs_build: unknown option $1" >&2; return 2 ;;
		esac
	done
	[ -r "$init" ] || { echo "initramfs_build: $init: cannot read the init script" >&2; return 1; }
	local bb
	bb=$(command -v busybox) || { echo "initramfs_build: busybox not installed (busybox-static)" >&2; return 1; }
	root=$(mktemp -d "${TMPDIR:-/tmp}/gt-initramfs.XXXXXX") || return 1
	mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,run,root,lib/modules,usr/bin,usr/sbin}
	cp "$bb" "$root/bin/busybox"
	# Applet links are made at boot by `busybox --install`: one process in the guest instead of
	# hundreds of ln here, which cost minutes when this runs inside level 1 (QEMU TCG).
	ln -s busybox "$root/bin/sh"
	: >"$root/etc/modules.order"
	if [ -n "${mods// /}" ]; then
		kver=$(gt_kernel_version "$(gt_kernel)")
		local list
		list=$(initramfs_modules "$kver" $mods) || { rm -rf "$root"; return 1; }
		for ko in $list; do
			dst=/lib/modules/$(basename "$ko")
			# busybox insmod reads plain ELF only.
			case $ko in
			*.ko.xz) xz -dc "$ko" >"$root${dst%.xz}"; dst=${dst%.xz} ;;
			*.ko.zst) zstd -qdc "$ko" >"$root${dst%.zst}"; dst=${dst%.zst} ;;
			*.ko.gz) gzip -dc "$ko" >"$root${dst%.gz}"; dst=${dst%.gz} ;;
			*) cp "$ko" "$root$dst" ;;
			esac
			echo "$dst" >>"$root/etc/modules.order"
		done
	fi
	for f in "${files[@]+"${files[@]}"}"; do
		src=${f%%:*}
		dst=${f#*:}
		mkdir -p "$root$(dirname "$dst")"
		cp -a "$src" "$root$dst" || { rm -rf "$root"; return 1; }
	done
	cp "$init" "$root/init.main"
	cat >"$root/init" <<'EOF'
#!/bin/sh
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
while read -r ko; do
	insmod "$ko" || echo "init: insmod $ko failed"
done </etc/modules.order
exec /bin/sh /init.main
EOF
	chmod 755 "$root/init" "$root/init.main"
	if [ "$gzip" = 1 ]; then
		(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$out"
	else
		(cd "$root" && find . | cpio -o -H newc --quiet) >"$out"
	fi
	local rc=$?
	rm -rf "$root"
	return $rc
}
