/* Guest RAM: one anonymous mapping, seen by the guest as low RAM [0, min(ram, 3 GiB)) and, for the
 * rest, high RAM from 4 GiB (memory/layout.h).
 *
 * guest_memory_ptr() is THE checked accessor: every device and loader turns a guest-physical range
 * into a host pointer only through it, so a guest-chosen address can never reach outside RAM.
 */
#ifndef MINIVMM_MEMORY_GUEST_MEMORY_H
#define MINIVMM_MEMORY_GUEST_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct guest_memory {
	uint8_t *host;	    /* the whole RAM, low part first */
	uint64_t size;	    /* total RAM bytes */
	uint64_t low_size;  /* bytes at gpa 0 */
	uint64_t high_size; /* bytes at gpa LAYOUT_HIGH_RAM_START */
	bool shared;	    /* a MAP_SHARED memfd (guest_memory_create_shared), not private */
	int memfd;	    /* when shared */
};

/* Map `size` bytes (a multiple of 4 KiB, > 0) of RAM, lazily backed (MAP_NORESERVE). */
int guest_memory_create(struct guest_memory *gm, uint64_t size);
/* The same RAM as a shared mapping of a memfd (for a second process that maps it, vhost-user). */
int guest_memory_create_shared(struct guest_memory *gm, uint64_t size);
void guest_memory_destroy(struct guest_memory *gm);
/* Give the RAM to the VM (KVM_SET_USER_MEMORY_REGION, slots 0 and 1). */
int guest_memory_register(const struct guest_memory *gm, int vm_fd);

/* Host pointer for [gpa, gpa+len) if the whole range lies in one RAM block, else NULL.
 * len 0 is allowed for an address inside RAM. Overflow-safe for any gpa and len. */
void *guest_memory_ptr(const struct guest_memory *gm, uint64_t gpa, uint64_t len);
/* Copy to/from guest RAM; -EFAULT when the range is not entirely RAM. */
int guest_memory_read(const struct guest_memory *gm, uint64_t gpa, void *buf, uint64_t len);
int guest_memory_write(const struct guest_memory *gm, uint64_t gpa, const void *buf, uint64_t len);

/* Give [gpa, gpa+len) back to the host (a balloon's pages): the next guest access reads zeroes.
 * Private RAM: MADV_DONTNEED; shared RAM: MADV_REMOVE (frees the memfd's pages too).  The range
 * must lie in one RAM block and be 4 KiB-aligned: -EFAULT / -EINVAL, else madvise's -errno. */
int guest_memory_discard(const struct guest_memory *gm, uint64_t gpa, uint64_t len);
/* The same for a host range inside RAM (an iovec of a checked chain): only the whole 4 KiB pages
 * in [host, host+len) go; -EFAULT when the range is not inside RAM.  Returns the bytes freed. */
int64_t guest_memory_discard_host(const struct guest_memory *gm, void *host, uint64_t len);
/* Offer the RAM to the host's KSM (MADV_MERGEABLE) or take it back (MADV_UNMERGEABLE).  Merging
 * wants small pages, so mergeable RAM drops the transparent huge page advice. */
int guest_memory_set_mergeable(const struct guest_memory *gm, int on);

#endif
