/* KVM's binary statistics of a vCPU (cpu/vcpu_stats.h) from files laid out as KVM lays them out,
 * in a memfd: the halted time and blocking flag found by name, and hostile layouts (counts, sizes
 * and offsets out of bounds, wrong units, unterminated names) refused or skipped, never read
 * past. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/kvm.h>

#include <cmocka.h>

#include "cpu/vcpu_stats.h"

#define NAME_SIZE 48
#define NS_FLAGS (KVM_STATS_TYPE_CUMULATIVE | KVM_STATS_UNIT_SECONDS | KVM_STATS_BASE_POW10)
#define BOOL_FLAGS (KVM_STATS_TYPE_INSTANT | KVM_STATS_UNIT_BOOLEAN)

struct stat_def {
	const char *name;
	uint32_t flags;
	int16_t exponent;
	uint16_t size;
	uint64_t value;
};

/* A stats file: header, id, descriptors, then the data (one u64 per item, in order). */
static int make_file(const struct stat_def *defs, unsigned n, struct kvm_stats_header *hdr_out)
{
	int fd = memfd_create("stats", 0);
	assert_true(fd >= 0);
	struct kvm_stats_header h = {.name_size = NAME_SIZE, .num_desc = n, .id_offset = 24};
	h.desc_offset = h.id_offset + NAME_SIZE;
	size_t one = sizeof(struct kvm_stats_desc) + NAME_SIZE;
	h.data_offset = h.desc_offset + n * one;
	uint32_t off = 0;
	for (unsigned i = 0; i < n; i++) {
		char d[sizeof(struct kvm_stats_desc) + NAME_SIZE] = {0};
		struct kvm_stats_desc desc = {.flags = defs[i].flags,
					      .exponent = defs[i].exponent,
					      .size = defs[i].size,
					      .offset = off};
		memcpy(d, &desc, sizeof(desc));
		memcpy(d + sizeof(desc), defs[i].name, strnlen(defs[i].name, NAME_SIZE));
		assert_int_equal(pwrite(fd, d, one, h.desc_offset + i * one), (ssize_t)one);
		for (unsigned k = 0; k < defs[i].size; k++)
			assert_int_equal(pwrite(fd, &defs[i].value, 8, h.data_offset + off + 8 * k),
					 8);
		off += 8 * defs[i].size;
	}
	assert_int_equal(pwrite(fd, "kvm-1/vcpu-0", 13, h.id_offset), 13);
	if (hdr_out)
		*hdr_out = h;
	assert_int_equal(pwrite(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	return fd;
}

static const struct stat_def linux_like[] = {
    {"halt_successful_poll", KVM_STATS_TYPE_CUMULATIVE, 0, 1, 7},
    {"halt_poll_success_ns", NS_FLAGS, -9, 1, 1000},
    {"halt_poll_fail_ns", NS_FLAGS, -9, 1, 200},
    {"halt_wait_ns", NS_FLAGS, -9, 1, 5000000},
    {"halt_wait_hist", KVM_STATS_TYPE_LOG_HIST | KVM_STATS_UNIT_SECONDS, -9, 32, 3},
    {"blocking", BOOL_FLAGS, 0, 1, 1},
};

static void test_linux_layout(void **unused)
{
	(void)unused;
	struct vcpu_stats s;
	assert_int_equal(vcpu_stats_parse(make_file(linux_like, 6, NULL), &s), 0);
	int64_t ns = 0;
	bool blocking = false;
	assert_int_equal(vcpu_stats_halted(&s, &ns, &blocking), 0);
	assert_int_equal(ns, 5000000 + 1000 + 200); /* polling for a wake-up is halted time too */
	assert_true(blocking);
	vcpu_stats_close(&s);
	assert_int_equal(s.fd, -1);
	vcpu_stats_close(&s); /* twice is fine */
	assert_int_equal(vcpu_stats_halted(&s, &ns, &blocking), -EBADF);
}

static void test_older_kernel(void **unused)
{
	(void)unused;
	/* 5.14/5.15: no blocking flag, no polling figures: halt_wait_ns alone is enough */
	const struct stat_def defs[] = {{"halt_wait_ns", NS_FLAGS, -9, 1, 42}};
	struct vcpu_stats s;
	assert_int_equal(vcpu_stats_parse(make_file(defs, 1, NULL), &s), 0);
	int64_t ns;
	bool blocking = true;
	assert_int_equal(vcpu_stats_halted(&s, &ns, &blocking), 0);
	assert_int_equal(ns, 42);
	assert_false(blocking);
	vcpu_stats_close(&s);
}

static void expect_refused(const struct stat_def *defs, unsigned n)
{
	struct vcpu_stats s;
	assert_int_equal(vcpu_stats_parse(make_file(defs, n, NULL), &s), -ENOTSUP);
	vcpu_stats_close(&s);
}

static void test_wrong_fields(void **unused)
{
	(void)unused;
	/* halt_wait_ns missing, in the wrong unit, exponent, type or size */
	expect_refused(linux_like, 3);
	const struct stat_def unit[] = {{"halt_wait_ns", KVM_STATS_UNIT_CYCLES, -9, 1, 1}};
	expect_refused(unit, 1);
	const struct stat_def exp[] = {{"halt_wait_ns", NS_FLAGS, -6, 1, 1}};
	expect_refused(exp, 1);
	const struct stat_def type[] = {{"halt_wait_ns", NS_FLAGS | KVM_STATS_TYPE_PEAK, -9, 1, 1}};
	expect_refused(type, 1);
	const struct stat_def size[] = {{"halt_wait_ns", NS_FLAGS, -9, 2, 1}};
	expect_refused(size, 1);
	/* a blocking that is not an instant boolean is ignored, not trusted */
	const struct stat_def b[] = {{"halt_wait_ns", NS_FLAGS, -9, 1, 9},
				     {"blocking", KVM_STATS_TYPE_CUMULATIVE, 0, 1, 1}};
	struct vcpu_stats s;
	assert_int_equal(vcpu_stats_parse(make_file(b, 2, NULL), &s), 0);
	assert_int_equal(s.blocking_off, -1);
	vcpu_stats_close(&s);
}

static void rewrite_header(int fd, const struct kvm_stats_header *h)
{
	assert_int_equal(pwrite(fd, h, sizeof(*h), 0), (ssize_t)sizeof(*h));
}

static void test_hostile_layout(void **unused)
{
	(void)unused;
	struct kvm_stats_header h, bad;
	struct vcpu_stats s;
	int fd = make_file(linux_like, 6, &h);
	bad = h;
	bad.num_desc = 0;
	rewrite_header(fd, &bad);
	assert_int_equal(vcpu_stats_parse(fd, &s), -ENOTSUP);
	bad = h;
	bad.num_desc = 0xffffffffu; /* would be a huge allocation */
	rewrite_header(fd, &bad);
	assert_int_equal(vcpu_stats_parse(fd, &s), -ENOTSUP);
	bad = h;
	bad.num_desc = 100; /* more than the file holds: the block is short */
	rewrite_header(fd, &bad);
	assert_int_equal(vcpu_stats_parse(fd, &s), -ENOTSUP);
	bad = h;
	bad.name_size = 0;
	rewrite_header(fd, &bad);
	assert_int_equal(vcpu_stats_parse(fd, &s), -ENOTSUP);
	bad = h;
	bad.name_size = 0xffffffffu;
	rewrite_header(fd, &bad);
	assert_int_equal(vcpu_stats_parse(fd, &s), -ENOTSUP);
	bad = h;
	bad.desc_offset = 0xfffffff0u; /* past the end */
	rewrite_header(fd, &bad);
	assert_int_equal(vcpu_stats_parse(fd, &s), -ENOTSUP);
	/* data past the end of the file: parsed, but a read says so instead of inventing zero */
	bad = h;
	bad.data_offset = 0xfffffff0u;
	rewrite_header(fd, &bad);
	assert_int_equal(vcpu_stats_parse(fd, &s), 0);
	int64_t ns;
	bool blocking;
	assert_int_equal(vcpu_stats_halted(&s, &ns, &blocking), -EIO);
	/* a short header */
	assert_int_equal(ftruncate(fd, 8), 0);
	assert_int_equal(vcpu_stats_parse(fd, &s), -ENOTSUP);
	vcpu_stats_close(&s);
}

static void test_unterminated_name(void **unused)
{
	(void)unused;
	/* a name that fills its field with no NUL is skipped, not read past */
	char longname[NAME_SIZE + 1];
	memset(longname, 'x', NAME_SIZE);
	memcpy(longname, "halt_wait_ns", 12);
	longname[NAME_SIZE] = 0;
	const struct stat_def defs[] = {{longname, NS_FLAGS, -9, 1, 5}};
	expect_refused(defs, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_linux_layout),      cmocka_unit_test(test_older_kernel),
	    cmocka_unit_test(test_wrong_fields),      cmocka_unit_test(test_hostile_layout),
	    cmocka_unit_test(test_unterminated_name),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
