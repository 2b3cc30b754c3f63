/* The NVMe controller against a hostile host: bad values at enable time, bad queue ids, sizes,
 * vectors and addresses, doorbells beyond a queue or for queues that do not exist (ignored and
 * reported through Asynchronous Event Requests), PRPs and SGLs into MMIO, misaligned or looping
 * back on themselves, transfers past MDTS or the namespace, unknown opcodes, too many AERs, a
 * queue deleted with commands in flight and a completion queue too small for its commands.
 * Every case ends in the status the specification names, never a crash or a hang. */
#include "tests/device/nvme_fixture.h"

#define MMIO_ADDR 0xFEC00000ULL /* the IOAPIC: never RAM */

static void bad_enable_sets_fatal_status(void **state)
{
	(void)state;
	struct nv *t = nv_new(1, NULL, 2);
	/* Admin queues of one entry. */
	assert_true(nv_enable(t, 1) & NVME_CSTS_CFS);
	nv_disable(t);
	assert_int_equal(nv_r(t, NVME_REG_CSTS, 4), 0);
	/* Admin queues in MMIO. */
	nv_w(t, NVME_REG_AQA, 4, 15 | 15 << 16);
	nv_w(t, NVME_REG_ASQ, 8, MMIO_ADDR);
	nv_w(t, NVME_REG_ACQ, 8, NV_ACQ);
	nv_w(t, NVME_REG_CC, 4, NVME_CC_EN | 6u << 16 | 4u << 20);
	assert_int_equal(nv_r(t, NVME_REG_CSTS, 4) & (NVME_CSTS_CFS | NVME_CSTS_RDY),
			 NVME_CSTS_CFS);
	nv_disable(t);
	/* A page size the controller does not have. */
	nv_w(t, NVME_REG_ASQ, 8, NV_ASQ);
	nv_w(t, NVME_REG_CC, 4, NVME_CC_EN | 1u << 7 | 6u << 16 | 4u << 20);
	assert_true(nv_r(t, NVME_REG_CSTS, 4) & NVME_CSTS_CFS);
	nv_disable(t);
	/* Doorbells before enable are ignored; the controller still comes up fine. */
	nv_w(t, NVME_REG_DOORBELL, 4, 5);
	assert_int_equal(nv_enable(t, 16), NVME_CSTS_RDY);
	/* Odd register widths and offsets are ignored. */
	nv_w(t, NVME_REG_CC + 1, 1, 0);
	nv_w(t, NVME_REG_DOORBELL + 2, 2, 1);
	assert_int_equal(nv_r(t, NVME_REG_CSTS, 4), NVME_CSTS_RDY);
	nv_free(t);
}

static void bad_queue_ids_sizes_vectors_addresses(void **state)
{
	(void)state;
	struct nv *t = nv_new(1, NULL, 2);
	assert_int_equal(nv_enable(t, 16), NVME_CSTS_RDY);
	struct nv_cmd c = {.opc = NVME_ADM_SET_FEATURES, .cdw = {NVME_FEAT_NUM_QUEUES, 0}};
	assert_int_equal(nv_admin(t, &c), 0); /* one I/O queue pair: qid 1 only */
#define CQ(qid, size0, dw11, base)                                                                 \
	((struct nv_cmd){.opc = NVME_ADM_CREATE_CQ,                                                \
			 .prp1 = (base),                                                           \
			 .cdw = {(uint32_t)(qid) | (uint32_t)(size0) << 16, (dw11)}})
#define SQ(qid, size0, cqid, base)                                                                 \
	((struct nv_cmd){                                                                          \
	    .opc = NVME_ADM_CREATE_SQ,                                                             \
	    .prp1 = (base),                                                                        \
	    .cdw = {(uint32_t)(qid) | (uint32_t)(size0) << 16, 1 | (uint32_t)(cqid) << 16}})
	c = CQ(0, 15, 3, NV_IOCQ);
	assert_int_equal(nv_admin(t, &c), NVME_SC_QID_INVALID);
	c = CQ(2, 15, 3, NV_IOCQ); /* beyond the allocated queues */
	assert_int_equal(nv_admin(t, &c), NVME_SC_QID_INVALID);
	c = CQ(0xFFFF, 15, 3, NV_IOCQ);
	assert_int_equal(nv_admin(t, &c), NVME_SC_QID_INVALID);
	c = CQ(1, 0, 3, NV_IOCQ); /* one entry */
	assert_int_equal(nv_admin(t, &c), NVME_SC_QUEUE_SIZE);
	c = CQ(1, 1024, 3, NV_IOCQ); /* 1025 entries: past MQES */
	assert_int_equal(nv_admin(t, &c), NVME_SC_QUEUE_SIZE);
	c = CQ(1, 15, 3 | 65u << 16, NV_IOCQ); /* vector 65 */
	assert_int_equal(nv_admin(t, &c), NVME_SC_INVALID_VECTOR);
	c = CQ(1, 15, 2, NV_IOCQ); /* not physically contiguous */
	assert_int_equal(nv_admin(t, &c), NVME_SC_INVALID_FIELD);
	c = CQ(1, 15, 3, NV_IOCQ + 0x100);
	assert_int_equal(nv_admin(t, &c), NVME_SC_PRP_INVALID_OFFSET);
	c = CQ(1, 15, 3, MMIO_ADDR);
	assert_int_equal(nv_admin(t, &c), NVME_SC_DATA_XFER_ERROR);
	c = CQ(1, 1023, 3, VF_RAM - 0x1000); /* runs off the end of RAM */
	assert_int_equal(nv_admin(t, &c), NVME_SC_DATA_XFER_ERROR);
	c = SQ(1, 15, 1, NV_IOSQ); /* its CQ does not exist */
	assert_int_equal(nv_admin(t, &c), NVME_SC_CQ_INVALID);
	c = CQ(1, 15, 3, NV_IOCQ);
	assert_int_equal(nv_admin(t, &c), 0);
	assert_int_equal(nv_admin(t, &c), NVME_SC_QID_INVALID); /* exists */
	c = SQ(1, 15, 0, NV_IOSQ);				/* the admin CQ is not for I/O */
	assert_int_equal(nv_admin(t, &c), NVME_SC_CQ_INVALID);
	c = SQ(1, 15, 1, MMIO_ADDR);
	assert_int_equal(nv_admin(t, &c), NVME_SC_DATA_XFER_ERROR);
	c = SQ(1, 15, 1, NV_IOSQ);
	assert_int_equal(nv_admin(t, &c), 0);
	/* Number of queues is fixed once I/O queues exist. */
	c = (struct nv_cmd){.opc = NVME_ADM_SET_FEATURES, .cdw = {NVME_FEAT_NUM_QUEUES, 0x10001}};
	assert_int_equal(nv_admin(t, &c), NVME_SC_CMD_SEQ_ERROR);
	/* Deletion: the admin queues, queues that do not exist, a CQ with its SQ. */
	c = (struct nv_cmd){.opc = NVME_ADM_DELETE_SQ, .cdw = {0}};
	assert_int_equal(nv_admin(t, &c), NVME_SC_QID_INVALID);
	c = (struct nv_cmd){.opc = NVME_ADM_DELETE_CQ, .cdw = {0}};
	assert_int_equal(nv_admin(t, &c), NVME_SC_QID_INVALID);
	c = (struct nv_cmd){.opc = NVME_ADM_DELETE_SQ, .cdw = {7}};
	assert_int_equal(nv_admin(t, &c), NVME_SC_QID_INVALID);
	c = (struct nv_cmd){.opc = NVME_ADM_DELETE_CQ, .cdw = {1}};
	assert_int_equal(nv_admin(t, &c), NVME_SC_INVALID_QUEUE_DELETION);
	c = (struct nv_cmd){.opc = NVME_ADM_DELETE_SQ, .cdw = {1}};
	assert_int_equal(nv_admin(t, &c), 0);
	c = (struct nv_cmd){.opc = NVME_ADM_DELETE_CQ, .cdw = {1}};
	assert_int_equal(nv_admin(t, &c), 0);
	assert_int_equal(nv_admin(t, &c), NVME_SC_QID_INVALID);
	/* Unknown admin opcode. */
	c = (struct nv_cmd){.opc = 0x7F};
	assert_int_equal(nv_admin(t, &c), NVME_SC_INVALID_OPCODE);
	nv_free(t);
}

static void bad_doorbells_are_reported_by_aer(void **state)
{
	(void)state;
	struct nv *t = nv_new(1, NULL, 2);
	nv_start(t);
	struct nv_cmd aer = {.opc = NVME_ADM_ASYNC_EVENT};
	uint16_t cid1 = nv_put(t, 0, &aer);
	uint16_t cid2 = nv_put(t, 0, &aer);
	nv_ring(t, 0);
	assert_false(nv_ready(t, 0)); /* outstanding until an event */
	/* SQ tail beyond the queue: ignored, reported as Invalid Doorbell Write Value. */
	uint8_t *sqe = vf_ram(&t->f, NV_IOSQ, 64);
	memset(sqe, 0, 64);
	nv_w(t, NVME_REG_DOORBELL + 8, 4, NV_QSIZE);
	struct nv_cqe e = nv_reap(t, 0);
	assert_int_equal(e.status, 0);
	assert_true(e.cid == cid1 || e.cid == cid2);
	assert_int_equal(e.dw0, NVME_AER_TYPE_ERROR | NVME_AER_INFO_INVALID_DB_VALUE << 8 |
				    NVME_LOG_ERROR << 16);
	assert_int_equal(nvme_inflight(t->c), 0); /* nothing was fetched */
	/* A doorbell of a queue that does not exist: masked until the error log is read. */
	nv_w(t, NVME_REG_DOORBELL + 8 * 9, 4, 1);
	assert_false(nv_ready(t, 0));
	struct nv_cmd log = {.opc = NVME_ADM_GET_LOG_PAGE,
			     .prp1 = NV_BUF,
			     .cdw = {NVME_LOG_ERROR | (64 / 4 - 1) << 16}};
	uint16_t lcid = nv_put(t, 0, &log);
	nv_ring(t, 0);
	/* The log read (RAE clear) unmasks error events: both the log and the AER complete. */
	struct nv_cqe a = nv_reap(t, 0), b = nv_reap(t, 0);
	struct nv_cqe ev = a.cid == lcid ? b : a;
	assert_int_equal((a.cid == lcid ? a : b).status, 0);
	assert_int_equal(ev.dw0, NVME_AER_TYPE_ERROR | NVME_AER_INFO_INVALID_DB_REG << 8 |
				     NVME_LOG_ERROR << 16);
	/* A CQ head beyond what was posted, and a doorbell past the last queue: ignored (no AER
	 * outstanding: they wait as events). */
	nv_w(t, NVME_REG_DOORBELL + 8 + 4, 4, 5);
	nv_w(t, NVME_REG_DOORBELL + 8 * 200, 4, 1);
	/* The I/O queue still works. */
	struct nv_cmd c = nv_rw(t, NVME_CMD_READ, 1, 0, 1);
	assert_int_equal(nv_do(t, 1, &c).status, 0);
	nv_free(t);
}

static void aer_limit(void **state)
{
	(void)state;
	struct nv *t = nv_new(1, NULL, 2);
	assert_int_equal(nv_enable(t, 16), NVME_CSTS_RDY);
	struct nv_cmd aer = {.opc = NVME_ADM_ASYNC_EVENT};
	for (int i = 0; i < 4; i++)
		nv_put(t, 0, &aer);
	uint16_t fifth = nv_put(t, 0, &aer);
	nv_ring(t, 0);
	struct nv_cqe e = nv_reap(t, 0);
	assert_int_equal(e.cid, fifth);
	assert_int_equal(e.status, NVME_SC_AER_LIMIT);
	assert_false(nv_ready(t, 0));
	/* Admin queues of two entries: the four AERs do not hold up other commands. */
	nv_disable(t);
	assert_int_equal(nv_enable(t, 2), NVME_CSTS_RDY);
	for (int i = 0; i < 4; i++) {
		nv_put(t, 0, &aer);
		nv_ring(t, 0);
	}
	struct nv_cmd get = {.opc = NVME_ADM_GET_FEATURES, .cdw = {NVME_FEAT_VOLATILE_WC}};
	e = nv_do(t, 0, &get);
	assert_int_equal(e.status, 0);
	assert_int_equal(e.dw0, 1);
	/* A controller reset drops the outstanding ones without completing them. */
	nv_disable(t);
	assert_int_equal(nv_enable(t, 16), NVME_CSTS_RDY);
	nv_free(t);
}

static void hostile_prps(void **state)
{
	(void)state;
	struct nv *t = nv_new(1, NULL, 2);
	nv_start(t);
	struct nv_cmd c = nv_rw(t, NVME_CMD_READ, 1, 0, 1);
	c.prp1 = MMIO_ADDR;
	assert_int_equal(nv_do(t, 1, &c).status, NVME_SC_DATA_XFER_ERROR);
	c.prp1 = NV_DATA + 2; /* not dword aligned */
	assert_int_equal(nv_do(t, 1, &c).status, NVME_SC_PRP_INVALID_OFFSET);
	c.prp1 = VF_RAM - 256; /* the last 256 bytes of RAM, then a page past its end */
	c.prp2 = VF_RAM;
	assert_int_equal(nv_do(t, 1, &c).status, NVME_SC_DATA_XFER_ERROR);
	/* Two pages, the second with an offset. */
	c = nv_rw(t, NVME_CMD_READ, 1, 0, 16);
	c.prp2 = NV_DATA + 0x1200;
	assert_int_equal(nv_do(t, 1, &c).status, NVME_SC_PRP_INVALID_OFFSET);
	c.prp2 = MMIO_ADDR;
	assert_int_equal(nv_do(t, 1, &c).status, NVME_SC_DATA_XFER_ERROR);
	/* A PRP list entry into MMIO; a list in MMIO; a list entry with an offset. */
	c = nv_rw(t, NVME_CMD_READ, 1, 0, 64);
	uint8_t *list = vf_ram(&t->f, NV_PRPLIST, 4096);
	put_le64(list + 16, MMIO_ADDR);
	assert_int_equal(nv_do(t, 1, &c).status, NVME_SC_DATA_XFER_ERROR);
	c = nv_rw(t, NVME_CMD_READ, 1, 0, 64);
	put_le64(list + 16, NV_DATA + 0x3008);
	assert_int_equal(nv_do(t, 1, &c).status, NVME_SC_PRP_INVALID_OFFSET);
	c = nv_rw(t, NVME_CMD_READ, 1, 0, 64);
	c.prp2 = MMIO_ADDR;
	assert_int_equal(nv_do(t, 1, &c).status, NVME_SC_DATA_XFER_ERROR);
	/* A list whose every entry, the chain pointer included, is the list page itself: the walk
	 * ends with the transfer (512 KiB), the command completes. */
	for (int i = 0; i < 512; i++)
		put_le64(list + 8 * i, NV_PRPLIST);
	c = nv_rw(t, NVME_CMD_READ, 1, 0, 1024);
	c.prp2 = NV_PRPLIST;
	for (int i = 0; i < 512; i++)
		put_le64(list + 8 * i, NV_PRPLIST);
	assert_int_equal(nv_do(t, 1, &c).status, 0);
	/* Past MDTS; past the namespace; an LBA that wraps. */
	c = nv_rw(t, NVME_CMD_READ, 1, 0, 1025);
	assert_int_equal(nv_do(t, 1, &c).status, NVME_SC_INVALID_FIELD);
	c = nv_rw(t, NVME_CMD_READ, 1, NV_DISK_SIZE / 512 - 1, 2);
	assert_int_equal(nv_do(t, 1, &c).status, NVME_SC_LBA_RANGE);
	c = nv_rw(t, NVME_CMD_WRITE, 1, ~0ULL, 2);
	assert_int_equal(nv_do(t, 1, &c).status, NVME_SC_LBA_RANGE);
	c = (struct nv_cmd){.opc = NVME_CMD_WRITE_ZEROES, .nsid = 1, .cdw = {~0u, ~0u, 0xFFFF}};
	assert_int_equal(nv_do(t, 1, &c).status, NVME_SC_LBA_RANGE);
	/* Namespaces that do not exist, opcodes that do not exist, a reserved PSDT. */
	c = nv_rw(t, NVME_CMD_READ, 0, 0, 1);
	assert_int_equal(nv_do(t, 1, &c).status, NVME_SC_INVALID_NS);
	c = nv_rw(t, NVME_CMD_READ, 2, 0, 1);
	assert_int_equal(nv_do(t, 1, &c).status, NVME_SC_INVALID_NS);
	c = (struct nv_cmd){.opc = 0x7E, .nsid = 1};
	assert_int_equal(nv_do(t, 1, &c).status, NVME_SC_INVALID_OPCODE);
	c = nv_rw(t, NVME_CMD_READ, 1, 0, 1);
	c.flags = 3 << 6;
	assert_int_equal(nv_do(t, 1, &c).status, NVME_SC_INVALID_FIELD);
	/* The image was never written by any of this. */
	uint8_t blk[512];
	int fd = open(t->image[0], O_RDONLY);
	assert_int_equal(pread(fd, blk, 512, NV_DISK_SIZE - 512), 512);
	close(fd);
	assert_int_equal(blk[0], nv_pattern(0, NV_DISK_SIZE - 512));
	nv_free(t);
}

static void hostile_sgls(void **state)
{
	(void)state;
	struct nv *t = nv_new(1, NULL, 2);
	nv_start(t);
	uint8_t *seg = vf_ram(&t->f, NV_PRPLIST, 4096);
	/* A segment whose last descriptor points back at the segment itself: refused once the
	 * descriptor budget is spent, not an endless walk. */
	put_le64(seg, NV_DATA);
	put_le32(seg + 8, 16); /* 16 bytes of data per round */
	seg[15] = NVME_SGL_DATA_BLOCK << 4;
	put_le64(seg + 16, NV_PRPLIST);
	put_le32(seg + 24, 32);
	seg[31] = NVME_SGL_SEGMENT << 4;
	struct nv_cmd c = {.opc = NVME_CMD_READ,
			   .flags = 1 << 6,
			   .nsid = 1,
			   .prp1 = NV_PRPLIST,
			   .prp2 = 32 | (uint64_t)NVME_SGL_SEGMENT << 60,
			   .cdw = {0, 0, 1023}};
	uint16_t s = nv_do(t, 1, &c).status;
	assert_true(s == NVME_SC_SGL_INVALID_COUNT);
	/* A data block in MMIO; a segment in MMIO; a segment length not a multiple of 16. */
	c.prp1 = MMIO_ADDR;
	c.prp2 = 512;
	c.cdw[2] = 0;
	assert_int_equal(nv_do(t, 1, &c).status, NVME_SC_DATA_XFER_ERROR);
	c.prp2 = 32 | (uint64_t)NVME_SGL_LAST_SEGMENT << 60;
	assert_int_equal(nv_do(t, 1, &c).status, NVME_SC_DATA_XFER_ERROR);
	c.prp1 = NV_PRPLIST;
	c.prp2 = 24 | (uint64_t)NVME_SGL_LAST_SEGMENT << 60;
	assert_int_equal(nv_do(t, 1, &c).status, NVME_SC_SGL_INVALID_LAST);
	/* A segment descriptor inside a last segment. */
	c.prp2 = 32 | (uint64_t)NVME_SGL_LAST_SEGMENT << 60;
	assert_int_equal(nv_do(t, 1, &c).status, NVME_SC_SGL_INVALID_LAST);
	/* Keyed data block (type 4): not offered. */
	c.prp1 = NV_DATA;
	c.prp2 = 512 | (uint64_t)4 << 60;
	assert_int_equal(nv_do(t, 1, &c).status, NVME_SC_SGL_INVALID_TYPE);
	nv_free(t);
}

/* Delete I/O SQ while its commands are in flight: they complete first, then the deletion. */
static void delete_sq_with_commands_in_flight(void **state)
{
	(void)state;
	struct nv *t = nv_new(1, NULL, 2);
	nv_start(t);
	for (unsigned i = 0; i < 8; i++) {
		struct nv_cmd c = nv_rw(t, NVME_CMD_READ, 1, 16ULL * i, 8);
		c.prp1 = NV_DATA + 0x1000ULL * i;
		c.prp2 = 0;
		nv_put(t, 1, &c);
	}
	nv_ring(t, 1);
	unsigned busy = nvme_inflight(t->c);
	struct nv_cmd del = {.opc = NVME_ADM_DELETE_SQ, .cdw = {1}};
	uint16_t dcid = nv_put(t, 0, &del);
	nv_ring(t, 0);
	if (busy)
		assert_false(nv_ready(t, 0)); /* waits for the reads */
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(nv_reap(t, 1).status, 0);
	struct nv_cqe e = nv_reap(t, 0);
	assert_int_equal(e.cid, dcid);
	assert_int_equal(e.status, 0);
	/* Its doorbell now names no queue; the CQ can go. */
	struct nv_cmd c = {.opc = NVME_ADM_DELETE_CQ, .cdw = {1}};
	assert_int_equal(nv_admin(t, &c), 0);
	nv_free(t);
}

/* A CQ of 4 entries (3 usable) for 12 commands: the rest wait until the host moves the head. */
static void completion_queue_smaller_than_the_work(void **state)
{
	(void)state;
	struct nv *t = nv_new(1, NULL, 2);
	assert_int_equal(nv_enable(t, 16), NVME_CSTS_RDY);
	memset(vf_ram(&t->f, NV_IOCQ, 0x1000), 0, 0x1000);
	struct nv_cmd c = {
	    .opc = NVME_ADM_CREATE_CQ, .prp1 = NV_IOCQ, .cdw = {1 | 3u << 16, 3 | 1u << 16}};
	assert_int_equal(nv_admin(t, &c), 0);
	c = (struct nv_cmd){.opc = NVME_ADM_CREATE_SQ,
			    .prp1 = NV_IOSQ,
			    .cdw = {1 | (NV_QSIZE - 1) << 16, 1 | 1u << 16}};
	assert_int_equal(nv_admin(t, &c), 0);
	t->sq_tail[1] = t->cq_head[1] = 0;
	t->phase[1] = true;
	uint16_t first = 0;
	for (unsigned i = 0; i < 12; i++) {
		c = nv_rw(t, NVME_CMD_READ, 1, i, 1);
		c.prp1 = NV_DATA + 0x1000ULL * i;
		uint16_t cid = nv_put(t, 1, &c);
		if (!i)
			first = cid;
	}
	nv_ring(t, 1);
	nv_drain(t);
	/* nv_reap uses queue 1's size NV_QSIZE: consume by hand on a 4-entry ring. */
	bool seen[12] = {false};
	for (unsigned n = 0; n < 12; n++) {
		uint8_t *e = vf_ram(&t->f, NV_IOCQ + 16ULL * t->cq_head[1], 16);
		for (int i = 0; i < 20000 && ((get_le32(e + 12) >> 16) & 1) != t->phase[1]; i++)
			nv_poll(t);
		uint32_t dw3 = get_le32(e + 12);
		assert_int_equal((dw3 >> 16) & 1, t->phase[1]);
		assert_int_equal((dw3 >> 17) & 0x7FF, 0);
		unsigned k = (uint16_t)dw3 - first;
		assert_true(k < 12 && !seen[k]);
		seen[k] = true;
		if (++t->cq_head[1] == 4) {
			t->cq_head[1] = 0;
			t->phase[1] = !t->phase[1];
		}
		nv_w(t, NVME_REG_DOORBELL + 12, 4, t->cq_head[1]);
	}
	nv_free(t);
}

/* Doorbell Buffer Config: I/O doorbells come from the shadow buffer, the event index follows. */
static void shadow_doorbells(void **state)
{
	(void)state;
	struct nv *t = nv_new(1, NULL, 2);
	nv_start(t);
	const uint64_t db = 0x60000, ei = 0x61000;
	memset(vf_ram(&t->f, db, 0x2000), 0, 0x2000);
	struct nv_cmd c = {.opc = NVME_ADM_DBBUF_CONFIG, .prp1 = db, .prp2 = ei};
	assert_int_equal(nv_admin(t, &c), 0);
	/* Two commands; the shadow says 2, the register write carries a stale 1. */
	for (int i = 0; i < 2; i++) {
		c = nv_rw(t, NVME_CMD_READ, 1, i, 1);
		c.prp1 = NV_DATA + 0x1000ULL * i;
		nv_put(t, 1, &c);
	}
	put_le32(vf_ram(&t->f, db + 8, 4), t->sq_tail[1]);
	nv_w(t, NVME_REG_DOORBELL + 8, 4, 1);
	assert_int_equal(get_le32(vf_ram(&t->f, ei + 8, 4)), 2); /* event index = tail seen */
	nv_drain(t);
	for (int i = 0; i < 2; i++) {
		/* CQ head through the shadow too: nv_reap writes the register, mirror it first. */
		put_le32(vf_ram(&t->f, db + 12, 4), t->cq_head[1] + 1);
		assert_int_equal(nv_reap(t, 1).status, 0);
	}
	assert_int_equal(get_le32(vf_ram(&t->f, ei + 12, 4)), 2);
	/* Bad buffers: unaligned, in MMIO. */
	c = (struct nv_cmd){.opc = NVME_ADM_DBBUF_CONFIG, .prp1 = db + 8, .prp2 = ei};
	assert_int_equal(nv_admin(t, &c), NVME_SC_INVALID_FIELD);
	c = (struct nv_cmd){.opc = NVME_ADM_DBBUF_CONFIG, .prp1 = MMIO_ADDR, .prp2 = ei};
	assert_int_equal(nv_admin(t, &c), NVME_SC_DATA_XFER_ERROR);
	/* A shadow tail beyond the queue is ignored like a register one. */
	put_le32(vf_ram(&t->f, db + 8, 4), 1000);
	nv_w(t, NVME_REG_DOORBELL + 8, 4, 3);
	assert_int_equal(nvme_inflight(t->c), 0);
	nv_free(t);
}

/* With an event loop and irq ops, shadow doorbells turn the I/O doorbells into ioeventfds (no
 * datamatch: the value comes from the shadow buffer), moved with BAR0, dropped at reset. */
static void shadow_doorbells_as_ioeventfds(void **state)
{
	(void)state;
	struct nv *t = nv_new_loop(1, NULL, 2, true);
	nv_start(t);
	assert_int_equal(t->f.nioev, 0); /* without shadow doorbells the value would be lost */
	const uint64_t db = 0x60000, ei = 0x61000;
	memset(vf_ram(&t->f, db, 0x2000), 0, 0x2000);
	struct nv_cmd c = {.opc = NVME_ADM_DBBUF_CONFIG, .prp1 = db, .prp2 = ei};
	assert_int_equal(nv_admin(t, &c), 0);
	assert_int_equal(t->f.nioev, 4); /* SQ tail and CQ head of I/O queues 1 and 2 */
	int sqfd = -1;
	for (unsigned i = 0; i < t->f.nioev; i++) {
		assert_false(t->f.ioev[i].match);
		assert_int_equal(t->f.ioev[i].len, 4);
		if (t->f.ioev[i].addr == t->f.bar + NVME_REG_DOORBELL + 8)
			sqfd = t->f.ioev[i].fd;
	}
	assert_true(sqfd >= 0);
	/* The "kernel" signals the eventfd; the loop fetches the command from the shadow tail. */
	c = nv_rw(t, NVME_CMD_READ, 1, 5, 1);
	nv_put(t, 1, &c);
	put_le32(vf_ram(&t->f, db + 8, 4), t->sq_tail[1]);
	uint64_t one = 1;
	assert_int_equal(write(sqfd, &one, sizeof(one)), sizeof(one));
	for (int i = 0; i < 20000 && !nv_ready(t, 1); i++)
		nv_poll(t);
	put_le32(vf_ram(&t->f, db + 12, 4), t->cq_head[1] + 1);
	assert_int_equal(nv_reap(t, 1).status, 0);
	assert_int_equal(*(uint8_t *)vf_ram(&t->f, NV_DATA, 1), nv_pattern(0, 5 * 512));
	/* BAR0 moves: the ioeventfds follow. */
	uint64_t nb = t->f.bar + 0x100000;
	pci_config_write(t->f.bus, t->f.devfn, PCI_BAR0, 4, (uint32_t)nb);
	bool moved = false;
	for (unsigned i = 0; i < t->f.nioev; i++)
		moved |= t->f.ioev[i].addr == nb + NVME_REG_DOORBELL + 8;
	assert_true(moved);
	assert_int_equal(t->f.nioev, 4);
	pci_config_write(t->f.bus, t->f.devfn, PCI_BAR0, 4, (uint32_t)t->f.bar);
	/* A controller reset turns shadow doorbells, and so the ioeventfds, off. */
	nv_disable(t);
	assert_int_equal(t->f.nioev, 0);
	nv_free(t);
}

static int group_setup(void **state)
{
	(void)state;
	return test_tmpdir_setup("nvme-hostile");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(bad_enable_sets_fatal_status),
	    cmocka_unit_test(bad_queue_ids_sizes_vectors_addresses),
	    cmocka_unit_test(bad_doorbells_are_reported_by_aer),
	    cmocka_unit_test(aer_limit),
	    cmocka_unit_test(hostile_prps),
	    cmocka_unit_test(hostile_sgls),
	    cmocka_unit_test(delete_sq_with_commands_in_flight),
	    cmocka_unit_test(completion_queue_smaller_than_the_work),
	    cmocka_unit_test(shadow_doorbells),
	    cmocka_unit_test(shadow_doorbells_as_ioeventfds),
	};
	return cmocka_run_group_tests(tests, group_setup, test_tmpdir_teardown);
}
