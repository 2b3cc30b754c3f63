/* The SAS1068's extended configuration pages, what Linux mptsas reads to find its end devices:
 * SAS IO Unit 0-3 (one PHY per target id, each direct-attached), SAS PHY 0-1 and SAS Device 0-2
 * (by handle, by "next handle" and by bus/target id), and no expanders.
 *
 * Handles: PHY i is i + 1; the end device on target i, when there is one, is 1 + targets + i,
 * and its PHY's controller handle names it too (as QEMU's mptsas1068 does, which mptsas
 * accepts). */
#include "devices/lsi/mpt.h"
#include "devices/lsi/mpt_config.h"
#include "lib/endian.h"

#define SAS_RATE_FAILED 0x02
#define SAS_RATE_1_5 0x08
#define SAS_RATE_3_0 0x09
#define SAS_DEVICE_END 0x00000001u
#define SAS_DEVICE_SSP_TARGET 0x00000400u
#define SAS_DEVICE_SSP_INITIATOR 0x00000040u
#define SAS_DEVICE0_PRESENT_MAPPED 0x0007 /* present, mapped, mapping persistent */

#define FORM(address) ((address) >> 28)

uint64_t mpt_sas_address(const struct mpt *m, unsigned n)
{
	/* NAA 5, IEEE company ID 0x525400 (locally administered, as QEMU's NICs), slot, n. */
	return 0x5525400000000000ull | (uint64_t)m->pci.slot << 16 | n;
}

static bool present(const struct mpt *m, unsigned t)
{
	return t < m->p->max_targets && m->targets[t].present;
}

static uint16_t device_handle(const struct mpt *m, unsigned t)
{
	return present(m, t) ? (uint16_t)(1 + m->p->max_targets + t) : 0;
}

static void ext_header(uint8_t *b, uint8_t version, unsigned number, uint8_t ext_type)
{
	b[0] = version;
	b[2] = (uint8_t)number;
	b[3] = MPI_PAGETYPE_EXTENDED;
	b[6] = ext_type;
}

static int io_unit(const struct mpt *m, unsigned number, uint32_t address, uint8_t *b)
{
	unsigned n = m->p->max_targets;
	(void)address;
	switch (number) {
	case 0:
		ext_header(b, 4, 0, MPI_EXTPAGETYPE_SAS_IO_UNIT);
		b[12] = (uint8_t)n; /* NumPhys */
		for (unsigned i = 0; i < n; i++) {
			uint8_t *p = b + 16 + 16 * i;
			p[0] = (uint8_t)i; /* Port */
			p[3] = present(m, i) ? SAS_RATE_3_0 : SAS_RATE_FAILED;
			put_le32(p + 4, present(m, i) ? SAS_DEVICE_END | SAS_DEVICE_SSP_TARGET : 0);
			put_le16(p + 8, device_handle(m, i));  /* AttachedDeviceHandle */
			put_le16(p + 10, device_handle(m, i)); /* ControllerDevHandle */
		}
		return 16 + 16 * (int)n;
	case 1:
		ext_header(b, 7, 1, MPI_EXTPAGETYPE_SAS_IO_UNIT);
		b[16] = (uint8_t)n; /* NumPhys */
		for (unsigned i = 0; i < n; i++) {
			uint8_t *p = b + 20 + 12 * i;
			p[0] = (uint8_t)i;
			p[3] = SAS_RATE_3_0 << 4 | SAS_RATE_1_5;
			put_le32(p + 4, present(m, i) ? SAS_DEVICE_END | SAS_DEVICE_SSP_TARGET : 0);
		}
		return 20 + 12 * (int)n;
	case 2:
		ext_header(b, 6, 2, MPI_EXTPAGETYPE_SAS_IO_UNIT);
		return 20;
	case 3:
		ext_header(b, 6, 3, MPI_EXTPAGETYPE_SAS_IO_UNIT);
		return 44;
	default:
		return -1;
	}
}

static int phy(const struct mpt *m, unsigned number, uint32_t address, uint8_t *b)
{
	unsigned i;
	if (FORM(address) == 0)
		i = address & 0xFF;
	else if (FORM(address) == 1)
		i = address & 0xFFFF;
	else
		return -1;
	if (i >= m->p->max_targets)
		return -1;
	ext_header(b, 1, number, MPI_EXTPAGETYPE_SAS_PHY);
	switch (number) {
	case 0:
		put_le16(b + 8, device_handle(m, i)); /* OwnerDevHandle */
		put_le64(b + 12, mpt_sas_address(m, 0));
		put_le16(b + 20, device_handle(m, i)); /* AttachedDevHandle */
		b[22] = (uint8_t)i;		       /* AttachedPhyIdentifier */
		put_le32(b + 24, present(m, i) ? SAS_DEVICE_END : 0);
		b[28] = SAS_RATE_3_0 << 4 | SAS_RATE_1_5; /* programmed */
		b[29] = SAS_RATE_3_0 << 4 | SAS_RATE_1_5; /* hardware */
		return 36;
	case 1: /* error counters: none */
		return 28;
	default:
		return -1;
	}
}

/* The target a device page address names, or -1. */
static int device_target(const struct mpt *m, uint32_t address)
{
	unsigned n = m->p->max_targets;
	switch (FORM(address)) {
	case 0: { /* the next handle after the one given (0xFFFF: the first) */
		uint32_t h = address & 0xFFFF;
		for (unsigned t = 0; t < n; t++)
			if (present(m, t) && (h == 0xFFFF || device_handle(m, t) > h))
				return (int)t;
		return -1;
	}
	case 1: /* bus and target id */
		if ((address >> 8) & 0xFF)
			return -1;
		return present(m, address & 0xFF) ? (int)(address & 0xFF) : -1;
	case 2: { /* handle */
		uint32_t h = address & 0xFFFF;
		if (h <= n || h > 2 * n)
			return -1;
		return present(m, h - 1 - n) ? (int)(h - 1 - n) : -1;
	}
	default:
		return -1;
	}
}

static int device(const struct mpt *m, unsigned number, uint32_t address, uint8_t *b)
{
	int t = device_target(m, address);
	if (t < 0)
		return -1;
	uint64_t sas = mpt_sas_address(m, 1 + (unsigned)t);
	switch (number) {
	case 0:
		ext_header(b, 5, 0, MPI_EXTPAGETYPE_SAS_DEVICE);
		put_le64(b + 12, sas);
		put_le16(b + 20, (uint16_t)(1 + t)); /* ParentDevHandle: its PHY */
		b[22] = (uint8_t)t;		     /* PhyNum */
		put_le16(b + 24, device_handle(m, (unsigned)t));
		b[26] = (uint8_t)t; /* TargetID */
		put_le32(b + 28, SAS_DEVICE_END | SAS_DEVICE_SSP_TARGET);
		put_le16(b + 32, SAS_DEVICE0_PRESENT_MAPPED);
		b[34] = (uint8_t)t; /* PhysicalPort */
		return 36;
	case 1:
		ext_header(b, 0, 1, MPI_EXTPAGETYPE_SAS_DEVICE);
		put_le64(b + 12, sas);
		put_le16(b + 24, device_handle(m, (unsigned)t));
		b[26] = (uint8_t)t;
		return 48;
	case 2:
		ext_header(b, 1, 2, MPI_EXTPAGETYPE_SAS_DEVICE);
		put_le64(b + 8, sas);
		return 20;
	default:
		return -1;
	}
}

static int expander(const struct mpt *m, unsigned number, uint32_t address, uint8_t *b)
{
	(void)m, (void)number, (void)address, (void)b;
	return -1; /* the PHYs are direct-attached: there is no expander to find */
}

static const struct mpt_page_type sas_types[] = {
    {MPI_EXTPAGETYPE_SAS_IO_UNIT, io_unit, false},
    {MPI_EXTPAGETYPE_SAS_EXPANDER, expander, false},
    {MPI_EXTPAGETYPE_SAS_DEVICE, device, false},
    {MPI_EXTPAGETYPE_SAS_PHY, phy, false},
};

const struct mpt_page_type *mpt_sas_page_type(const struct mpt *m, uint8_t type)
{
	if (m->p->kind != MPT_SAS_1068)
		return NULL;
	for (unsigned i = 0; i < sizeof(sas_types) / sizeof(sas_types[0]); i++)
		if (sas_types[i].type == type)
			return &sas_types[i];
	return NULL;
}
