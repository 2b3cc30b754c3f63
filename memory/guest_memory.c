/* Guest RAM mapping and the checked guest-physical accessor (see guest_memory.h). */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/kvm.h>

#include "memory/guest_memory.h"
#include "memory/layout.h"

int guest_memory_create(struct guest_memory *gm, uint64_t size)
{
	memset(gm, 0, sizeof(*gm));
	if (size == 0 || size % (4 * KiB) || size > (1ULL << 46))
		return -EINVAL;
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	/* Transparent huge pages cut EPT/NPT misses; a hint, so its failure does not matter. */
	madvise(p, size, MADV_HUGEPAGE);
	gm->host = p;
	gm->size = size;
	gm->low_size = size < LAYOUT_LOW_RAM_END ? size : LAYOUT_LOW_RAM_END;
	gm->high_size = size - gm->low_size;
	return 0;
}

void guest_memory_destroy(struct guest_memory *gm)
{
	if (gm->host)
		munmap(gm->host, gm->size);
	memset(gm, 0, sizeof(*gm));
}

int guest_memory_register(const struct guest_memory *gm, int vm_fd)
{
	struct kvm_userspace_memory_region r = {
	    .slot = 0,
	    .guest_phys_addr = 0,
	    .memory_size = gm->low_size,
	    .userspace_addr = (uintptr_t)gm->host,
	};
	if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return -errno;
	if (!gm->high_size)
		return 0;
	r.slot = 1;
	r.guest_phys_addr = LAYOUT_HIGH_RAM_START;
	r.memory_size = gm->high_size;
	r.userspace_addr = (uintptr_t)(gm->host + gm->low_size);
	if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return -errno;
	return 0;
}

/* Is [gpa, gpa+len) inside [start, start+size)? Written so nothing can wrap. */
static int range_inside(uint64_t gpa, uint64_t len, uint64_t start, uint64_t size)
{
	if (gpa < start)
		return 0;
	uint64_t off = gpa - start;
	if (off >= size)
		return 0;
	return len <= size - off;
}

void *guest_memory_ptr(const struct guest_memory *gm, uint64_t gpa, uint64_t len)
{
	if (!gm->host)
		return NULL;
	if (gpa < gm->low_size) {
		if (range_inside(gpa, len, 0, gm->low_size))
			return gm->host + gpa;
		return NULL;
	}
	if (gm->high_size && range_inside(gpa, len, LAYOUT_HIGH_RAM_START, gm->high_size))
		return gm->host + gm->low_size + (gpa - LAYOUT_HIGH_RAM_START);
	return NULL;
}

int guest_memory_read(const struct guest_memory *gm, uint64_t gpa, void *buf, uint64_t len)
{
	void *p = guest_memory_ptr(gm, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(buf, p, len);
	return 0;
}

int guest_memory_write(const struct guest_memory *gm, uint64_t gpa, const void *buf, uint64_t len)
{
	void *p = guest_memory_ptr(gm, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(p, buf, len);
	return 0;
}
