/* acpi_build(): RSDP, XSDT, RSDT, FADT, FACS, MADT and DSDT for minivmm's machine (ACPI 6.4
 * chapter 5).  Every table is placed at a 16-byte boundary (FACS at 64) after the RSDP, so the RSDP
 * is at `gpa` itself, where the BIOS-area scan finds it when gpa is in [0xE0000, 0x100000).
 *
 * acpi_config.pci_mmio32_end is exclusive, like LAYOUT_PCI_MMIO32_END.
 */
#include <errno.h>
#include <string.h>

#include "devices/acpi.h"
#include "devices/acpi_dsdt.h"
#include "lib/endian.h"
#include "memory/layout.h"

#define HDR_LEN 36
#define RSDP_LEN 36
#define FACS_LEN 64
#define FADT_LEN 276 /* FADT revision 6 */
#define FADT_REVISION 6
#define FADT_MINOR 3
#define MADT_REVISION 5 /* ACPI 6.3: Online Capable in Local APIC flags */

#define OEM_ID "MINVMM"
#define OEM_TABLE_ID "MINIVMM "
#define CREATOR_ID "MVMM"

/* FADT Flags */
#define FADT_WBINVD (1u << 0)
#define FADT_PROC_C1 (1u << 2)
#define FADT_SLP_BUTTON (1u << 5)
#define FADT_RESET_REG_SUP (1u << 10)
/* FADT IA-PC Boot Architecture Flags */
#define BOOT_LEGACY_DEVICES (1u << 0)
#define BOOT_8042 (1u << 1)
#define BOOT_VGA_NOT_PRESENT (1u << 2)

#define RESET_VALUE 0x06 /* CF9: system reset (bit 1) | reset CPU (bit 2) */
#define GAS_SYSTEM_IO 1

/* MADT entry types */
#define MADT_IOAPIC 1
#define MADT_ISO 2
#define MADT_LAPIC_NMI 4
#define MADT_FLAGS_PCAT_COMPAT 1
#define ISO_ACTIVE_HIGH 0x1
#define ISO_LEVEL 0xC

struct layout {
	uint8_t *buf;
	size_t size, used;
	uint64_t gpa;
	struct acpi_links *links; /* NULL: not recorded */
	int link_err;
};

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = v >> (8 * i);
}

static uint8_t checksum(const uint8_t *p, size_t n)
{
	uint8_t sum = 0;
	while (n--)
		sum += *p++;
	return (uint8_t)-sum;
}

/* Reserve n zeroed bytes aligned to `align`; returns the offset or -ENOSPC. */
static long place(struct layout *l, size_t n, size_t align)
{
	size_t off = (l->used + align - 1) & ~(align - 1);
	if (off > l->size || n > l->size - off)
		return -ENOSPC;
	memset(l->buf + off, 0, n);
	l->used = off + n;
	return (long)off;
}

/* Record that buf[off..off+size) holds gpa + (offset of a table): the firmware's loader patches it.
 */
static void link_pointer(struct layout *l, size_t off, unsigned size)
{
	struct acpi_links *k = l->links;
	if (!k)
		return;
	if (k->npointers == ACPI_LINKS_MAX) {
		l->link_err = -ENOSPC;
		return;
	}
	k->pointers[k->npointers].offset = off;
	k->pointers[k->npointers++].size = size;
}

/* Record that the byte at `field` makes buf[start..start+len) sum to zero. */
static void link_checksum(struct layout *l, size_t start, size_t len, size_t field)
{
	struct acpi_links *k = l->links;
	if (!k)
		return;
	if (k->nchecksums == ACPI_LINKS_MAX) {
		l->link_err = -ENOSPC;
		return;
	}
	k->checksums[k->nchecksums].start = start;
	k->checksums[k->nchecksums].length = len;
	k->checksums[k->nchecksums++].field = field;
}

static void header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	put_le(t + 4, len, 4);
	t[8] = rev;
	memcpy(t + 10, OEM_ID, 6);
	memcpy(t + 16, OEM_TABLE_ID, 8);
	put_le(t + 24, 1, 4); /* OEM revision */
	memcpy(t + 28, CREATOR_ID, 4);
	put_le(t + 32, 1, 4); /* creator revision */
}

static void finish(struct layout *l, long off)
{
	uint8_t *t = l->buf + off;
	uint32_t len = get_le32(t + 4);
	t[9] = 0;
	t[9] = checksum(t, len);
	link_checksum(l, off, len, off + 9);
}

/* Generic Address Structure in system I/O space. */
static void gas_io(uint8_t *g, unsigned bits, unsigned access_size, uint64_t port)
{
	g[0] = GAS_SYSTEM_IO;
	g[1] = bits;
	g[2] = 0;
	g[3] = access_size;
	put_le(g + 4, port, 8);
}

void acpi_madt_lapic(uint8_t e[ACPI_MADT_LAPIC_LEN], unsigned uid, unsigned apic_id, uint32_t flags)
{
	e[0] = 0; /* Processor Local APIC */
	e[1] = ACPI_MADT_LAPIC_LEN;
	e[2] = uid;
	e[3] = apic_id;
	put_le(e + 4, flags, 4);
}

static int config_check(const struct acpi_config *c)
{
	if (c->ncpus < 1 || c->ncpus > c->ncpus_possible || c->ncpus_possible > LAYOUT_MAX_VCPUS)
		return -EINVAL;
	if (c->present_mask && (!(c->present_mask & 1) ||
				(c->ncpus_possible < 64 && c->present_mask >> c->ncpus_possible)))
		return -EINVAL;
	if (c->pci_slots > 32)
		return -EINVAL;
	if (c->pci_mmio32_start >= c->pci_mmio32_end || c->pci_mmio32_end > 4 * GiB)
		return -EINVAL;
	if (c->pci_mmio64_size &&
	    (c->pci_mmio64_start < 4 * GiB ||
	     c->pci_mmio64_start + c->pci_mmio64_size - 1 < c->pci_mmio64_start))
		return -EINVAL;
	return 0;
}

static long build_dsdt(const struct acpi_config *cfg, struct layout *l)
{
	struct aml a;
	long off;

	aml_init(&a);
	acpi_dsdt_body(cfg, &a);
	if (a.err || a.depth) {
		int err = a.err ? a.err : -EINVAL;
		aml_free(&a);
		return err;
	}
	off = place(l, HDR_LEN + a.len, 16);
	if (off >= 0) {
		uint8_t *t = l->buf + off;
		header(t, "DSDT", HDR_LEN + a.len, 2); /* revision 2: 64-bit integers */
		memcpy(t + HDR_LEN, a.buf, a.len);
		finish(l, off);
	}
	aml_free(&a);
	return off;
}

static long build_fadt(struct layout *l, uint64_t facs, uint64_t dsdt)
{
	long off = place(l, FADT_LEN, 16);
	if (off < 0)
		return off;
	uint8_t *t = l->buf + off;
	header(t, "FACP", FADT_LEN, FADT_REVISION);
	put_le(t + 36, facs, 4);
	put_le(t + 40, dsdt, 4);
	link_pointer(l, off + 36, 4);
	link_pointer(l, off + 40, 4);
	put_le(t + 46, LAYOUT_IRQ_SCI, 2);
	/* SMI_CMD 0: no SMM, the machine is always in ACPI mode (SCI_EN reads 1). */
	put_le(t + 56, LAYOUT_PORT_ACPI_PM, 4);	    /* PM1a_EVT_BLK */
	put_le(t + 64, LAYOUT_PORT_ACPI_PM + 4, 4); /* PM1a_CNT_BLK */
	put_le(t + 76, LAYOUT_PORT_ACPI_PM + 8, 4); /* PM_TMR_BLK */
	put_le(t + 80, LAYOUT_PORT_ACPI_GPE0, 4);   /* GPE0_BLK */
	t[88] = 4;				    /* PM1_EVT_LEN */
	t[89] = 2;				    /* PM1_CNT_LEN */
	t[91] = 4;				    /* PM_TMR_LEN */
	t[92] = LAYOUT_PORT_ACPI_GPE0_LEN;	    /* GPE0_BLK_LEN */
	put_le(t + 96, 101, 2);			    /* P_LVL2_LAT > 100: no C2 */
	put_le(t + 98, 1001, 2);		    /* P_LVL3_LAT > 1000: no C3 */
	put_le(t + 109, BOOT_LEGACY_DEVICES | BOOT_8042 | BOOT_VGA_NOT_PRESENT, 2);
	put_le(t + 112, FADT_WBINVD | FADT_PROC_C1 | FADT_SLP_BUTTON | FADT_RESET_REG_SUP, 4);
	gas_io(t + 116, 8, 1, LAYOUT_PORT_RESET); /* RESET_REG */
	t[128] = RESET_VALUE;
	t[131] = FADT_MINOR;
	put_le(t + 132, facs, 8); /* X_FIRMWARE_CTRL */
	put_le(t + 140, dsdt, 8); /* X_DSDT */
	link_pointer(l, off + 132, 8);
	link_pointer(l, off + 140, 8);
	gas_io(t + 148, 32, 2, LAYOUT_PORT_ACPI_PM);	 /* X_PM1a_EVT_BLK */
	gas_io(t + 172, 16, 2, LAYOUT_PORT_ACPI_PM + 4); /* X_PM1a_CNT_BLK */
	gas_io(t + 208, 32, 3, LAYOUT_PORT_ACPI_PM + 8); /* X_PM_TMR_BLK */
	gas_io(t + 220, LAYOUT_PORT_ACPI_GPE0_LEN * 8, 1, LAYOUT_PORT_ACPI_GPE0); /* X_GPE0_BLK */
	finish(l, off);
	return off;
}

static long build_facs(struct layout *l)
{
	long off = place(l, FACS_LEN, 64); /* the FACS must be 64-byte aligned */
	if (off < 0)
		return off;
	uint8_t *t = l->buf + off;
	memcpy(t, "FACS", 4);
	put_le(t + 4, FACS_LEN, 4);
	t[32] = 2; /* version; no checksum in the FACS */
	return off;
}

static long build_madt(const struct acpi_config *cfg, struct layout *l)
{
	size_t len = HDR_LEN + 8 + cfg->ncpus_possible * ACPI_MADT_LAPIC_LEN + 12 + 2 * 10 + 6;
	long off = place(l, len, 16);
	if (off < 0)
		return off;
	uint8_t *t = l->buf + off, *e = t + HDR_LEN + 8;
	header(t, "APIC", len, MADT_REVISION);
	put_le(t + 36, LAYOUT_LAPIC_BASE, 4);
	put_le(t + 40, MADT_FLAGS_PCAT_COMPAT, 4); /* the in-kernel irqchip has the 8259s too */
	for (unsigned id = 0; id < cfg->ncpus_possible; id++, e += ACPI_MADT_LAPIC_LEN)
		acpi_madt_lapic(e, id, id,
				acpi_cpu_present(cfg, id) ? ACPI_MADT_ENABLED
							  : ACPI_MADT_ONLINE_CAPABLE);
	e[0] = MADT_IOAPIC;
	e[1] = 12;
	e[2] = 0; /* I/O APIC ID */
	put_le(e + 4, LAYOUT_IOAPIC_BASE, 4);
	put_le(e + 8, 0, 4); /* GSI base */
	e += 12;
	/* The PIT's IRQ0 is wired to IOAPIC pin 2; the SCI is level, active high. */
	static const struct {
		uint8_t irq, gsi;
		uint16_t flags;
	} iso[2] = {{0, 2, 0}, {LAYOUT_IRQ_SCI, LAYOUT_IRQ_SCI, ISO_ACTIVE_HIGH | ISO_LEVEL}};
	for (int i = 0; i < 2; i++, e += 10) {
		e[0] = MADT_ISO;
		e[1] = 10;
		e[2] = 0; /* bus: ISA */
		e[3] = iso[i].irq;
		put_le(e + 4, iso[i].gsi, 4);
		put_le(e + 8, iso[i].flags, 2);
	}
	e[0] = MADT_LAPIC_NMI;
	e[1] = 6;
	e[2] = 0xFF; /* all processors */
	put_le(e + 3, 0, 2);
	e[5] = 1; /* LINT1 */
	finish(l, off);
	return off;
}

/* XSDT (8-byte entries) or RSDT (4-byte entries) pointing at the given tables. */
static long build_sdt(struct layout *l, const char *sig, unsigned width, const uint64_t *gpas,
		      unsigned n)
{
	size_t len = HDR_LEN + width * n;
	long off = place(l, len, 16);
	if (off < 0)
		return off;
	uint8_t *t = l->buf + off;
	header(t, sig, len, 1);
	for (unsigned i = 0; i < n; i++) {
		put_le(t + HDR_LEN + width * i, gpas[i], width);
		link_pointer(l, off + HDR_LEN + width * i, width);
	}
	finish(l, off);
	return off;
}

long acpi_build_linked(const struct acpi_config *cfg, uint8_t *buf, size_t size, uint64_t gpa,
		       uint64_t *rsdp_gpa, struct acpi_links *links)
{
	struct layout l = {.buf = buf, .size = size, .gpa = gpa, .links = links};
	long rsdp, facs, dsdt, fadt, madt, xsdt, rsdt;
	int err;

	if (!cfg || !buf || !rsdp_gpa || (gpa & 15))
		return -EINVAL;
	if (links)
		memset(links, 0, sizeof(*links));
	err = config_check(cfg);
	if (err)
		return err;
	/* Every 32-bit pointer field must reach every table. */
	if (gpa > UINT32_MAX || size > UINT32_MAX - gpa)
		return -EINVAL;
	rsdp = place(&l, RSDP_LEN, 16);
	if (rsdp < 0)
		return rsdp;
	facs = build_facs(&l);
	if (facs < 0)
		return facs;
	dsdt = build_dsdt(cfg, &l);
	if (dsdt < 0)
		return dsdt;
	fadt = build_fadt(&l, gpa + facs, gpa + dsdt);
	if (fadt < 0)
		return fadt;
	madt = build_madt(cfg, &l);
	if (madt < 0)
		return madt;
	uint64_t tables[2] = {gpa + fadt, gpa + madt};
	xsdt = build_sdt(&l, "XSDT", 8, tables, 2);
	if (xsdt < 0)
		return xsdt;
	rsdt = build_sdt(&l, "RSDT", 4, tables, 2);
	if (rsdt < 0)
		return rsdt;

	uint8_t *r = buf + rsdp;
	memcpy(r, "RSD PTR ", 8);
	memcpy(r + 9, OEM_ID, 6);
	r[15] = 2; /* revision: ACPI 2.0+ with XSDT */
	put_le(r + 16, gpa + rsdt, 4);
	put_le(r + 20, RSDP_LEN, 4);
	put_le(r + 24, gpa + xsdt, 8);
	r[8] = checksum(r, 20);
	r[32] = checksum(r, RSDP_LEN);
	link_pointer(&l, rsdp + 16, 4);
	link_pointer(&l, rsdp + 24, 8);
	link_checksum(&l, rsdp, 20, rsdp + 8); /* the ACPI 1.0 part first: the full sum covers it */
	link_checksum(&l, rsdp, RSDP_LEN, rsdp + 32);
	if (l.link_err)
		return l.link_err;
	*rsdp_gpa = gpa + rsdp;
	return (long)l.used;
}

long acpi_build(const struct acpi_config *cfg, uint8_t *buf, size_t size, uint64_t gpa,
		uint64_t *rsdp_gpa)
{
	return acpi_build_linked(cfg, buf, size, gpa, rsdp_gpa, NULL);
}
