/* virtio-balloon on the virtio-pci transport, without a CPU: a real PCI bus with faked KVM
 * plumbing and a driver written in the test, doing what Linux's virtio_balloon does.  Inflated
 * pages leave RAM (read back zero, not resident) and deflate; the target reaches the driver with a
 * configuration interrupt; stats are handed back and refilled; free page reporting frees ranges
 * unless the guest poisons its free pages; queue numbers follow the negotiated features.  Hostile
 * input: PFNs outside RAM and in the PCI hole, duplicates, deflates of pages never inflated,
 * oversized PFN arrays, a malformed ring (DEVICE_NEEDS_RESET), config writes to read-only fields.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "devices/virtio/balloon/virtio_balloon.h"
#include "memory/layout.h"
#include "tests/device/virtio_fixture.h"

#define QSIZE 64
#define PFNS 0x30000ULL	 /* PFN arrays */
#define STATS 0x38000ULL /* the stats buffer */
#define POOL 0x100000ULL /* pages the driver balloons: POOL + 4 KiB * i */
#define ALL_FEATURES                                                                               \
	(1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_F_RING_EVENT_IDX |                            \
	 1ULL << VIRTIO_BALLOON_F_STATS_VQ | 1ULL << VIRTIO_BALLOON_F_DEFLATE_ON_OOM |             \
	 1ULL << VIRTIO_BALLOON_F_PAGE_POISON | 1ULL << VIRTIO_BALLOON_F_REPORTING)
#define Q_INFLATE 0
#define Q_DEFLATE 1
#define Q_STATS 2
#define Q_REPORT 3

struct t {
	struct vf f;
	struct virtio_balloon *b;
	uint16_t used_seen[4];
};

/* The device on RAM of `ram` bytes (0: the fixture's 32 MiB). */
static struct t *t_new(uint64_t ram, uint64_t target_pages)
{
	struct t *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	assert_int_equal(vf_init(&t->f, false), 0);
	if (ram) {
		guest_memory_destroy(&t->f.mem);
		assert_int_equal(guest_memory_create(&t->f.mem, ram), 0);
	}
	struct virtio_balloon_env env = {
	    .pci = t->f.bus, .mem = &t->f.mem, .target_pages = target_pages};
	assert_int_equal(virtio_balloon_create(&env, &t->b), 0);
	vf_enable(&t->f);
	return t;
}

static void t_free(struct t *t)
{
	virtio_balloon_destroy(t->b);
	vf_fini(&t->f);
	free(t);
}

/* Negotiate `features`, MSI-X (config vector 0, queue q vector q+1), nq queues, DRIVER_OK. */
static void t_start(struct t *t, uint64_t features, unsigned nq)
{
	vf_msix_enable(&t->f, VIRTIO_BALLOON_QUEUES + 1);
	uint8_t s = vf_negotiate(&t->f, features);
	assert_true(s & VIRTIO_STATUS_FEATURES_OK);
	vf_w(&t->f, VF_COMMON(0x10), 2, 0);
	for (unsigned q = 0; q < nq; q++)
		vf_queue_setup(&t->f, q, QSIZE, (uint16_t)(q + 1));
	vf_set_status(&t->f, s | VIRTIO_STATUS_DRIVER_OK);
	assert_true(vf_status(&t->f) & VIRTIO_STATUS_DRIVER_OK);
	memset(t->used_seen, 0, sizeof(t->used_seen));
}

static uint32_t cfg_r(struct t *t, unsigned off)
{
	return (uint32_t)vf_r(&t->f, VIRTIO_PCI_DEVICE_OFF + off, 4);
}

static void cfg_w(struct t *t, unsigned off, uint32_t v)
{
	vf_w(&t->f, VIRTIO_PCI_DEVICE_OFF + off, 4, v);
}

/* Send n PFNs on queue q (one chain) and check the device returned it. */
static void send_pfns(struct t *t, unsigned q, const uint32_t *pfn, unsigned n)
{
	uint8_t *a = vf_ram(&t->f, PFNS, 4ULL * n);
	for (unsigned i = 0; i < n; i++)
		put_le32(a + 4 * i, pfn[i]);
	struct vf_buf buf = {PFNS, 4 * n, false};
	vf_post(&t->f, q, &buf, 1);
	vf_kick(&t->f, q);
	assert_int_equal(vf_used_idx(&t->f, q), ++t->used_seen[q]);
}

static uint32_t pool_pfn(unsigned i)
{
	return (uint32_t)((POOL >> 12) + i);
}

static struct virtio_balloon_info info(struct t *t)
{
	struct virtio_balloon_info i;
	virtio_balloon_query(t->b, 0, &i);
	return i;
}

static void test_config_and_target(void **state)
{
	(void)state;
	struct t *t = t_new(0, 100);
	/* offered features */
	vf_w(&t->f, VF_COMMON(0x00), 4, 0);
	uint32_t f = (uint32_t)vf_r(&t->f, VF_COMMON(0x04), 4);
	assert_true(f >> VIRTIO_BALLOON_F_STATS_VQ & 1);
	assert_true(f >> VIRTIO_BALLOON_F_DEFLATE_ON_OOM & 1);
	assert_true(f >> VIRTIO_BALLOON_F_PAGE_POISON & 1);
	assert_true(f >> VIRTIO_BALLOON_F_REPORTING & 1);
	assert_false(f >> VIRTIO_BALLOON_F_FREE_PAGE_HINT & 1);
	assert_int_equal(vf_r(&t->f, VF_COMMON(0x12), 2), VIRTIO_BALLOON_QUEUES);
	t_start(t, ALL_FEATURES, 4);
	assert_int_equal(cfg_r(t, 0), 100); /* num_pages: the power-on target */
	/* the driver owns actual and poison_val; num_pages and the hint id are the device's */
	cfg_w(t, 0, 5555);
	cfg_w(t, 4, 42);
	cfg_w(t, 8, 7);
	cfg_w(t, 12, 0xAAAAAAAA);
	assert_int_equal(cfg_r(t, 0), 100);
	assert_int_equal(cfg_r(t, 4), 42);
	assert_int_equal(cfg_r(t, 8), 0);
	assert_int_equal(cfg_r(t, 12), 0xAAAAAAAA);
	assert_int_equal(info(t).actual_pages, 42);
	/* partial and out-of-range accesses */
	vf_w(&t->f, VIRTIO_PCI_DEVICE_OFF + 5, 1, 0x01);
	assert_int_equal(cfg_r(t, 4), 42 | 0x100);
	assert_int_equal(vf_r(&t->f, VIRTIO_PCI_DEVICE_OFF + 14, 4), 0);
	vf_w(&t->f, VIRTIO_PCI_DEVICE_OFF + 14, 4, 0);
	assert_int_equal(cfg_r(t, 12), 0xAAAAAAAA);
	/* a new target: generation moves, the config vector fires */
	uint8_t gen = (uint8_t)vf_r(&t->f, VF_COMMON(0x15), 1);
	int msis = t->f.signal_msi_count;
	assert_int_equal(virtio_balloon_set_target(t->b, 300), 0);
	assert_int_equal(cfg_r(t, 0), 300);
	assert_int_not_equal((uint8_t)vf_r(&t->f, VF_COMMON(0x15), 1), gen);
	assert_int_equal(t->f.signal_msi_count, msis + 1);
	/* the same target again: nothing to tell */
	assert_int_equal(virtio_balloon_set_target(t->b, 300), 0);
	assert_int_equal(t->f.signal_msi_count, msis + 1);
	/* more than the RAM */
	assert_int_equal(virtio_balloon_set_target(t->b, VF_RAM / 4096 + 1), -ERANGE);
	assert_int_equal(cfg_r(t, 0), 300);
	/* a driver reset forgets actual and poison, keeps the target */
	vf_set_status(&t->f, 0);
	assert_int_equal(cfg_r(t, 4), 0);
	assert_int_equal(cfg_r(t, 12), 0);
	assert_int_equal(cfg_r(t, 0), 300);
	t_free(t);
}

static void test_limit(void **state)
{
	(void)state;
	assert_int_equal(virtio_balloon_limit_mib(1024), 896);
	assert_int_equal(virtio_balloon_limit_mib(256), 192);
	assert_int_equal(virtio_balloon_limit_mib(64), 0);
	assert_int_equal(virtio_balloon_limit_mib(32), 0);
	struct vf f;
	struct virtio_balloon *b;
	assert_int_equal(vf_init(&f, false), 0);
	struct virtio_balloon_env env = {
	    .pci = f.bus, .mem = &f.mem, .target_pages = VF_RAM / 4096 + 1};
	assert_int_equal(virtio_balloon_create(&env, &b), -ERANGE);
	/* --free-page-reporting off: REPORTING is not offered */
	env.target_pages = 0;
	env.no_reporting = true;
	assert_int_equal(virtio_balloon_create(&env, &b), 0);
	vf_enable(&f);
	vf_w(&f, VF_COMMON(0x00), 4, 0);
	assert_false(vf_r(&f, VF_COMMON(0x04), 4) >> VIRTIO_BALLOON_F_REPORTING & 1);
	assert_true(vf_r(&f, VF_COMMON(0x04), 4) >> VIRTIO_BALLOON_F_STATS_VQ & 1);
	virtio_balloon_destroy(b);
	vf_fini(&f);
}

static bool resident(struct t *t, uint64_t gpa)
{
	unsigned char v = 0;
	assert_int_equal(mincore(vf_ram(&t->f, gpa, 4096), 4096, &v), 0);
	return v & 1;
}

static void test_inflate_deflate(void **state)
{
	(void)state;
	struct t *t = t_new(0, 64);
	t_start(t, ALL_FEATURES, 4);
	memset(vf_ram(&t->f, POOL, 65 * 4096), 0xC3, 65 * 4096);
	uint32_t pfn[64];
	for (unsigned i = 0; i < 64; i++)
		pfn[i] = pool_pfn(i);
	send_pfns(t, Q_INFLATE, pfn, 64);
	struct virtio_balloon_info i = info(t);
	assert_int_equal(i.held_pages, 64);
	assert_int_equal(i.inflated, 64);
	for (unsigned k = 0; k < 64; k++) {
		assert_false(resident(t, POOL + 4096ULL * k));
		assert_int_equal(*(uint8_t *)vf_ram(&t->f, POOL + 4096ULL * k + 100, 1), 0);
	}
	/* the page after the pool was not touched */
	assert_int_equal(*(uint8_t *)vf_ram(&t->f, POOL + 64 * 4096, 1), 0xC3);

	/* the host shrinks the target: the driver deflates 16, which counts as requested */
	assert_int_equal(virtio_balloon_set_target(t->b, 48), 0);
	send_pfns(t, Q_DEFLATE, pfn, 16);
	i = info(t);
	assert_int_equal(i.held_pages, 48);
	assert_int_equal(i.deflated, 16);
	assert_int_equal(i.oom_deflated, 0);
	/* the guest takes 8 more back while the target still wants 48: its OOM notifier */
	send_pfns(t, Q_DEFLATE, pfn + 16, 8);
	i = info(t);
	assert_int_equal(i.held_pages, 40);
	assert_int_equal(i.oom_deflated, 8);
	/* deflated pages are the guest's again, zeroed */
	assert_int_equal(*(uint8_t *)vf_ram(&t->f, POOL + 4096 * 3, 1), 0);
	t_free(t);
}

static void test_hostile_pfns(void **state)
{
	(void)state;
	/* RAM on both sides of the PCI hole (MAP_NORESERVE: costs nothing) */
	struct t *t = t_new(LAYOUT_LOW_RAM_END + 16 * MiB, 0);
	t_start(t, ALL_FEATURES, 4);
	uint32_t hole = (uint32_t)(LAYOUT_LOW_RAM_END >> 12), high = (uint32_t)(4 * GiB >> 12);
	uint32_t pfn[] = {
	    pool_pfn(0),
	    pool_pfn(0),		       /* duplicate in the same chain */
	    hole,			       /* the PCI hole */
	    (uint32_t)(0xFEE00000 >> 12),      /* the LAPIC */
	    high + (uint32_t)(16 * MiB >> 12), /* just past high RAM */
	    0xFFFFFFFF,			       /* 16 TiB */
	    high + 1,			       /* valid high RAM */
	};
	memset(vf_ram(&t->f, 4 * GiB + 4096, 4096), 0x77, 4096);
	send_pfns(t, Q_INFLATE, pfn, 7);
	struct virtio_balloon_info i = info(t);
	assert_int_equal(i.held_pages, 2);
	assert_int_equal(i.duplicate_pfns, 1);
	assert_int_equal(i.bad_pfns, 4);
	assert_int_equal(*(uint8_t *)vf_ram(&t->f, 4 * GiB + 4096, 1), 0);
	/* inflated again in a later chain: still a duplicate */
	send_pfns(t, Q_INFLATE, pfn, 1);
	assert_int_equal(info(t).duplicate_pfns, 2);
	/* deflates of pages never inflated, and of bad ones */
	uint32_t stray[] = {pool_pfn(5), hole, 0xFFFFFFFF};
	send_pfns(t, Q_DEFLATE, stray, 3);
	i = info(t);
	assert_int_equal(i.stray_pfns, 1);
	assert_int_equal(i.bad_pfns, 6);
	assert_int_equal(i.held_pages, 2);
	/* an array far longer than any driver sends: refused whole, returned, counted */
	struct vf_buf big = {POOL, 16384 * 4 + 4, false};
	vf_post(&t->f, Q_INFLATE, &big, 1);
	vf_kick(&t->f, Q_INFLATE);
	assert_int_equal(vf_used_idx(&t->f, Q_INFLATE), ++t->used_seen[Q_INFLATE]);
	i = info(t);
	assert_int_equal(i.held_pages, 2);
	assert_int_equal(i.bad_pfns, 6 + 16385);
	/* an empty chain and a trailing partial PFN */
	send_pfns(t, Q_INFLATE, pfn, 0);
	struct vf_buf odd = {PFNS, 6, false};
	put_le32(vf_ram(&t->f, PFNS, 4), pool_pfn(9));
	vf_post(&t->f, Q_INFLATE, &odd, 1);
	vf_kick(&t->f, Q_INFLATE);
	assert_int_equal(info(t).held_pages, 3);
	/* a buffer outside RAM: a malformed ring, DEVICE_NEEDS_RESET, nothing inflated */
	struct vf_buf out = {LAYOUT_LOW_RAM_END, 4, false};
	vf_post(&t->f, Q_INFLATE, &out, 1);
	vf_kick(&t->f, Q_INFLATE);
	assert_true(vf_status(&t->f) & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(info(t).held_pages, 3);
	/* the driver resets: the balloon is empty again, and works after a new start */
	vf_set_status(&t->f, 0);
	assert_int_equal(info(t).held_pages, 0);
	t_start(t, ALL_FEATURES, 4);
	send_pfns(t, Q_INFLATE, pfn, 1);
	assert_int_equal(info(t).held_pages, 1);
	t_free(t);
}

/* Post a stats buffer holding (tag, value) pairs on queue q. */
static void post_stats(struct t *t, unsigned q, const uint16_t *tag, const uint64_t *val,
		       unsigned n)
{
	uint8_t *s = vf_ram(&t->f, STATS, 10ULL * n);
	for (unsigned i = 0; i < n; i++) {
		put_le16(s + 10 * i, tag[i]);
		put_le64(s + 10 * i + 2, val[i]);
	}
	struct vf_buf buf = {STATS, 10 * n, false};
	vf_post(&t->f, q, &buf, 1);
	vf_kick(&t->f, q);
}

struct query_arg {
	struct t *t;
	struct virtio_balloon_info i;
};

static void *query_thread(void *p)
{
	struct query_arg *a = p;
	virtio_balloon_query(a->t->b, 30000, &a->i);
	return NULL;
}

static void test_stats(void **state)
{
	(void)state;
	struct t *t = t_new(0, 0);
	t_start(t, ALL_FEATURES, 4);
	assert_int_equal(info(t).stats_age_ms, -1);
	uint16_t tag[] = {VIRTIO_BALLOON_S_MEMFREE, VIRTIO_BALLOON_S_MEMTOT, 99,
			  VIRTIO_BALLOON_S_MAJFLT};
	uint64_t val[] = {700 * MiB, 1000 * MiB, 1, 12};
	post_stats(t, Q_STATS, tag, val, 4);
	/* held: not returned */
	assert_int_equal(vf_used_idx(&t->f, Q_STATS), 0);
	struct virtio_balloon_info i = info(t);
	assert_int_equal(i.stats_updates, 1);
	assert_true(i.stats_age_ms >= 0);
	assert_int_equal(i.stats[VIRTIO_BALLOON_S_MEMFREE], 700 * MiB);
	assert_int_equal(i.stats[VIRTIO_BALLOON_S_MAJFLT], 12);
	assert_int_equal(i.stats_valid, 1u << VIRTIO_BALLOON_S_MEMFREE |
					    1u << VIRTIO_BALLOON_S_MEMTOT |
					    1u << VIRTIO_BALLOON_S_MAJFLT);
	/* a query hands the buffer back and waits for the refill */
	struct query_arg a = {.t = t};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, query_thread, &a), 0);
	for (int k = 0; k < 100000 && vf_used_idx(&t->f, Q_STATS) == 0; k++)
		usleep(100); /* bounded: only stops a hang */
	assert_int_equal(vf_used_idx(&t->f, Q_STATS), 1);
	val[0] = 300 * MiB;
	post_stats(t, Q_STATS, tag, val, 4);
	pthread_join(th, NULL);
	assert_int_equal(a.i.stats_updates, 2);
	assert_int_equal(a.i.stats[VIRTIO_BALLOON_S_MEMFREE], 300 * MiB);
	/* a driver that posts a second buffer gets the first back */
	post_stats(t, Q_STATS, tag, val, 1);
	assert_int_equal(vf_used_idx(&t->f, Q_STATS), 2);
	assert_int_equal(info(t).stats_updates, 3);
	/* a huge stats buffer: only the first entries are read */
	struct vf_buf big = {POOL, 1 << 20, false};
	memset(vf_ram(&t->f, POOL, 1 << 20), 0xFF, 1 << 20);
	vf_post(&t->f, Q_STATS, &big, 1);
	vf_kick(&t->f, Q_STATS);
	assert_int_equal(info(t).stats_updates, 4);
	t_free(t);
}

static void test_stats_guest_silent(void **state)
{
	(void)state;
	struct t *t = t_new(0, 0);
	t_start(t, ALL_FEATURES, 4);
	uint16_t tag = VIRTIO_BALLOON_S_AVAIL;
	uint64_t val = 5 * MiB;
	post_stats(t, Q_STATS, &tag, &val, 1);
	/* nobody refills: the query gives up after its wait with the old figures */
	struct virtio_balloon_info i;
	virtio_balloon_query(t->b, 20, &i);
	assert_int_equal(i.stats_updates, 1);
	assert_int_equal(i.stats[VIRTIO_BALLOON_S_AVAIL], 5 * MiB);
	/* with the buffer out, a query has nothing to ask for and does not wait */
	virtio_balloon_query(t->b, 30000, &i);
	assert_int_equal(i.stats_updates, 1);
	t_free(t);
}

static void post_report(struct t *t, unsigned q, const struct vf_buf *b, unsigned n)
{
	vf_post(&t->f, q, b, n);
	vf_kick(&t->f, q);
	assert_int_equal(vf_used_idx(&t->f, q), ++t->used_seen[q]);
}

static void test_reporting(void **state)
{
	(void)state;
	struct t *t = t_new(0, 0);
	t_start(t, ALL_FEATURES, 4);
	memset(vf_ram(&t->f, POOL, 8 * MiB), 0x99, 8 * MiB);
	struct vf_buf r[] = {{POOL, 2 * MiB, true}, {POOL + 4 * MiB, 2 * MiB, true}};
	post_report(t, Q_REPORT, r, 2);
	struct virtio_balloon_info i = info(t);
	assert_int_equal(i.reported_bytes, 4 * MiB);
	assert_int_equal(i.held_pages, 0); /* reported pages stay the guest's */
	assert_int_equal(*(uint8_t *)vf_ram(&t->f, POOL + 100, 1), 0);
	assert_int_equal(*(uint8_t *)vf_ram(&t->f, POOL + 2 * MiB, 1), 0x99);
	assert_false(resident(t, POOL + 4 * MiB));
	/* a range that is not whole pages: only its whole pages go */
	struct vf_buf part = {POOL + 2 * MiB + 100, 3 * 4096, true};
	post_report(t, Q_REPORT, &part, 1);
	assert_int_equal(info(t).reported_bytes, 4 * MiB + 2 * 4096);
	assert_int_equal(*(uint8_t *)vf_ram(&t->f, POOL + 2 * MiB + 4095, 1), 0x99);
	/* device-readable buffers are not reports */
	struct vf_buf ro = {POOL + 6 * MiB, 4096, false};
	post_report(t, Q_REPORT, &ro, 1);
	assert_int_equal(*(uint8_t *)vf_ram(&t->f, POOL + 6 * MiB, 1), 0x99);
	/* a guest that poisons its free pages keeps them */
	cfg_w(t, 12, 0xAAAAAAAA);
	struct vf_buf p = {POOL + 6 * MiB, 2 * MiB, true};
	post_report(t, Q_REPORT, &p, 1);
	i = info(t);
	assert_int_equal(i.reported_kept_bytes, 2 * MiB);
	assert_int_equal(*(uint8_t *)vf_ram(&t->f, POOL + 6 * MiB, 1), 0x99);
	t_free(t);
}

/* Without STATS_VQ the reporting queue is number 2 (5.5.2). */
static void test_queue_numbering(void **state)
{
	(void)state;
	struct t *t = t_new(0, 0);
	t_start(t, ALL_FEATURES & ~(1ULL << VIRTIO_BALLOON_F_STATS_VQ), 3);
	memset(vf_ram(&t->f, POOL, 2 * MiB), 0x42, 2 * MiB);
	struct vf_buf r = {POOL, 2 * MiB, true};
	post_report(t, 2, &r, 1);
	struct virtio_balloon_info i = info(t);
	assert_int_equal(i.reported_bytes, 2 * MiB);
	assert_int_equal(i.stats_updates, 0);
	assert_false(i.features >> VIRTIO_BALLOON_F_STATS_VQ & 1);
	/* neither feature: queue 2 has no job; its chains come back untouched */
	vf_set_status(&t->f, 0);
	t_start(t, 1ULL << VIRTIO_F_VERSION_1, 3);
	memset(vf_ram(&t->f, POOL, 4096), 0x42, 4096);
	post_report(t, 2, &r, 1);
	assert_int_equal(*(uint8_t *)vf_ram(&t->f, POOL, 1), 0x42);
	assert_int_equal(info(t).reported_bytes, 2 * MiB);
	t_free(t);
}

/* A machine reset (in-process reboot) empties the balloon too. */
static void test_machine_reset(void **state)
{
	(void)state;
	struct t *t = t_new(0, 8);
	t_start(t, ALL_FEATURES, 4);
	uint32_t pfn[] = {pool_pfn(1), pool_pfn(2)};
	send_pfns(t, Q_INFLATE, pfn, 2);
	assert_int_equal(info(t).held_pages, 2);
	virtio_balloon_reset(t->b);
	assert_int_equal(vf_status(&t->f), 0);
	struct virtio_balloon_info i = info(t);
	assert_int_equal(i.held_pages, 0);
	assert_int_equal(i.target_pages, 8);
	assert_false(i.driver_ok);
	t_free(t);
}

/* --memory MIN:MAX: the guest's available memory moves the target (balloon_policy.h). */
static void test_automatic(void **state)
{
	(void)state;
	struct t *t = calloc(1, sizeof(*t));
	assert_int_equal(vf_init(&t->f, false), 0);
	uint64_t max = VF_RAM / 4096, min = max / 2;
	struct virtio_balloon_env env = {
	    .pci = t->f.bus, .mem = &t->f.mem, .target_pages = max - min, .auto_min_pages = min};
	assert_int_equal(virtio_balloon_create(&env, &t->b), 0);
	vf_enable(&t->f);
	t_start(t, ALL_FEATURES, 4);
	assert_int_equal(cfg_r(t, 0), max - min);
	assert_true(info(t).automatic);
	assert_int_equal(virtio_balloon_set_target(t->b, 10), -EBUSY);
	cfg_w(t, 4, (uint32_t)(max - min)); /* the driver inflated it */
	/* 1 MiB available: under LOW (max/10), deflate to GOAL at once */
	uint16_t tag = VIRTIO_BALLOON_S_AVAIL;
	uint64_t avail = 1 * MiB;
	int msis = t->f.signal_msi_count;
	post_stats(t, Q_STATS, &tag, &avail, 1);
	uint64_t low = max / 10, goal = (low + max / 4) / 2;
	uint64_t t1 = max - min - (goal - 256);
	assert_int_equal(cfg_r(t, 0), t1);
	assert_int_equal(t->f.signal_msi_count, msis + 1);
	/* plenty available: up one step (max/16), never past MAX-MIN */
	avail = 30 * MiB;
	post_stats(t, Q_STATS, &tag, &avail, 1);
	assert_int_equal(cfg_r(t, 0), t1 + max / 16);
	for (int k = 0; k < 10; k++)
		post_stats(t, Q_STATS, &tag, &avail, 1); /* each returns the one before */
	assert_int_equal(cfg_r(t, 0), max - min);
	/* the guest deflated on OOM to 100 pages: a deflation starts from there */
	cfg_w(t, 4, 100);
	avail = 0;
	post_stats(t, Q_STATS, &tag, &avail, 1);
	assert_int_equal(cfg_r(t, 0), 0);
	t_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_config_and_target),
	    cmocka_unit_test(test_limit),
	    cmocka_unit_test(test_inflate_deflate),
	    cmocka_unit_test(test_hostile_pfns),
	    cmocka_unit_test(test_stats),
	    cmocka_unit_test(test_stats_guest_silent),
	    cmocka_unit_test(test_reporting),
	    cmocka_unit_test(test_queue_numbering),
	    cmocka_unit_test(test_machine_reset),
	    cmocka_unit_test(test_automatic),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
