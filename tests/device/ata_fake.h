/* A fake transport for the ATA layer's tests: counts interrupts and command ends, and serves DMA
 * from a scatter-gather list over a plain buffer standing in for guest memory. */
#ifndef MINIVMM_TESTS_ATA_FAKE_H
#define MINIVMM_TESTS_ATA_FAKE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/ata/ata.h"
#include "devices/disk.h"
#include "storage/core/block.h"
#include "storage/core/block_aio.h"
#include "tests/lib/testlib.h"
#include "tests/lib/testdisk.h"

struct fake_sg {
	size_t addr, len;
};

struct fake {
	int irqs, dones, dma_ready;
	int dma_ends, dma_end_ret;
	bool auto_go; /* call ata_dma_go from dma_ready, as AHCI does */
	uint8_t *mem;
	size_t mem_size;
	struct fake_sg sg[32];
	int nsg, sg_idx;
	size_t sg_off;
};

static inline void fake_irq(void *opaque, struct ata_device *dev)
{
	(void)dev;
	((struct fake *)opaque)->irqs++;
}

static inline void fake_done(void *opaque, struct ata_device *dev)
{
	(void)dev;
	((struct fake *)opaque)->dones++;
}

static inline void fake_dma_ready(void *opaque, struct ata_device *dev, bool to_host)
{
	struct fake *f = opaque;
	(void)to_host;
	f->dma_ready++;
	f->sg_idx = 0;
	f->sg_off = 0;
	if (f->auto_go)
		ata_dma_go(dev);
}

static inline int fake_dma_map(void *opaque, struct ata_device *dev, struct iovec *iov, int iov_max,
			       size_t len, size_t *mapped)
{
	struct fake *f = opaque;
	int n = 0;
	(void)dev;
	*mapped = 0;
	while (len && n < iov_max && f->sg_idx < f->nsg) {
		struct fake_sg *s = &f->sg[f->sg_idx];
		if (s->addr + s->len > f->mem_size)
			return -EFAULT;
		size_t take = s->len - f->sg_off;
		if (take > len)
			take = len;
		iov[n++] = (struct iovec){f->mem + s->addr + f->sg_off, take};
		f->sg_off += take;
		len -= take;
		*mapped += take;
		if (f->sg_off == s->len) {
			f->sg_idx++;
			f->sg_off = 0;
		}
	}
	return n;
}

static inline void fake_dma_end(void *opaque, struct ata_device *dev, int ret)
{
	struct fake *f = opaque;
	(void)dev;
	f->dma_ends++;
	f->dma_end_ret = ret;
}

static const struct ata_ops fake_ops = {
    .irq = fake_irq,
    .dma_ready = fake_dma_ready,
    .dma_map = fake_dma_map,
    .dma_end = fake_dma_end,
    .done = fake_done,
};

/* Run every completion until nothing is in flight. */
static inline void fake_drain(struct disk *d)
{
	while (d->aio && block_aio_pending(d->aio))
		block_aio_poll(d->aio, 1000);
}

/* Create a raw image of `size` bytes filled with a pattern (byte i = i*7 + i/512). */
static inline int fake_make_raw(const char *path, uint64_t size, bool pattern)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	if (pattern) {
		for (uint64_t i = 0; i < size; i++)
			fputc((int)((i * 7 + i / 512) & 0xFF), f);
	} else if (ftruncate(fileno(f), (off_t)size) < 0) {
		fclose(f);
		return -1;
	}
	return fclose(f);
}

static inline uint8_t fake_pattern(uint64_t i)
{
	return (uint8_t)((i * 7 + i / 512) & 0xFF);
}

static inline void fake_tf(struct ata_device *dev, uint64_t lba, uint32_t count, bool lba48)
{
	struct ata_taskfile *tf = &dev->tf;
	tf->lba_low = (uint8_t)lba;
	tf->lba_mid = (uint8_t)(lba >> 8);
	tf->lba_high = (uint8_t)(lba >> 16);
	tf->count = (uint8_t)count;
	if (lba48) {
		tf->lba_low_exp = (uint8_t)(lba >> 24);
		tf->lba_mid_exp = (uint8_t)(lba >> 32);
		tf->lba_high_exp = (uint8_t)(lba >> 40);
		tf->count_exp = (uint8_t)(count >> 8);
		tf->device = 0x40;
	} else {
		tf->device = (uint8_t)(0x40 | ((lba >> 24) & 0x0F));
	}
}

#endif
