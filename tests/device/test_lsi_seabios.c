/* The LSI Logic Fusion-MPT HBA driven as SeaBIOS's mpt-scsi driver drives it, without a CPU, on
 * both personalities: everything through the I/O BAR; a message unit reset, then IOC INIT alone
 * (no IOC FACTS, no PORT ENABLE) with a 4-byte reply frame, its reply read word by word without
 * waiting for doorbell interrupts; one reply frame posted; SCSI IO requests with a 16-byte CDB
 * length whatever the command, one 32-bit simple element (a zero-length one for commands without
 * data), polled through the interrupt status, and the reply FIFO read twice per reply.  SeaBIOS
 * failed here before: the 4-byte reply frame was refused, the IOC stayed READY and its first
 * SCSI IO faulted it (0x0008, invalid state). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/device/lsi_fixture.h"

#define SB_REPLY 0x7000ull /* SeaBIOS's 4-byte reply_msg, with a guard dword after it */
#define SB_REQ 0x8000ull   /* the request on SeaBIOS's stack */
#define SB_SENSE 0x8100ull
#define SB_SGE_SIMPLE_END 0xD1000000u /* simple, last element, end of buffer, end of list */
#define SB_SGE_HOST_TO_IOC 0x04000000u
#define SB_GUARD 0xA5A5A5A5u

struct sb {
	struct lf f;
	uint16_t io; /* BAR0 */
	uint32_t next_context;
};

static uint32_t sb_in(struct sb *s, unsigned off)
{
	uint8_t d[4];
	if (!io_bus_access(&s->f.pio, s->io + off, d, 4, false))
		return 0xDEADBEEF;
	return get_le32(d);
}

static void sb_out(struct sb *s, unsigned off, uint32_t v)
{
	uint8_t d[4];
	put_le32(d, v);
	io_bus_access(&s->f.pio, s->io + off, d, 4, true);
}

/* init_mpt_scsi: reset, IOC INIT through the handshake, one reply frame posted. */
static void sb_init(struct sb *s, const struct mpt_personality *p)
{
	memset(s, 0, sizeof(*s));
	assert_int_equal(lf_init(&s->f, p), 0);
	assert_int_equal(lf_attach(&s->f, 0, NULL), 0);
	unsigned devfn = LF_SLOT << 3;
	s->io = (uint16_t)(pci_config_read(s->f.bus, devfn, PCI_BAR0, 4) & ~3u);
	assert_true(s->io != 0);
	s->next_context = 0x1234;

	sb_out(s, MPI_REG_DOORBELL, (uint32_t)MPI_FN_IOC_MESSAGE_UNIT_RESET << 24);
	sb_out(s, MPI_REG_INT_MASK, MPI_HIS_DOORBELL | MPI_HIS_REPLY);
	sb_out(s, MPI_REG_INT_STATUS, 0);

	uint8_t init[24] = {0};
	init[0] = 2; /* WhoInit: the BIOS */
	init[3] = MPI_FN_IOC_INIT;
	init[5] = 8;		/* MaxDevices */
	init[6] = 1;		/* MaxBuses */
	put_le16(init + 12, 4); /* ReplyFrameSize: 4 bytes */
	sb_out(s, MPI_REG_DOORBELL, (uint32_t)MPI_FN_HANDSHAKE << 24 | 6u << 16);
	for (unsigned i = 0; i < 6; i++)
		sb_out(s, MPI_REG_DOORBELL, get_le32(init + 4 * i));
	uint16_t reply[10];
	for (unsigned i = 0; i < 10; i++)
		reply[i] = (uint16_t)sb_in(s, MPI_REG_DOORBELL);
	sb_out(s, MPI_REG_INT_STATUS, 0);			      /* "eat doorbell interrupt" */
	assert_int_equal(reply[0] & 0xFF, 2);			      /* WhoInit */
	assert_int_equal(reply[1], MPI_FN_IOC_INIT << 8 | 5);	      /* Function, MsgLength */
	assert_int_equal(lf_reply_status(reply), MPI_STATUS_SUCCESS); /* IOCStatus */
	uint32_t db = sb_in(s, MPI_REG_DOORBELL);
	assert_int_equal(db & MPI_IOC_STATE_MASK, MPI_IOC_STATE_OPERATIONAL);
	assert_false(db & MPI_DOORBELL_ACTIVE); /* the handshake is over */

	put_le32(lf_ram(&s->f, SB_REPLY), 0);
	put_le32(lf_ram(&s->f, SB_REPLY + 4), SB_GUARD);
	sb_out(s, MPI_REG_REPLY_FIFO, (uint32_t)SB_REPLY);
}

/* mpt_scsi_cmd: 0 for a context reply (success), 1 for an address reply (the frame posted
 * again, as SeaBIOS does), -1 if nothing came. */
static int sb_cmd(struct sb *s, unsigned target, const uint8_t *cdb, unsigned cdb_len, uint32_t len,
		  uint64_t buf, bool write)
{
	uint8_t *req = lf_ram(&s->f, SB_REQ);
	memset(req, 0, 56);
	req[0] = (uint8_t)target;
	req[3] = MPI_FN_SCSI_IO;
	req[4] = 16; /* CDBLength, always */
	req[5] = 18; /* SenseBufferLength */
	uint32_t context = s->next_context++ & 0x7FFFFFFF;
	put_le32(req + 8, context);
	memcpy(req + 24, cdb, cdb_len);
	put_le32(req + 40, len);
	put_le32(req + 44, (uint32_t)SB_SENSE);
	uint32_t fl = SB_SGE_SIMPLE_END | len;
	if (len) {
		put_le32(req + 20, write ? MPI_SCSIIO_CONTROL_WRITE : MPI_SCSIIO_CONTROL_READ);
		if (write)
			fl |= SB_SGE_HOST_TO_IOC;
	}
	put_le32(req + 48, fl);
	put_le32(req + 52, (uint32_t)buf);
	sb_out(s, MPI_REG_REQUEST_FIFO, (uint32_t)SB_REQ);
	lf_complete(&s->f);
	if (!(sb_in(s, MPI_REG_INT_STATUS) & MPI_HIS_REPLY))
		return -1;
	uint32_t resp = sb_in(s, MPI_REG_REPLY_FIFO);
	assert_int_equal(sb_in(s, MPI_REG_REPLY_FIFO), 0xFFFFFFFF); /* the second read */
	assert_false(sb_in(s, MPI_REG_INT_STATUS) & MPI_HIS_REPLY);
	if (resp == context)
		return 0;
	if (!(resp & MPI_ADDRESS_REPLY))
		return -1;
	assert_int_equal((uint64_t)resp << 1 & 0xFFFFFFFF, SB_REPLY);
	/* The reply was cut to the 4-byte frame: the dword after it is untouched. */
	assert_int_equal(get_le32(lf_ram(&s->f, SB_REPLY + 4)), SB_GUARD);
	sb_out(s, MPI_REG_REPLY_FIFO, (uint32_t)SB_REPLY);
	return 1;
}

static void boot_sequence(const struct mpt_personality *p)
{
	struct sb s;
	sb_init(&s, p);
	uint8_t *buf = lf_ram(&s.f, LF_DATA);

	/* The scan: REPORT LUNS on target 0 answers; an empty target 1 gets an error reply. */
	uint8_t report_luns[12] = {0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0};
	memset(buf, 0xEE, 16);
	assert_int_equal(sb_cmd(&s, 0, report_luns, 12, 16, LF_DATA, false), 0);
	assert_int_equal(get_be32(buf), 8); /* one LUN */
	assert_int_equal(sb_cmd(&s, 1, report_luns, 12, 16, LF_DATA, false), 1);

	/* scsi_drive_setup: INQUIRY, TEST UNIT READY (no data, a zero-length element),
	 * READ CAPACITY(10). */
	uint8_t inquiry[6] = {0x12, 0, 0, 0, 36, 0};
	assert_int_equal(sb_cmd(&s, 0, inquiry, 6, 36, LF_DATA, false), 0);
	assert_int_equal(buf[0] & 0x1F, 0); /* a disk */
	uint8_t tur[6] = {0};
	assert_int_equal(sb_cmd(&s, 0, tur, 6, 0, 0, false), 0);
	uint8_t capacity[10] = {0x25};
	assert_int_equal(sb_cmd(&s, 0, capacity, 10, 8, LF_DATA, false), 0);
	assert_int_equal(get_be32(buf), LF_DISK_SIZE / 512 - 1);
	assert_int_equal(get_be32(buf + 4), 512);

	/* The boot sector and a few more, then a write read back. */
	uint8_t read10[10] = {0x28, 0, 0, 0, 0, 3, 0, 0, 4, 0};
	assert_int_equal(sb_cmd(&s, 0, read10, 10, 4 * 512, LF_DATA, false), 0);
	for (unsigned i = 0; i < 4 * 512; i++)
		assert_int_equal(buf[i], lf_pattern(3 * 512 + i));
	for (unsigned i = 0; i < 512; i++)
		buf[i] = (uint8_t)(i ^ 0x5A);
	uint8_t write10[10] = {0x2A, 0, 0, 0, 0, 9, 0, 0, 1, 0};
	assert_int_equal(sb_cmd(&s, 0, write10, 10, 512, LF_DATA, true), 0);
	memset(buf, 0, 512);
	uint8_t read9[10] = {0x28, 0, 0, 0, 0, 9, 0, 0, 1, 0};
	assert_int_equal(sb_cmd(&s, 0, read9, 10, 512, LF_DATA, false), 0);
	for (unsigned i = 0; i < 512; i++)
		assert_int_equal(buf[i], (uint8_t)(i ^ 0x5A));

	/* SYSLINUX's reads through INT 13h: up to 127 sectors (EDD), and a full 64 KiB. */
	for (unsigned count = 8; count <= 128; count = count * 2 - (count == 64)) {
		uint8_t big[10] = {0x28, 0, 0, 0, 0, 16, 0, 0, (uint8_t)count, 0};
		memset(buf, 0, 128 * 512);
		assert_int_equal(sb_cmd(&s, 0, big, 10, count * 512, LF_DATA, false), 0);
		for (unsigned i = 0; i < count * 512; i++)
			assert_int_equal(buf[i], lf_pattern(16 * 512 + i));
	}

	/* A read past the end: CHECK CONDITION, autosense in SeaBIOS's 18-byte buffer, and the
	 * one reply frame comes back for the next error. */
	uint8_t past[10] = {0x28, 0, 0, 0, 0x20, 0, 0, 0, 1, 0};
	memset(lf_ram(&s.f, SB_SENSE), 0, 32);
	for (int i = 0; i < 2; i++)
		assert_int_equal(sb_cmd(&s, 0, past, 10, 512, LF_DATA, false), 1);
	assert_int_equal(lf_ram(&s.f, SB_SENSE)[0] & 0x7F, 0x70);
	assert_int_equal(lf_ram(&s.f, SB_SENSE)[2] & 0x0F, 0x05); /* ILLEGAL REQUEST */
	assert_int_equal(lf_ram(&s.f, SB_SENSE)[18], 0);	  /* nothing past its 18 bytes */
	assert_int_equal(sb_cmd(&s, 0, read9, 10, 512, LF_DATA, false), 0);

	/* SeaBIOS again from the start (a reboot): the reset and IOC INIT work a second time. */
	lf_free(&s.f);
	sb_init(&s, p);
	assert_int_equal(sb_cmd(&s, 0, tur, 6, 0, 0, false), 0);
	lf_free(&s.f);
}

static void test_seabios_53c1030(void **state)
{
	(void)state;
	boot_sequence(&mpt_53c1030);
}

static void test_seabios_sas1068(void **state)
{
	(void)state;
	boot_sequence(&mpt_sas1068);
}

/* The reply frame sizes IOC INIT takes: any non-zero multiple of 4. */
static void test_reply_frame_sizes(void **state)
{
	(void)state;
	static const struct {
		uint16_t size;
		uint16_t status;
	} cases[] = {{0, MPI_STATUS_INVALID_FIELD}, {2, MPI_STATUS_INVALID_FIELD},
		     {6, MPI_STATUS_INVALID_FIELD}, {4, MPI_STATUS_SUCCESS},
		     {8, MPI_STATUS_SUCCESS},	    {128, MPI_STATUS_SUCCESS}};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct lf f;
		assert_int_equal(lf_init(&f, &mpt_sas1068), 0);
		uint8_t msg[24] = {0};
		uint16_t reply[64];
		msg[3] = MPI_FN_IOC_INIT;
		put_le16(msg + 12, cases[i].size);
		assert_int_equal(lf_handshake(&f, msg, 24, reply, 64), 10);
		assert_int_equal(lf_reply_status(reply), cases[i].status);
		assert_int_equal(lf_r(&f, MPI_REG_DOORBELL) & MPI_IOC_STATE_MASK,
				 cases[i].status ? MPI_IOC_STATE_READY : MPI_IOC_STATE_OPERATIONAL);
		lf_free(&f);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_seabios_53c1030),
	    cmocka_unit_test(test_seabios_sas1068),
	    cmocka_unit_test(test_reply_frame_sizes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
