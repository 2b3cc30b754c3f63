/* The LSI Logic Fusion-MPT HBA against a hostile driver: handshake overruns and empty handshakes,
 * SGL chains that loop, go too deep or leave their buffer, addresses outside RAM, FIFOs overrun
 * or starved, more requests than credits, requests before IOC INIT, a reset with requests in
 * flight, task management on requests in flight, odd register accesses.  Every case must end in
 * the device's error status (or an IOC fault the driver can reset), never a crash or a hang. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/device/lsi_fixture.h"

static uint32_t state(struct lf *f)
{
	return lf_r(f, MPI_REG_DOORBELL) & MPI_IOC_STATE_MASK;
}

static void test_handshake_abuse(void **st)
{
	(void)st;
	struct lf f;
	assert_int_equal(lf_init(&f, &mpt_53c1030), 0);
	/* 255 dwords announced, 300 written: the IOC faults, nothing overflows. */
	lf_w(&f, MPI_REG_DOORBELL, MPI_FN_HANDSHAKE << 24 | 255 << 16);
	for (unsigned i = 0; i < 255; i++)
		lf_w(&f, MPI_REG_DOORBELL, 0x03000000 | i);
	assert_int_equal(state(&f), MPI_IOC_STATE_FAULT);
	for (unsigned i = 0; i < 45; i++)
		lf_w(&f, MPI_REG_DOORBELL, 0x42000000); /* more handshakes of zero dwords */
	assert_int_equal(state(&f), MPI_IOC_STATE_FAULT);
	/* The driver's way out: a message unit reset. */
	lf_w(&f, MPI_REG_DOORBELL, MPI_FN_IOC_MESSAGE_UNIT_RESET << 24);
	assert_int_equal(state(&f), MPI_IOC_STATE_READY);
	/* Reading a reply past its end gives no data; the handshake still ends. */
	uint8_t msg[12] = {0, 0, 0, MPI_FN_IOC_FACTS};
	lf_w(&f, MPI_REG_DOORBELL, MPI_FN_HANDSHAKE << 24 | 3 << 16);
	for (unsigned i = 0; i < 3; i++)
		lf_w(&f, MPI_REG_DOORBELL, get_le32(msg + 4 * i));
	for (unsigned i = 0; i < 200; i++)
		lf_r(&f, MPI_REG_DOORBELL);
	assert_int_equal(lf_r(&f, MPI_REG_DOORBELL) & 0xFFFF, 0);
	lf_w(&f, MPI_REG_INT_STATUS, 0);
	lf_w(&f, MPI_REG_INT_STATUS, 0);
	assert_false(lf_r(&f, MPI_REG_DOORBELL) & MPI_DOORBELL_ACTIVE);
	/* Everything still works. */
	assert_int_equal(lf_bring_up(&f), 0);
	/* SCSI IO through the handshake: refused through the doorbell. */
	uint8_t io[48] = {0};
	uint16_t reply[32];
	io[3] = MPI_FN_SCSI_IO;
	assert_int_equal(lf_handshake(&f, io, 48, reply, 32), 18);
	assert_int_equal(lf_reply_status(reply), MPI_STATUS_INVALID_FUNCTION);
	/* Odd register accesses: a 2-byte read, the diagnostic window. */
	uint8_t d[4] = {0xAA, 0xAA, 0xAA, 0xAA};
	io_bus_access(&f.mmio, f.bar1 + MPI_REG_DOORBELL, d, 2, false);
	assert_int_equal(d[0], 0xFF);
	uint64_t bar2 = pci_config_read(f.bus, LF_SLOT << 3, PCI_BAR0 + 8, 4) & ~0xFULL;
	io_bus_access(&f.mmio, bar2 + 0x100, d, 4, false);
	assert_int_equal(get_le32(d), 0);
	lf_free(&f);
}

static void test_fifo_abuse(void **st)
{
	(void)st;
	struct lf f;
	uint32_t ctx;
	assert_int_equal(lf_init(&f, &mpt_53c1030), 0);
	assert_int_equal(lf_attach(&f, 0, NULL), 0);
	/* A request before IOC INIT faults the IOC. */
	lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)LF_FRAME);
	assert_int_equal(state(&f), MPI_IOC_STATE_FAULT);
	lf_w(&f, MPI_REG_DOORBELL, MPI_FN_IOC_MESSAGE_UNIT_RESET << 24);
	assert_int_equal(lf_bring_up(&f), 0);
	/* A request frame outside RAM. */
	lf_w(&f, MPI_REG_REQUEST_FIFO, 0xFFFFFF00);
	assert_int_equal(state(&f), MPI_IOC_STATE_FAULT);
	lf_w(&f, MPI_REG_DOORBELL, MPI_FN_IOC_MESSAGE_UNIT_RESET << 24);
	/* No reply frames posted: an address reply faults the IOC instead of writing anywhere. */
	uint8_t msg[48] = {0};
	uint16_t reply[64];
	msg[3] = MPI_FN_IOC_INIT;
	put_le16(msg + 12, LF_REPLY_SIZE);
	assert_int_equal(lf_handshake(&f, msg, 44, reply, 64), 10);
	uint8_t bad[10] = {0x28, 0, 0xFF, 0, 0, 0, 0, 0, 1, 0};
	uint64_t gpa = lf_scsi_io(&f, 0, 0, bad, 10, MPI_SCSIIO_CONTROL_READ, 512, &ctx);
	lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
	assert_int_equal(state(&f), MPI_IOC_STATE_FAULT);
	lf_w(&f, MPI_REG_DOORBELL, MPI_FN_IOC_MESSAGE_UNIT_RESET << 24);
	/* A reply frame outside RAM; more free frames than the FIFO holds. */
	assert_int_equal(lf_handshake(&f, msg, 44, reply, 64), 10);
	lf_w(&f, MPI_REG_REPLY_FIFO, 0xFFFFFF00);
	lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
	assert_int_equal(state(&f), MPI_IOC_STATE_FAULT);
	lf_w(&f, MPI_REG_DOORBELL, MPI_FN_IOC_MESSAGE_UNIT_RESET << 24);
	for (unsigned i = 0; i < MPT_FIFO_DEPTH + 5; i++)
		lf_w(&f, MPI_REG_REPLY_FIFO, (uint32_t)LF_REPLY_FRAMES);
	assert_int_equal(state(&f), MPI_IOC_STATE_FAULT);
	lf_w(&f, MPI_REG_DOORBELL, MPI_FN_IOC_MESSAGE_UNIT_RESET << 24);
	/* IOC INIT with a reply frame size that is not a multiple of 4: refused. */
	put_le16(msg + 12, 6);
	assert_int_equal(lf_handshake(&f, msg, 44, reply, 64), 10);
	assert_int_equal(lf_reply_status(reply), MPI_STATUS_INVALID_FIELD);
	assert_int_equal(state(&f), MPI_IOC_STATE_READY);

	/* More requests in flight than credits: the extra one gets INSUFFICIENT_RESOURCES. */
	assert_int_equal(lf_bring_up(&f), 0);
	uint8_t r10[10] = {0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0};
	for (unsigned i = 0; i <= MPT_MAX_REQUESTS; i++) {
		gpa = lf_scsi_io(&f, i % 100, 0, r10, 10, MPI_SCSIIO_CONTROL_READ, 512, &ctx);
		lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
	}
	uint32_t v = lf_pop(&f);
	assert_true(v & MPI_ADDRESS_REPLY);
	assert_int_equal(get_le16(lf_reply_frame(&f, v) + 14), MPI_STATUS_INSUFFICIENT_RESOURCES);
	lf_complete(&f);
	unsigned n = 0;
	while ((v = lf_pop(&f)) != 0xFFFFFFFF) {
		assert_false(v & MPI_ADDRESS_REPLY);
		n++;
	}
	assert_int_equal(n, MPT_MAX_REQUESTS);
	lf_free(&f);
}

/* Submit a one-SGE write whose SGL is then rewritten by `edit`; returns the IOCStatus. */
static uint16_t sgl_case(struct lf *f, void (*edit)(struct lf *f, uint8_t *fr))
{
	uint32_t ctx;
	uint8_t w10[10] = {0x2A, 0, 0, 0, 0, 8, 0, 0, 8, 0};
	uint64_t gpa = lf_scsi_io(f, 0, 0, w10, 10, MPI_SCSIIO_CONTROL_WRITE, 4096, &ctx);
	edit(f, lf_ram(f, gpa));
	lf_w(f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
	lf_complete(f);
	uint32_t v = lf_pop(f);
	if (!(v & MPI_ADDRESS_REPLY))
		return v == ctx ? MPI_STATUS_SUCCESS : 0xFFFF;
	return get_le16(lf_reply_frame(f, v) + 14);
}

static void chain_to(uint8_t *at, uint64_t addr, unsigned len, unsigned next)
{
	put_le32(at, MPI_SGE_TYPE_CHAIN | MPI_SGE_64BIT | next << 16 | len);
	put_le64(at + 4, addr);
}

static void edit_self_loop(struct lf *f, uint8_t *fr)
{
	/* The frame chains to a buffer whose own chain element points back to the buffer. */
	uint8_t *c = lf_ram(f, LF_CHAIN + 0x100);
	fr[2] = 48 / 4;
	chain_to(fr + 48, LF_CHAIN + 0x100, 24, 12 / 4);
	put_le32(c, MPI_SGE_TYPE_SIMPLE | MPI_SGE_64BIT | MPI_SGE_LAST_ELEMENT | 0);
	put_le64(c + 4, LF_DATA);
	chain_to(c + 12, LF_CHAIN + 0x100, 24, 12 / 4);
}

static void edit_deep(struct lf *f, uint8_t *fr)
{
	/* 40 chain buffers of one chain element each, every one with a zero-length simple. */
	fr[2] = 48 / 4;
	chain_to(fr + 48, LF_CHAIN, 20, 8 / 4);
	for (unsigned i = 0; i < 40; i++) {
		uint8_t *c = lf_ram(f, LF_CHAIN + i * 0x40);
		put_le32(c, MPI_SGE_TYPE_SIMPLE | MPI_SGE_LAST_ELEMENT | 0);
		put_le32(c + 4, (uint32_t)LF_DATA);
		chain_to(c + 8, LF_CHAIN + (i + 1) * 0x40, 20, 8 / 4);
	}
}

static void edit_outside_ram(struct lf *f, uint8_t *fr)
{
	(void)f;
	put_le64(fr + 52, 0x7FFFFFFFF000ull);
}

static void edit_short(struct lf *f, uint8_t *fr)
{
	(void)f;
	put_le32(fr + 48, MPI_SGE_TYPE_SIMPLE | MPI_SGE_64BIT | MPI_SGE_END_OF_LIST | 512);
}

static void edit_chain_in_header(struct lf *f, uint8_t *fr)
{
	(void)f;
	fr[2] = 8 / 4;
}

static void edit_chain_too_short(struct lf *f, uint8_t *fr)
{
	fr[2] = 48 / 4;
	chain_to(fr + 48, LF_CHAIN, 4, 0);
	(void)f;
}

static void edit_runs_off_frame(struct lf *f, uint8_t *fr)
{
	(void)f;
	/* 7 simple elements of 12 bytes fill the frame; none is last: the 8th would be outside. */
	for (unsigned i = 0; i < 7; i++) {
		put_le32(fr + 48 + 12 * i, MPI_SGE_TYPE_SIMPLE | MPI_SGE_64BIT | 8);
		put_le64(fr + 52 + 12 * i, LF_DATA);
	}
}

static void edit_transaction(struct lf *f, uint8_t *fr)
{
	(void)f;
	put_le32(fr + 48, 0x00000000 | 4096); /* a transaction element: not for SCSI IO */
}

static void edit_ok_32bit(struct lf *f, uint8_t *fr)
{
	(void)f;
	put_le32(fr + 48, MPI_SGE_TYPE_SIMPLE | MPI_SGE_END_OF_LIST | 4096);
	put_le32(fr + 52, (uint32_t)LF_DATA);
}

static void test_sgl_abuse(void **st)
{
	(void)st;
	struct lf f;
	assert_int_equal(lf_init(&f, &mpt_53c1030), 0);
	assert_int_equal(lf_attach(&f, 0, NULL), 0);
	assert_int_equal(lf_bring_up(&f), 0);
	assert_int_equal(sgl_case(&f, edit_ok_32bit), MPI_STATUS_SUCCESS);
	assert_int_equal(sgl_case(&f, edit_self_loop), MPI_STATUS_INVALID_SGL);
	assert_int_equal(sgl_case(&f, edit_deep), MPI_STATUS_INVALID_SGL);
	assert_int_equal(sgl_case(&f, edit_outside_ram), MPI_STATUS_INVALID_SGL);
	assert_int_equal(sgl_case(&f, edit_short), MPI_STATUS_INVALID_SGL);
	assert_int_equal(sgl_case(&f, edit_chain_in_header), MPI_STATUS_INVALID_SGL);
	assert_int_equal(sgl_case(&f, edit_chain_too_short), MPI_STATUS_INVALID_SGL);
	assert_int_equal(sgl_case(&f, edit_runs_off_frame), MPI_STATUS_INVALID_SGL);
	assert_int_equal(sgl_case(&f, edit_transaction), MPI_STATUS_INVALID_SGL);
	assert_int_equal(state(&f), MPI_IOC_STATE_OPERATIONAL);
	/* A sense buffer outside RAM: the reply says autosense failed. */
	uint32_t ctx;
	uint8_t bad[10] = {0x28, 0, 0xFF, 0, 0, 0, 0, 0, 1, 0};
	uint64_t gpa = lf_scsi_io(&f, 0, 0, bad, 10, MPI_SCSIIO_CONTROL_READ, 512, &ctx);
	put_le32(lf_ram(&f, gpa) + 44, 0xFFFFFF00);
	lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
	uint8_t *rep = lf_reply_frame(&f, lf_pop(&f));
	assert_int_equal(rep[13], 0x02);
	/* Bidirectional, a CDB length of 0 or 17, data without a direction. */
	uint8_t r10[10] = {0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0};
	uint32_t dirs[] = {MPI_SCSIIO_CONTROL_DIR_MASK, MPI_SCSIIO_CONTROL_READ,
			   MPI_SCSIIO_CONTROL_READ, 0};
	uint8_t lens[] = {10, 0, 17, 10};
	for (unsigned i = 0; i < 4; i++) {
		gpa = lf_scsi_io(&f, 0, 0, r10, 10, dirs[i], 512, &ctx);
		lf_ram(&f, gpa)[4] = lens[i];
		lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
		rep = lf_reply_frame(&f, lf_pop(&f));
		assert_int_equal(get_le16(rep + 14), MPI_STATUS_INVALID_FIELD);
	}
	/* The transfer wants more than DataLength: DATA_OVERRUN. */
	uint8_t r10big[10] = {0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0};
	gpa = lf_scsi_io(&f, 0, 0, r10big, 10, MPI_SCSIIO_CONTROL_READ, 512, &ctx);
	lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
	rep = lf_reply_frame(&f, lf_pop(&f));
	assert_int_equal(get_le16(rep + 14), MPI_STATUS_SCSI_DATA_OVERRUN);
	lf_free(&f);
}

/* Handshake a message that is answered through the reply FIFO (task management). */
static int handshake_noreply(struct lf *f, const uint8_t *msg, unsigned bytes)
{
	lf_w(f, MPI_REG_INT_STATUS, 0);
	lf_w(f, MPI_REG_DOORBELL, MPI_FN_HANDSHAKE << 24 | (bytes / 4) << 16);
	lf_w(f, MPI_REG_INT_STATUS, 0);
	for (unsigned i = 0; i < bytes / 4; i++)
		lf_w(f, MPI_REG_DOORBELL, get_le32(msg + 4 * i));
	int ok = (lf_r(f, MPI_REG_INT_STATUS) & MPI_HIS_DOORBELL) &&
		 !(lf_r(f, MPI_REG_DOORBELL) & MPI_DOORBELL_ACTIVE);
	lf_w(f, MPI_REG_INT_STATUS, 0);
	return ok;
}

static void test_task_management(void **st)
{
	(void)st;
	struct lf f;
	uint32_t ctx[3];
	assert_int_equal(lf_init(&f, &mpt_53c1030), 0);
	assert_int_equal(lf_attach(&f, 0, NULL), 0);
	assert_int_equal(lf_attach(&f, 1, NULL), 0);
	assert_int_equal(lf_bring_up(&f), 0);
	uint8_t r10[10] = {0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0};
	uint64_t gpa = lf_scsi_io(&f, 0, 0, r10, 10, MPI_SCSIIO_CONTROL_READ, 4096, &ctx[0]);
	lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
	gpa = lf_scsi_io(&f, 1, 0, r10, 10, MPI_SCSIIO_CONTROL_READ, 4096, &ctx[1]);
	lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
	gpa = lf_scsi_io(&f, 2, 1, r10, 10, MPI_SCSIIO_CONTROL_READ, 4096, &ctx[2]);
	lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
	/* ABORT TASK of the second request, through the handshake as mptscsih sends it. */
	uint8_t tm[52] = {0};
	tm[0] = 0;
	tm[3] = MPI_FN_TASK_MGMT;
	tm[5] = MPI_TM_ABORT_TASK;
	put_le32(tm + 8, 0x7777);
	put_le32(tm + 48, ctx[1]);
	assert_true(handshake_noreply(&f, tm, sizeof(tm)));
	assert_int_equal(lf_pop(&f), 0xFFFFFFFF); /* waits for the request */
	/* A second TM while one waits: refused at once. */
	tm[5] = MPI_TM_TARGET_RESET;
	assert_true(handshake_noreply(&f, tm, sizeof(tm)));
	uint8_t *rep = lf_reply_frame(&f, lf_pop(&f));
	assert_int_equal(rep[4], 0x05); /* TM failed */
	lf_complete(&f);
	/* The first completes normally, the aborted one is TERMINATED, then the TM reply. */
	uint32_t seen[4];
	unsigned n = 0;
	uint32_t v;
	uint8_t tm_count = 0xFF;
	while ((v = lf_pop(&f)) != 0xFFFFFFFF && n < 4) {
		if (!(v & MPI_ADDRESS_REPLY)) {
			seen[n++] = v;
			continue;
		}
		rep = lf_reply_frame(&f, v);
		if (rep[3] == MPI_FN_SCSI_IO) {
			assert_int_equal(get_le32(rep + 8), ctx[1]);
			assert_int_equal(get_le16(rep + 14), MPI_STATUS_SCSI_TASK_TERMINATED);
			assert_int_equal(tm_count, 0xFF); /* before the TM reply */
			seen[n++] = get_le32(rep + 8);
		} else {
			assert_int_equal(rep[3], MPI_FN_TASK_MGMT);
			assert_int_equal(get_le32(rep + 8), 0x7777);
			tm_count = (uint8_t)get_le32(rep + 20);
		}
	}
	assert_int_equal(n, 3);
	assert_int_equal(tm_count, 1);
	for (unsigned i = 0; i < 3; i++) /* each request answered once */
		assert_true(seen[i] == ctx[0] || seen[i] == ctx[1] || seen[i] == ctx[2]);
	assert_true(seen[0] != seen[1] && seen[1] != seen[2] && seen[0] != seen[2]);
	/* TM on a target without a device, and an unknown task type. */
	tm[0] = 9;
	tm[5] = MPI_TM_TARGET_RESET;
	assert_true(handshake_noreply(&f, tm, sizeof(tm)));
	rep = lf_reply_frame(&f, lf_pop(&f));
	assert_int_equal(get_le16(rep + 14), MPI_STATUS_SCSI_DEVICE_NOT_THERE);
	tm[0] = 0;
	tm[5] = 0x42;
	assert_true(handshake_noreply(&f, tm, sizeof(tm)));
	rep = lf_reply_frame(&f, lf_pop(&f));
	assert_int_equal(rep[4], MPI_TM_RSP_NOT_SUPPORTED);
	/* A bus reset with nothing in flight answers at once. */
	tm[5] = MPI_TM_RESET_BUS;
	assert_true(handshake_noreply(&f, tm, sizeof(tm)));
	rep = lf_reply_frame(&f, lf_pop(&f));
	assert_int_equal(rep[4], MPI_TM_RSP_COMPLETE);
	lf_free(&f);
}

static void test_reset_in_flight(void **st)
{
	(void)st;
	struct lf f;
	uint32_t ctx;
	assert_int_equal(lf_init(&f, &mpt_53c1030), 0);
	assert_int_equal(lf_attach(&f, 0, NULL), 0);
	assert_int_equal(lf_bring_up(&f), 0);
	uint8_t *data = lf_ram(&f, LF_DATA);
	memset(data, 0xCC, 65536);
	uint8_t r10[10] = {0x28, 0, 0, 0, 0, 0, 0, 0, 128, 0};
	for (unsigned i = 0; i < 8; i++) {
		uint64_t gpa = lf_scsi_io(&f, i, 0, r10, 10, MPI_SCSIIO_CONTROL_READ, 65536, &ctx);
		lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
	}
	/* The reset waits for the block layer (a helper thread runs its completions), then
	 * nothing of those requests reaches the guest any more. */
	lf_completer_start(&f);
	lf_w(&f, MPI_REG_DOORBELL, MPI_FN_IOC_MESSAGE_UNIT_RESET << 24);
	lf_completer_stop(&f);
	assert_int_equal(state(&f), MPI_IOC_STATE_READY);
	assert_int_equal(lf_pop(&f), 0xFFFFFFFF);
	assert_int_equal(f.m->inflight, 0);
	assert_int_equal(lf_bring_up(&f), 0);
	/* Destroying the HBA with requests in flight waits for them too. */
	for (unsigned i = 0; i < 4; i++) {
		uint64_t gpa = lf_scsi_io(&f, i, 0, r10, 10, MPI_SCSIIO_CONTROL_READ, 65536, &ctx);
		lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
	}
	lf_completer_start(&f);
	mpt_destroy(f.m);
	lf_completer_stop(&f);
	f.m = NULL;
	lf_free(&f);
}

/* werror=stop: a write parked for want of space must not hold a message unit reset forever: the
 * reset fails it, waits for it, and the IOC is READY with nothing left for the guest. */
static void test_reset_with_a_stopped_write(void **st)
{
	(void)st;
	struct lf f;
	uint32_t ctx;
	char flag[160];
	assert_int_equal(lf_init(&f, &mpt_sas1068), 0);
	assert_int_equal(lf_attach(&f, 0, NULL), 0);
	assert_int_equal(lf_bring_up(&f), 0);
	snprintf(flag, sizeof(flag), "%s/full", f.dir);
	assert_int_equal(test_disk_stop_writes(f.disk[0], flag), 0);
	uint8_t w10[10] = {0x2A, 0, 0, 0, 0, 0, 0, 0, 8, 0};
	uint64_t gpa = lf_scsi_io(&f, 0, 0, w10, 10, MPI_SCSIIO_CONTROL_WRITE, 4096, &ctx);
	lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
	assert_true(test_disk_wait_parked(f.disk[0], 1));
	assert_int_equal(f.m->inflight, 1);
	alarm(60); /* only against a hang: the reset below returns at once when it works */
	lf_completer_start(&f);
	lf_w(&f, MPI_REG_DOORBELL, MPI_FN_IOC_MESSAGE_UNIT_RESET << 24);
	lf_completer_stop(&f);
	alarm(0);
	assert_int_equal(state(&f), MPI_IOC_STATE_READY);
	assert_int_equal(f.m->inflight, 0);
	assert_int_equal(block_aio_stopped_count(f.disk[0]->aio), 0);
	assert_int_equal(lf_pop(&f), 0xFFFFFFFF);
	test_disk_fault_end(flag);
	lf_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_handshake_abuse),
	    cmocka_unit_test(test_fifo_abuse),
	    cmocka_unit_test(test_sgl_abuse),
	    cmocka_unit_test(test_task_management),
	    cmocka_unit_test(test_reset_in_flight),
	    cmocka_unit_test(test_reset_with_a_stopped_write),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
