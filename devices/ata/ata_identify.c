/* IDENTIFY DEVICE and IDENTIFY PACKET DEVICE data (ACS-3 word layout). */
#include <string.h>

#include "devices/ata/ata_internal.h"
#include "devices/disk.h"

/* ATA strings: two characters per word, the first in the high byte, space padded. */
static void ata_id_string(uint16_t *words, const char *s, size_t nwords)
{
	char tmp[64];
	disk_pad_string(tmp, nwords * 2, s);
	for (size_t i = 0; i < nwords; i++)
		words[i] = (uint16_t)((uint8_t)tmp[2 * i] << 8 | (uint8_t)tmp[2 * i + 1]);
}

/* Transfer-mode words 62/63/88: supported modes, and the one SET FEATURES selected. */
static void ata_id_modes(const struct ata_device *dev, uint16_t id[256])
{
	uint8_t mode = dev->xfer_mode;
	id[63] = 0x0007; /* multiword DMA 0-2 */
	if ((mode & 0xF8) == 0x20)
		id[63] |= 0x100 << (mode & 7);
	id[64] = 0x0003; /* PIO 3 and 4 */
	id[65] = id[66] = id[67] = id[68] = 120;
	id[88] = 0x003F; /* UDMA 0-5 */
	if ((mode & 0xF8) == 0x40)
		id[88] |= 0x100 << (mode & 7);
}

static void ata_id_checksum(uint16_t id[256])
{
	uint8_t sum = 0xA5;
	id[255] = 0xA5;
	for (int i = 0; i < 255; i++)
		sum += (uint8_t)(id[i] & 0xFF) + (uint8_t)(id[i] >> 8);
	id[255] = (uint16_t)((uint8_t)-sum << 8 | 0xA5);
}

void ata_identify_fill(struct ata_device *dev, uint16_t id[256])
{
	const struct disk *d = dev->disk;
	uint64_t sectors = d->sectors;
	uint64_t lba28 = sectors > 0x0FFFFFFF ? 0x0FFFFFFF : sectors;
	uint64_t chs = (uint64_t)d->cylinders * d->heads * d->sectors_per_track;

	memset(id, 0, 512);
	id[0] = 0x0040; /* fixed, not removable */
	id[1] = d->cylinders;
	id[3] = d->heads;
	id[6] = d->sectors_per_track;
	ata_id_string(&id[10], d->serial, 10);
	ata_id_string(&id[23], d->firmware, 4);
	ata_id_string(&id[27], d->model, 20);
	id[47] = 0x8000 | ATA_MULTIPLE_MAX;
	id[49] = (1 << 11) | (1 << 9) | (1 << 8); /* IORDY, LBA, DMA */
	id[50] = 0x4000;
	id[51] = 0x0200;
	id[53] = 0x0007; /* words 54-58, 64-70 and 88 are valid */
	id[54] = d->cylinders;
	id[55] = d->heads;
	id[56] = d->sectors_per_track;
	id[57] = (uint16_t)chs;
	id[58] = (uint16_t)(chs >> 16);
	id[59] = dev->multiple ? 0x100 | dev->multiple : 0;
	id[60] = (uint16_t)lba28;
	id[61] = (uint16_t)(lba28 >> 16);
	ata_id_modes(dev, id);
	if (dev->ncq)
		id[75] = 31; /* queue depth 32 */
	if (dev->sata) {
		id[76] = (1 << 1) | (1 << 2) | (dev->ncq ? 1 << 8 : 0); /* 1.5 and 3.0 Gb/s */
		/* SEND/RECEIVE FPDMA QUEUED: what they can do is in log 13h (ata_log.c). */
		id[77] = dev->ncq ? 1 << 6 : 0;
		id[78] = 0;
		id[79] = 0;
	}
	/* Major version: ATA/ATAPI-5 .. ACS-2 (>= 7, which Linux wants before it trusts word 169).
	 */
	id[80] = 0x03F0;
	id[81] = 0;
	id[82] = (1 << 5) | (1 << 6);				/* write cache, look-ahead */
	id[83] = (1 << 14) | (1 << 13) | (1 << 12) | (1 << 10); /* FLUSH EXT, FLUSH, LBA48 */
	/* WRITE DMA/MULTIPLE FUA EXT (bit 6) and READ LOG EXT (GPL, bit 5); supported and enabled.
	 */
	id[84] = (1 << 14) | (1 << 6) | (1 << 5);
	id[85] = (1 << 6) | (dev->write_cache ? 1 << 5 : 0);
	id[86] = (1 << 13) | (1 << 12) | (1 << 10);
	id[87] = (1 << 14) | (1 << 6) | (1 << 5);
	id[93] = dev->sata ? 0 : 0x6001; /* PATA: device 0 passed diagnostics, cable detect */
	id[100] = (uint16_t)sectors;
	id[101] = (uint16_t)(sectors >> 16);
	id[102] = (uint16_t)(sectors >> 32);
	id[103] = (uint16_t)(sectors >> 48);
	id[106] = 0x4000; /* 512-byte logical and physical sectors */
	/* TRIM only where the guest may write: on a read-only disk it would abort anyway. */
	if (!d->read_only) {
		id[105] = ATA_DSM_MAX_BLOCKS; /* blocks of ranges per DSM command */
		id[169] = 1;
	}
	id[217] = 1; /* non-rotating: Linux then treats the disk as an SSD */
	if (dev->sata)
		id[222] = 0x1000 | 0x3F; /* SATA, revisions 1.0a .. 3.1 */
	ata_id_checksum(id);
}

void ata_identify_packet_fill(struct ata_device *dev, uint16_t id[256])
{
	const struct disk *d = dev->disk;

	memset(id, 0, 512);
	/* ATAPI, CD-ROM type (5), removable, DRQ within 50 us, 12-byte packets. */
	id[0] = (2 << 14) | (5 << 8) | (1 << 7) | (2 << 5);
	ata_id_string(&id[10], d->serial, 10);
	ata_id_string(&id[23], d->firmware, 4);
	ata_id_string(&id[27], d->model, 20);
	id[49] = (1 << 11) | (1 << 9) | (1 << 8); /* IORDY, LBA, DMA */
	id[53] = 0x0007;
	ata_id_modes(dev, id);
	id[71] = 30; /* typical release times (ns) */
	id[72] = 30;
	if (dev->sata)
		id[76] = (1 << 1) | (1 << 2);
	id[80] = 0x01F0;
	id[82] = (1 << 4) | (1 << 9); /* PACKET, DEVICE RESET */
	id[83] = 1 << 14;
	id[84] = 1 << 14;
	id[85] = (1 << 4) | (1 << 9);
	id[86] = 0;
	id[87] = 1 << 14;
	if (dev->sata)
		id[222] = 0x1000 | 0x3F;
	ata_id_checksum(id);
}
