/* virtio-blk on the virtio-pci transport, without a CPU: a real image file, a real PCI bus with
 * faked KVM plumbing, and a driver written in the test.  Reads, writes, flush, discard, write
 * zeroes, GET_ID and read-only disks; feature negotiation; hostile requests, rings and queue
 * settings (each a clean device error: IOERR/UNSUPP or DEVICE_NEEDS_RESET); a reset with requests
 * in flight; doorbells as ioeventfds on an event loop; MSI-X through irqfd routes, masking, INTx.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "devices/disk.h"
#include "devices/virtio/blk/virtio_blk.h"
#include "devices/virtio/virtqueue_packed.h"
#include "storage/core/block_aio.h"
#include "tests/device/virtio_fixture.h"
#include "tests/lib/testdisk.h"
#include "tests/lib/testlib.h"

#define DISK_SIZE (8 * 1024 * 1024)
#define HDR 0x100000ULL	   /* request headers: HDR + 16 * i */
#define STATUS 0x110000ULL /* status bytes: STATUS + i */
#define DATA 0x200000ULL   /* data buffers */
#define QSIZE 64
#define WANT                                                                                       \
	(1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_F_RING_EVENT_IDX |                            \
	 1ULL << VIRTIO_F_RING_INDIRECT_DESC | 1ULL << VIRTIO_BLK_F_FLUSH |                        \
	 1ULL << VIRTIO_BLK_F_DISCARD | 1ULL << VIRTIO_BLK_F_WRITE_ZEROES |                        \
	 1ULL << VIRTIO_BLK_F_BLK_SIZE | 1ULL << VIRTIO_BLK_F_SEG_MAX | 1ULL << VIRTIO_BLK_F_MQ |  \
	 1ULL << VIRTIO_BLK_F_RO)

struct t {
	struct vf f;
	struct disk *disk;
	struct virtio_blk *blk;
	char image[256];
	unsigned nreq; /* requests posted, for header/status slots */
	/* the completer thread for the reset test */
	pthread_t completer;
	volatile bool completer_stop;
};

static uint8_t pattern(uint64_t i)
{
	return (uint8_t)((i * 13 + i / 512) & 0xFF);
}

static struct t *t_new(const char *opts, unsigned nqueues, bool with_loop)
{
	struct t *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	assert_int_equal(vf_init(&t->f, with_loop), 0);
	snprintf(t->image, sizeof(t->image), "%s", test_path("disk.raw"));
	uint8_t *buf = malloc(DISK_SIZE);
	for (uint64_t i = 0; i < DISK_SIZE; i++)
		buf[i] = pattern(i);
	test_file_write(t->image, buf, DISK_SIZE);
	free(buf);
	char arg[512];
	snprintf(arg, sizeof(arg), "%s,format=raw,bus=virtio%s", t->image, opts);
	t->disk = test_disk_open(arg, DISK_MEDIA_HDD);
	assert_non_null(t->disk);
	struct virtio_blk_env env = {
	    .pci = t->f.bus, .mem = &t->f.mem, .loop = t->f.loop, .nqueues = nqueues};
	assert_int_equal(virtio_blk_create(&env, t->disk, &t->blk), 0);
	vf_loop_start(&t->f);
	vf_enable(&t->f);
	return t;
}

static void complete_all(struct t *t)
{
	for (int i = 0; i < 10000 && t->disk->aio && block_aio_pending(t->disk->aio); i++)
		block_aio_poll(t->disk->aio, 1000);
}

static void t_free(struct t *t)
{
	complete_all(t);
	vf_loop_stop(&t->f);
	virtio_blk_destroy(t->blk);
	disk_close(t->disk);
	vf_fini(&t->f);
	free(t);
}

/* Negotiate, MSI-X on, queues 0..nq-1 of QSIZE entries with vector q+1, DRIVER_OK. */
static void t_start(struct t *t, unsigned nq)
{
	vf_msix_enable(&t->f, nq + 1);
	uint8_t s = vf_negotiate(&t->f, WANT);
	assert_true(s & VIRTIO_STATUS_FEATURES_OK);
	vf_w(&t->f, VF_COMMON(0x10), 2, 0); /* config vector */
	for (unsigned q = 0; q < nq; q++)
		vf_queue_setup(&t->f, q, QSIZE, (uint16_t)(q + 1));
	vf_set_status(&t->f, s | VIRTIO_STATUS_DRIVER_OK);
	assert_true(vf_status(&t->f) & VIRTIO_STATUS_DRIVER_OK);
}

/* Post a request {header, data..., status} on queue q without a kick; returns its status slot. */
static unsigned t_post(struct t *t, unsigned q, uint32_t type, uint64_t sector,
		       const struct vf_buf *data, unsigned ndata)
{
	unsigned slot = t->nreq++ % 256;
	uint8_t *h = vf_ram(&t->f, HDR + 16 * slot, 16);
	put_le32(h, type);
	put_le32(h + 4, 0);
	put_le64(h + 8, sector);
	*(uint8_t *)vf_ram(&t->f, STATUS + slot, 1) = 0xEE;
	struct vf_buf b[8];
	b[0] = (struct vf_buf){HDR + 16 * slot, 16, false};
	for (unsigned i = 0; i < ndata; i++)
		b[1 + i] = data[i];
	b[1 + ndata] = (struct vf_buf){STATUS + slot, 1, true};
	vf_post(&t->f, q, b, ndata + 2);
	return slot;
}

/* Post a request and kick; returns its status slot. */
static unsigned t_req(struct t *t, unsigned q, uint32_t type, uint64_t sector,
		      const struct vf_buf *data, unsigned ndata)
{
	unsigned slot = t_post(t, q, type, sector, data, ndata);
	vf_kick(&t->f, q);
	return slot;
}

/* Run completions until queue q has `n` used entries (bounded). */
static void t_wait_used(struct t *t, unsigned q, uint16_t n)
{
	/* Bounded only to stop a hang: an ioeventfd kick is taken by the loop thread. */
	for (int i = 0; i < 20000 && vf_used_idx(&t->f, q) != n; i++)
		if (!block_aio_poll(t->disk->aio, 1))
			usleep(500);
	assert_int_equal(vf_used_idx(&t->f, q), n);
	/* As Linux does with EVENT_IDX: interrupt me at the next used entry. */
	put_le16(vf_ram(&t->f, VF_RING(q) + 0x1000 + 4 + 2 * t->f.qsize[q], 2), n);
}

static uint8_t st(struct t *t, unsigned slot)
{
	return *(uint8_t *)vf_ram(&t->f, STATUS + slot, 1);
}

/* One request, waited for: its status. */
static uint8_t t_do(struct t *t, unsigned q, uint32_t type, uint64_t sector,
		    const struct vf_buf *data, unsigned ndata)
{
	uint16_t before = vf_used_idx(&t->f, q);
	unsigned slot = t_req(t, q, type, sector, data, ndata);
	t_wait_used(t, q, (uint16_t)(before + 1));
	return st(t, slot);
}

static void host_read(struct t *t, uint64_t off, void *buf, size_t len)
{
	int fd = open(t->image, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

/* --- identity and configuration --------------------------------------------------------- */

static void identity_caps_and_config(void **state)
{
	(void)state;
	struct t *t = t_new("", 2, false);
	struct vf *f = &t->f;
	assert_int_equal(pci_config_read(f->bus, f->devfn, PCI_DEVICE_ID, 2), 0x1042);
	assert_int_equal(pci_config_read(f->bus, f->devfn, PCI_REVISION, 1), 1);
	static const uint8_t types[] = {VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_CAP_NOTIFY_CFG,
					VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_CAP_DEVICE_CFG};
	static const uint32_t offs[] = {VIRTIO_PCI_COMMON_OFF, VIRTIO_PCI_NOTIFY_OFF,
					VIRTIO_PCI_ISR_OFF, VIRTIO_PCI_DEVICE_OFF};
	for (unsigned i = 0; i < 4; i++) {
		unsigned c = vf_find_cap(f, 0x09, types[i]);
		assert_true(c != 0);
		assert_int_equal(pci_config_read(f->bus, f->devfn, c + 4, 1), 0); /* BAR0 */
		assert_int_equal(pci_config_read(f->bus, f->devfn, c + 8, 4), offs[i]);
	}
	unsigned n = vf_find_cap(f, 0x09, VIRTIO_PCI_CAP_NOTIFY_CFG);
	assert_int_equal(pci_config_read(f->bus, f->devfn, n + 16, 4), VIRTIO_PCI_NOTIFY_MULT);
	unsigned m = vf_find_cap(f, PCI_CAP_ID_MSIX, 0);
	assert_int_equal((pci_config_read(f->bus, f->devfn, m + 2, 2) & 0x7FF) + 1, 3);
	assert_int_equal(vf_r(f, VF_COMMON(0x12), 2), 2); /* num_queues */
	uint64_t dev = VIRTIO_PCI_DEVICE_OFF;
	assert_int_equal(vf_r(f, dev + 0x00, 8), DISK_SIZE / 512); /* capacity */
	assert_int_equal(vf_r(f, dev + 0x14, 4), 512);		   /* blk_size */
	assert_int_equal(vf_r(f, dev + 0x22, 2), 2);		   /* num_queues */
	assert_true(vf_r(f, dev + 0x0C, 4) >= 1);		   /* seg_max */
	/* SeaBIOS 1.16 bounds a request by size_max * seg_max / 512, computed in 32 and then 16
	 * bits; a bound that wraps to 0 made it loop on zero-length reads. */
	uint64_t max_io = vf_r(f, dev + 0x08, 4) * vf_r(f, dev + 0x0C, 4);
	assert_true(max_io <= UINT32_MAX);
	assert_true(max_io / 512 >= 128 && max_io / 512 <= UINT16_MAX);
	assert_int_equal(vf_r(f, dev + 0x28, 4), 1); /* max_discard_seg */
	assert_int_equal(vf_r(f, VF_COMMON(0x16), 2), 0);
	assert_int_equal(vf_r(f, VF_COMMON(0x18), 2), VQ_MAX_SIZE); /* queue_size max */
	vf_w(f, VF_COMMON(0x16), 2, 1);
	assert_int_equal(vf_r(f, VF_COMMON(0x1E), 2), 1); /* queue_notify_off */
	vf_w(f, VF_COMMON(0x16), 2, 7);			  /* no such queue: size 0 */
	assert_int_equal(vf_r(f, VF_COMMON(0x18), 2), 0);
	t_free(t);
}

static void feature_negotiation(void **state)
{
	(void)state;
	struct t *t = t_new("", 1, false);
	struct vf *f = &t->f;
	/* A legacy driver (no VERSION_1) is refused: FEATURES_OK stays clear. */
	assert_false(vf_negotiate(f, WANT & ~(1ULL << VIRTIO_F_VERSION_1)) &
		     VIRTIO_STATUS_FEATURES_OK);
	/* A feature that was not offered (RO on a writable disk; bit 40). */
	vf_negotiate(f, 0);
	vf_set_status(f, 0);
	vf_set_status(f, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	vf_w(f, VF_COMMON(0x08), 4, 0);
	vf_w(f, VF_COMMON(0x0C), 4, 1u << VIRTIO_BLK_F_RO);
	vf_w(f, VF_COMMON(0x08), 4, 1);
	vf_w(f, VF_COMMON(0x0C), 4, 1 | 1u << 8);
	vf_set_status(f,
		      VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	assert_false(vf_status(f) & VIRTIO_STATUS_FEATURES_OK);
	/* DRIVER_OK without FEATURES_OK is not taken. */
	vf_set_status(f,
		      VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK);
	assert_false(vf_status(f) & VIRTIO_STATUS_DRIVER_OK);
	/* The good way works, and features cannot change after FEATURES_OK. */
	assert_true(vf_negotiate(f, WANT) & VIRTIO_STATUS_FEATURES_OK);
	vf_w(f, VF_COMMON(0x08), 4, 0);
	uint32_t lo = (uint32_t)vf_r(f, VF_COMMON(0x0C), 4);
	vf_w(f, VF_COMMON(0x0C), 4, 0);
	assert_int_equal(vf_r(f, VF_COMMON(0x0C), 4), lo);
	assert_false(lo & 1u << VIRTIO_BLK_F_RO); /* writable disk: RO not offered */
	t_free(t);
}

/* --- data path -------------------------------------------------------------------------- */

/* Eight requests behind one kick reach the host kernel in one submission (io_uring engine). */
static void one_kick_one_submission(void **state)
{
	(void)state;
	struct t *t = t_new("", 1, false);
	t_start(t, 1);
	struct block_aio_ctx *aio = t->disk->aio;
	unsigned enters = block_aio_kernel_submits(aio);
	uint16_t used = vf_used_idx(&t->f, 0);
	for (unsigned i = 0; i < 8; i++) {
		struct vf_buf rd = {DATA + 0x1000 * i, 4096, true};
		t_post(t, 0, VIRTIO_BLK_T_IN, 8 * i, &rd, 1);
	}
	vf_kick(&t->f, 0);
	t_wait_used(t, 0, (uint16_t)(used + 8));
	for (unsigned i = 0; i < 8 * 4096; i++)
		assert_int_equal(*(uint8_t *)vf_ram(&t->f, DATA + i, 1), pattern(i));
	if (block_aio_engine(aio) == BLOCK_AIO_ENGINE_URING)
		assert_int_equal(block_aio_kernel_submits(aio), enters + 1);
	t_free(t);
}

static void read_write_flush(void **state)
{
	(void)state;
	struct t *t = t_new(",cache=none", 2, false);
	t_start(t, 2);
	/* Read 8 KiB at sector 16 into two separate buffers. */
	struct vf_buf rd[2] = {{DATA, 4096, true}, {DATA + 0x10000, 4096, true}};
	assert_int_equal(t_do(t, 0, VIRTIO_BLK_T_IN, 16, rd, 2), VIRTIO_BLK_S_OK);
	uint32_t id, len;
	vf_used(&t->f, 0, 0, &id, &len);
	assert_int_equal(len, 8192 + 1);
	for (unsigned i = 0; i < 8192; i++) {
		uint8_t *p = vf_ram(&t->f, i < 4096 ? DATA + i : DATA + 0x10000 + i - 4096, 1);
		assert_int_equal(*p, pattern(16 * 512 + i));
	}
	/* Write 4 KiB at sector 64 on queue 1, then read it back on queue 0. */
	uint8_t *w = vf_ram(&t->f, DATA + 0x20000, 4096);
	for (unsigned i = 0; i < 4096; i++)
		w[i] = (uint8_t)(i * 7 + 1);
	struct vf_buf wr = {DATA + 0x20000, 4096, false};
	assert_int_equal(t_do(t, 1, VIRTIO_BLK_T_OUT, 64, &wr, 1), VIRTIO_BLK_S_OK);
	unsigned flushes = block_aio_flush_count(t->disk->aio);
	assert_int_equal(t_do(t, 1, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_OK);
	assert_int_equal(block_aio_flush_count(t->disk->aio), flushes + 1);
	struct vf_buf rb = {DATA + 0x30000, 4096, true};
	assert_int_equal(t_do(t, 0, VIRTIO_BLK_T_IN, 64, &rb, 1), VIRTIO_BLK_S_OK);
	assert_memory_equal(vf_ram(&t->f, DATA + 0x30000, 4096), w, 4096);
	uint8_t host[4096];
	host_read(t, 64 * 512, host, sizeof(host));
	assert_memory_equal(host, w, 4096);
	/* Interrupts went through the irqfd-less path: KVM_SIGNAL_MSI (no irq ops on this bus). */
	assert_true(t->f.signal_msi_count >= 4);
	t_free(t);
}

static void discard_and_write_zeroes(void **state)
{
	(void)state;
	struct t *t = t_new("", 1, false);
	t_start(t, 1);
	uint8_t *r = vf_ram(&t->f, DATA, 16);
	/* Write zeroes (with unmap allowed) over 8 sectors at 100. */
	put_le64(r, 100);
	put_le32(r + 8, 8);
	put_le32(r + 12, 1);
	struct vf_buf range = {DATA, 16, false};
	assert_int_equal(t_do(t, 0, VIRTIO_BLK_T_WRITE_ZEROES, 0, &range, 1), VIRTIO_BLK_S_OK);
	uint8_t host[4096], zero[4096] = {0};
	host_read(t, 100 * 512, host, sizeof(host));
	assert_memory_equal(host, zero, sizeof(zero));
	host_read(t, 108 * 512, host, 1);
	assert_int_equal(host[0], pattern(108 * 512));
	/* Discard: accepted; with the unmap flag (only for write zeroes): UNSUPP. */
	put_le32(r + 12, 0);
	assert_int_equal(t_do(t, 0, VIRTIO_BLK_T_DISCARD, 0, &range, 1), VIRTIO_BLK_S_OK);
	put_le32(r + 12, 1);
	assert_int_equal(t_do(t, 0, VIRTIO_BLK_T_DISCARD, 0, &range, 1), VIRTIO_BLK_S_UNSUPP);
	put_le32(r + 12, 0x80); /* unknown flag */
	assert_int_equal(t_do(t, 0, VIRTIO_BLK_T_WRITE_ZEROES, 0, &range, 1), VIRTIO_BLK_S_UNSUPP);
	/* Ranges past the end, that wrap, or two ranges at once: IOERR. */
	put_le32(r + 12, 0);
	put_le64(r, DISK_SIZE / 512 - 4);
	assert_int_equal(t_do(t, 0, VIRTIO_BLK_T_WRITE_ZEROES, 0, &range, 1), VIRTIO_BLK_S_IOERR);
	put_le64(r, UINT64_MAX - 2);
	assert_int_equal(t_do(t, 0, VIRTIO_BLK_T_DISCARD, 0, &range, 1), VIRTIO_BLK_S_IOERR);
	struct vf_buf two = {DATA, 32, false};
	put_le64(r, 0);
	assert_int_equal(t_do(t, 0, VIRTIO_BLK_T_DISCARD, 0, &two, 1), VIRTIO_BLK_S_IOERR);
	struct vf_buf half = {DATA, 8, false};
	assert_int_equal(t_do(t, 0, VIRTIO_BLK_T_DISCARD, 0, &half, 1), VIRTIO_BLK_S_IOERR);
	t_free(t);
}

static void get_id_gives_serial(void **state)
{
	(void)state;
	struct t *t = t_new("", 1, false);
	t_start(t, 1);
	memset(vf_ram(&t->f, DATA, 64), 0xAA, 64);
	struct vf_buf id = {DATA, VIRTIO_BLK_ID_BYTES, true};
	assert_int_equal(t_do(t, 0, VIRTIO_BLK_T_GET_ID, 0, &id, 1), VIRTIO_BLK_S_OK);
	char got[VIRTIO_BLK_ID_BYTES + 1] = {0};
	memcpy(got, vf_ram(&t->f, DATA, VIRTIO_BLK_ID_BYTES), VIRTIO_BLK_ID_BYTES);
	assert_string_equal(got, t->disk->serial);
	assert_true(strlen(got) > 0);
	/* A buffer shorter than 20 bytes gets what fits, nothing past it. */
	memset(vf_ram(&t->f, DATA, 64), 0xAA, 64);
	struct vf_buf small = {DATA, 4, true};
	assert_int_equal(t_do(t, 0, VIRTIO_BLK_T_GET_ID, 0, &small, 1), VIRTIO_BLK_S_OK);
	assert_memory_equal(vf_ram(&t->f, DATA, 4), t->disk->serial, 4);
	assert_int_equal(*(uint8_t *)vf_ram(&t->f, DATA + 4, 1), 0xAA);
	t_free(t);
}

static void read_only_disk(void **state)
{
	(void)state;
	struct t *t = t_new(",readonly", 1, false);
	struct vf *f = &t->f;
	vf_w(f, VF_COMMON(0x00), 4, 0);
	uint32_t lo = (uint32_t)vf_r(f, VF_COMMON(0x04), 4);
	assert_true(lo & 1u << VIRTIO_BLK_F_RO);
	assert_false(lo & 1u << VIRTIO_BLK_F_DISCARD);
	assert_false(lo & 1u << VIRTIO_BLK_F_WRITE_ZEROES);
	t_start(t, 1);
	memset(vf_ram(f, DATA, 4096), 0x55, 4096);
	struct vf_buf wr = {DATA, 4096, false};
	assert_int_equal(t_do(t, 0, VIRTIO_BLK_T_OUT, 0, &wr, 1), VIRTIO_BLK_S_IOERR);
	uint8_t host[1];
	host_read(t, 0, host, 1);
	assert_int_equal(host[0], pattern(0));
	struct vf_buf rd = {DATA, 512, true};
	assert_int_equal(t_do(t, 0, VIRTIO_BLK_T_IN, 0, &rd, 1), VIRTIO_BLK_S_OK);
	assert_int_equal(*(uint8_t *)vf_ram(f, DATA + 1, 1), pattern(1));
	assert_int_equal(t_do(t, 0, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_OK);
	uint8_t *r = vf_ram(f, DATA, 16);
	memset(r, 0, 16);
	put_le32(r + 8, 1);
	struct vf_buf range = {DATA, 16, false};
	assert_int_equal(t_do(t, 0, VIRTIO_BLK_T_DISCARD, 0, &range, 1), VIRTIO_BLK_S_UNSUPP);
	t_free(t);
}

/* --- hostile driver --------------------------------------------------------------------- */

static void bad_requests_fail_cleanly(void **state)
{
	(void)state;
	struct t *t = t_new("", 1, false);
	t_start(t, 1);
	struct vf_buf rd = {DATA, 4096, true};
	/* Past the end of the disk, wrapping sector arithmetic, partial sectors: IOERR. */
	assert_int_equal(t_do(t, 0, VIRTIO_BLK_T_IN, DISK_SIZE / 512 - 1, &rd, 1),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(t_do(t, 0, VIRTIO_BLK_T_IN, UINT64_MAX / 512 + 5, &rd, 1),
			 VIRTIO_BLK_S_IOERR);
	struct vf_buf odd = {DATA, 100, true};
	assert_int_equal(t_do(t, 0, VIRTIO_BLK_T_IN, 0, &odd, 1), VIRTIO_BLK_S_IOERR);
	struct vf_buf wodd = {DATA, 513, false};
	assert_int_equal(t_do(t, 0, VIRTIO_BLK_T_OUT, 0, &wodd, 1), VIRTIO_BLK_S_IOERR);
	/* Unknown request types: UNSUPP. */
	assert_int_equal(t_do(t, 0, 0x7777, 0, NULL, 0), VIRTIO_BLK_S_UNSUPP);
	/* Still healthy. */
	assert_false(vf_status(&t->f) & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(t_do(t, 0, VIRTIO_BLK_T_IN, 0, &rd, 1), VIRTIO_BLK_S_OK);
	t_free(t);
}

/* After NEEDS_RESET: no more requests are taken; a reset brings the device back. */
static void assert_needs_reset_then_recovers(struct t *t, int config_fires_before)
{
	struct vf *f = &t->f;
	assert_true(vf_status(f) & VIRTIO_STATUS_NEEDS_RESET);
	assert_true(f->signal_msi_count > config_fires_before); /* config-change interrupt */
	uint16_t used = vf_used_idx(f, 0);
	struct vf_buf rd = {DATA, 512, true};
	t_req(t, 0, VIRTIO_BLK_T_IN, 0, &rd, 1);
	complete_all(t);
	assert_int_equal(vf_used_idx(f, 0), used);
	t_start(t, 1); /* resets (status 0) and sets the queue up again */
	assert_false(vf_status(f) & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(t_do(t, 0, VIRTIO_BLK_T_IN, 0, &rd, 1), VIRTIO_BLK_S_OK);
}

static void malformed_chains_need_reset(void **state)
{
	(void)state;
	/* Each case breaks the ring in its own way. */
	for (int c = 0; c < 6; c++) {
		struct t *t = t_new("", 1, false);
		t_start(t, 1);
		struct vf *f = &t->f;
		int before = f->signal_msi_count;
		uint8_t *avail = vf_ram(f, VF_RING(0) + 0x1000, 8);
		switch (c) {
		case 0: /* a descriptor loop */
			vf_desc(f, 0, 0, HDR, 16, VRING_DESC_F_NEXT, 1);
			vf_desc(f, 0, 1, STATUS, 1, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 0);
			put_le16(avail + 4, 0);
			put_le16(avail + 2, 1);
			break;
		case 1: /* a header outside RAM */
			vf_desc(f, 0, 0, VF_RAM - 4, 16, VRING_DESC_F_NEXT, 1);
			vf_desc(f, 0, 1, STATUS, 1, VRING_DESC_F_WRITE, 0);
			put_le16(avail + 4, 0);
			put_le16(avail + 2, 1);
			break;
		case 2: /* no status byte (nothing device-writable) */
		{
			struct vf_buf b[2] = {{HDR, 16, false}, {DATA, 512, false}};
			vf_post(f, 0, b, 2);
			break;
		}
		case 3: /* a header shorter than 16 bytes */
		{
			struct vf_buf b[2] = {{HDR, 8, false}, {STATUS, 1, true}};
			vf_post(f, 0, b, 2);
			break;
		}
		case 4: /* avail idx jumps by more than the queue size */
			put_le16(avail + 2, QSIZE + 3);
			break;
		case 5: /* a head index past the table */
			put_le16(avail + 4, QSIZE + 1);
			put_le16(avail + 2, 1);
			break;
		}
		vf_kick(f, 0);
		complete_all(t);
		assert_int_equal(vf_used_idx(f, 0), 0);
		assert_needs_reset_then_recovers(t, before);
		t_free(t);
	}
}

static void hostile_queue_settings(void **state)
{
	(void)state;
	struct t *t = t_new("", 1, false);
	struct vf *f = &t->f;
	vf_msix_enable(f, 2);
	uint8_t s = vf_negotiate(f, WANT);
	/* A vector past the table reads back NO_VECTOR. */
	vf_w(f, VF_COMMON(0x16), 2, 0);
	vf_w(f, VF_COMMON(0x1A), 2, 9);
	assert_int_equal(vf_r(f, VF_COMMON(0x1A), 2), VIRTIO_MSI_NO_VECTOR);
	vf_w(f, VF_COMMON(0x10), 2, 500);
	assert_int_equal(vf_r(f, VF_COMMON(0x10), 2), VIRTIO_MSI_NO_VECTOR);
	/* A size that is not a power of two: the queue stays off, the device needs a reset. */
	vf_queue_setup(f, 0, 24, 1);
	assert_int_equal(vf_r(f, VF_COMMON(0x1C), 2), 0);
	assert_true(vf_status(f) & VIRTIO_STATUS_NEEDS_RESET);
	/* Rings in the MMIO hole. */
	s = vf_negotiate(f, WANT);
	assert_false(vf_status(f) & VIRTIO_STATUS_NEEDS_RESET);
	vf_w(f, VF_COMMON(0x16), 2, 0);
	vf_w(f, VF_COMMON(0x18), 2, 16);
	vf_w(f, VF_COMMON(0x20), 4, 0xFEC00000);
	vf_w(f, VF_COMMON(0x1C), 2, 1);
	assert_int_equal(vf_r(f, VF_COMMON(0x1C), 2), 0);
	assert_true(vf_status(f) & VIRTIO_STATUS_NEEDS_RESET);
	/* A size above the maximum. */
	s = vf_negotiate(f, WANT);
	vf_queue_setup(f, 0, VQ_MAX_SIZE * 2, 1);
	assert_true(vf_status(f) & VIRTIO_STATUS_NEEDS_RESET);
	/* Odd accesses to the common configuration are ignored, reads of odd widths work. */
	s = vf_negotiate(f, WANT);
	vf_w(f, VF_COMMON(0x13), 1, 0xFF);
	vf_w(f, VF_COMMON(0x3F), 1, 0xFF);
	vf_w(f, VF_COMMON(0x12), 2, 0x1234); /* num_queues is read-only */
	assert_int_equal(vf_r(f, VF_COMMON(0x12), 2), 1);
	assert_int_equal(vf_r(f, VIRTIO_PCI_DEVICE_OFF + 0x3FF, 1), 0); /* past config_len */
	vf_w(f, VIRTIO_PCI_NOTIFY_OFF + 4 * 40, 2, 40);			/* no such queue */
	/* Queue fields frozen while the queue runs. */
	vf_queue_setup(f, 0, 16, 1);
	vf_set_status(f, s | VIRTIO_STATUS_DRIVER_OK);
	vf_w(f, VF_COMMON(0x18), 2, 3);
	vf_w(f, VF_COMMON(0x20), 4, 0xFEC00000);
	assert_int_equal(vf_r(f, VF_COMMON(0x18), 2), 16);
	assert_int_equal(vf_r(f, VF_COMMON(0x20), 4), VF_RING(0));
	assert_false(vf_status(f) & VIRTIO_STATUS_NEEDS_RESET);
	t_free(t);
}

/* The same device on a packed ring (VIRTIO_F_RING_PACKED): a read and a write, then a chain the
 * driver never finished (NEXT into an unavailable descriptor) needs a reset. */
static void packed_ring_read_write(void **state)
{
	(void)state;
	struct t *t = t_new("", 1, false);
	struct vf *f = &t->f;
	vf_msix_enable(f, 2);
	uint8_t s = vf_negotiate(f, WANT | 1ULL << VIRTIO_F_RING_PACKED);
	assert_true(s & VIRTIO_STATUS_FEATURES_OK);
	vf_queue_setup(f, 0, 16, 1);
	vf_set_status(f, s | VIRTIO_STATUS_DRIVER_OK);
	uint8_t *ring = vf_ram(f, VF_RING(0), 16 * 16);
	uint16_t avail = VRING_PACKED_DESC_F_AVAIL; /* driver wrap counter 1 */
	struct {
		uint32_t type;
		uint64_t data;
		bool write;
	} reqs[2] = {{VIRTIO_BLK_T_OUT, DATA, false}, {VIRTIO_BLK_T_IN, DATA + 0x1000, true}};
	memset(vf_ram(f, DATA, 512), 0x5A, 512);
	for (unsigned i = 0; i < 2; i++) {
		uint8_t *h = vf_ram(f, HDR + 16 * i, 16);
		put_le32(h, reqs[i].type);
		put_le64(h + 8, 3);
		uint8_t *d = ring + 48 * i;
		uint64_t addr[3] = {HDR + 16 * i, reqs[i].data, STATUS + i};
		uint32_t len[3] = {16, 512, 1};
		uint16_t fl[3] = {VRING_DESC_F_NEXT,
				  VRING_DESC_F_NEXT | (reqs[i].write ? VRING_DESC_F_WRITE : 0),
				  VRING_DESC_F_WRITE};
		for (int k = 2; k >= 0; k--) { /* the first descriptor's flags last */
			put_le64(d + 16 * k, addr[k]);
			put_le32(d + 16 * k + 8, len[k]);
			put_le16(d + 16 * k + 12, (uint16_t)(100 + i));
			__atomic_store_n((uint16_t *)(d + 16 * k + 14), fl[k] | avail,
					 __ATOMIC_RELEASE);
		}
		vf_kick(f, 0);
		/* Wait for the used descriptor at the chain's start (bounded against hangs). */
		for (int n = 0; n < 20000 && !(get_le16(d + 14) & VRING_PACKED_DESC_F_USED); n++)
			if (!block_aio_poll(t->disk->aio, 1))
				usleep(500);
		assert_true(get_le16(d + 14) & VRING_PACKED_DESC_F_USED);
		assert_int_equal(get_le16(d + 12), 100 + i);
		assert_int_equal(st(t, i), VIRTIO_BLK_S_OK);
	}
	assert_memory_equal(vf_ram(f, DATA + 0x1000, 512), vf_ram(f, DATA, 512), 512);
	assert_true(f->signal_msi_count >= 1);
	/* NEXT into a descriptor that is not available: the ring is broken. */
	uint8_t *d = ring + 96;
	put_le64(d, HDR);
	put_le32(d + 8, 16);
	__atomic_store_n((uint16_t *)(d + 14), VRING_DESC_F_NEXT | avail, __ATOMIC_RELEASE);
	vf_kick(f, 0);
	assert_true(vf_status(f) & VIRTIO_STATUS_NEEDS_RESET);
	t_free(t);
}

/* --- reset with requests in flight ------------------------------------------------------ */

/* Run completions only once the driver's reset is under way (status reads 0). */
static void *gated_completer(void *arg)
{
	struct t *t = arg;
	while (!t->completer_stop) {
		if (vf_status(&t->f) != 0) {
			sched_yield();
			continue;
		}
		block_aio_poll(t->disk->aio, 1);
	}
	return NULL;
}

static void reset_waits_for_requests_in_flight(void **state)
{
	(void)state;
	struct t *t = t_new("", 1, false);
	t_start(t, 1);
	for (unsigned i = 0; i < 16; i++) {
		struct vf_buf rd = {DATA + 0x10000ULL * i, 0x10000, true};
		t_req(t, 0, VIRTIO_BLK_T_IN, 128ULL * i, &rd, 1);
	}
	assert_int_equal(virtio_blk_inflight(t->blk), 16);
	assert_int_equal(pthread_create(&t->completer, NULL, gated_completer, t), 0);
	vf_set_status(&t->f, 0); /* returns only once every request has ended */
	assert_int_equal(virtio_blk_inflight(t->blk), 0);
	t->completer_stop = true;
	pthread_join(t->completer, NULL);
	/* Nothing reached the used ring after the reset. */
	assert_int_equal(vf_used_idx(&t->f, 0), 0);
	/* The device works again after a fresh set-up. */
	t_start(t, 1);
	struct vf_buf rd = {DATA, 512, true};
	assert_int_equal(t_do(t, 0, VIRTIO_BLK_T_IN, 0, &rd, 1), VIRTIO_BLK_S_OK);
	t_free(t);
}

static void *completer(void *arg)
{
	struct t *t = arg;
	while (!t->completer_stop)
		block_aio_poll(t->disk->aio, 1);
	return NULL;
}

/* A machine reset (in-process reboot) with requests in flight: the same wait, then power-on state.
 */
static void machine_reset_with_requests_in_flight(void **state)
{
	(void)state;
	struct t *t = t_new("", 1, false);
	t_start(t, 1);
	for (unsigned i = 0; i < 8; i++) {
		struct vf_buf wr = {DATA + 0x10000ULL * i, 0x10000, false};
		t_req(t, 0, VIRTIO_BLK_T_OUT, 128ULL * i, &wr, 1);
	}
	assert_int_equal(pthread_create(&t->completer, NULL, completer, t), 0);
	virtio_blk_reset(t->blk);
	assert_int_equal(virtio_blk_inflight(t->blk), 0);
	t->completer_stop = true;
	pthread_join(t->completer, NULL);
	assert_int_equal(vf_status(&t->f), 0);
	vf_w(&t->f, VF_COMMON(0x16), 2, 0);
	assert_int_equal(vf_r(&t->f, VF_COMMON(0x1C), 2), 0); /* queue disabled */
	assert_int_equal(vf_r(&t->f, VF_COMMON(0x18), 2), VQ_MAX_SIZE);
	t_start(t, 1);
	struct vf_buf rd = {DATA, 512, true};
	assert_int_equal(t_do(t, 0, VIRTIO_BLK_T_IN, 0, &rd, 1), VIRTIO_BLK_S_OK);
	t_free(t);
}

/* --- ioeventfds, irqfd routes, masking, INTx -------------------------------------------- */

static void doorbells_are_ioeventfds_on_the_loop(void **state)
{
	(void)state;
	struct t *t = t_new("", 2, true);
	struct vf *f = &t->f;
	/* Memory decode on: one ioeventfd per queue at its notify address, datamatch on the index.
	 */
	assert_int_equal(f->nioev, 2);
	for (unsigned q = 0; q < 2; q++) {
		bool found = false;
		for (unsigned i = 0; i < f->nioev; i++)
			if (f->ioev[i].addr == f->bar + VIRTIO_PCI_NOTIFY_OFF + 4 * q &&
			    f->ioev[i].len == 2 && f->ioev[i].match && f->ioev[i].data == q)
				found = true;
		assert_true(found);
	}
	t_start(t, 2);
	/* A request whose doorbell is the eventfd (as KVM would signal it): the loop takes it. */
	unsigned slot = t->nreq++;
	uint8_t *h = vf_ram(f, HDR + 16 * slot, 16);
	put_le32(h, VIRTIO_BLK_T_IN);
	put_le64(h + 8, 2);
	struct vf_buf b[3] = {
	    {HDR + 16 * slot, 16, false}, {DATA, 512, true}, {STATUS + slot, 1, true}};
	vf_post(f, 1, b, 3);
	int fd = -1;
	for (unsigned i = 0; i < f->nioev; i++)
		if (f->ioev[i].data == 1)
			fd = f->ioev[i].fd;
	uint64_t one = 1;
	assert_int_equal(write(fd, &one, sizeof(one)), 8);
	t_wait_used(t, 1, 1);
	assert_int_equal(st(t, slot), VIRTIO_BLK_S_OK);
	assert_int_equal(*(uint8_t *)vf_ram(f, DATA, 1), pattern(1024));
	/* The interrupt went through an irqfd route for vector 2 (queue 1), not KVM_SIGNAL_MSI. */
	assert_int_equal(f->signal_msi_count, 0);
	assert_true(f->nroutes >= 1);
	assert_int_equal(f->route_data[f->nroutes - 1], 0x40 + 2);
	int fires = f->route_fires[f->nroutes - 1];
	assert_true(fires >= 1);
	/* Masked vector: no message, the PBA bit is set; unmasking delivers it. */
	vf_w(f, VIRTIO_PCI_MSIX_TABLE_OFF + 16 * 2 + 12, 4, 1);
	struct vf_buf rd = {DATA, 512, true};
	t_do(t, 1, VIRTIO_BLK_T_IN, 0, &rd, 1);
	assert_int_equal(f->route_fires[f->nroutes - 1], fires);
	assert_true(vf_r(f, VIRTIO_PCI_MSIX_PBA_OFF, 4) & 1u << 2);
	vf_w(f, VIRTIO_PCI_MSIX_TABLE_OFF + 16 * 2 + 12, 4, 0);
	assert_int_equal(f->route_fires[f->nroutes - 1], fires + 1);
	assert_false(vf_r(f, VIRTIO_PCI_MSIX_PBA_OFF, 4) & 1u << 2);
	/* The guest reprograms the vector: the route follows. */
	vf_w(f, VIRTIO_PCI_MSIX_TABLE_OFF + 16 * 2 + 8, 4, 0x77);
	t_do(t, 1, VIRTIO_BLK_T_IN, 0, &rd, 1);
	assert_int_equal(f->route_data[f->nroutes - 1], 0x77);
	/* BAR0 moves: so do the ioeventfds. */
	uint64_t newbar = f->bar + 0x100000;
	pci_config_write(f->bus, f->devfn, PCI_BAR0, 4, (uint32_t)newbar | 4);
	f->bar = newbar;
	assert_int_equal(f->nioev, 2);
	for (unsigned i = 0; i < f->nioev; i++)
		assert_true(f->ioev[i].addr >= newbar + VIRTIO_PCI_NOTIFY_OFF &&
			    f->ioev[i].addr < newbar + VIRTIO_PCI_NOTIFY_OFF + 8);
	/* Memory decode off: none left. */
	pci_config_write(f->bus, f->devfn, PCI_COMMAND, 2, PCI_COMMAND_MASTER);
	assert_int_equal(f->nioev, 0);
	pci_config_write(f->bus, f->devfn, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	t_free(t);
}

static void intx_without_msix(void **state)
{
	(void)state;
	/* Through the bus (no irq ops): the ISR read lowers the line. */
	struct t *t = t_new("", 1, false);
	struct vf *f = &t->f;
	uint8_t s = vf_negotiate(f, WANT);
	vf_queue_setup(f, 0, QSIZE, VIRTIO_MSI_NO_VECTOR);
	vf_set_status(f, s | VIRTIO_STATUS_DRIVER_OK);
	struct vf_buf rd = {DATA, 512, true};
	assert_int_equal(t_do(t, 0, VIRTIO_BLK_T_IN, 0, &rd, 1), VIRTIO_BLK_S_OK);
	assert_true(f->intx);
	assert_int_equal(vf_r(f, VIRTIO_PCI_ISR_OFF, 1), VIRTIO_ISR_QUEUE);
	assert_false(f->intx);
	assert_int_equal(vf_r(f, VIRTIO_PCI_ISR_OFF, 1), 0);
	t_free(t);

	/* Through a resample irqfd: fired on completion, fired again at EOI while ISR is set. */
	t = t_new("", 1, true);
	f = &t->f;
	s = vf_negotiate(f, WANT);
	vf_queue_setup(f, 0, QSIZE, VIRTIO_MSI_NO_VECTOR);
	vf_set_status(f, s | VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(t_do(t, 0, VIRTIO_BLK_T_IN, 0, &rd, 1), VIRTIO_BLK_S_OK);
	assert_int_equal(f->intx_fires, 1);
	uint64_t one = 1;
	assert_int_equal(write(f->intx_resample_fd, &one, 8), 8); /* EOI with ISR still set */
	for (int i = 0; i < 2000 && __atomic_load_n(&f->intx_fires, __ATOMIC_SEQ_CST) < 2; i++)
		usleep(1000);
	assert_int_equal(f->intx_fires, 2);
	assert_int_equal(vf_r(f, VIRTIO_PCI_ISR_OFF, 1), VIRTIO_ISR_QUEUE);
	t_free(t);
}

static int group_setup(void **state)
{
	(void)state;
	return test_tmpdir_setup("virtio-blk");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(identity_caps_and_config),
	    cmocka_unit_test(feature_negotiation),
	    cmocka_unit_test(read_write_flush),
	    cmocka_unit_test(one_kick_one_submission),
	    cmocka_unit_test(discard_and_write_zeroes),
	    cmocka_unit_test(get_id_gives_serial),
	    cmocka_unit_test(read_only_disk),
	    cmocka_unit_test(bad_requests_fail_cleanly),
	    cmocka_unit_test(malformed_chains_need_reset),
	    cmocka_unit_test(hostile_queue_settings),
	    cmocka_unit_test(packed_ring_read_write),
	    cmocka_unit_test(reset_waits_for_requests_in_flight),
	    cmocka_unit_test(machine_reset_with_requests_in_flight),
	    cmocka_unit_test(doorbells_are_ioeventfds_on_the_loop),
	    cmocka_unit_test(intx_without_msix),
	};
	return cmocka_run_group_tests(tests, group_setup, test_tmpdir_teardown);
}
