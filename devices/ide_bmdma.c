/* PIIX bus-master IDE DMA (BAR4: 8 bytes per channel: command, status, PRD table address) and the
 * ATA transport ops of the IDE channels.
 *
 * A PRD entry is {u32 address, u16 byte count (0 = 64 KiB), u16 flags (bit 15: end of table)}.
 * The walk is bounded by IDE_PRD_MAX_ENTRIES and every segment goes through guest_memory_ptr, so
 * a table that loops, never ends or points outside RAM fails the command instead of hanging the
 * VMM or touching host memory (CVE-2014-9718). Segments go through the one scatter-gather walker
 * (memory/sg_list.h) and reach the block layer as they are: no copy.
 */
#include <errno.h>
#include <string.h>

#include "devices/ide.h"
#include "memory/guest_memory.h"
#include "memory/sg_list.h"
#include "lib/endian.h"

static struct ide_channel *ide_bm_channel(struct ide_piix *ide, uint64_t offset)
{
	return &ide->ch[offset >= 8];
}

static bool ide_bus_master_enabled(const struct ide_channel *ch)
{
	const struct pci_device *pci = &ch->ide->pci;
	/* Without a bus the device is driven by tests directly: treat mastering as enabled. */
	return !pci->bus || (pci->cfg[PCI_COMMAND] & PCI_COMMAND_MASTER);
}

static void ide_bm_rewind(struct ide_bmdma *bm)
{
	bm->prd_next = bm->prd_table;
	bm->prd_entries = 0;
	bm->seg_left = 0;
	bm->prd_end = false;
}

static struct ata_device *ide_bm_waiting_device(struct ide_channel *ch)
{
	for (int i = 0; i < 2; i++)
		if (ch->dev[i].phase == ATA_PHASE_DMA_WAIT)
			return &ch->dev[i];
	return NULL;
}

static void ide_bm_start(struct ide_channel *ch)
{
	struct ata_device *dev = ide_bm_waiting_device(ch);
	ch->bm.status |= BM_STATUS_ACTIVE;
	ide_bm_rewind(&ch->bm);
	if (dev && ide_bus_master_enabled(ch))
		ata_dma_go(dev);
}

void ide_bmdma_reset(struct ide_channel *ch)
{
	ch->bm.cmd = 0;
	ch->bm.status &= BM_STATUS_DMA_CAPABLE;
	ide_bm_rewind(&ch->bm);
}

void ide_bmdma_io(struct ide_piix *ide, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct ide_channel *ch = ide_bm_channel(ide, offset);
	struct ide_bmdma *bm = &ch->bm;
	unsigned reg = offset & 7;

	pthread_mutex_lock(&ch->lock);
	if (!is_write) {
		uint8_t regs[8] = {bm->cmd, 0, bm->status, 0};
		memcpy(regs + 4, &bm->prd_table, 4);
		for (unsigned i = 0; i < len; i++)
			data[i] = reg + i < 8 ? regs[reg + i] : 0xFF;
		goto out;
	}
	for (unsigned i = 0; i < len && reg + i < 8; i++) {
		uint8_t v = data[i];
		switch (reg + i) {
		case 0: { /* command: start/stop and direction */
			bool was = bm->cmd & BM_CMD_START;
			bm->cmd = v & (BM_CMD_START | BM_CMD_TO_MEMORY);
			if ((v & BM_CMD_START) && !was)
				ide_bm_start(ch);
			else if (!(v & BM_CMD_START))
				/* Stopping ends the engine; a transfer still running fails its next
				 * mapping (ide_dma_map) and the command aborts. */
				bm->status &= ~BM_STATUS_ACTIVE;
			break;
		}
		case 2: /* status: error and interrupt are write-1-to-clear */
			bm->status =
			    (uint8_t)((bm->status & ~(v & (BM_STATUS_ERROR | BM_STATUS_INTR)) &
				       ~BM_STATUS_DMA_CAPABLE) |
				      (v & BM_STATUS_DMA_CAPABLE));
			break;
		case 4:
		case 5:
		case 6:
		case 7: { /* PRD table address: dword aligned */
			unsigned shift = 8 * (reg + i - 4);
			uint32_t t = bm->prd_table & ~(0xFFu << shift);
			bm->prd_table = (t | (uint32_t)v << shift) & ~3u;
			break;
		}
		}
	}
out:
	pthread_mutex_unlock(&ch->lock);
}

/* ---- ATA transport ops (called with ch->lock held) ---- */

static void ide_ata_irq(void *opaque, struct ata_device *dev)
{
	ide_channel_irq(opaque, dev);
}

static void ide_dma_ready(void *opaque, struct ata_device *dev, bool to_host)
{
	struct ide_channel *ch = opaque;
	(void)to_host;
	/* Linux programs the engine and starts it after the command; a guest may also start it
	 * first. Either way the transfer runs once both happened. */
	if ((ch->bm.cmd & BM_CMD_START) && ide_bus_master_enabled(ch)) {
		ide_bm_rewind(&ch->bm);
		ata_dma_go(dev);
	}
}

/* Load the next PRD entry; false at the end of the table or on a bad table (*err set). */
static bool ide_prd_next(struct ide_channel *ch, int *err)
{
	struct ide_bmdma *bm = &ch->bm;
	uint8_t e[8];
	if (bm->prd_end)
		return false;
	if (bm->prd_entries >= IDE_PRD_MAX_ENTRIES) {
		*err = -EFAULT;
		return false;
	}
	if (guest_memory_read(ch->ide->env.mem, bm->prd_next, e, sizeof(e)) < 0) {
		*err = -EFAULT;
		return false;
	}
	bm->prd_entries++;
	bm->prd_next += 8;
	uint32_t addr = get_le32(e);
	uint32_t count = get_le16(e + 4);
	bm->seg_addr = addr & ~1u;
	bm->seg_left = count ? count & ~1u : 65536;
	if (!bm->seg_left)
		bm->seg_left = 65536; /* an odd count of 1 rounds to 0, which means 64 KiB */
	bm->prd_end = e[7] & 0x80;
	return true;
}

static int ide_dma_map(void *opaque, struct ata_device *dev, struct iovec *iov, int iov_max,
		       size_t len, size_t *mapped)
{
	struct ide_channel *ch = opaque;
	struct ide_bmdma *bm = &ch->bm;
	int err = 0;
	struct sg_list sg;
	(void)dev;
	*mapped = 0;
	if (!(bm->cmd & BM_CMD_START))
		return -ECANCELED; /* the guest stopped the engine mid-transfer */
	sg_list_init(&sg, ch->ide->env.mem, iov, (unsigned)iov_max, len);
	while (sg.bytes < len) {
		if (!bm->seg_left && !ide_prd_next(ch, &err))
			break;
		uint64_t take = bm->seg_left < len - sg.bytes ? bm->seg_left : len - sg.bytes;
		int r = sg_list_add(&sg, bm->seg_addr, take);
		if (r == -ENOSPC)
			break; /* iov is full: the caller maps the rest next time */
		if (r < 0)
			return -EFAULT;
		bm->seg_addr += (uint32_t)take;
		bm->seg_left -= (uint32_t)take;
	}
	if (err)
		return err;
	*mapped = sg.bytes;
	return (int)sg.n;
}

/* Walk the table as ide_dma_map would, then put the walk back where it was. */
static int ide_dma_check(void *opaque, struct ata_device *dev, uint64_t len)
{
	struct ide_channel *ch = opaque;
	struct ide_bmdma saved = ch->bm;
	struct iovec iov[16];
	int ret = 0;
	while (len && !ret) {
		size_t got = 0;
		int n = ide_dma_map(opaque, dev, iov, 16, len, &got);
		if (n < 0)
			ret = n;
		else if (!got)
			ret = -ENOSPC;
		else
			len -= got;
	}
	ch->bm = saved;
	return ret;
}

static void ide_dma_end(void *opaque, struct ata_device *dev, int ret)
{
	struct ide_channel *ch = opaque;
	(void)dev;
	ch->bm.status &= ~BM_STATUS_ACTIVE;
	if (ret == -EFAULT)
		ch->bm.status |= BM_STATUS_ERROR;
}

const struct ata_ops ide_ata_ops = {
    .irq = ide_ata_irq,
    .dma_ready = ide_dma_ready,
    .dma_map = ide_dma_map,
    .dma_check = ide_dma_check,
    .dma_end = ide_dma_end,
};
