/* Tests of the transport-independent ATA layer (devices/ata/) through a fake transport: IDENTIFY,
 * PIO and DMA reads and writes (28- and 48-bit), flush, FUA, TRIM, READ LOG EXT, SET
 * FEATURES/MULTIPLE, and the error paths (range, zero/oversized counts, short DMA tables,
 * read-only disks, reset during DMA). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/device/ata_fake.h"

#define DISK_SIZE (4 * 1024 * 1024)

struct ctx {
	struct fake f;
	struct disk *disk;
	struct ata_device dev;
};

static struct ctx *ctx_new(const char *arg)
{
	struct ctx *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	c->disk = test_disk_open(arg, DISK_MEDIA_HDD);
	assert_non_null(c->disk);
	c->f.mem_size = 8 * 1024 * 1024;
	c->f.mem = calloc(1, c->f.mem_size);
	assert_non_null(c->f.mem);
	c->dev.ops = &fake_ops;
	c->dev.opaque = &c->f;
	assert_int_equal(ata_device_init(&c->dev, c->disk), 0);
	return c;
}

static void ctx_free(struct ctx *c)
{
	fake_drain(c->disk);
	ata_device_cleanup(&c->dev);
	disk_close(c->disk);
	free(c->f.mem);
	free(c);
}

static int setup(void **state)
{
	(void)state;
	if (test_tmpdir_setup("test-ata") < 0)
		return -1;
	if (fake_make_raw(test_path("disk.raw"), DISK_SIZE, true) < 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return test_tmpdir_teardown(NULL);
}

/* Fresh copy of the patterned image for each test. */
static struct ctx *ctx_pattern(const char *opts)
{
	char cmd[1024], arg[600];
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", test_path("disk.raw"), test_path("t.raw"));
	assert_int_equal(system(cmd), 0);
	snprintf(arg, sizeof(arg), "%s%s", test_path("t.raw"), opts);
	return ctx_new(arg);
}

static void read_identify(struct ctx *c, uint16_t id[256])
{
	uint8_t b[512];
	c->dev.tf.command = 0;
	ata_command(&c->dev, 0xEC);
	assert_int_equal(c->dev.phase, ATA_PHASE_PIO_IN);
	assert_true(c->dev.tf.status & ATA_STAT_DRQ);
	assert_int_equal(ata_pio_read(&c->dev, b, sizeof(b)), 512);
	for (int i = 0; i < 256; i++)
		id[i] = (uint16_t)(b[2 * i] | b[2 * i + 1] << 8);
}

static void test_identify(void **state)
{
	(void)state;
	struct ctx *c = ctx_pattern("");
	uint16_t id[256];
	read_identify(c, id);
	assert_int_equal(c->f.irqs, 1);
	assert_int_equal(c->dev.phase, ATA_PHASE_IDLE);
	assert_int_equal(c->dev.tf.status, ATA_STAT_DRDY | ATA_STAT_DSC);
	uint32_t lba28 = id[60] | (uint32_t)id[61] << 16;
	uint64_t lba48 = id[100] | (uint64_t)id[101] << 16 | (uint64_t)id[102] << 32;
	assert_int_equal(lba28, DISK_SIZE / 512);
	assert_int_equal(lba48, DISK_SIZE / 512);
	assert_true(id[49] & (1 << 9));	 /* LBA */
	assert_true(id[83] & (1 << 10)); /* LBA48 */
	assert_true(id[83] & (1 << 13)); /* FLUSH CACHE EXT */
	assert_true(id[169] & 1);	 /* TRIM */
	assert_true(id[80] & 0x80);	 /* major version >= 7 */
	assert_true(id[85] & (1 << 5));	 /* write cache on */
	assert_int_equal(id[75], 0);	 /* no NCQ on this transport */
	/* Model string, byte-swapped words. */
	char model[41];
	for (int i = 0; i < 20; i++) {
		model[2 * i] = (char)(id[27 + i] >> 8);
		model[2 * i + 1] = (char)id[27 + i];
	}
	model[40] = 0;
	assert_memory_equal(model, "MINIVMM HARDDISK    ", 20);
	uint8_t sum = 0;
	for (int i = 0; i < 256; i++)
		sum += (uint8_t)(id[i] + (id[i] >> 8));
	assert_int_equal(sum, 0);
	assert_int_equal(id[255] & 0xFF, 0xA5);

	/* NCQ and SATA words for an AHCI-style transport. */
	c->dev.sata = c->dev.ncq = true;
	read_identify(c, id);
	assert_int_equal(id[75], 31);
	assert_true(id[76] & (1 << 8));
	/* IDENTIFY PACKET DEVICE is for ATAPI only. */
	ata_command(&c->dev, 0xA1);
	assert_true(c->dev.tf.status & ATA_STAT_ERR);
	assert_int_equal(c->dev.tf.error, ATA_ERR_ABRT);
	ctx_free(c);
}

/* PIO read of `count` sectors at `lba` into out; returns the ATA status at the end. */
static uint8_t pio_read(struct ctx *c, uint8_t cmd, uint64_t lba, uint32_t count, bool lba48,
			uint8_t *out, size_t chunk)
{
	fake_tf(&c->dev, lba, count, lba48);
	ata_command(&c->dev, cmd);
	size_t total = (size_t)(count ? count : lba48 ? 65536 : 256) * 512, got = 0;
	while (got < total) {
		fake_drain(c->disk);
		if (c->dev.phase != ATA_PHASE_PIO_IN)
			break;
		size_t n = ata_pio_read(&c->dev, out + got, chunk);
		assert_true(n > 0);
		got += n;
	}
	fake_drain(c->disk);
	return c->dev.tf.status;
}

static uint8_t pio_write(struct ctx *c, uint8_t cmd, uint64_t lba, uint32_t count, bool lba48,
			 const uint8_t *in, size_t chunk)
{
	fake_tf(&c->dev, lba, count, lba48);
	ata_command(&c->dev, cmd);
	size_t total = (size_t)count * 512, put = 0;
	while (put < total) {
		fake_drain(c->disk);
		if (c->dev.phase != ATA_PHASE_PIO_OUT)
			break;
		size_t n = ata_pio_write(&c->dev, in + put, chunk);
		assert_true(n > 0);
		put += n;
	}
	fake_drain(c->disk);
	return c->dev.tf.status;
}

static void test_pio_rw(void **state)
{
	(void)state;
	struct ctx *c = ctx_pattern("");
	uint8_t buf[8192], data[8192];

	/* READ SECTORS: 3 sectors at 5, read 2 bytes at a time (the IDE data port). */
	assert_int_equal(pio_read(c, 0x20, 5, 3, false, buf, 2), ATA_STAT_DRDY | ATA_STAT_DSC);
	for (int i = 0; i < 3 * 512; i++)
		assert_int_equal(buf[i], fake_pattern(5 * 512 + i));
	assert_int_equal(c->f.irqs, 3); /* one per DRQ block, none at the end */

	/* WRITE SECTORS then READ SECTORS EXT: 48-bit decoding and data round trip. */
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 13 + 1);
	c->f.irqs = 0;
	assert_int_equal(pio_write(c, 0x30, 100, 4, false, data, 4), ATA_STAT_DRDY | ATA_STAT_DSC);
	assert_int_equal(c->f.irqs, 4); /* blocks 2..4 asked for, and the end */
	memset(buf, 0, sizeof(buf));
	assert_int_equal(pio_read(c, 0x24, 100, 4, true, buf, 512), ATA_STAT_DRDY | ATA_STAT_DSC);
	assert_memory_equal(buf, data, 4 * 512);
	assert_int_equal(block_pread(c->disk->bs, 100 * 512, buf, 2048), 0);
	assert_memory_equal(buf, data, 2048);

	/* READ/WRITE MULTIPLE: refused before SET MULTIPLE MODE, then 4 sectors per block. */
	fake_tf(&c->dev, 0, 8, false);
	ata_command(&c->dev, 0xC4);
	assert_int_equal(c->dev.tf.error, ATA_ERR_ABRT);
	c->dev.tf.count = 3; /* not a power of two */
	ata_command(&c->dev, 0xC6);
	assert_int_equal(c->dev.tf.error, ATA_ERR_ABRT);
	c->dev.tf.count = 32; /* more than IDENTIFY word 47 offers */
	ata_command(&c->dev, 0xC6);
	assert_int_equal(c->dev.tf.error, ATA_ERR_ABRT);
	c->dev.tf.count = 4;
	ata_command(&c->dev, 0xC6);
	assert_int_equal(c->dev.tf.status, ATA_STAT_DRDY | ATA_STAT_DSC);
	c->f.irqs = 0;
	assert_int_equal(pio_write(c, 0x39, 200, 16, true, data, 64), ATA_STAT_DRDY | ATA_STAT_DSC);
	assert_int_equal(c->f.irqs, 4);
	c->f.irqs = 0;
	assert_int_equal(pio_read(c, 0xC4, 200, 16, false, buf, 2048),
			 ATA_STAT_DRDY | ATA_STAT_DSC);
	assert_int_equal(c->f.irqs, 4);
	assert_memory_equal(buf, data, 8192);
	ctx_free(c);
}

static void test_lba48_high(void **state)
{
	(void)state;
	/* A sparse 200 GiB disk: sectors past 2^28 need the 48-bit commands. */
	assert_int_equal(fake_make_raw(test_path("big.raw"), 200ULL << 30, false), 0);
	struct ctx *c = ctx_new(test_path("big.raw"));
	uint8_t data[1024], buf[1024];
	uint64_t lba = 0x12345678ULL; /* ~145 GiB: above 2^28 sectors */
	uint16_t id[256];

	read_identify(c, id);
	assert_int_equal(id[60] | id[61] << 16, 0x0FFFFFFF); /* capped for LBA28 */
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i ^ 0x5A);
	assert_int_equal(pio_write(c, 0x34, lba, 2, true, data, 512), ATA_STAT_DRDY | ATA_STAT_DSC);
	assert_int_equal(block_pread(c->disk->bs, lba * 512, buf, sizeof(buf)), 0);
	assert_memory_equal(buf, data, sizeof(buf));

	/* READ NATIVE MAX EXT returns the last sector; the 28-bit form is capped. */
	ata_command(&c->dev, 0x27);
	uint64_t max = (uint64_t)c->dev.tf.lba_high_exp << 40 |
		       (uint64_t)c->dev.tf.lba_mid_exp << 32 |
		       (uint64_t)c->dev.tf.lba_low_exp << 24 | (uint64_t)c->dev.tf.lba_high << 16 |
		       (uint64_t)c->dev.tf.lba_mid << 8 | c->dev.tf.lba_low;
	assert_int_equal(max, (200ULL << 30) / 512 - 1);
	ata_command(&c->dev, 0xF8);
	assert_int_equal(c->dev.tf.device & 0x0F, 0x0F);
	assert_int_equal(c->dev.tf.lba_high, 0xFF);
	ctx_free(c);
}

static void test_range_errors(void **state)
{
	(void)state;
	struct ctx *c = ctx_pattern("");
	uint64_t sectors = DISK_SIZE / 512;
	uint8_t buf[512];

	/* Starting past the end, spanning the end, and the count-0 forms (256 / 65536 sectors). */
	const struct {
		uint8_t cmd;
		uint64_t lba;
		uint32_t count;
		bool lba48;
	} bad[] = {
	    {0x20, sectors, 1, false},	     {0x24, sectors - 1, 2, true},
	    {0xC8, sectors - 255, 0, false}, {0x25, sectors - 65535, 0, true},
	    {0x30, sectors, 1, false},	     {0x35, (1ULL << 47), 1, true},
	    {0x40, sectors - 1, 2, false},   {0x42, sectors, 1, true},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fake_tf(&c->dev, bad[i].lba, bad[i].count, bad[i].lba48);
		ata_command(&c->dev, bad[i].cmd);
		fake_drain(c->disk);
		assert_int_equal(c->dev.phase, ATA_PHASE_IDLE);
		assert_true(c->dev.tf.status & ATA_STAT_ERR);
		assert_true(c->dev.tf.error & ATA_ERR_IDNF);
	}
	/* The last sector itself is fine, and count 0 means 256 in LBA28. */
	assert_int_equal(pio_read(c, 0x20, sectors - 1, 1, false, buf, 512),
			 ATA_STAT_DRDY | ATA_STAT_DSC);
	fake_tf(&c->dev, 0, 0, false);
	ata_command(&c->dev, 0x40); /* READ VERIFY of 256 sectors */
	assert_int_equal(c->dev.tf.status, ATA_STAT_DRDY | ATA_STAT_DSC);
	/* Unknown, unsupported and packet commands abort. */
	const uint8_t aborts[] = {0xFF, 0x3F, 0xA0, 0x08, 0xB0, 0x92};
	for (size_t i = 0; i < sizeof(aborts); i++) {
		ata_command(&c->dev, aborts[i]);
		assert_int_equal(c->dev.tf.status, ATA_STAT_DRDY | ATA_STAT_ERR);
		assert_int_equal(c->dev.tf.error, ATA_ERR_ABRT);
	}
	/* A command while DRQ is pending is ignored. */
	fake_tf(&c->dev, 0, 1, false);
	ata_command(&c->dev, 0x30);
	assert_int_equal(c->dev.phase, ATA_PHASE_PIO_OUT);
	ata_command(&c->dev, 0xEC);
	assert_int_equal(c->dev.phase, ATA_PHASE_PIO_OUT);
	assert_int_equal(c->dev.tf.command, 0x30);
	ctx_free(c);
}

/* DMA through a scatter-gather list with uneven segments. */
static void set_sg(struct ctx *c, const size_t *lens, int n, size_t base)
{
	c->f.nsg = n;
	for (int i = 0; i < n; i++) {
		c->f.sg[i].addr = base;
		c->f.sg[i].len = lens[i];
		base += lens[i] + 4096; /* gaps between segments */
	}
}

static void test_dma_rw(void **state)
{
	(void)state;
	struct ctx *c = ctx_pattern("");
	const size_t lens[] = {1000, 24, 3072, 4096 + 512, 6}; /* 8 KiB + 6 spare */
	set_sg(c, lens, 5, 0x1000);

	/* READ DMA: waits for the engine, then fills the segments in order. */
	fake_tf(&c->dev, 10, 16, false);
	ata_command(&c->dev, 0xC8);
	assert_int_equal(c->dev.phase, ATA_PHASE_DMA_WAIT);
	assert_int_equal(c->f.dma_ready, 1);
	assert_int_equal(c->f.irqs, 0);
	ata_dma_go(&c->dev);
	fake_drain(c->disk);
	assert_int_equal(c->dev.tf.status, ATA_STAT_DRDY | ATA_STAT_DSC);
	assert_int_equal(c->f.irqs, 1);
	assert_int_equal(c->f.dma_ends, 1);
	assert_int_equal(c->f.dma_end_ret, 0);
	uint64_t pos = 10 * 512;
	for (int s = 0; s < 5 && pos < 26 * 512; s++)
		for (size_t i = 0; i < lens[s] && pos < 26 * 512; i++, pos++)
			assert_int_equal(c->f.mem[c->f.sg[s].addr + i], fake_pattern(pos));

	/* WRITE DMA EXT from the same list, read back through the block layer. */
	for (int s = 0; s < 5; s++)
		for (size_t i = 0; i < lens[s]; i++)
			c->f.mem[c->f.sg[s].addr + i] = (uint8_t)(s * 31 + i);
	c->f.auto_go = true;
	fake_tf(&c->dev, 1000, 16, true);
	ata_command(&c->dev, 0x35);
	fake_drain(c->disk);
	assert_int_equal(c->dev.tf.status, ATA_STAT_DRDY | ATA_STAT_DSC);
	uint8_t buf[8192];
	assert_int_equal(block_pread(c->disk->bs, 1000 * 512, buf, sizeof(buf)), 0);
	pos = 0;
	for (int s = 0; s < 5 && pos < 8192; s++)
		for (size_t i = 0; i < lens[s] && pos < 8192; i++, pos++)
			assert_int_equal(buf[pos], (uint8_t)(s * 31 + i));

	/* A table shorter than the transfer: ABRT, and the transport hears -ENOSPC. */
	const size_t small[] = {512, 512};
	set_sg(c, small, 2, 0x1000);
	c->f.dma_ends = 0;
	fake_tf(&c->dev, 0, 4, false);
	ata_command(&c->dev, 0xC8);
	fake_drain(c->disk);
	assert_int_equal(c->dev.tf.status, ATA_STAT_DRDY | ATA_STAT_ERR);
	assert_int_equal(c->dev.tf.error, ATA_ERR_ABRT);
	assert_int_equal(c->f.dma_ends, 1);
	assert_int_equal(c->f.dma_end_ret, -ENOSPC);
	/* An empty table and a segment outside "guest memory". */
	c->f.nsg = 0;
	ata_command(&c->dev, 0xCA);
	fake_drain(c->disk);
	assert_int_equal(c->f.dma_end_ret, -ENOSPC);
	c->f.nsg = 1;
	c->f.sg[0] = (struct fake_sg){c->f.mem_size - 100, 2048};
	ata_command(&c->dev, 0xC8);
	fake_drain(c->disk);
	assert_int_equal(c->f.dma_end_ret, -EFAULT);
	assert_int_equal(c->dev.tf.error, ATA_ERR_ABRT);
	ctx_free(c);
}

/* A large transfer crosses several block requests (ATA_DMA_CHUNK and ATA_DMA_IOV_MAX). */
static void test_dma_large(void **state)
{
	(void)state;
	struct ctx *c = ctx_pattern("");
	/* 65536 sectors would pass the disk's end; 0x2000 sectors = 4 MiB in 100 segments. */
	c->f.nsg = 32;
	for (int i = 0; i < 32; i++)
		c->f.sg[i] = (struct fake_sg){(size_t)i * 131072, 131072};
	c->f.auto_go = true;
	fake_tf(&c->dev, 0, 0x2000, true);
	ata_command(&c->dev, 0x25);
	fake_drain(c->disk);
	assert_int_equal(c->dev.tf.status, ATA_STAT_DRDY | ATA_STAT_DSC);
	for (size_t i = 0; i < DISK_SIZE; i += 4093)
		assert_int_equal(c->f.mem[i], fake_pattern(i));
	ctx_free(c);
}

static void test_reset_during_dma(void **state)
{
	(void)state;
	struct ctx *c = ctx_pattern("");
	c->f.nsg = 1;
	c->f.sg[0] = (struct fake_sg){0, 65536};
	fake_tf(&c->dev, 0, 128, false);
	ata_command(&c->dev, 0xCA); /* WRITE DMA */
	ata_dma_go(&c->dev);
	assert_int_equal(c->dev.phase, ATA_PHASE_DMA);
	/* Reset with the request in flight, then a new command before it completes. */
	ata_device_reset(&c->dev);
	assert_int_equal(c->dev.phase, ATA_PHASE_IDLE);
	assert_int_equal(c->dev.tf.lba_mid, 0);
	assert_int_equal(c->dev.tf.count, 1);
	int irqs = c->f.irqs, ends = c->f.dma_ends;
	uint16_t id[256];
	read_identify(c, id);
	fake_drain(c->disk); /* the stale completion runs here and must change nothing */
	assert_int_equal(c->f.irqs, irqs + 1);
	assert_int_equal(c->f.dma_ends, ends);
	assert_int_equal(c->dev.phase, ATA_PHASE_IDLE);
	assert_int_equal(c->dev.tf.status, ATA_STAT_DRDY | ATA_STAT_DSC);
	/* A reset while waiting for the engine: the later go is ignored. */
	fake_tf(&c->dev, 0, 1, false);
	ata_command(&c->dev, 0xC8);
	ata_device_reset(&c->dev);
	ata_dma_go(&c->dev);
	fake_drain(c->disk);
	assert_int_equal(c->dev.phase, ATA_PHASE_IDLE);
	ctx_free(c);
}

static uint64_t be64_at(const char *path, uint64_t off)
{
	uint8_t b[8];
	uint64_t v = 0;
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, (long)off, SEEK_SET), 0);
	assert_int_equal(fread(b, 1, 8, f), 8);
	fclose(f);
	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return v;
}

/* The medium fails under a transfer (a qcow2 cluster whose L2 entry is unaligned): PIO and DMA
 * reads end in UNC, a write in ABRT, the transport hears the error, and the device goes on. */
static void test_medium_errors(void **state)
{
	(void)state;
	const char *img = test_path("bad.qcow2");
	assert_int_equal(
	    test_run("qemu-img create -q -f qcow2 '%s' 1M && qemu-io -c 'write -P 0x55 0 "
		     "128k' '%s' >/dev/null",
		     img, img),
	    0);
	uint64_t l2 = be64_at(img, be64_at(img, 40)) & 0x00fffffffffffe00ull;
	uint64_t e = be64_at(img, l2) | 0x200; /* cluster 0 only; cluster 1 stays readable */
	uint8_t be[8];
	for (int i = 0; i < 8; i++)
		be[i] = (uint8_t)(e >> (56 - 8 * i));
	test_file_poke(img, l2, be, 8);

	struct ctx *c = ctx_new(img);
	uint8_t buf[512];
	assert_int_equal(pio_read(c, 0x20, 0, 1, false, buf, 512), ATA_STAT_DRDY | ATA_STAT_ERR);
	assert_int_equal(c->dev.tf.error, ATA_ERR_UNC);
	c->f.nsg = 1;
	c->f.sg[0] = (struct fake_sg){0, 4096};
	c->f.auto_go = true;
	c->f.dma_ends = 0;
	fake_tf(&c->dev, 1, 2, false);
	ata_command(&c->dev, 0xC8); /* READ DMA */
	fake_drain(c->disk);
	assert_int_equal(c->dev.tf.status, ATA_STAT_DRDY | ATA_STAT_ERR);
	assert_int_equal(c->dev.tf.error, ATA_ERR_UNC);
	assert_int_equal(c->f.dma_ends, 1);
	assert_int_equal(c->f.dma_end_ret, -EIO);
	memset(buf, 0xAA, sizeof(buf));
	assert_int_equal(pio_write(c, 0x30, 3, 1, false, buf, 512), ATA_STAT_DRDY | ATA_STAT_ERR);
	assert_int_equal(c->dev.tf.error, ATA_ERR_ABRT);
	/* The next cluster still reads, by PIO and by DMA. */
	assert_int_equal(pio_read(c, 0x20, 128, 1, false, buf, 512), ATA_STAT_DRDY | ATA_STAT_DSC);
	assert_int_equal(buf[0], 0x55);
	fake_tf(&c->dev, 129, 1, false);
	ata_command(&c->dev, 0xC8);
	fake_drain(c->disk);
	assert_int_equal(c->dev.tf.status, ATA_STAT_DRDY | ATA_STAT_DSC);
	assert_int_equal(c->f.mem[0], 0x55);
	ctx_free(c);
}

static void test_readonly(void **state)
{
	(void)state;
	struct ctx *c = ctx_pattern(",readonly");
	uint8_t data[512] = {1, 2, 3};
	uint16_t id[256];
	c->f.nsg = 1;
	c->f.sg[0] = (struct fake_sg){0, 4096};
	c->f.auto_go = true;
	const uint8_t writes[] = {0x30, 0x34, 0xCA, 0x35, 0xC5, 0x39};
	c->dev.multiple = 1;
	for (size_t i = 0; i < sizeof(writes); i++) {
		fake_tf(&c->dev, 0, 1, writes[i] & 4);
		ata_command(&c->dev, writes[i]);
		fake_drain(c->disk);
		assert_int_equal(c->dev.tf.status, ATA_STAT_DRDY | ATA_STAT_ERR);
		assert_int_equal(c->dev.tf.error, ATA_ERR_ABRT);
		assert_int_equal(ata_pio_write(&c->dev, data, sizeof(data)), 0);
	}
	/* TRIM is not offered and aborts; reads and flushes still work. */
	read_identify(c, id);
	assert_int_equal(id[169] & 1, 0);
	c->dev.tf.feature = 1;
	fake_tf(&c->dev, 0, 1, true);
	ata_command(&c->dev, 0x06);
	assert_int_equal(c->dev.tf.error, ATA_ERR_ABRT);
	ata_command(&c->dev, 0xE7);
	fake_drain(c->disk);
	assert_int_equal(c->dev.tf.status, ATA_STAT_DRDY | ATA_STAT_DSC);
	uint8_t buf[512];
	assert_int_equal(pio_read(c, 0x20, 0, 1, false, buf, 512), ATA_STAT_DRDY | ATA_STAT_DSC);
	assert_int_equal(buf[1], fake_pattern(1));
	ctx_free(c);
}

static void test_flush_trim_features(void **state)
{
	(void)state;
	struct ctx *c = ctx_pattern("");
	uint8_t buf[4096];

	ata_command(&c->dev, 0xEA); /* FLUSH CACHE EXT */
	assert_int_equal(c->dev.tf.status, ATA_STAT_BSY);
	fake_drain(c->disk);
	assert_int_equal(c->dev.tf.status, ATA_STAT_DRDY | ATA_STAT_DSC);
	assert_int_equal(c->f.irqs, 1);

	/* TRIM two ranges (and an empty entry) through DMA; they read back as zeroes. */
	memset(c->f.mem, 0, 512);
	uint64_t e1 = 8ULL | (8ULL << 48), e2 = 0, e3 = 4096ULL | (16ULL << 48);
	memcpy(c->f.mem, &e1, 8);
	memcpy(c->f.mem + 8, &e2, 8);
	memcpy(c->f.mem + 16, &e3, 8);
	c->f.nsg = 1;
	c->f.sg[0] = (struct fake_sg){0, 512};
	c->f.auto_go = true;
	fake_tf(&c->dev, 0, 1, true);
	c->dev.tf.feature = 1;
	ata_command(&c->dev, 0x06);
	fake_drain(c->disk);
	assert_int_equal(c->dev.tf.status, ATA_STAT_DRDY | ATA_STAT_DSC);
	assert_int_equal(block_pread(c->disk->bs, 8 * 512, buf, 4096), 0);
	for (int i = 0; i < 4096; i++)
		assert_int_equal(buf[i], 0);
	assert_int_equal(block_pread(c->disk->bs, 16 * 512, buf, 512), 0);
	assert_int_equal(buf[1], fake_pattern(16 * 512 + 1)); /* untouched */

	/* A range past the end: IDNF and nothing discarded. */
	e1 = 100ULL | (8ULL << 48);
	e2 = (DISK_SIZE / 512 - 4) | (8ULL << 48);
	memcpy(c->f.mem, &e1, 8);
	memcpy(c->f.mem + 8, &e2, 8);
	fake_tf(&c->dev, 0, 1, true);
	c->dev.tf.feature = 1;
	ata_command(&c->dev, 0x06);
	fake_drain(c->disk);
	assert_true(c->dev.tf.error & ATA_ERR_IDNF);
	assert_int_equal(block_pread(c->disk->bs, 100 * 512, buf, 512), 0);
	assert_int_equal(buf[3], fake_pattern(100 * 512 + 3));
	/* Oversized and zero block counts (0 is 65536 blocks) abort, as does a non-TRIM DSM. */
	fake_tf(&c->dev, 0, 0, true);
	c->dev.tf.feature = 1;
	ata_command(&c->dev, 0x06);
	assert_int_equal(c->dev.tf.error, ATA_ERR_ABRT);
	fake_tf(&c->dev, 0, 1, true);
	c->dev.tf.feature = 0;
	ata_command(&c->dev, 0x06);
	assert_int_equal(c->dev.tf.error, ATA_ERR_ABRT);

	/* SET FEATURES: transfer modes, write cache off (writes then flush), bad subcommands. */
	c->dev.tf.feature = 0x03;
	c->dev.tf.count = 0x45; /* UDMA 5 */
	ata_command(&c->dev, 0xEF);
	assert_int_equal(c->dev.tf.status, ATA_STAT_DRDY | ATA_STAT_DSC);
	uint16_t id[256];
	read_identify(c, id);
	assert_int_equal(id[88], 0x003F | 0x2000);
	c->dev.tf.feature = 0x03;
	c->dev.tf.count = 0x46; /* UDMA 6: not offered */
	ata_command(&c->dev, 0xEF);
	assert_int_equal(c->dev.tf.error, ATA_ERR_ABRT);
	c->dev.tf.feature = 0x82;
	ata_command(&c->dev, 0xEF);
	read_identify(c, id);
	assert_int_equal(id[85] & (1 << 5), 0);
	c->f.sg[0] = (struct fake_sg){0, 512};
	memset(c->f.mem, 0xAB, 512);
	fake_tf(&c->dev, 7, 1, false);
	ata_command(&c->dev, 0xCA);
	fake_drain(c->disk);
	assert_int_equal(c->dev.tf.status, ATA_STAT_DRDY | ATA_STAT_DSC);
	assert_int_equal(block_pread(c->disk->bs, 7 * 512, buf, 512), 0);
	assert_int_equal(buf[100], 0xAB);
	c->dev.tf.feature = 0x77;
	ata_command(&c->dev, 0xEF);
	assert_int_equal(c->dev.tf.error, ATA_ERR_ABRT);
	/* CHECK POWER MODE: active; EXECUTE DEVICE DIAGNOSTIC: error 01. */
	ata_command(&c->dev, 0xE5);
	assert_int_equal(c->dev.tf.count, 0xFF);
	ata_command(&c->dev, 0x90);
	assert_int_equal(c->dev.tf.error, 0x01);
	assert_int_equal(c->dev.tf.status, ATA_STAT_DRDY | ATA_STAT_DSC);
	ctx_free(c);
}

/* READ LOG EXT: the directory always; the NCQ Send and Receive log only with an NCQ transport. */
static void test_read_log(void **state)
{
	(void)state;
	struct ctx *c = ctx_pattern("");
	uint8_t buf[512];
	memset(buf, 0xEE, sizeof(buf));
	assert_int_equal(pio_read(c, 0x2F, 0x00, 1, true, buf, 512), ATA_STAT_DRDY | ATA_STAT_DSC);
	assert_int_equal(buf[0] | buf[1] << 8, 1); /* GPL version */
	assert_int_equal(buf[0x13 * 2], 0);
	assert_int_equal(buf[511], 0);
	fake_tf(&c->dev, 0x13, 1, true);
	ata_command(&c->dev, 0x2F);
	assert_int_equal(c->dev.tf.error, ATA_ERR_ABRT);
	c->dev.ncq = true;
	memset(buf, 0xEE, sizeof(buf));
	assert_int_equal(pio_read(c, 0x2F, 0x00, 1, true, buf, 512), ATA_STAT_DRDY | ATA_STAT_DSC);
	assert_int_equal(buf[0x13 * 2], 1);
	assert_int_equal(pio_read(c, 0x2F, 0x13, 1, true, buf, 512), ATA_STAT_DRDY | ATA_STAT_DSC);
	assert_int_equal(buf[0], 1);
	assert_int_equal(buf[4], 1);
	/* Zero pages, or more pages than the log has, abort. */
	fake_tf(&c->dev, 0x13, 0, true);
	ata_command(&c->dev, 0x2F);
	assert_int_equal(c->dev.tf.error, ATA_ERR_ABRT);
	fake_tf(&c->dev, 0x00, 2, true);
	ata_command(&c->dev, 0x2F);
	assert_int_equal(c->dev.tf.error, ATA_ERR_ABRT);
	ctx_free(c);
}

/* WRITE DMA FUA EXT ends only after a flush; WRITE DMA EXT does not flush; both write. */
static void test_write_fua(void **state)
{
	(void)state;
	struct ctx *c = ctx_pattern("");
	uint8_t buf[512];
	uint16_t id[256];
	read_identify(c, id);
	assert_true(id[84] & (1 << 6));
	assert_true(id[87] & (1 << 6));
	c->f.nsg = 1;
	c->f.sg[0] = (struct fake_sg){0, 512};
	c->f.auto_go = true;
	memset(c->f.mem, 0x3C, 512);
	unsigned before = block_aio_flush_count(c->disk->aio);
	fake_tf(&c->dev, 9, 1, true);
	ata_command(&c->dev, 0x3D);
	while (block_aio_flush_count(c->disk->aio) == before && block_aio_pending(c->disk->aio))
		block_aio_poll(c->disk->aio, 1000);
	assert_int_equal(block_aio_flush_count(c->disk->aio), before + 1);
	assert_int_equal(c->dev.tf.status, ATA_STAT_BSY); /* still waiting for the flush */
	fake_drain(c->disk);
	assert_int_equal(c->dev.tf.status, ATA_STAT_DRDY | ATA_STAT_DSC);
	assert_int_equal(block_pread(c->disk->bs, 9 * 512, buf, 512), 0);
	assert_int_equal(buf[7], 0x3C);
	memset(c->f.mem, 0x4D, 512);
	fake_tf(&c->dev, 10, 1, true);
	ata_command(&c->dev, 0x35);
	fake_drain(c->disk);
	assert_int_equal(c->dev.tf.status, ATA_STAT_DRDY | ATA_STAT_DSC);
	assert_int_equal(block_aio_flush_count(c->disk->aio), before + 1);
	assert_int_equal(block_pread(c->disk->bs, 10 * 512, buf, 512), 0);
	assert_int_equal(buf[7], 0x4D);
	ctx_free(c);
}

static void test_registers(void **state)
{
	(void)state;
	struct ctx *c = ctx_pattern("");
	/* Two writes per register: the first is the HOB byte, read back with HOB set. */
	ata_reg_write(&c->dev, ATA_REG_COUNT, 0x12);
	ata_reg_write(&c->dev, ATA_REG_COUNT, 0x34);
	ata_reg_write(&c->dev, ATA_REG_LBA_LOW, 0x56);
	ata_reg_write(&c->dev, ATA_REG_LBA_LOW, 0x78);
	assert_int_equal(ata_reg_read(&c->dev, ATA_REG_COUNT), 0x34);
	c->dev.tf.control |= ATA_CTL_HOB;
	assert_int_equal(ata_reg_read(&c->dev, ATA_REG_COUNT), 0x12);
	assert_int_equal(ata_reg_read(&c->dev, ATA_REG_LBA_LOW), 0x56);
	ata_reg_write(&c->dev, ATA_REG_LBA_MID, 0); /* any write clears HOB */
	assert_int_equal(ata_reg_read(&c->dev, ATA_REG_LBA_LOW), 0x78);
	/* Every paired register, each with its own bytes: FEATURE reads back as ERROR, so its pair
	 * is checked in the task file; the LBA48 ones through HOB. */
	for (int r = ATA_REG_FEATURE; r <= ATA_REG_LBA_HIGH; r++) {
		ata_reg_write(&c->dev, (enum ata_reg)r, (uint8_t)(0xa0 + r));
		ata_reg_write(&c->dev, (enum ata_reg)r, (uint8_t)(0xb0 + r));
	}
	assert_int_equal(c->dev.tf.feature_exp, 0xa1);
	assert_int_equal(c->dev.tf.feature, 0xb1);
	c->dev.tf.error = 0x04;
	assert_int_equal(ata_reg_read(&c->dev, ATA_REG_FEATURE), 0x04);
	for (int r = ATA_REG_COUNT; r <= ATA_REG_LBA_HIGH; r++) {
		c->dev.tf.control &= ~ATA_CTL_HOB;
		assert_int_equal(ata_reg_read(&c->dev, (enum ata_reg)r), 0xb0 + r);
		c->dev.tf.control |= ATA_CTL_HOB;
		assert_int_equal(ata_reg_read(&c->dev, (enum ata_reg)r), 0xa0 + r);
	}
	assert_int_equal(c->dev.tf.lba_high_exp, 0xa5);
	assert_int_equal(c->dev.tf.lba_mid, 0xb4);
	ata_reg_write(&c->dev, ATA_REG_DEVICE, 0xe0); /* not paired; clears HOB too */
	assert_int_equal(ata_reg_read(&c->dev, ATA_REG_DEVICE), 0xe0);
	assert_int_equal(ata_reg_read(&c->dev, ATA_REG_COUNT), 0xb2);
	assert_int_equal(ata_reg_read(&c->dev, ATA_REG_DATA), 0xff);
	/* CHS addressing (device bit 6 clear): C/H/S 1/2/3 = (1*16+2)*63+2. */
	c->dev.tf.device = 0x02;
	c->dev.tf.lba_mid = 1;
	c->dev.tf.lba_high = 0;
	c->dev.tf.lba_low = 3;
	c->dev.tf.count = 1;
	ata_command(&c->dev, 0x20);
	fake_drain(c->disk);
	uint8_t buf[512];
	assert_int_equal(ata_pio_read(&c->dev, buf, 512), 512);
	assert_int_equal(buf[0], fake_pattern(((1 * 16 + 2) * 63 + 2) * 512));
	c->dev.tf.lba_low = 0; /* sector 0 does not exist in CHS */
	ata_command(&c->dev, 0x20);
	assert_true(c->dev.tf.error & ATA_ERR_IDNF);
	ctx_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_identify),	     cmocka_unit_test(test_pio_rw),
	    cmocka_unit_test(test_lba48_high),	     cmocka_unit_test(test_range_errors),
	    cmocka_unit_test(test_dma_rw),	     cmocka_unit_test(test_dma_large),
	    cmocka_unit_test(test_reset_during_dma), cmocka_unit_test(test_medium_errors),
	    cmocka_unit_test(test_readonly),	     cmocka_unit_test(test_flush_trim_features),
	    cmocka_unit_test(test_registers),	     cmocka_unit_test(test_read_log),
	    cmocka_unit_test(test_write_fua),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
