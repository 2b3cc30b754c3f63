/* Test bench for the NVMe controller without a CPU: the virtio bench's PCI bus with faked KVM
 * plumbing and guest RAM (virtio_fixture.h), raw image files as namespaces, and a small host
 * driver written here: admin queue set-up, I/O queue creation, commands built by hand and their
 * completions waited for by the phase tag. */
#ifndef MINIVMM_TESTS_NVME_FIXTURE_H
#define MINIVMM_TESTS_NVME_FIXTURE_H

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "devices/disk.h"
#include "devices/nvme/nvme.h"
#include "devices/nvme/nvme_spec.h"
#include "storage/core/block_aio.h"
#include "tests/device/virtio_fixture.h"
#include "tests/lib/testdisk.h"
#include "tests/lib/testlib.h"

#define NV_DISK_SIZE (4 * 1024 * 1024)
#define NV_ASQ 0x10000ULL
#define NV_ACQ 0x20000ULL
#define NV_IOSQ 0x30000ULL /* 64 entries: 4 KiB */
#define NV_IOCQ 0x40000ULL
#define NV_PRPLIST 0x50000ULL
#define NV_BUF 0x100000ULL  /* admin data */
#define NV_DATA 0x200000ULL /* I/O data, up to 1 MiB */
#define NV_QSIZE 64

struct nv {
	struct vf f;
	struct nvme_ctrl *c;
	struct disk *disk[4];
	char image[4][256];
	unsigned ndisks;
	/* driver-side queue state: 0 admin, 1 the I/O pair */
	uint32_t sq_tail[2], cq_head[2];
	bool phase[2];
	uint16_t cid;
	pthread_t completer;
	volatile bool completer_stop;
};

struct nv_cqe {
	uint32_t dw0;
	uint16_t sqhd, sqid, cid, status; /* status: (SCT << 8 | SC), phase and DNR removed */
	bool dnr;
};

static inline uint8_t nv_pattern(unsigned disk, uint64_t i)
{
	return (uint8_t)((i * 7 + i / 512 + disk * 101) & 0xFF);
}

static inline uint64_t nv_r(struct nv *t, uint64_t off, unsigned len)
{
	return vf_r(&t->f, off, len);
}

static inline void nv_w(struct nv *t, uint64_t off, unsigned len, uint64_t v)
{
	vf_w(&t->f, off, len, v);
}

/* A controller over `n` fresh raw images (opts[i] appended to the --disk argument). */
static inline struct nv *nv_new_loop(unsigned n, const char *const *opts, unsigned io_queues,
				     bool with_loop)
{
	struct nv *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	assert_int_equal(vf_init(&t->f, with_loop), 0);
	uint8_t *buf = malloc(NV_DISK_SIZE);
	for (unsigned d = 0; d < n; d++) {
		char name[32];
		snprintf(name, sizeof(name), "ns%u.raw", d);
		snprintf(t->image[d], sizeof(t->image[d]), "%s", test_path(name));
		for (uint64_t i = 0; i < NV_DISK_SIZE; i++)
			buf[i] = nv_pattern(d, i);
		test_file_write(t->image[d], buf, NV_DISK_SIZE);
		char arg[512];
		snprintf(arg, sizeof(arg), "%s,format=raw,bus=nvme%s", t->image[d],
			 opts && opts[d] ? opts[d] : "");
		t->disk[d] = test_disk_open(arg, DISK_MEDIA_HDD);
		assert_non_null(t->disk[d]);
	}
	free(buf);
	t->ndisks = n;
	struct nvme_env env = {.pci = t->f.bus,
			       .mem = &t->f.mem,
			       .loop = t->f.loop,
			       .io_queues = io_queues,
			       .index = 0};
	assert_int_equal(nvme_create(&env, t->disk, n, &t->c), 0);
	vf_loop_start(&t->f);
	for (unsigned s = 1; s < PCI_SLOTS; s++)
		if (pci_config_read(t->f.bus, s << 3, PCI_VENDOR_ID, 2) == 0x80EE) {
			t->f.devfn = s << 3;
			break;
		}
	assert_int_not_equal(t->f.devfn, 0);
	pci_config_write(t->f.bus, t->f.devfn, PCI_COMMAND, 2,
			 PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	t->f.bar = (pci_config_read(t->f.bus, t->f.devfn, PCI_BAR0, 4) & ~0xFULL) |
		   (uint64_t)pci_config_read(t->f.bus, t->f.devfn, PCI_BAR0 + 4, 4) << 32;
	return t;
}

static inline struct nv *nv_new(unsigned n, const char *const *opts, unsigned io_queues)
{
	return nv_new_loop(n, opts, io_queues, false);
}

static inline void nv_poll(struct nv *t)
{
	unsigned ran = 0;
	for (unsigned d = 0; d < t->ndisks; d++)
		if (t->disk[d]->aio && block_aio_pending(t->disk[d]->aio))
			ran += block_aio_poll(t->disk[d]->aio, 1);
	if (!ran)
		usleep(200);
}

static inline void nv_drain(struct nv *t)
{
	for (int i = 0; i < 20000 && nvme_inflight(t->c); i++)
		nv_poll(t);
}

static inline void nv_free(struct nv *t)
{
	nv_drain(t);
	vf_loop_stop(&t->f);
	nvme_destroy(t->c);
	for (unsigned d = 0; d < t->ndisks; d++)
		disk_close(t->disk[d]);
	vf_fini(&t->f);
	free(t);
}

/* Set up the admin queues (size entries each) and enable; returns CSTS. */
static inline uint32_t nv_enable(struct nv *t, uint32_t size)
{
	memset(vf_ram(&t->f, NV_ASQ, 0x10000), 0, 0x10000);
	memset(vf_ram(&t->f, NV_ACQ, 0x10000), 0, 0x10000);
	nv_w(t, NVME_REG_AQA, 4, (size - 1) | (size - 1) << 16);
	nv_w(t, NVME_REG_ASQ, 8, NV_ASQ);
	nv_w(t, NVME_REG_ACQ, 8, NV_ACQ);
	nv_w(t, NVME_REG_CC, 4, NVME_CC_EN | 6u << 16 | 4u << 20);
	t->sq_tail[0] = t->cq_head[0] = 0;
	t->phase[0] = true;
	return (uint32_t)nv_r(t, NVME_REG_CSTS, 4);
}

static inline void nv_disable(struct nv *t)
{
	nv_w(t, NVME_REG_CC, 4, 0);
}

/* A command: opcode, nsid, PRP1/PRP2, CDW10..15. */
struct nv_cmd {
	uint8_t opc;
	uint8_t flags; /* PSDT in bits 7:6 */
	uint32_t nsid;
	uint64_t prp1, prp2;
	uint32_t cdw[6];
};

static inline uint64_t nv_sq_base(unsigned q)
{
	return q ? NV_IOSQ : NV_ASQ;
}

static inline uint64_t nv_cq_base(unsigned q)
{
	return q ? NV_IOCQ : NV_ACQ;
}

static inline uint32_t nv_qsize(struct nv *t, unsigned q)
{
	return q ? NV_QSIZE : (uint32_t)(nv_r(t, NVME_REG_AQA, 4) & 0xFFF) + 1;
}

/* Put the command in SQ q without ringing; returns its CID. */
static inline uint16_t nv_put(struct nv *t, unsigned q, const struct nv_cmd *c)
{
	uint8_t *e = vf_ram(&t->f, nv_sq_base(q) + 64ULL * t->sq_tail[q], 64);
	uint16_t cid = ++t->cid;
	memset(e, 0, 64);
	put_le32(e, c->opc | (uint32_t)c->flags << 8 | (uint32_t)cid << 16);
	put_le32(e + 4, c->nsid);
	put_le64(e + 24, c->prp1);
	put_le64(e + 32, c->prp2);
	for (unsigned i = 0; i < 6; i++)
		put_le32(e + 40 + 4 * i, c->cdw[i]);
	t->sq_tail[q] = (t->sq_tail[q] + 1) % nv_qsize(t, q);
	return cid;
}

static inline void nv_ring(struct nv *t, unsigned q)
{
	nv_w(t, NVME_REG_DOORBELL + 8 * q, 4, t->sq_tail[q]);
}

/* Is a completion waiting at CQ q's head? */
static inline bool nv_ready(struct nv *t, unsigned q)
{
	uint8_t *e = vf_ram(&t->f, nv_cq_base(q) + 16ULL * t->cq_head[q], 16);
	uint32_t dw3 = __atomic_load_n((uint32_t *)(e + 12), __ATOMIC_ACQUIRE);
	return ((le32toh(dw3) >> 16) & 1) == t->phase[q];
}

/* Wait (bounded) for the next completion of CQ q and consume it (head doorbell rung). */
static inline struct nv_cqe nv_reap(struct nv *t, unsigned q)
{
	for (int i = 0; i < 20000 && !nv_ready(t, q); i++)
		nv_poll(t);
	assert_true(nv_ready(t, q));
	uint8_t *e = vf_ram(&t->f, nv_cq_base(q) + 16ULL * t->cq_head[q], 16);
	uint32_t dw3 = get_le32(e + 12);
	struct nv_cqe c = {.dw0 = get_le32(e),
			   .sqhd = get_le16(e + 8),
			   .sqid = get_le16(e + 10),
			   .cid = (uint16_t)dw3,
			   .status = (uint16_t)((dw3 >> 17) & 0x7FF),
			   .dnr = dw3 >> 31};
	if (++t->cq_head[q] == nv_qsize(t, q)) {
		t->cq_head[q] = 0;
		t->phase[q] = !t->phase[q];
	}
	nv_w(t, NVME_REG_DOORBELL + 8 * q + 4, 4, t->cq_head[q]);
	return c;
}

/* Submit one command on queue q and wait for its completion. */
static inline struct nv_cqe nv_do(struct nv *t, unsigned q, const struct nv_cmd *c)
{
	uint16_t cid = nv_put(t, q, c);
	nv_ring(t, q);
	struct nv_cqe e = nv_reap(t, q);
	assert_int_equal(e.cid, cid);
	assert_int_equal(e.sqid, q);
	return e;
}

static inline uint16_t nv_admin(struct nv *t, const struct nv_cmd *c)
{
	return nv_do(t, 0, c).status;
}

/* Enable, ask for `nq` queue pairs, create I/O CQ 1 and SQ 1 (NV_QSIZE entries, vector 1). */
static inline void nv_start(struct nv *t)
{
	assert_int_equal(nv_enable(t, 32) & (NVME_CSTS_RDY | NVME_CSTS_CFS), NVME_CSTS_RDY);
	struct nv_cmd c = {.opc = NVME_ADM_SET_FEATURES, .cdw = {NVME_FEAT_NUM_QUEUES, 0}};
	assert_int_equal(nv_admin(t, &c), 0);
	memset(vf_ram(&t->f, NV_IOCQ, 0x1000), 0, 0x1000);
	c = (struct nv_cmd){.opc = NVME_ADM_CREATE_CQ,
			    .prp1 = NV_IOCQ,
			    .cdw = {1 | (NV_QSIZE - 1) << 16, 1 | 2 | 1u << 16}};
	assert_int_equal(nv_admin(t, &c), 0);
	c = (struct nv_cmd){.opc = NVME_ADM_CREATE_SQ,
			    .prp1 = NV_IOSQ,
			    .cdw = {1 | (NV_QSIZE - 1) << 16, 1 | 1u << 16}};
	assert_int_equal(nv_admin(t, &c), 0);
	t->sq_tail[1] = t->cq_head[1] = 0;
	t->phase[1] = true;
}

/* Read/write `nlb` blocks at slba of nsid through PRPs at NV_DATA (a PRP list when needed). */
static inline struct nv_cmd nv_rw(struct nv *t, uint8_t opc, uint32_t nsid, uint64_t slba,
				  uint32_t nlb)
{
	uint64_t len = nlb * 512ULL;
	struct nv_cmd c = {.opc = opc,
			   .nsid = nsid,
			   .prp1 = NV_DATA,
			   .cdw = {(uint32_t)slba, (uint32_t)(slba >> 32), nlb - 1}};
	if (len > 8192) {
		uint8_t *list = vf_ram(&t->f, NV_PRPLIST, 4096);
		for (uint64_t p = 1; p * 4096 < len; p++)
			put_le64(list + 8 * (p - 1), NV_DATA + 4096 * p);
		c.prp2 = NV_PRPLIST;
	} else if (len > 4096) {
		c.prp2 = NV_DATA + 4096;
	}
	return c;
}

static inline void *nv_completer(void *arg)
{
	struct nv *t = arg;
	while (!t->completer_stop)
		nv_poll(t);
	return NULL;
}

/* Runs completions only once the controller is no longer ready (CC.EN = 0 is being handled). */
static inline void *nv_gated_completer(void *arg)
{
	struct nv *t = arg;
	while (!t->completer_stop) {
		if (nv_r(t, NVME_REG_CSTS, 4) & NVME_CSTS_RDY) {
			sched_yield();
			continue;
		}
		nv_poll(t);
	}
	return NULL;
}

#endif
