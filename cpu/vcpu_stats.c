/* A vCPU's halted time from KVM's binary statistics (vcpu_stats.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "cpu/vcpu_stats.h"

#define MAX_DESCS 4096	   /* Linux has about 60 per vCPU */
#define MAX_NAME_SIZE 1024 /* KVM_STATS_NAME_SIZE is 48 */

static const char *const halt_names[VCPU_STATS_HALT_FIELDS] = {
    "halt_wait_ns", "halt_poll_success_ns", "halt_poll_fail_ns"};

static bool is_ns_counter(const struct kvm_stats_desc *d)
{
	return (d->flags & KVM_STATS_TYPE_MASK) == KVM_STATS_TYPE_CUMULATIVE &&
	       (d->flags & KVM_STATS_UNIT_MASK) == KVM_STATS_UNIT_SECONDS &&
	       (d->flags & KVM_STATS_BASE_MASK) == KVM_STATS_BASE_POW10 && d->exponent == -9 &&
	       d->size == 1;
}

static bool is_instant_bool(const struct kvm_stats_desc *d)
{
	return (d->flags & KVM_STATS_TYPE_MASK) == KVM_STATS_TYPE_INSTANT &&
	       (d->flags & KVM_STATS_UNIT_MASK) == KVM_STATS_UNIT_BOOLEAN && d->size == 1;
}

int vcpu_stats_parse(int fd, struct vcpu_stats *s)
{
	s->fd = fd;
	s->blocking_off = -1;
	for (int i = 0; i < VCPU_STATS_HALT_FIELDS; i++)
		s->halt_off[i] = -1;
	struct kvm_stats_header h;
	ssize_t n = pread(fd, &h, sizeof(h), 0);
	if (n < 0)
		return -errno;
	if (n != (ssize_t)sizeof(h) || h.num_desc == 0 || h.num_desc > MAX_DESCS ||
	    h.name_size == 0 || h.name_size > MAX_NAME_SIZE)
		return -ENOTSUP;
	size_t one = sizeof(struct kvm_stats_desc) + h.name_size;
	size_t all = one * h.num_desc; /* at most ~4 MiB: no overflow */
	char *buf = malloc(all);
	if (!buf)
		return -ENOMEM;
	n = pread(fd, buf, all, h.desc_offset);
	int r = n < 0 ? -errno : 0;
	if (r == 0 && (size_t)n != all)
		r = -ENOTSUP;
	for (uint32_t i = 0; r == 0 && i < h.num_desc; i++) {
		struct kvm_stats_desc d;
		memcpy(&d, buf + i * one, sizeof(d));
		const char *name = buf + i * one + sizeof(d);
		if (!memchr(name, '\0', h.name_size))
			continue;				 /* unterminated: not one of ours */
		int64_t off = (int64_t)h.data_offset + d.offset; /* both u32: no overflow */
		for (int f = 0; f < VCPU_STATS_HALT_FIELDS; f++)
			if (strcmp(name, halt_names[f]) == 0 && is_ns_counter(&d))
				s->halt_off[f] = off;
		if (strcmp(name, "blocking") == 0 && is_instant_bool(&d))
			s->blocking_off = off;
	}
	free(buf);
	if (r == 0 && s->halt_off[0] < 0)
		r = -ENOTSUP;
	return r;
}

int vcpu_stats_open(int vcpu_fd, struct vcpu_stats *s)
{
	s->fd = -1;
	int fd = ioctl(vcpu_fd, KVM_GET_STATS_FD, NULL);
	if (fd < 0)
		return errno == EINVAL || errno == ENOTTY ? -ENOTSUP : -errno;
	int r = vcpu_stats_parse(fd, s);
	if (r < 0)
		vcpu_stats_close(s);
	return r;
}

static int read_u64(int fd, int64_t off, uint64_t *v)
{
	ssize_t n = pread(fd, v, sizeof(*v), off);
	if (n < 0)
		return -errno;
	return n == sizeof(*v) ? 0 : -EIO;
}

int vcpu_stats_halted(const struct vcpu_stats *s, int64_t *halted_ns, bool *blocking)
{
	if (s->fd < 0)
		return -EBADF;
	/* blocking first: a halt that begins after this read is not in the caller's busy time
	 * (it read its clock before calling). */
	uint64_t b = 0, sum = 0;
	int r = s->blocking_off >= 0 ? read_u64(s->fd, s->blocking_off, &b) : 0;
	for (int f = 0; r == 0 && f < VCPU_STATS_HALT_FIELDS; f++) {
		uint64_t v = 0;
		if (s->halt_off[f] >= 0)
			r = read_u64(s->fd, s->halt_off[f], &v);
		sum += v < (uint64_t)INT64_MAX / 4 ? v : (uint64_t)INT64_MAX / 4; /* no wrap */
	}
	if (r < 0)
		return r;
	*halted_ns = (int64_t)sum;
	*blocking = b != 0;
	return 0;
}

void vcpu_stats_close(struct vcpu_stats *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}
