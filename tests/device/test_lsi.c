/* The LSI Logic Fusion-MPT HBA driven as Linux mptbase/mptspi/mptsas drive it, without a CPU:
 * bring-up through the doorbell handshake, SCSI IO with context and address replies, autosense,
 * chained SGLs, config pages of both personalities, events, task management and the resets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/device/lsi_fixture.h"

static void test_bring_up(void **state)
{
	(void)state;
	struct lf f;
	assert_int_equal(lf_init(&f, &mpt_53c1030), 0);
	assert_int_equal(lf_r(&f, MPI_REG_DOORBELL) & MPI_IOC_STATE_MASK, MPI_IOC_STATE_READY);
	/* IOC FACTS fields the driver sizes itself by. */
	uint8_t msg[48] = {0};
	uint16_t reply[64];
	msg[3] = MPI_FN_IOC_FACTS;
	put_le32(msg + 8, 0x12345678);
	assert_int_equal(lf_handshake(&f, msg, 12, reply, 64), 40);
	assert_int_equal(reply[1] >> 8, MPI_FN_IOC_FACTS);
	assert_int_equal(reply[4] | (uint32_t)reply[5] << 16, 0x12345678); /* context */
	assert_int_equal(reply[13], MPT_REQUEST_FRAME / 4);		   /* RequestFrameSize */
	assert_int_equal(reply[18], MPT_MAX_REQUESTS);			   /* GlobalCredits */
	assert_true((reply[11] & 0xFF) > 0);				   /* BlockSize */
	/* PORT ENABLE before IOC INIT: refused, the IOC stays READY. */
	memset(msg, 0, sizeof(msg));
	msg[3] = MPI_FN_PORT_ENABLE;
	assert_int_equal(lf_handshake(&f, msg, 12, reply, 64), 10);
	assert_int_equal(lf_reply_status(reply), MPI_STATUS_INVALID_STATE);
	assert_int_equal(lf_bring_up(&f), 0);
	/* PORT FACTS: an initiator on an SPI port, target ids 0-15, the HBA at 7. */
	memset(msg, 0, sizeof(msg));
	msg[3] = MPI_FN_PORT_FACTS;
	assert_int_equal(lf_handshake(&f, msg, 12, reply, 64), 20);
	assert_int_equal(reply[10] >> 8, MPI_PORTTYPE_SCSI);
	assert_int_equal(reply[11], 16);
	assert_int_equal(reply[12], 7);
	assert_true(reply[13] & MPI_PORT_PROTOCOL_INITIATOR);
	/* A port that does not exist. */
	msg[6] = 3;
	assert_int_equal(lf_handshake(&f, msg, 12, reply, 64), 20);
	assert_int_equal(lf_reply_status(reply), MPI_STATUS_INVALID_FIELD);
	lf_free(&f);
}

static void test_scsi_io(void **state)
{
	(void)state;
	struct lf f;
	uint32_t ctx;
	assert_int_equal(lf_init(&f, &mpt_53c1030), 0);
	assert_int_equal(lf_attach(&f, 0, NULL), 0);
	assert_int_equal(lf_attach(&f, 3, NULL), 0);
	assert_int_equal(lf_bring_up(&f), 0);
	assert_string_equal(f.disk[3]->fw_path, "/pci@i0cf8/scsi@6/channel@0/disk@3,0");

	/* INQUIRY on target 3: a context reply, INTx up until the FIFO is drained. */
	uint8_t inq[6] = {0x12, 0, 0, 0, 36, 0};
	uint64_t gpa = lf_scsi_io(&f, 0, 3, inq, 6, MPI_SCSIIO_CONTROL_READ, 36, &ctx);
	lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa | 1); /* low bits: the frame's size hint */
	assert_true(f.intx);
	assert_true(lf_r(&f, MPI_REG_INT_STATUS) & MPI_HIS_REPLY);
	assert_int_equal(lf_pop(&f), ctx);
	assert_int_equal(lf_pop(&f), 0xFFFFFFFF);
	assert_false(f.intx);
	assert_memory_equal(lf_ram(&f, LF_DATA + 8), "MINIVMM ", 8);

	/* WRITE(10) of 16 blocks, then READ(10) back: data in the image. */
	uint8_t *data = lf_ram(&f, LF_DATA);
	for (unsigned i = 0; i < 8192; i++)
		data[i] = (uint8_t)(i * 3 + 1);
	uint8_t w10[10] = {0x2A, 0, 0, 0, 0, 32, 0, 0, 16, 0};
	gpa = lf_scsi_io(&f, 1, 0, w10, 10, MPI_SCSIIO_CONTROL_WRITE, 8192, &ctx);
	lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
	assert_int_equal(lf_pop(&f), 0xFFFFFFFF); /* in flight */
	lf_complete(&f);
	assert_int_equal(lf_pop(&f), ctx);
	memset(data, 0, 8192);
	uint8_t r10[10] = {0x28, 0, 0, 0, 0, 32, 0, 0, 16, 0};
	gpa = lf_scsi_io(&f, 2, 0, r10, 10, MPI_SCSIIO_CONTROL_READ, 8192, &ctx);
	lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
	lf_complete(&f);
	assert_int_equal(lf_pop(&f), ctx);
	for (unsigned i = 0; i < 8192; i++)
		assert_int_equal(data[i], (uint8_t)(i * 3 + 1));

	/* READ past the end: an address reply with CHECK CONDITION and autosense. */
	uint8_t bad[10] = {0x28, 0, 0xFF, 0, 0, 0, 0, 0, 1, 0};
	gpa = lf_scsi_io(&f, 3, 0, bad, 10, MPI_SCSIIO_CONTROL_READ, 512, &ctx);
	lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
	uint32_t v = lf_pop(&f);
	assert_true(v & MPI_ADDRESS_REPLY);
	uint8_t *rep = lf_reply_frame(&f, v);
	assert_int_equal(get_le32(rep + 8), ctx);
	assert_int_equal(rep[12], 0x02);			   /* CHECK CONDITION */
	assert_int_equal(rep[13], MPI_SCSI_STATE_AUTOSENSE_VALID); /* SCSIState */
	assert_int_equal(get_le32(rep + 24), 18);		   /* SenseCount */
	uint8_t *sense = lf_ram(&f, LF_SENSE + 3 * 32);
	assert_int_equal(sense[0], 0x70);
	assert_int_equal(sense[2], 0x05);
	assert_int_equal(sense[12], 0x21);

	/* Short INQUIRY data: DATA_UNDERRUN with the count. */
	inq[4] = 96;
	gpa = lf_scsi_io(&f, 4, 3, inq, 6, MPI_SCSIIO_CONTROL_READ, 96, &ctx);
	lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
	rep = lf_reply_frame(&f, lf_pop(&f));
	assert_int_equal(get_le16(rep + 14), MPI_STATUS_SCSI_DATA_UNDERRUN);
	assert_int_equal(get_le32(rep + 20), 36);

	/* No device on target 5, a target id past the bus, a LUN that does not exist. */
	gpa = lf_scsi_io(&f, 5, 5, inq, 6, MPI_SCSIIO_CONTROL_READ, 36, &ctx);
	lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
	rep = lf_reply_frame(&f, lf_pop(&f));
	assert_int_equal(get_le16(rep + 14), MPI_STATUS_SCSI_DEVICE_NOT_THERE);
	gpa = lf_scsi_io(&f, 5, 200, inq, 6, MPI_SCSIIO_CONTROL_READ, 36, &ctx);
	lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
	rep = lf_reply_frame(&f, lf_pop(&f));
	assert_int_equal(get_le16(rep + 14), MPI_STATUS_SCSI_INVALID_TARGETID);
	gpa = lf_scsi_io(&f, 5, 3, inq, 6, MPI_SCSIIO_CONTROL_READ, 36, &ctx);
	lf_ram(&f, gpa)[13] = 1; /* LUN 1 */
	lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
	rep = lf_reply_frame(&f, lf_pop(&f));
	assert_int_equal(lf_ram(&f, LF_DATA)[0], 0x7F); /* "no device" */
	lf_free(&f);
}

/* A 24 KiB write in six 4 KiB pieces: two in the frame, then two chain buffers. */
static void test_chain_sgl(void **state)
{
	(void)state;
	struct lf f;
	uint32_t ctx;
	assert_int_equal(lf_init(&f, &mpt_53c1030), 0);
	assert_int_equal(lf_attach(&f, 0, NULL), 0);
	assert_int_equal(lf_bring_up(&f), 0);
	uint8_t w10[10] = {0x2A, 0, 0, 0, 0, 64, 0, 0, 48, 0};
	uint64_t gpa = lf_scsi_io(&f, 0, 0, w10, 10, MPI_SCSIIO_CONTROL_WRITE, 6 * 4096, &ctx);
	uint8_t *fr = lf_ram(&f, gpa);
	const uint32_t simple = MPI_SGE_TYPE_SIMPLE | MPI_SGE_64BIT | 4096;
	/* Pieces land at scattered addresses, each filled with its number. */
	for (unsigned i = 0; i < 6; i++)
		memset(lf_ram(&f, LF_DATA + (5 - i) * 8192), 'a' + i, 4096);
#define PIECE(i) (LF_DATA + (5 - (i)) * 8192)
	put_le32(fr + 48, simple);
	put_le64(fr + 52, PIECE(0));
	put_le32(fr + 60, simple | MPI_SGE_LAST_ELEMENT);
	put_le64(fr + 64, PIECE(1));
	/* Chain element at dword 18 (byte 72): chain buffer 1 holds 2 simples and the next chain.
	 */
	fr[2] = 72 / 4;
	put_le32(fr + 72, MPI_SGE_TYPE_CHAIN | MPI_SGE_64BIT | (24u / 4) << 16 | 36);
	put_le64(fr + 76, LF_CHAIN);
	uint8_t *c1 = lf_ram(&f, LF_CHAIN);
	put_le32(c1 + 0, simple);
	put_le64(c1 + 4, PIECE(2));
	put_le32(c1 + 12, simple | MPI_SGE_LAST_ELEMENT);
	put_le64(c1 + 16, PIECE(3));
	put_le32(c1 + 24, MPI_SGE_TYPE_CHAIN | MPI_SGE_64BIT | 24);
	put_le64(c1 + 28, LF_CHAIN + 0x1000);
	uint8_t *c2 = lf_ram(&f, LF_CHAIN + 0x1000);
	put_le32(c2 + 0, simple);
	put_le64(c2 + 4, PIECE(4));
	put_le32(c2 + 12, simple | MPI_SGE_LAST_ELEMENT | MPI_SGE_END_OF_LIST);
	put_le64(c2 + 16, PIECE(5));
	lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
	lf_complete(&f);
	assert_int_equal(lf_pop(&f), ctx);
	/* On the disk, in SGL order. */
	uint8_t buf[4096];
	for (unsigned i = 0; i < 6; i++) {
		char path[128];
		snprintf(path, sizeof(path), "%s/disk0.img", f.dir);
		FILE *fp = fopen(path, "r");
		fseek(fp, 64 * 512 + i * 4096, SEEK_SET);
		assert_int_equal(fread(buf, 1, sizeof(buf), fp), sizeof(buf));
		fclose(fp);
		for (unsigned k = 0; k < sizeof(buf); k++)
			assert_int_equal(buf[k], 'a' + i);
	}
	lf_free(&f);
}

static void test_config_pages(void **state)
{
	(void)state;
	struct lf f;
	assert_int_equal(lf_init(&f, &mpt_53c1030), 0);
	assert_int_equal(lf_attach(&f, 0, NULL), 0);
	assert_int_equal(lf_bring_up(&f), 0);
	uint8_t msg[48];
	uint16_t reply[64];
	/* Config through the request FIFO: header of SCSI Port page 2, then the page. */
	uint64_t gpa = LF_FRAME;
	uint8_t *fr = lf_ram(&f, gpa);
	memset(fr, 0, 128);
	fr[3] = MPI_FN_CONFIG;
	put_le32(fr + 8, 0xC0F1);
	fr[22] = 2;
	fr[23] = MPI_PAGETYPE_SCSI_PORT;
	lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
	uint8_t *rep = lf_reply_frame(&f, lf_pop(&f));
	assert_int_equal(get_le16(rep + 14), MPI_STATUS_SUCCESS);
	assert_int_equal(rep[21], 76 / 4); /* PageLength */
	fr[0] = MPI_CONFIG_ACTION_READ_CURRENT;
	put_le32(fr + 28, MPI_SGE_TYPE_SIMPLE | MPI_SGE_LAST_ELEMENT | MPI_SGE_END_OF_LIST | 76);
	put_le32(fr + 32, (uint32_t)LF_DATA);
	lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
	rep = lf_reply_frame(&f, lf_pop(&f));
	assert_int_equal(get_le16(rep + 14), MPI_STATUS_SUCCESS);
	assert_int_equal(lf_ram(&f, LF_DATA)[2], 2);
	assert_int_equal(get_le32(lf_ram(&f, LF_DATA + 8)) & 0xF, 7); /* HostSCSIID */

	/* Through the handshake too (SCSI Device page 0 of target 0), and the errors. */
	struct {
		uint8_t action, number, type, ext_type;
		uint32_t address;
		uint16_t status;
	} cases[] = {
	    {MPI_CONFIG_ACTION_HEADER, 0, MPI_PAGETYPE_SCSI_DEVICE, 0, 0, MPI_STATUS_SUCCESS},
	    {MPI_CONFIG_ACTION_HEADER, 0, MPI_PAGETYPE_SCSI_DEVICE, 0, 16,
	     MPI_STATUS_CONFIG_INVALID_PAGE},
	    {MPI_CONFIG_ACTION_HEADER, 0, MPI_PAGETYPE_SCSI_DEVICE, 0, 0x100,
	     MPI_STATUS_CONFIG_INVALID_PAGE},
	    {MPI_CONFIG_ACTION_HEADER, 9, MPI_PAGETYPE_IOC, 0, 0, MPI_STATUS_CONFIG_INVALID_PAGE},
	    {MPI_CONFIG_ACTION_HEADER, 0, 0x0B, 0, 0, MPI_STATUS_CONFIG_INVALID_TYPE},
	    {MPI_CONFIG_ACTION_HEADER, 0, MPI_PAGETYPE_EXTENDED, MPI_EXTPAGETYPE_SAS_IO_UNIT, 0,
	     MPI_STATUS_CONFIG_INVALID_TYPE}, /* SAS pages: not on the 53C1030 */
	    {MPI_CONFIG_ACTION_HEADER, 0, MPI_PAGETYPE_EXTENDED, 0x03, 0,
	     MPI_STATUS_CONFIG_INVALID_TYPE},
	    {9, 0, MPI_PAGETYPE_IOC, 0, 0, MPI_STATUS_CONFIG_INVALID_ACTION},
	    {MPI_CONFIG_ACTION_WRITE_CURRENT, 1, MPI_PAGETYPE_SCSI_DEVICE, 0, 0,
	     MPI_STATUS_SUCCESS},
	    {MPI_CONFIG_ACTION_WRITE_NVRAM, 1, MPI_PAGETYPE_IOC, 0, 0,
	     MPI_STATUS_CONFIG_CANT_COMMIT},
	    {MPI_CONFIG_ACTION_HEADER, 10, MPI_PAGETYPE_MANUFACTURING, 0, 0, MPI_STATUS_SUCCESS},
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(msg, 0, sizeof(msg));
		msg[0] = cases[i].action;
		msg[3] = MPI_FN_CONFIG;
		msg[6] = cases[i].ext_type;
		msg[22] = cases[i].number;
		msg[23] = cases[i].type;
		put_le32(msg + 24, cases[i].address);
		assert_int_equal(lf_handshake(&f, msg, 40, reply, 64), 12);
		assert_int_equal(lf_reply_status(reply), cases[i].status);
	}
	/* A page buffer outside RAM: refused, nothing written, the IOC carries on. */
	fr[0] = MPI_CONFIG_ACTION_READ_CURRENT;
	put_le32(fr + 32, 0xFFFFFFF0);
	lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
	rep = lf_reply_frame(&f, lf_pop(&f));
	assert_int_equal(get_le16(rep + 14), MPI_STATUS_INVALID_SGL);
	assert_int_equal(lf_r(&f, MPI_REG_DOORBELL) & MPI_IOC_STATE_MASK,
			 MPI_IOC_STATE_OPERATIONAL);
	lf_free(&f);
}

static void test_sas(void **state)
{
	(void)state;
	struct lf f;
	uint32_t ctx;
	assert_int_equal(lf_init(&f, &mpt_sas1068), 0);
	assert_int_equal(lf_attach(&f, 0, NULL), 0);
	assert_int_equal(lf_attach(&f, 2, NULL), 0);
	assert_int_equal(lf_bring_up(&f), 0);
	uint8_t msg[48] = {0};
	uint16_t reply[64];
	msg[3] = MPI_FN_PORT_FACTS;
	lf_handshake(&f, msg, 12, reply, 64);
	assert_int_equal(reply[10] >> 8, MPI_PORTTYPE_SAS);
	/* SAS IO Unit page 0: 8 PHYs, 0 and 2 attached. */
	uint64_t gpa = LF_FRAME;
	uint8_t *fr = lf_ram(&f, gpa);
	memset(fr, 0, 128);
	fr[0] = MPI_CONFIG_ACTION_READ_CURRENT;
	fr[3] = MPI_FN_CONFIG;
	fr[6] = MPI_EXTPAGETYPE_SAS_IO_UNIT;
	fr[23] = MPI_PAGETYPE_EXTENDED;
	put_le32(fr + 28, MPI_SGE_TYPE_SIMPLE | MPI_SGE_END_OF_LIST | 256);
	put_le32(fr + 32, (uint32_t)LF_DATA);
	lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
	uint8_t *rep = lf_reply_frame(&f, lf_pop(&f));
	assert_int_equal(get_le16(rep + 14), MPI_STATUS_SUCCESS);
	assert_int_equal(get_le16(rep + 4), (16 + 8 * 16) / 4); /* ExtPageLength */
	uint8_t *pg = lf_ram(&f, LF_DATA);
	assert_int_equal(pg[12], 8);
	assert_int_not_equal(get_le16(pg + 16 + 8), 0);	     /* PHY 0: a device */
	assert_int_equal(get_le16(pg + 16 + 16 + 8), 0);     /* PHY 1: none */
	assert_int_not_equal(get_le16(pg + 16 + 32 + 8), 0); /* PHY 2 */
	/* SAS Device page 0 by "next handle": targets 0, 2, then the end. */
	fr[6] = MPI_EXTPAGETYPE_SAS_DEVICE;
	uint32_t handle = 0xFFFF;
	unsigned found[4], n = 0;
	for (;;) {
		put_le32(fr + 24, handle);
		lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
		rep = lf_reply_frame(&f, lf_pop(&f));
		if (get_le16(rep + 14) != MPI_STATUS_SUCCESS)
			break;
		assert_true(n < 4);
		found[n++] = pg[26];
		handle = get_le16(pg + 24);
	}
	assert_int_equal(n, 2);
	assert_int_equal(found[0], 0);
	assert_int_equal(found[1], 2);
	assert_int_equal(get_le16(rep + 14), MPI_STATUS_CONFIG_INVALID_PAGE);
	/* Expanders: none. SCSI port pages: not on SAS. */
	fr[6] = MPI_EXTPAGETYPE_SAS_EXPANDER;
	put_le32(fr + 24, 0xFFFF);
	lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
	rep = lf_reply_frame(&f, lf_pop(&f));
	assert_int_equal(get_le16(rep + 14), MPI_STATUS_CONFIG_INVALID_PAGE);
	fr[23] = MPI_PAGETYPE_SCSI_PORT;
	lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
	rep = lf_reply_frame(&f, lf_pop(&f));
	assert_int_equal(get_le16(rep + 14), MPI_STATUS_CONFIG_INVALID_TYPE);
	/* I/O on target 2. */
	uint8_t r10[10] = {0x28, 0, 0, 0, 0, 1, 0, 0, 1, 0};
	gpa = lf_scsi_io(&f, 1, 2, r10, 10, MPI_SCSIIO_CONTROL_READ, 512, &ctx);
	lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
	lf_complete(&f);
	assert_int_equal(lf_pop(&f), ctx);
	for (unsigned i = 0; i < 512; i++)
		assert_int_equal(lf_ram(&f, LF_DATA)[i], lf_pattern(512 + i));
	lf_free(&f);
}

static void test_events_and_reset(void **state)
{
	(void)state;
	struct lf f;
	assert_int_equal(lf_init(&f, &mpt_53c1030), 0);
	assert_int_equal(lf_attach(&f, 0, NULL), 0);
	assert_int_equal(lf_bring_up(&f), 0);
	/* EVENT NOTIFICATION on: answered with an EVENT_CHANGE event through the FIFO. */
	uint8_t *fr = lf_ram(&f, LF_FRAME);
	memset(fr, 0, 128);
	fr[0] = 1;
	fr[3] = MPI_FN_EVENT_NOTIFICATION;
	put_le32(fr + 8, 0xE0E0);
	lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)LF_FRAME);
	uint8_t *rep = lf_reply_frame(&f, lf_pop(&f));
	assert_int_equal(get_le32(rep + 20), MPI_EVENT_EVENT_CHANGE);
	assert_int_equal(rep[7], MPI_MSGFLAGS_CONTINUATION);
	/* An unknown function: a reply with INVALID_FUNCTION, not a fault. */
	fr[3] = MPI_FN_FW_UPLOAD;
	lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)LF_FRAME);
	rep = lf_reply_frame(&f, lf_pop(&f));
	assert_int_equal(get_le16(rep + 14), MPI_STATUS_INVALID_FUNCTION);
	/* Message unit reset: READY again, the FIFOs empty, init works again. */
	lf_w(&f, MPI_REG_DOORBELL, MPI_FN_IOC_MESSAGE_UNIT_RESET << 24);
	assert_int_equal(lf_r(&f, MPI_REG_DOORBELL) & MPI_IOC_STATE_MASK, MPI_IOC_STATE_READY);
	assert_int_equal(lf_pop(&f), 0xFFFFFFFF);
	assert_int_equal(lf_bring_up(&f), 0);
	/* Diagnostic reset: the write sequence unlocks it; history bit set, then cleared. */
	static const uint32_t keys[] = {0xFF, 0x04, 0x0B, 0x02, 0x07, 0x0D};
	for (unsigned i = 0; i < 6; i++)
		lf_w(&f, MPI_REG_WRITE_SEQUENCE, keys[i]);
	assert_true(lf_r(&f, MPI_REG_DIAGNOSTIC) & MPI_DIAG_DRWE);
	lf_w(&f, MPI_REG_DIAGNOSTIC, MPI_DIAG_RESET_ADAPTER);
	assert_true(lf_r(&f, MPI_REG_DIAGNOSTIC) & MPI_DIAG_RESET_HISTORY);
	assert_int_equal(lf_r(&f, MPI_REG_DOORBELL) & MPI_IOC_STATE_MASK, MPI_IOC_STATE_READY);
	lf_w(&f, MPI_REG_DIAGNOSTIC, 0);
	assert_false(lf_r(&f, MPI_REG_DIAGNOSTIC) & MPI_DIAG_RESET_HISTORY);
	lf_w(&f, MPI_REG_WRITE_SEQUENCE, 0xFFFFFFFF);
	assert_false(lf_r(&f, MPI_REG_DIAGNOSTIC) & MPI_DIAG_DRWE);
	/* Without the sequence the diagnostic register ignores writes. */
	assert_int_equal(lf_bring_up(&f), 0);
	lf_w(&f, MPI_REG_DIAGNOSTIC, MPI_DIAG_RESET_ADAPTER);
	assert_int_equal(lf_r(&f, MPI_REG_DOORBELL) & MPI_IOC_STATE_MASK,
			 MPI_IOC_STATE_OPERATIONAL);
	lf_free(&f);
}

/* MSI (one vector): once the guest enables it, a reply sends one message when the interrupt
 * status rises and none while it stays up; INTx stays low.  Off again, INTx is back. */
static void test_msi(void **state)
{
	(void)state;
	struct lf f;
	uint32_t ctx;
	unsigned devfn = LF_SLOT << 3, cap = 0;
	assert_int_equal(lf_init(&f, &mpt_sas1068), 0);
	assert_int_equal(lf_attach(&f, 0, NULL), 0);
	assert_int_equal(lf_bring_up(&f), 0);
	for (unsigned p = pci_config_read(f.bus, devfn, PCI_CAP_PTR, 1); p;
	     p = pci_config_read(f.bus, devfn, p + 1, 1))
		if (pci_config_read(f.bus, devfn, p, 1) == 0x05) /* MSI */
			cap = p;
	assert_int_not_equal(cap, 0);
	pci_config_write(f.bus, devfn, cap + 4, 4, 0xFEE00000);
	pci_config_write(f.bus, devfn, cap + 8, 4, 0);
	pci_config_write(f.bus, devfn, cap + 12, 2, 0x41);
	pci_config_write(f.bus, devfn, cap + 2, 2, 1);
	uint8_t tur[6] = {0};
	uint64_t gpa = lf_scsi_io(&f, 0, 0, tur, 6, 0, 0, &ctx);
	lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
	assert_int_equal(f.msis, 1);
	assert_false(f.intx);
	uint32_t ctx2;
	gpa = lf_scsi_io(&f, 1, 0, tur, 6, 0, 0, &ctx2);
	lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
	assert_int_equal(f.msis, 1); /* the status was still up: the handler reads both */
	assert_int_equal(lf_pop(&f), ctx);
	assert_int_equal(lf_pop(&f), ctx2);
	assert_int_equal(lf_pop(&f), 0xFFFFFFFF);
	gpa = lf_scsi_io(&f, 2, 0, tur, 6, 0, 0, &ctx);
	lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
	assert_int_equal(f.msis, 2);
	assert_int_equal(lf_pop(&f), ctx);
	/* MSI off: INTx again. */
	pci_config_write(f.bus, devfn, cap + 2, 2, 0);
	gpa = lf_scsi_io(&f, 3, 0, tur, 6, 0, 0, &ctx);
	lf_w(&f, MPI_REG_REQUEST_FIFO, (uint32_t)gpa);
	assert_true(f.intx);
	assert_int_equal(f.msis, 2);
	assert_int_equal(lf_pop(&f), ctx);
	assert_false(f.intx);
	lf_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bring_up),  cmocka_unit_test(test_scsi_io),
	    cmocka_unit_test(test_chain_sgl), cmocka_unit_test(test_config_pages),
	    cmocka_unit_test(test_sas),	      cmocka_unit_test(test_events_and_reset),
	    cmocka_unit_test(test_msi),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
