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
 *
 * Other users (`minivmm img`) lock as they open: block_open(BLOCK_OPEN_LOCK) calls disk_lock_file
 * on each file before its driver reads it, so nothing is read or written under a VM's feet.
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
/* The directory given to disk_lock_owner_set (the VM's runtime dir, 0700) into buf: 0, or -ENOENT
 * when there is none.  Other cross-process locks of this user's VMs keep their files there. */
int disk_lock_runtime_dir(char *buf, size_t len);

/* Lock every layer of bs's chain: the top with a write lock when write_top, else a read lock;
 * backing layers with read locks. -EBUSY with a message (error_msg(), lib/error.h) naming the image
 * and the VM holding it. */
int disk_lock_chain(struct block_device *bs, bool write_top);

/* Lock the one file bs (opened, driver not yet run): a write lock when `write`, else a read lock.
 * -EBUSY with a message naming the holder as disk_lock_chain does; -ENOLCK when the file system
 * has no OFD locks (fcntl said EINVAL, ENOLCK or EOPNOTSUPP; counted, see below); else -errno. */
int disk_lock_file(struct block_device *bs, bool write);

/* Whether someone (a running VM, the image tool) holds a lock on the file at path, without taking
 * one: 0 when free, -EBUSY with a message naming the holder as disk_lock_file does, -errno when the
 * file cannot be opened.  For a tool that is about to delete or list the file. */
int disk_lock_path_busy(const char *path);

/* How many files so far were left unlocked because their file system has no locks; the last
 * one's name into last (when not NULL), for a warning. */
unsigned disk_lock_unsupported(char *last, size_t len);

/* A process that holds no VM (the image tool) still wants holders named: fn fills buf with the
 * registry directory (control_runtime_dir), asked only when a lock is refused. */
void disk_lock_registry_dir_fn(int (*fn)(char *buf, size_t len));

/* Drop the locks of bs's chain now. Needed before block_close when something else may hold a
 * reference to the open files (io_uring releases its file references asynchronously after the
 * ring is closed, which would keep the lock for a moment after the VM let the disk go). */
void disk_lock_release_chain(struct block_device *bs);

#endif
