/* CONFIG requests: the configuration pages mptbase, mptspi and mptsas read.
 *
 * Both personalities: Manufacturing 0-10, IO Unit 0-4, IOC 0-6.  The 53C1030 adds SCSI Port 0-2
 * (asynchronous narrow transfers: nothing for domain validation to negotiate) and SCSI Device 0-1
 * per target; the SAS1068 adds the extended SAS IO Unit, PHY and Device pages (mpt_config_sas.c).
 * A page that does not exist gets CONFIG_INVALID_PAGE (or INVALID_TYPE), an address outside the
 * targets INVALID_PAGE; writes are accepted only for SCSI Device 1 (the driver's requested
 * transfer parameters, which change nothing here), else CANT_COMMIT.
 */
#include <string.h>

#include "devices/lsi/mpt.h"
#include "devices/lsi/mpt_config.h"
#include "memory/guest_memory.h"
#include "lib/endian.h"

static void header(uint8_t *b, uint8_t version, uint8_t number, uint8_t type)
{
	b[0] = version;
	b[2] = number;
	b[3] = type;
}

static void pad_copy(uint8_t *dst, const char *s, size_t n)
{
	size_t l = strnlen(s, n);
	memcpy(dst, s, l);
}

/* Each builder fills b (MPT_PAGE_MAX bytes, zeroed) and returns the page length in bytes, or -1
 * when `address` names nothing. */
static int manufacturing(const struct mpt *m, unsigned number, uint32_t address, uint8_t *b)
{
	(void)address;
	header(b, 0, (uint8_t)number, MPI_PAGETYPE_MANUFACTURING);
	switch (number) {
	case 0:
		pad_copy(b + 4, m->p->name, 16); /* ChipName */
		pad_copy(b + 20, "1", 8);	 /* ChipRevision */
		pad_copy(b + 28, "minivmm", 16); /* BoardName */
		pad_copy(b + 44, "minivmm", 16); /* BoardAssembly */
		pad_copy(b + 60, "0000000000000000", 16);
		return 76;
	case 1: /* VPD: none */
		return 4 + 256;
	case 2:
	case 3:
		put_le16(b + 4, m->p->device_id);
		b[6] = m->p->revision;
		return 12;
	case 4:
		b[0] = 5;
		return 112;
	case 5:
		b[0] = 2;
		put_le64(b + 4, mpt_sas_address(m, 0));
		return 24;
	case 7:
		return 36;
	case 6:
	case 8:
	case 9:
	case 10:
		return 8;
	default:
		return -1;
	}
}

static int io_unit(const struct mpt *m, unsigned number, uint32_t address, uint8_t *b)
{
	(void)address;
	header(b, 0, (uint8_t)number, MPI_PAGETYPE_IO_UNIT);
	switch (number) {
	case 0:
		put_le64(b + 4, mpt_sas_address(m, 0)); /* UniqueValue */
		return 12;
	case 1:
		b[0] = 2;
		put_le32(b + 4, 0x41); /* single function, integrated RAID disabled */
		return 8;
	case 2:
		b[0] = 2;
		put_le32(b + 8, 0x01000000); /* BIOS version */
		b[13] = (uint8_t)(m->pci.slot << 3);
		return 32;
	case 3:
		b[0] = 1;
		return 12;
	case 4:
		return 20;
	default:
		return -1;
	}
}

static int ioc(const struct mpt *m, unsigned number, uint32_t address, uint8_t *b)
{
	(void)address;
	header(b, 0, (uint8_t)number, MPI_PAGETYPE_IOC);
	switch (number) {
	case 0:
		b[0] = 1;
		put_le16(b + 12, 0x1000);
		put_le16(b + 14, m->p->device_id);
		b[16] = m->p->revision;
		put_le32(b + 20, 0x010000); /* class: SCSI */
		put_le16(b + 24, 0x1000);
		put_le16(b + 26, m->p->subsystem_id);
		return 28;
	case 1: /* reply coalescing off */
		b[0] = 3;
		b[13] = (uint8_t)m->pci.slot;
		return 16;
	case 2: /* no RAID volumes */
		b[0] = 4;
		return 12;
	case 3:
	case 4:
		return 8;
	case 5:
		return 12;
	case 6:
		b[0] = 1;
		return 60;
	default:
		return -1;
	}
}

static int scsi_port(const struct mpt *m, unsigned number, uint32_t address, uint8_t *b)
{
	if (m->p->kind != MPT_SPI_53C1030 || address != 0) /* one port */
		return -1;
	header(b, 0, (uint8_t)number, MPI_PAGETYPE_SCSI_PORT);
	switch (number) {
	case 0:
		b[0] = 2;
		put_le32(b + 4, 0);    /* Capabilities: asynchronous, narrow */
		put_le32(b + 8, 0x02); /* PhysicalInterface: single-ended */
		return 12;
	case 1:
		b[0] = 3;
		put_le32(b + 4, (1u << (16 + m->p->initiator_id)) | m->p->initiator_id);
		return 12;
	case 2:
		b[0] = 2;
		put_le32(b + 8, m->p->initiator_id); /* PortSettings: HostSCSIID */
		for (unsigned t = 0; t < 16; t++) {
			uint8_t *d = b + 12 + 4 * t;
			d[0] = 10;		 /* Timeout */
			d[1] = 0x0A;		 /* SyncFactor */
			put_le16(d + 2, 0x000F); /* disconnect, ID and LUN scan, tagged queueing */
		}
		return 76;
	default:
		return -1;
	}
}

static int scsi_device(const struct mpt *m, unsigned number, uint32_t address, uint8_t *b)
{
	unsigned target = address & 0xFF, bus = (address >> 8) & 0xFF;
	if (m->p->kind != MPT_SPI_53C1030 || bus != 0 || target >= m->p->max_targets ||
	    (address >> 16))
		return -1;
	header(b, 0, (uint8_t)number, MPI_PAGETYPE_SCSI_DEVICE);
	switch (number) {
	case 0: /* NegotiatedParameters 0: asynchronous, narrow */
		b[0] = 4;
		return 12;
	case 1:
		b[0] = 5;
		return 16;
	default:
		return -1;
	}
}

static const struct mpt_page_type page_types[] = {
    {MPI_PAGETYPE_MANUFACTURING, manufacturing, true},
    {MPI_PAGETYPE_IO_UNIT, io_unit, true},
    {MPI_PAGETYPE_IOC, ioc, true},
    {MPI_PAGETYPE_SCSI_PORT, scsi_port, true},
    {MPI_PAGETYPE_SCSI_DEVICE, scsi_device, true},
};

static const struct mpt_page_type *find_type(const struct mpt *m, uint8_t type)
{
	if (type == MPI_PAGETYPE_SCSI_PORT || type == MPI_PAGETYPE_SCSI_DEVICE) {
		if (m->p->kind != MPT_SPI_53C1030)
			return NULL;
	}
	for (unsigned i = 0; i < sizeof(page_types) / sizeof(page_types[0]); i++)
		if (page_types[i].type == type)
			return &page_types[i];
	return mpt_sas_page_type(m, type);
}

/* Copy the page into the request's page buffer (one simple SGE). */
static uint16_t write_page(struct mpt *m, const uint8_t *msg, const uint8_t *page, unsigned len)
{
	uint32_t fl = get_le32(msg + MPI_CONFIG_SGE);
	uint32_t room = fl & MPI_SGE_LENGTH_MASK;
	uint64_t addr = (fl & MPI_SGE_64BIT) ? get_le64(msg + MPI_CONFIG_SGE + 4)
					     : get_le32(msg + MPI_CONFIG_SGE + 4);
	if ((fl & MPI_SGE_TYPE_MASK) != MPI_SGE_TYPE_SIMPLE)
		return MPI_STATUS_INVALID_SGL;
	if (room > len)
		room = len;
	if (room && guest_memory_write(m->mem, addr, page, room) < 0)
		return MPI_STATUS_INVALID_SGL;
	return MPI_STATUS_SUCCESS;
}

void mpt_config(struct mpt *m, const uint8_t *msg, bool db)
{
	uint8_t r[MPI_CONFIG_REPLY_LEN];
	uint8_t page[MPT_PAGE_MAX] = {0};
	uint8_t action = msg[MPI_CONFIG_ACTION];
	uint8_t number = msg[MPI_CONFIG_HEADER + 2];
	uint8_t type = msg[MPI_CONFIG_HEADER + 3] & MPI_PAGETYPE_MASK;
	bool ext = type == MPI_PAGETYPE_EXTENDED;
	uint32_t address = get_le32(msg + MPI_CONFIG_PAGE_ADDRESS);
	uint16_t status = MPI_STATUS_SUCCESS;

	mpt_reply_header(r, msg, sizeof(r));
	r[MPI_CONFIG_ACTION] = action;
	memcpy(r + MPI_CONFIG_HEADER, msg + MPI_CONFIG_HEADER, 4);
	if (ext) {
		type = msg[MPI_CONFIG_EXT_TYPE];
		r[MPI_CONFIG_EXT_TYPE] = type;
		if (type <= MPI_PAGETYPE_MASK)
			type = 0xFF; /* an extended type must be above the standard ones */
	}
	const struct mpt_page_type *pt = find_type(m, type);
	int len = -1;
	if (action > MPI_CONFIG_ACTION_READ_NVRAM) {
		status = MPI_STATUS_CONFIG_INVALID_ACTION;
	} else if (!pt || pt->standard == ext) {
		status = MPI_STATUS_CONFIG_INVALID_TYPE;
	} else if ((len = pt->build(m, number, address, page)) < 0) {
		status = MPI_STATUS_CONFIG_INVALID_PAGE;
	} else {
		/* The reply carries the page's header: length in dwords. */
		if (ext) {
			put_le16(page + 4, (uint16_t)(len / 4));
			put_le16(r + MPI_CONFIG_EXT_LENGTH, (uint16_t)(len / 4));
			r[MPI_CONFIG_HEADER + 0] = page[0];
			r[MPI_CONFIG_HEADER + 2] = number;
			r[MPI_CONFIG_HEADER + 3] = MPI_PAGETYPE_EXTENDED;
		} else {
			page[1] = (uint8_t)(len / 4);
			memcpy(r + MPI_CONFIG_HEADER, page, 4);
		}
		switch (action) {
		case MPI_CONFIG_ACTION_HEADER:
		case MPI_CONFIG_ACTION_DEFAULT:
			break;
		case MPI_CONFIG_ACTION_WRITE_CURRENT:
		case MPI_CONFIG_ACTION_WRITE_NVRAM:
			if (!(type == MPI_PAGETYPE_SCSI_DEVICE && number == 1 &&
			      action == MPI_CONFIG_ACTION_WRITE_CURRENT))
				status = MPI_STATUS_CONFIG_CANT_COMMIT;
			break;
		default: /* the reads */
			status = write_page(m, msg, page, (unsigned)len);
			break;
		}
	}
	put_le16(r + MPI_REPLY_STATUS, status);
	mpt_reply(m, r, sizeof(r), db);
}
