/* A vCPU's halted time from KVM's binary statistics (KVM_GET_STATS_FD, Linux 5.14+): the execution
 * cap charges a vCPU for the time it runs, not for the time it waits halted in the kernel. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "cpu/vcpu.h"
#include "cpu/vcpu_kvm.h"

#define HALT_STAT "halt_wait_ns"

/* The data offset of HALT_STAT, or -1.  Every size and offset in the header is checked: the
 * descriptors are read into a buffer of the size they claim, bounded. */
static int64_t find_halt_stat(int fd)
{
	struct kvm_stats_header h;
	if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return -1;
	size_t one = sizeof(struct kvm_stats_desc) + h.name_size;
	if (h.name_size == 0 || h.name_size > 1024 || h.num_desc == 0 || h.num_desc > 4096)
		return -1;
	char *buf = malloc(one * h.num_desc);
	if (!buf)
		return -1;
	int64_t off = -1;
	ssize_t want = (ssize_t)(one * h.num_desc);
	if (pread(fd, buf, want, h.desc_offset) == want) {
		for (uint32_t i = 0; i < h.num_desc; i++) {
			const struct kvm_stats_desc *d = (const void *)(buf + i * one);
			if (strnlen(d->name, h.name_size) < h.name_size &&
			    !strcmp(d->name, HALT_STAT) && d->size == 1 &&
			    (d->flags & KVM_STATS_TYPE_MASK) == KVM_STATS_TYPE_CUMULATIVE) {
				off = (int64_t)h.data_offset + d->offset;
				break;
			}
		}
	}
	free(buf);
	return off;
}

void vcpu_kvm_stats_open(struct vcpu *v)
{
	struct vcpu_kvm *k = v->priv;
	if (ioctl(v->env->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_BINARY_STATS_FD) <= 0)
		return;
	int fd = ioctl(v->fd, KVM_GET_STATS_FD, 0);
	if (fd < 0)
		return;
	k->halt_wait_off = find_halt_stat(fd);
	if (k->halt_wait_off < 0) {
		close(fd);
		return;
	}
	k->stats_fd = fd;
}

int64_t vcpu_kvm_halted_ns(struct vcpu *v)
{
	struct vcpu_kvm *k = v->priv;
	uint64_t ns;
	if (!k || k->stats_fd < 0)
		return -ENOTSUP;
	if (pread(k->stats_fd, &ns, sizeof(ns), k->halt_wait_off) != (ssize_t)sizeof(ns))
		return -EIO;
	return (int64_t)(ns & INT64_MAX);
}
