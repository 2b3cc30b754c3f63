/* VM snapshots (`minivmm snapshot`), kept as external differencing layers: of a powered-off VM, and
 * `take` of a paused one (in the VM's process, asked through the control socket).
 *
 * <state dir>/snapshots.json (json-c):
 *   {"disks": [{"file": BASE, "format": FMT|null, "normal": BOOL, "current": LAYER|null,
 *               "layer_format": FMT}, ...],                         one per recorded disk
 *    "snapshots": [{"name": S, "created": UNIX_TIME, "layers": [LAYER|null, ...]}, ...]}
 * Only normal-mode hard disks take part (null elsewhere): writethrough and shareable disks are
 * never touched, immutable and multiattach keep their own rules.
 *
 * Every layer of a disk has one format, "layer_format" (absent in trees written before it: qcow2),
 * chosen at its first layer: the base's own when minivmm can create a differencing image of it
 * and later re-point one (qcow2, VDI, VMDK, VHD), else qcow2 (raw, VHDX, Parallels: their
 * drivers cannot record a backing file). A first layer the base's format refuses (a path too
 * long for a VDI's 256-byte comment or a VHD locator, a VMDK over 64 TiB) falls back to qcow2.
 *
 * take:    each normal disk's current layer is frozen as the snapshot's, and a new empty diff
 *          over it (STATE/diskI-STEM.snapK.EXT, EXT qcow2|vdi|vmdk|vhd) becomes current: the VM
 *          writes there.
 * restore: the current diff (if no snapshot owns it) is deleted and a new one made over the
 *          snapshot's layer: the disks read exactly what they did at take.
 * delete:  the snapshot's layer F and its only child C are merged (C's data written into F,
 *          C's children rebased on F, C removed): no other snapshot's contents change. A layer
 *          with two children (a restore then a take) is refused, as VirtualBox does.
 * Powered off: every current layer is write-locked first (storage/core/disk_lock.h), so a running
 * VM makes the verb fail naming it. Paused (take only): vm_snapshot_take_live, below.
 */
#ifndef MINIVMM_VMM_VM_SNAPSHOT_H
#define MINIVMM_VMM_VM_SNAPSHOT_H

#include <stddef.h>

enum vm_snapshot_op { VM_SNAPSHOT_TAKE, VM_SNAPSHOT_RESTORE, VM_SNAPSHOT_DELETE };

/* Apply op to snapshot `name` of the VM whose state directory is `dir`. */
int vm_snapshot_apply(const char *dir, enum vm_snapshot_op op, const char *name);
/* take on a running VM, called in the VM's process with the guest paused and its disks flushed:
 * tops[i] is the file disk i writes now (NULL: not a hard disk). The snapshot tree is checked to
 * describe those disks, the new layers are made and recorded, then switch_layers(opaque, layers,
 * formats, n) must make each disk i with layers[i] set write it, in formats[i] (all or nothing). */
typedef int (*vm_snapshot_switch_fn)(void *opaque, const char *const *layers,
				     const char *const *formats, unsigned n);
int vm_snapshot_take_live(const char *dir, const char *name, const char *const *tops, size_t ntops,
			  vm_snapshot_switch_fn switch_layers, void *opaque);
/* Print the snapshot list ("NAME  DATE") to stdout. */
int vm_snapshot_list(const char *dir);
/* For `run`: the current layer of disk `index` whose base is `file` and its format; both NULL
 * when it has none. -EINVAL when the recorded base differs from `file` (the snapshots belong to
 * another disk). The strings are malloc'ed. */
int vm_snapshot_current(const char *dir, unsigned index, const char *file, char **layer,
			char **fmt);

#endif
