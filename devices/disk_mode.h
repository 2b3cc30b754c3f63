/* The six VirtualBox disk modes, as opened by the block layer (controllers only see whether the
 * resulting disk is read-only; devices/disk.h).
 *
 *   mode          what the VM opens                         lock (disk_lock.h)   in VM snapshots
 *   normal        the image, read-write                     write                yes
 *   writethrough  the image, read-write                     write                no
 *   readonly      the image, read-only                      read                 no change
 *   shareable     the image, read-write; fixed size only    read (shared)        no
 *   immutable     STATE/diskN-STEM.immutable.qcow2 over     write on the diff,   kept as is
 *                 the image; reset on a fresh start         read on the base
 *   multiattach   STATE/diskN-STEM.multiattach.qcow2 over   write on the diff,   kept as is
 *                 the image; kept across starts             read on the base
 *
 * N is the attachment index (command-line order of --disk/--cdrom from 0), STEM the image's file
 * name without its extension. These two diffs are always qcow2, whatever the base's format: they
 * are never re-pointed, qcow2 sits over every format, and existing state directories already
 * hold them under these names. (VM snapshot layers of normal disks follow the base's format:
 * vmm/vm_snapshot.h.) "Fixed size" for shareable: raw, or an image without a backing file
 * whose every cluster/block is allocated and not compressed (VDI static, VHD fixed, VMDK flat,
 * qcow2 created with preallocation=metadata|falloc|full); anything else is refused.
 */
#ifndef MINIVMM_DEVICES_DISK_MODE_H
#define MINIVMM_DEVICES_DISK_MODE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct block_device;

enum disk_mode {
	DISK_MODE_NORMAL = 0,
	DISK_MODE_IMMUTABLE,
	DISK_MODE_WRITETHROUGH,
	DISK_MODE_SHAREABLE,
	DISK_MODE_MULTIATTACH,
	DISK_MODE_READONLY,
};
/* "normal", "immutable", ... ("?" out of range); the mode named `word`, or -1. */
const char *disk_mode_name(enum disk_mode mode);
int disk_mode_lookup(const char *word);

/* The VM the disks belong to (one VM per process). Without a state dir, immutable and multiattach
 * are refused. `restarted`: this process continues a VM whose guest rebooted (--reboot restart),
 * so immutable diffs are kept rather than reset. */
struct disk_mode_env {
	char state_dir[PATH_MAX];
	bool restarted;
	/* VM snapshots: layers[i], when set, is the layer normal disk i (attachment index) now
	 * writes, over the file given on the command line, and layer_formats[i] its format (the
	 * VM snapshot tree records it; NULL: qcow2). Owned by the caller. */
	char *const *layers;
	char *const *layer_formats;
	unsigned nlayers;
	/* Hard disks whose format carries no UUID (raw, qcow2...): the UUID this VM keeps for file
	 * `path` attached as disk `index` (vmm/vm_state.c: STATE/uuids.json). NULL: none kept. */
	int (*uuid)(unsigned index, const char *path, uint8_t uuid[16]);
	/* Hard disks given without format=: the format this VM recorded for file `path` at its
	 * first attach (vmm/vm_state.c: STATE/formats.json), copied to fmt (len bytes): 0, or
	 * -ENOENT when none is recorded; and recording the one a first attach probed. NULL: none
	 * kept, every open probes. */
	int (*format_get)(const char *path, char *fmt, size_t len);
	int (*format_record)(const char *path, const char *fmt);
};
void disk_mode_env_set(const struct disk_mode_env *env);

/* The UUID the VM keeps for `path` (disk `index`) whose format has none: 0, -ENOENT when no state
 * keeps UUIDs (the caller makes one up), or another -errno with a message (the start fails: a
 * UUID the guest saw must not silently change). */
int disk_mode_uuid(unsigned index, const char *path, uint8_t uuid[16]);

/* Open `path` in `mode`. flags: BLOCK_OPEN_CACHE_* only (the mode decides read-write). *out is
 * the top of the chain the guest uses; *user is the layer that is `path` itself (for its UUID).
 * format NULL: the format the VM recorded at the file's first attach (env format_get), opened
 * as probed (a raw image keeps its probe-window guard, block_probe_window) and never probed
 * again; a fresh probe that disagrees is reported once on stderr. At the first attach (or with
 * no env) the file is probed and, with an env, the result recorded. A probed raw image the guest
 * may write gets QEMU's warning on stderr. */
int disk_mode_open(const char *path, const char *format, enum disk_mode mode, int flags,
		   unsigned index, struct block_device **out, struct block_device **user);

/* Open `layer`, a VM snapshot's differencing image of a normal disk, in `format` (NULL: qcow2)
 * read-write with `flags` (BLOCK_OPEN_CACHE_*), write-locked (its backing layers read-locked). */
int disk_mode_open_layer(const char *layer, const char *format, int flags,
			 struct block_device **out);

/* The differencing image path for disk `index` in `mode` (immutable/multiattach). */
int disk_mode_diff_path(const char *state_dir, const char *image, unsigned index,
			enum disk_mode mode, char *buf, size_t len);

/* 0 when bs is fixed-size as defined above, else -EINVAL with a message. */
int disk_mode_check_fixed(struct block_device *bs);

#endif
