/* The PIIX4 IDE function (8086:7111) in compatibility mode: two channels at the legacy ports and
 * ISA IRQs 14/15, each with a master and a slave ATA device, and bus-master DMA through BAR4.
 *
 * ide_piix.c: the PCI function, command/control block ports, interrupts, reset, attachment.
 * ide_bmdma.c: the bus-master registers and the PRD-table walk that feeds ATA DMA.
 */
#ifndef MINIVMM_DEVICES_IDE_H
#define MINIVMM_DEVICES_IDE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/ata/ata.h"
#include "devices/pci.h"
#include "devices/storage.h"

enum {
	BM_CMD_START = 0x01,
	BM_CMD_TO_MEMORY = 0x08, /* the device's data goes to memory (READ DMA) */
	BM_STATUS_ACTIVE = 0x01,
	BM_STATUS_ERROR = 0x02,
	BM_STATUS_INTR = 0x04,
	BM_STATUS_DMA_CAPABLE = 0x60, /* drive 0/1 DMA capable (software-set) */
};

/* A PRD table has at most 64 KiB / 8 entries (it may not cross a 64 KiB boundary): walking more
 * means the guest built a loop or no end-of-table bit (CVE-2014-9718). */
#define IDE_PRD_MAX_ENTRIES 8192

struct ide_bmdma {
	uint8_t cmd, status;
	uint32_t prd_table;
	/* Walk of the running transfer. */
	uint32_t prd_next;    /* guest address of the next PRD entry */
	unsigned prd_entries; /* entries used so far */
	uint64_t seg_addr;    /* current segment: guest address, bytes left */
	uint32_t seg_left;
	bool prd_end; /* the end-of-table entry has been loaded */
	bool waiting; /* a device waits for START (dma_ready came first) */
};

struct ide_piix;

struct ide_channel {
	struct ide_piix *ide;
	unsigned index; /* 0 primary, 1 secondary */
	pthread_mutex_t lock;
	struct ata_device dev[2];
	bool intrq[2];	 /* per device: its INTRQ is asserted */
	bool line;	 /* what the IRQ line is driven at */
	uint8_t control; /* device control register (nIEN, SRST, HOB) */
	struct ide_bmdma bm;
};

struct ide_piix {
	struct pci_device pci;
	struct storage_env env;
	struct ide_channel ch[2];
};

/* ide_piix.c */
int ide_piix_create(const struct storage_env *env, struct disk *pos[4], struct ide_piix **out);
void ide_piix_destroy(struct ide_piix *ide);
/* Port access as if from a vCPU: channel ch, `offset` 0..7 of the command block, 8 for the
 * device control / alternate status register. */
void ide_channel_io(struct ide_channel *ch, unsigned offset, uint8_t *data, unsigned len,
		    bool is_write);
/* Attach positions for bus=ide configurations: primary master, primary slave, secondary slave,
 * and the CD-ROMs first on the secondary master. pos[i] = index into cfgs or -1. */
int ide_assign_positions(const struct disk_config *cfgs, unsigned n, int pos[4]);

/* ide_bmdma.c */
void ide_bmdma_io(struct ide_piix *ide, uint64_t offset, uint8_t *data, unsigned len,
		  bool is_write);
void ide_bmdma_reset(struct ide_channel *ch);
extern const struct ata_ops ide_ata_ops;
/* Called by ide_piix.c when a device of the channel raises INTRQ. */
void ide_channel_irq(struct ide_channel *ch, struct ata_device *dev);

#endif
