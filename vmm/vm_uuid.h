/* The UUIDs a VM gives the hard disk files whose format carries none (raw, qcow2, ...), kept in
 * its state directory as STATE/uuids.json, one entry per file the VM ever attached:
 *   { "/abs/real/path/of/disk.raw": "0f8fad5b-d9cb-469f-a165-70867728950e", ... }
 * The key is the file's real path (symlinks resolved), so a file and a symlink to it are one
 * disk; a file reached by another hard link takes over the UUID of the recorded name. A copy
 * (`cp`) is another file and gets its own UUID, as VirtualBox does for raw disks. An entry is
 * never changed or removed by minivmm: a guest that saw a UUID keeps seeing it. Renaming or
 * moving the file gives it a new one (edit the key to keep it).
 *
 * The file is read, checked and written as vmm/vm_path_map.h says (atomically, under an flock of
 * the state directory); a malformed file (among others a value that is not a UUID
 * "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx") is never repaired or replaced: the caller gets -EINVAL
 * and one line naming the file and the problem.
 */
#ifndef MINIVMM_VMM_VM_UUID_H
#define MINIVMM_VMM_VM_UUID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (hex, either case) into 16 bytes; -EINVAL otherwise. */
int vm_uuid_parse(const char *s, uint8_t uuid[16]);
/* The lower-case form of uuid, NUL-terminated. */
void vm_uuid_format(const uint8_t uuid[16], char out[37]);

/* Check STATE/uuids.json (no file is fine). */
int vm_uuid_check(const char *dir);

/* The UUID of file `real` (an absolute path with symlinks resolved) in the VM whose state is
 * `dir`: the recorded one, else a new random version-4 UUID, recorded before it is returned.
 * *created (may be NULL) tells whether it is new. */
int vm_uuid_get(const char *dir, const char *real, uint8_t uuid[16], bool *created);

#endif
