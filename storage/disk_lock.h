/* Image locks between running VMs (VirtualBox's "open in one running VM only").
 *
 * Open-file-description locks (fcntl F_OFD_SETLK) on every file of an opened chain: the layer a
 * VM writes gets a write lock, every other layer a read lock, so a second writer is refused while
 * any number of readers share a base. OFD locks belong to the open file, so they go away with
 * block_close() or when the process dies (kill -9 leaves nothing stale behind).
 *
 * The kernel does not say who holds an OFD lock (F_OFD_GETLK reports pid -1), so a VM also lists
 * the files it locked in a registry directory (the control runtime dir): <dir>/NAME.disks, lines
 * "pid P" then "dev:ino" per file. It is read only to name the holder in an error message and is
 * removed on a clean exit; a leftover from a killed VM is ignored (its pid is gone).
 */
#ifndef MINIVMM_STORAGE_DISK_LOCK_H
#define MINIVMM_STORAGE_DISK_LOCK_H

#include <stdbool.h>
#include <stddef.h>

struct block_device;

/* Who this process is, for the registry; dir NULL or "": no registry (holders stay unnamed).
 * Truncates the registry file. Returns 0 or -errno. */
int disk_lock_owner_set(const char *vm_name, const char *dir);
/* Remove this process's registry file (clean exit). */
void disk_lock_owner_clear(void);

/* Lock every layer of bs's chain: the top with a write lock when write_top, else a read lock;
 * backing layers with read locks. -EBUSY with a message naming the image and the VM holding it. */
int disk_lock_chain(struct block_device *bs, bool write_top, char *err, size_t errlen);

/* Drop the locks of bs's chain now. Needed before block_close when something else may hold a
 * reference to the open files (io_uring releases its file references asynchronously after the
 * ring is closed, which would keep the lock for a moment after the VM let the disk go). */
void disk_lock_release_chain(struct block_device *bs);

#endif
