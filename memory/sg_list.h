/* One scatter-gather walker for every controller: a list of guest-physical (address, length)
 * segments turned into a checked host iovec (QEMU's QEMUSGList plays this part).
 *
 * Each segment goes through guest_memory_ptr (the one checked accessor), so a segment that wraps,
 * leaves RAM or touches an MMIO hole is refused; the list also has a cap on segments and on total
 * bytes, so a hostile descriptor table cannot make the device allocate or loop without bound.
 * Adjacent segments are merged into one iovec entry.  Virtqueues, AHCI PRDTs and IDE BMDMA add
 * their entries with sg_list_add; so must every new controller (NVMe PRPs, SCSI SGLs).
 */
#ifndef MINIVMM_MEMORY_SG_LIST_H
#define MINIVMM_MEMORY_SG_LIST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct guest_memory;

struct sg_list {
	const struct guest_memory *mem;
	struct iovec *iov; /* caller's array of max_segs entries */
	unsigned n, max_segs;
	uint64_t bytes, max_bytes;
};

/* Start an empty list over iov[0..max_segs) accepting at most max_bytes in total. */
void sg_list_init(struct sg_list *sg, const struct guest_memory *mem, struct iovec *iov,
		  unsigned max_segs, uint64_t max_bytes);
/* A list of one host buffer, for a transport that bounces its data (ATAPI's PIO and reply
 * buffer): iov is the caller's one entry. */
void sg_list_init_host(struct sg_list *sg, struct iovec *iov, void *buf, size_t len);
/* Forget the segments (the iov array is kept). */
void sg_list_clear(struct sg_list *sg);

/* Append [gpa, gpa+len).  len 0 adds nothing.  -EFAULT: the range wraps or is not all RAM;
 * -E2BIG: past max_bytes; -ENOSPC: past max_segs.  On error the list is unchanged. */
int sg_list_add(struct sg_list *sg, uint64_t gpa, uint64_t len);

/* Copy up to len bytes starting `off` bytes into the list to/from buf; returns the bytes copied
 * (less than len when the list is shorter). */
size_t sg_list_to_buf(const struct sg_list *sg, uint64_t off, void *buf, size_t len);
size_t sg_list_from_buf(const struct sg_list *sg, uint64_t off, const void *buf, size_t len);

/* Describe bytes [off, off+len) of the list in dst[0..dst_max): returns the entries used, or
 * -ERANGE when the list is shorter than off+len, -ENOSPC when dst is too small. */
int sg_list_slice(const struct sg_list *sg, uint64_t off, uint64_t len, struct iovec *dst,
		  unsigned dst_max);

/* Host pointer to byte `off` of the list (NULL past the end): for a one-byte status field. */
uint8_t *sg_list_byte(const struct sg_list *sg, uint64_t off);

#endif
