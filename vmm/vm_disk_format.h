/* The formats a VM found by probing its disk files, kept in its state directory as
 * STATE/formats.json, one entry per file attached without format=:
 *   { "/abs/real/path/of/disk.img": "raw", ... }
 *
 * A probe is only a guess, and a raw disk's guest owns the bytes it is guessed from: once a guest
 * could write a qcow2 header or a VMDK descriptor into its raw disk, the next probe would open a
 * host file the image names (CVE-2008-2004). So a disk given without format= is probed once, at
 * its first attach by this VM, and its format recorded here; every later start (and --reboot
 * restart, which re-executes minivmm) opens it with the recorded format and never trusts a new
 * probe. Keys are real paths (symlinks resolved), as in uuids.json; a file recorded under another
 * name (a hard link) keeps that name's format. An entry is never changed or removed by minivmm;
 * to change a disk's format, give format= or delete the entry. The file is read and written as
 * vmm/vm_path_map.h says; a malformed one (among others a value that is not a format minivmm
 * knows) refuses the start with one line naming it.
 */
#ifndef MINIVMM_VMM_VM_DISK_FORMAT_H
#define MINIVMM_VMM_VM_DISK_FORMAT_H

#include <stddef.h>

#define VM_DISK_FORMAT_NAME_MAX 32

/* Check STATE/formats.json (no file is fine). */
int vm_disk_format_check(const char *dir);

/* The format recorded for file `real` (absolute, symlinks resolved) by the VM whose state is
 * `dir`, copied to fmt (VM_DISK_FORMAT_NAME_MAX bytes): 0, -ENOENT when none is recorded, or
 * another -errno with a message. */
int vm_disk_format_get(const char *dir, const char *real, char fmt[VM_DISK_FORMAT_NAME_MAX]);

/* Record `fmt` for `real` unless a format is already recorded for it (which is kept). */
int vm_disk_format_record(const char *dir, const char *real, const char *fmt);

#endif
