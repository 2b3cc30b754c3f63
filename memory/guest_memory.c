/* Guest RAM mapping and the checked guest-physical accessor (see guest_memory.h). */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/kvm.h>

#include "memory/guest_memory.h"
#include "memory/layout.h"

#define PAGE (4 * KiB)

static int map_ram(struct guest_memory *gm, uint64_t size, int fd)
{
	memset(gm, 0, sizeof(*gm));
	if (size == 0 || size % PAGE || size > (1ULL << 46))
		return -EINVAL;
	if (fd >= 0 && ftruncate(fd, (off_t)size) < 0)
		return -errno;
	int flags = fd >= 0 ? MAP_SHARED : MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, flags, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	/* Transparent huge pages cut EPT/NPT misses; a hint, so its failure does not matter. */
	madvise(p, size, MADV_HUGEPAGE);
	gm->host = p;
	gm->size = size;
	gm->low_size = size < LAYOUT_LOW_RAM_END ? size : LAYOUT_LOW_RAM_END;
	gm->high_size = size - gm->low_size;
	gm->shared = fd >= 0;
	gm->memfd = fd;
	return 0;
}

int guest_memory_create(struct guest_memory *gm, uint64_t size)
{
	return map_ram(gm, size, -1);
}

int guest_memory_create_shared(struct guest_memory *gm, uint64_t size)
{
	int fd = memfd_create("minivmm-ram", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = map_ram(gm, size, fd);
	if (r < 0)
		close(fd);
	return r;
}

void guest_memory_destroy(struct guest_memory *gm)
{
	if (gm->host)
		munmap(gm->host, gm->size);
	if (gm->host && gm->shared)
		close(gm->memfd);
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

/* [p, p+len) is page-aligned and inside RAM. */
static int discard_pages(const struct guest_memory *gm, uint8_t *p, uint64_t len)
{
	if (!len)
		return 0;
	/* Shared pages live on in the memfd after DONTNEED: only REMOVE frees them. */
	if (madvise(p, len, gm->shared ? MADV_REMOVE : MADV_DONTNEED) < 0)
		return -errno;
	return 0;
}

int guest_memory_discard(const struct guest_memory *gm, uint64_t gpa, uint64_t len)
{
	if (gpa % PAGE || len % PAGE)
		return -EINVAL;
	uint8_t *p = guest_memory_ptr(gm, gpa, len);
	if (!p)
		return -EFAULT;
	return discard_pages(gm, p, len);
}

int64_t guest_memory_discard_host(const struct guest_memory *gm, void *host, uint64_t len)
{
	uint8_t *p = host;
	if (!gm->host || p < gm->host || (uint64_t)(p - gm->host) > gm->size ||
	    len > gm->size - (uint64_t)(p - gm->host))
		return -EFAULT;
	uint64_t off = (uint64_t)(p - gm->host);
	uint64_t start = (off + PAGE - 1) / PAGE * PAGE, end = (off + len) / PAGE * PAGE;
	if (end <= start)
		return 0;
	int r = discard_pages(gm, gm->host + start, end - start);
	return r < 0 ? r : (int64_t)(end - start);
}

int guest_memory_set_mergeable(const struct guest_memory *gm, int on)
{
	if (!gm->host)
		return -EINVAL;
	if (madvise(gm->host, gm->size, on ? MADV_MERGEABLE : MADV_UNMERGEABLE) < 0)
		return -errno;
	madvise(gm->host, gm->size, on ? MADV_NOHUGEPAGE : MADV_HUGEPAGE);
	return 0;
}
