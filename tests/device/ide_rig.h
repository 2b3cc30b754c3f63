/* A machine without a CPU for the IDE tests: port bus, PCI bus with a fake interrupt sink, guest
 * RAM, and the PIIX IDE function with up to four drives. Ports are driven as a vCPU would. */
#ifndef MINIVMM_TESTS_IDE_RIG_H
#define MINIVMM_TESTS_IDE_RIG_H

#include "devices/ide.h"
#include "memory/guest_memory.h"
#include "tests/device/ata_fake.h"

struct rig {
	struct io_bus pio, mmio;
	struct pci_bus *pci;
	struct guest_memory mem;
	struct ide_piix *ide;
	struct disk *disks[4];
	bool irq[16];	   /* ISA line levels */
	int irq_edges[16]; /* rising edges seen */
	uint16_t bm_base;
};

static inline int rig_set_irq(void *opaque, unsigned gsi, bool level)
{
	struct rig *r = opaque;
	if (gsi < 16) {
		if (level && !r->irq[gsi])
			r->irq_edges[gsi]++;
		r->irq[gsi] = level;
	}
	return 0;
}

static inline uint32_t rig_in(struct rig *r, uint16_t port, unsigned len)
{
	uint8_t d[4] = {0};
	io_bus_access(&r->pio, port, d, len, false);
	return (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
}

static inline void rig_out(struct rig *r, uint16_t port, uint32_t v, unsigned len)
{
	uint8_t d[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
	io_bus_access(&r->pio, port, d, len, true);
}

/* Run the completions of every drive until nothing is in flight (the VM's I/O thread's job). */
static inline void rig_drain(struct rig *r)
{
	for (int i = 0; i < 4; i++)
		if (r->disks[i])
			fake_drain(r->disks[i]);
}

/* args[i]: --disk/--cdrom argument for position i (0 primary master .. 3 secondary slave). */
static inline struct rig *rig_new(const char *args[4], const bool cdrom[4])
{
	struct rig *r = calloc(1, sizeof(*r));
	if (!r || io_bus_init(&r->pio) < 0 || io_bus_init(&r->mmio) < 0)
		return NULL;
	struct pci_bus_ops ops = {.set_irq = rig_set_irq, .opaque = r};
	if (pci_bus_create(&r->pio, &r->mmio, &ops, &r->pci) < 0)
		return NULL;
	if (guest_memory_create(&r->mem, 16 * 1024 * 1024) < 0)
		return NULL;
	for (int i = 0; i < 4; i++) {
		if (!args[i])
			continue;
		r->disks[i] = test_disk_open(args[i], cdrom[i] ? DISK_MEDIA_CDROM : DISK_MEDIA_HDD);
		if (!r->disks[i])
			return NULL;
	}
	struct storage_env env = {
	    .pci = r->pci, .pio = &r->pio, .mem = &r->mem, .set_irq = rig_set_irq, .irq_opaque = r};
	if (ide_piix_create(&env, r->disks, &r->ide) < 0)
		return NULL;
	/* Bus mastering on, as the guest's driver does; find BAR4. */
	unsigned devfn = r->ide->pci.slot << 3;
	pci_config_write(r->pci, devfn, PCI_COMMAND, 2, 0x0005);
	r->bm_base = (uint16_t)(pci_config_read(r->pci, devfn, PCI_BAR0 + 16, 4) & ~3u);
	return r;
}

static inline void rig_free(struct rig *r)
{
	rig_drain(r);
	ide_piix_destroy(r->ide);
	for (int i = 0; i < 4; i++)
		disk_close(r->disks[i]);
	pci_bus_destroy(r->pci);
	guest_memory_destroy(&r->mem);
	io_bus_destroy(&r->mmio);
	io_bus_destroy(&r->pio);
	free(r);
}

/* Task file of channel `base` (0x1F0 or 0x170): LBA28 or LBA48 (HOB bytes first). */
static inline void rig_tf(struct rig *r, uint16_t base, int drive, uint64_t lba, uint32_t count,
			  bool lba48)
{
	rig_out(r, base + 6, (uint32_t)(0xE0 | drive << 4 | (lba48 ? 0 : (lba >> 24) & 0x0F)), 1);
	if (lba48) {
		rig_out(r, base + 2, count >> 8, 1);
		rig_out(r, base + 3, (uint32_t)(lba >> 24) & 0xFF, 1);
		rig_out(r, base + 4, (uint32_t)(lba >> 32) & 0xFF, 1);
		rig_out(r, base + 5, (uint32_t)(lba >> 40) & 0xFF, 1);
	}
	rig_out(r, base + 2, count & 0xFF, 1);
	rig_out(r, base + 3, (uint32_t)lba & 0xFF, 1);
	rig_out(r, base + 4, (uint32_t)(lba >> 8) & 0xFF, 1);
	rig_out(r, base + 5, (uint32_t)(lba >> 16) & 0xFF, 1);
}

/* A PRD table at `table` in guest memory: entries {addr, count (0 = 64 KiB), eot}. */
static inline void rig_prd(struct rig *r, uint32_t table, int i, uint32_t addr, uint32_t count,
			   bool eot)
{
	uint8_t e[8] = {(uint8_t)addr,
			(uint8_t)(addr >> 8),
			(uint8_t)(addr >> 16),
			(uint8_t)(addr >> 24),
			(uint8_t)count,
			(uint8_t)(count >> 8),
			0,
			eot ? 0x80 : 0};
	guest_memory_write(&r->mem, table + 8ULL * i, e, 8);
}

#endif
