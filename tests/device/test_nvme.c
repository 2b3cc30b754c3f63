/* The NVMe controller without a CPU: a real raw image per namespace, a real PCI bus with faked
 * KVM plumbing, and a host driver written in the test (tests/device/nvme_fixture.h).  Registers
 * and enable, Identify, features, log pages, reads and writes through PRPs and SGLs landing in the
 * image files, Flush, Compare, Write Zeroes, Dataset Management, two namespaces, a read-only
 * namespace, MSI-X and INTx, and resets with requests in flight.  Hostile values:
 * test_nvme_hostile.c.
 */
#include "tests/device/nvme_fixture.h"

static void registers_and_enable(void **state)
{
	(void)state;
	struct nv *t = nv_new(1, NULL, 4);
	uint64_t cap = nv_r(t, NVME_REG_CAP, 8);
	assert_int_equal(cap & 0xFFFF, 1023); /* MQES */
	assert_true(cap >> 16 & 1);	      /* CQR */
	assert_true(cap >> 37 & 1);	      /* NVM command set */
	assert_int_equal(cap >> 32 & 0xF, 0); /* doorbell stride 4 */
	assert_int_equal(nv_r(t, NVME_REG_VS, 4), 0x00010400);
	assert_int_equal(pci_config_read(t->f.bus, t->f.devfn, 0x09, 1), 0x02); /* prog-if */
	assert_int_equal(pci_config_read(t->f.bus, t->f.devfn, 0x0A, 2), 0x0108);
	assert_int_equal(nv_r(t, NVME_REG_CSTS, 4), 0);
	assert_int_equal(nv_enable(t, 16), NVME_CSTS_RDY);
	/* Admin queue registers are frozen while enabled. */
	nv_w(t, NVME_REG_ASQ, 8, 0x5000);
	assert_int_equal(nv_r(t, NVME_REG_ASQ, 8), NV_ASQ);
	nv_disable(t);
	assert_int_equal(nv_r(t, NVME_REG_CSTS, 4), 0);
	/* Shutdown notification: complete once the disks are flushed. */
	assert_int_equal(nv_enable(t, 16), NVME_CSTS_RDY);
	nv_w(t, NVME_REG_CC, 4, NVME_CC_EN | 6u << 16 | 4u << 20 | 1u << 14);
	assert_int_equal(nv_r(t, NVME_REG_CSTS, 4) & NVME_CSTS_SHST_MASK, NVME_CSTS_SHST_DONE);
	nv_disable(t);
	assert_int_equal(nv_r(t, NVME_REG_CSTS, 4), 0);
	nv_free(t);
}

static void identify(void **state)
{
	(void)state;
	const char *opts[] = {"", ",readonly"};
	struct nv *t = nv_new(2, opts, 4);
	nv_start(t);
	uint8_t *b = vf_ram(&t->f, NV_BUF, 4096);
	struct nv_cmd c = {.opc = NVME_ADM_IDENTIFY, .prp1 = NV_BUF, .cdw = {NVME_CNS_CTRL}};
	assert_int_equal(nv_admin(t, &c), 0);
	assert_int_equal(get_le16(b), 0x80EE);
	assert_int_equal(b[77], 7); /* MDTS: 512 KiB */
	assert_int_equal(get_le32(b + 80), 0x00010400);
	assert_int_equal(b[512], 0x66);
	assert_int_equal(b[513], 0x44);
	assert_int_equal(get_le32(b + 516), 2); /* NN */
	assert_int_equal(get_le16(b + 520), 0x0D);
	assert_true(b[525] & 1); /* volatile write cache */
	assert_true(get_le16(b + 256) & 0x100);
	assert_memory_equal(b + 768, "nqn.", 4);
	char sn[21] = {0};
	memcpy(sn, b + 4, 20);
	assert_non_null(strstr(sn, "MVNVME00"));

	c = (struct nv_cmd){.opc = NVME_ADM_IDENTIFY, .nsid = 1, .prp1 = NV_BUF, .cdw = {0}};
	assert_int_equal(nv_admin(t, &c), 0);
	assert_int_equal(get_le64(b), NV_DISK_SIZE / 512);
	assert_int_equal(b[99], 0); /* writable */
	assert_int_equal(get_le32(b + 128) >> 16 & 0xFF, 9);
	assert_memory_equal(b + 104, t->disk[0]->uuid, 16);
	c.nsid = 2;
	assert_int_equal(nv_admin(t, &c), 0);
	assert_int_equal(b[99], 1); /* write protected */
	c.nsid = 3;
	assert_int_equal(nv_admin(t, &c), NVME_SC_INVALID_NS);
	c.nsid = 0;
	assert_int_equal(nv_admin(t, &c), NVME_SC_INVALID_NS);

	c = (struct nv_cmd){
	    .opc = NVME_ADM_IDENTIFY, .prp1 = NV_BUF, .cdw = {NVME_CNS_NS_ACTIVE_LIST}};
	assert_int_equal(nv_admin(t, &c), 0);
	assert_int_equal(get_le32(b), 1);
	assert_int_equal(get_le32(b + 4), 2);
	assert_int_equal(get_le32(b + 8), 0);
	c.nsid = 1; /* ids above 1 */
	assert_int_equal(nv_admin(t, &c), 0);
	assert_int_equal(get_le32(b), 2);
	assert_int_equal(get_le32(b + 4), 0);

	c = (struct nv_cmd){
	    .opc = NVME_ADM_IDENTIFY, .nsid = 2, .prp1 = NV_BUF, .cdw = {NVME_CNS_NS_DESC_LIST}};
	assert_int_equal(nv_admin(t, &c), 0);
	assert_int_equal(b[0], 3);
	assert_int_equal(b[1], 16);
	assert_memory_equal(b + 4, t->disk[1]->uuid, 16);

	c = (struct nv_cmd){.opc = NVME_ADM_IDENTIFY, .prp1 = NV_BUF, .cdw = {0x10}};
	assert_int_equal(nv_admin(t, &c), NVME_SC_INVALID_FIELD);
	/* CNS 6 (what Linux asks): zeroes for the NVM command set, other sets refused. */
	memset(b, 0xAA, 4096);
	c = (struct nv_cmd){.opc = NVME_ADM_IDENTIFY, .prp1 = NV_BUF, .cdw = {NVME_CNS_CS_CTRL, 0}};
	assert_int_equal(nv_admin(t, &c), 0);
	assert_int_equal(b[0] | b[1] | b[4095], 0);
	c.cdw[1] = 2u << 24; /* zoned */
	assert_int_equal(nv_admin(t, &c), NVME_SC_INVALID_FIELD);
	nv_free(t);
}

static void features(void **state)
{
	(void)state;
	struct nv *t = nv_new(1, NULL, 4);
	assert_int_equal(nv_enable(t, 16), NVME_CSTS_RDY);
	/* Number of queues: capped at what the controller has (4 pairs, 0-based 3). */
	struct nv_cmd c = {.opc = NVME_ADM_SET_FEATURES, .cdw = {NVME_FEAT_NUM_QUEUES, 0x00FF00FF}};
	struct nv_cqe e = nv_do(t, 0, &c);
	assert_int_equal(e.status, 0);
	assert_int_equal(e.dw0, 0x00030003);
	c = (struct nv_cmd){.opc = NVME_ADM_SET_FEATURES,
			    .cdw = {NVME_FEAT_NUM_QUEUES, 0x00010000}};
	e = nv_do(t, 0, &c);
	assert_int_equal(e.dw0, 0x00010000);
	c = (struct nv_cmd){.opc = NVME_ADM_GET_FEATURES, .cdw = {NVME_FEAT_NUM_QUEUES}};
	assert_int_equal(nv_do(t, 0, &c).dw0, 0x00010000);
	c = (struct nv_cmd){.opc = NVME_ADM_SET_FEATURES, .cdw = {NVME_FEAT_NUM_QUEUES, 0xFFFF}};
	assert_int_equal(nv_admin(t, &c), NVME_SC_INVALID_FIELD);
	/* Volatile write cache on by default, can be turned off. */
	c = (struct nv_cmd){.opc = NVME_ADM_GET_FEATURES, .cdw = {NVME_FEAT_VOLATILE_WC}};
	assert_int_equal(nv_do(t, 0, &c).dw0, 1);
	c = (struct nv_cmd){.opc = NVME_ADM_SET_FEATURES, .cdw = {NVME_FEAT_VOLATILE_WC, 0}};
	assert_int_equal(nv_admin(t, &c), 0);
	c = (struct nv_cmd){.opc = NVME_ADM_GET_FEATURES, .cdw = {NVME_FEAT_VOLATILE_WC}};
	assert_int_equal(nv_do(t, 0, &c).dw0, 0);
	/* Interrupt coalescing and async event configuration are kept. */
	c = (struct nv_cmd){.opc = NVME_ADM_SET_FEATURES, .cdw = {NVME_FEAT_IRQ_COALESCE, 0x0A05}};
	assert_int_equal(nv_admin(t, &c), 0);
	c = (struct nv_cmd){.opc = NVME_ADM_GET_FEATURES, .cdw = {NVME_FEAT_IRQ_COALESCE}};
	assert_int_equal(nv_do(t, 0, &c).dw0, 0x0A05);
	c = (struct nv_cmd){.opc = NVME_ADM_SET_FEATURES, .cdw = {NVME_FEAT_ASYNC_EVENT, 0x1F}};
	assert_int_equal(nv_admin(t, &c), 0);
	c = (struct nv_cmd){.opc = NVME_ADM_GET_FEATURES, .cdw = {NVME_FEAT_ASYNC_EVENT}};
	assert_int_equal(nv_do(t, 0, &c).dw0, 0x1F);
	/* Supported capabilities; nothing saveable; unknown features. */
	c = (struct nv_cmd){.opc = NVME_ADM_GET_FEATURES, .cdw = {NVME_FEAT_ARBITRATION | 3 << 8}};
	assert_int_equal(nv_do(t, 0, &c).dw0, 4);
	c = (struct nv_cmd){.opc = NVME_ADM_SET_FEATURES,
			    .cdw = {NVME_FEAT_ARBITRATION | 1u << 31, 0}};
	assert_int_equal(nv_admin(t, &c), NVME_SC_FEATURE_NOT_SAVEABLE);
	c = (struct nv_cmd){.opc = NVME_ADM_GET_FEATURES, .cdw = {0x7F}};
	assert_int_equal(nv_admin(t, &c), NVME_SC_INVALID_FIELD);
	c = (struct nv_cmd){.opc = NVME_ADM_SET_FEATURES, .cdw = {NVME_FEAT_POWER_MGMT, 1}};
	assert_int_equal(nv_admin(t, &c), NVME_SC_INVALID_FIELD);
	/* A reset brings the defaults back. */
	nv_disable(t);
	assert_int_equal(nv_enable(t, 16), NVME_CSTS_RDY);
	c = (struct nv_cmd){.opc = NVME_ADM_GET_FEATURES, .cdw = {NVME_FEAT_VOLATILE_WC}};
	assert_int_equal(nv_do(t, 0, &c).dw0, 1);
	nv_free(t);
}

static void log_pages(void **state)
{
	(void)state;
	struct nv *t = nv_new(1, NULL, 2);
	nv_start(t);
	uint8_t *b = vf_ram(&t->f, NV_BUF, 4096);
	/* Some traffic first: the SMART counters follow it. */
	struct nv_cmd c = nv_rw(t, NVME_CMD_WRITE, 1, 0, 8);
	assert_int_equal(nv_do(t, 1, &c).status, 0);
	c = nv_rw(t, NVME_CMD_READ, 1, 0, 16);
	assert_int_equal(nv_do(t, 1, &c).status, 0);
	c = nv_rw(t, NVME_CMD_READ, 9, 0, 1); /* no such namespace: an error log entry */
	assert_int_equal(nv_do(t, 1, &c).status, NVME_SC_INVALID_NS);

	memset(b, 0xAA, 4096);
	c = (struct nv_cmd){.opc = NVME_ADM_GET_LOG_PAGE,
			    .nsid = 0xFFFFFFFF,
			    .prp1 = NV_BUF,
			    .cdw = {NVME_LOG_SMART | (512 / 4 - 1) << 16}};
	assert_int_equal(nv_admin(t, &c), 0);
	assert_int_equal(get_le16(b + 1), 323);
	assert_int_equal(b[3], 100);
	assert_int_equal(get_le64(b + 32), 1); /* 16 blocks read: rounds up to 1 thousand */
	assert_int_equal(get_le64(b + 64), 1); /* host reads */
	assert_int_equal(get_le64(b + 80), 1); /* host writes */
	assert_int_equal(get_le64(b + 176), 1);
	c = (struct nv_cmd){.opc = NVME_ADM_GET_LOG_PAGE,
			    .prp1 = NV_BUF,
			    .cdw = {NVME_LOG_ERROR | (64 / 4 - 1) << 16}};
	assert_int_equal(nv_admin(t, &c), 0);
	assert_int_equal(get_le64(b), 1); /* error count */
	assert_int_equal(get_le16(b + 8), 1);
	assert_int_equal(get_le16(b + 12) >> 1, NVME_SC_INVALID_NS);
	c = (struct nv_cmd){.opc = NVME_ADM_GET_LOG_PAGE,
			    .prp1 = NV_BUF,
			    .cdw = {NVME_LOG_FW_SLOT | (512 / 4 - 1) << 16}};
	assert_int_equal(nv_admin(t, &c), 0);
	assert_int_equal(b[0], 1);
	/* An offset inside the page; past its end; not dword aligned; unknown page. */
	c = (struct nv_cmd){.opc = NVME_ADM_GET_LOG_PAGE,
			    .prp1 = NV_BUF,
			    .cdw = {NVME_LOG_SMART | (4 / 4 - 1) << 16, 0, 64}};
	assert_int_equal(nv_admin(t, &c), 0);
	assert_int_equal(get_le32(b), 1); /* host reads, low dword */
	c.cdw[2] = 512;
	assert_int_equal(nv_admin(t, &c), NVME_SC_INVALID_FIELD);
	c.cdw[2] = 2;
	assert_int_equal(nv_admin(t, &c), NVME_SC_INVALID_FIELD);
	c = (struct nv_cmd){.opc = NVME_ADM_GET_LOG_PAGE, .prp1 = NV_BUF, .cdw = {0x7E}};
	assert_int_equal(nv_admin(t, &c), NVME_SC_INVALID_LOG_PAGE);
	nv_free(t);
}

static void read_write_prp_lands_in_image(void **state)
{
	(void)state;
	struct nv *t = nv_new(1, NULL, 2);
	nv_start(t);
	/* 256 KiB at LBA 100: PRP1 with an offset, then a PRP list. */
	uint32_t nlb = 512;
	uint8_t *data = vf_ram(&t->f, NV_DATA, 1 << 20);
	for (uint32_t i = 0; i < nlb * 512; i++)
		data[i] = (uint8_t)(i * 31 + 5);
	struct nv_cmd c = nv_rw(t, NVME_CMD_WRITE, 1, 100, nlb);
	assert_int_equal(nv_do(t, 1, &c).status, 0);
	/* The image holds it. */
	uint8_t *img = malloc(nlb * 512);
	int fd = open(t->image[0], O_RDONLY);
	assert_int_equal(pread(fd, img, nlb * 512, 100 * 512), nlb * 512);
	close(fd);
	assert_memory_equal(img, data, nlb * 512);
	/* Read back elsewhere in RAM with a two-page transfer and a PRP1 offset. */
	memset(data, 0, 1 << 20);
	c = nv_rw(t, NVME_CMD_READ, 1, 100, 8);
	c.prp1 = NV_DATA + 0x800;
	c.prp2 = NV_DATA + 0x1000;
	assert_int_equal(nv_do(t, 1, &c).status, 0);
	assert_memory_equal(data + 0x800, img, 4096);
	/* Untouched blocks keep the image's original pattern. */
	c = nv_rw(t, NVME_CMD_READ, 1, 0, 1);
	assert_int_equal(nv_do(t, 1, &c).status, 0);
	for (int i = 0; i < 512; i++)
		assert_int_equal(data[i], nv_pattern(0, i));
	/* The last block of the namespace. */
	c = nv_rw(t, NVME_CMD_READ, 1, NV_DISK_SIZE / 512 - 1, 1);
	assert_int_equal(nv_do(t, 1, &c).status, 0);
	free(img);
	nv_free(t);
}

static void sgl_data_blocks_and_segments(void **state)
{
	(void)state;
	struct nv *t = nv_new(1, NULL, 2);
	nv_start(t);
	uint8_t *seg = vf_ram(&t->f, NV_PRPLIST, 4096);
	/* Read 8 KiB through a segment of three data blocks (1 KiB, 3 KiB, 4 KiB). */
	const uint64_t addr[3] = {NV_DATA + 0x10000, NV_DATA + 0x20100, NV_DATA + 0x30000};
	const uint32_t len[3] = {1024, 3072, 4096};
	for (int i = 0; i < 3; i++) {
		put_le64(seg + 16 * i, addr[i]);
		put_le32(seg + 16 * i + 8, len[i]);
		seg[16 * i + 15] = NVME_SGL_DATA_BLOCK << 4;
	}
	struct nv_cmd c = {.opc = NVME_CMD_READ,
			   .flags = 1 << 6, /* PSDT 01: SGL */
			   .nsid = 1,
			   .prp1 = NV_PRPLIST,
			   .prp2 = 48 | (uint64_t)NVME_SGL_LAST_SEGMENT << 60,
			   .cdw = {0, 0, 15}};
	assert_int_equal(nv_do(t, 1, &c).status, 0);
	uint64_t off = 0;
	for (int i = 0; i < 3; i++)
		for (uint32_t j = 0; j < len[i]; j++, off++)
			assert_int_equal(*(uint8_t *)vf_ram(&t->f, addr[i] + j, 1),
					 nv_pattern(0, off));
	/* One data block in the command itself. */
	c = (struct nv_cmd){.opc = NVME_CMD_READ,
			    .flags = 1 << 6,
			    .nsid = 1,
			    .prp1 = NV_DATA,
			    .prp2 = 512,
			    .cdw = {1, 0, 0}};
	assert_int_equal(nv_do(t, 1, &c).status, 0);
	assert_int_equal(*(uint8_t *)vf_ram(&t->f, NV_DATA, 1), nv_pattern(0, 512));
	/* A data block shorter than the transfer. */
	c.cdw[2] = 1;
	assert_int_equal(nv_do(t, 1, &c).status, NVME_SC_SGL_INVALID_DATA_LEN);
	/* A bit bucket (not offered). */
	c.prp2 = 1024 | (uint64_t)1 << 60;
	assert_int_equal(nv_do(t, 1, &c).status, NVME_SC_SGL_INVALID_TYPE);
	nv_free(t);
}

static void flush_compare_zeroes_dsm(void **state)
{
	(void)state;
	struct nv *t = nv_new(1, NULL, 2);
	nv_start(t);
	struct block_aio_ctx *aio = t->disk[0]->aio;
	unsigned flushes = block_aio_flush_count(aio);
	struct nv_cmd c = {.opc = NVME_CMD_FLUSH, .nsid = 1};
	assert_int_equal(nv_do(t, 1, &c).status, 0);
	assert_int_equal(block_aio_flush_count(aio), flushes + 1);
	c.nsid = 0xFFFFFFFF; /* every namespace */
	assert_int_equal(nv_do(t, 1, &c).status, 0);
	assert_int_equal(block_aio_flush_count(aio), flushes + 2);
	/* FUA write: data, then a flush. */
	c = nv_rw(t, NVME_CMD_WRITE, 1, 8, 1);
	c.cdw[2] |= 1u << 30;
	assert_int_equal(nv_do(t, 1, &c).status, 0);
	assert_int_equal(block_aio_flush_count(aio), flushes + 3);
	/* Write cache off: every write is flushed. */
	struct nv_cmd f = {.opc = NVME_ADM_SET_FEATURES, .cdw = {NVME_FEAT_VOLATILE_WC, 0}};
	assert_int_equal(nv_admin(t, &f), 0);
	c = nv_rw(t, NVME_CMD_WRITE, 1, 8, 1);
	assert_int_equal(nv_do(t, 1, &c).status, 0);
	assert_int_equal(block_aio_flush_count(aio), flushes + 4);

	/* Compare: equal, then one byte off. */
	uint8_t *data = vf_ram(&t->f, NV_DATA, 4096);
	for (int i = 0; i < 1024; i++)
		data[i] = nv_pattern(0, 1024 * 20 + i);
	c = nv_rw(t, NVME_CMD_COMPARE, 1, 40, 2);
	assert_int_equal(nv_do(t, 1, &c).status, 0);
	data[700] ^= 1;
	assert_int_equal(nv_do(t, 1, &c).status, NVME_SC_COMPARE_FAILED);

	/* Write Zeroes of 8 blocks at 64, with deallocate. */
	c = (struct nv_cmd){.opc = NVME_CMD_WRITE_ZEROES, .nsid = 1, .cdw = {64, 0, 7 | 1u << 25}};
	assert_int_equal(nv_do(t, 1, &c).status, 0);
	uint8_t blk[4096], zero[4096] = {0};
	int fd = open(t->image[0], O_RDONLY);
	assert_int_equal(pread(fd, blk, 4096, 64 * 512), 4096);
	assert_memory_equal(blk, zero, 4096);
	/* DSM deallocate of two ranges (and a zero-length one): reads as zeroes in a raw file
	 * that supports punching holes; at least nothing fails. */
	uint8_t *r = vf_ram(&t->f, NV_BUF, 48);
	memset(r, 0, 48);
	put_le32(r + 4, 8);
	put_le64(r + 8, 256);
	put_le32(r + 16 + 4, 0);
	put_le64(r + 16 + 8, 4);
	put_le32(r + 32 + 4, 16);
	put_le64(r + 32 + 8, 1024);
	c = (struct nv_cmd){.opc = NVME_CMD_DSM, .nsid = 1, .prp1 = NV_BUF, .cdw = {2, 1u << 2}};
	assert_int_equal(nv_do(t, 1, &c).status, 0);
	assert_int_equal(pread(fd, blk, 4096, 256 * 512), 4096);
	assert_memory_equal(blk, zero, 4096);
	close(fd);
	/* A range past the end fails the whole command before anything is discarded. */
	put_le64(r + 8, 512);
	put_le64(r + 32 + 8, NV_DISK_SIZE / 512 - 8);
	assert_int_equal(nv_do(t, 1, &c).status, NVME_SC_LBA_RANGE);
	fd = open(t->image[0], O_RDONLY);
	assert_int_equal(pread(fd, blk, 512, 512 * 512), 512);
	close(fd);
	assert_int_equal(blk[0], nv_pattern(0, 512 * 512));
	nv_free(t);
}

static void two_namespaces_and_read_only(void **state)
{
	(void)state;
	const char *opts[] = {"", ",readonly"};
	struct nv *t = nv_new(2, opts, 2);
	nv_start(t);
	uint8_t *data = vf_ram(&t->f, NV_DATA, 4096);
	struct nv_cmd c = nv_rw(t, NVME_CMD_READ, 2, 3, 1);
	assert_int_equal(nv_do(t, 1, &c).status, 0);
	for (int i = 0; i < 512; i++)
		assert_int_equal(data[i], nv_pattern(1, 3 * 512 + i));
	uint64_t before = test_file_hash(t->image[1]);
	c = nv_rw(t, NVME_CMD_WRITE, 2, 3, 1);
	struct nv_cqe e = nv_do(t, 1, &c);
	assert_int_equal(e.status, NVME_SC_NS_WRITE_PROTECTED);
	assert_true(e.dnr);
	c = (struct nv_cmd){.opc = NVME_CMD_WRITE_ZEROES, .nsid = 2, .cdw = {0, 0, 0}};
	assert_int_equal(nv_do(t, 1, &c).status, NVME_SC_NS_WRITE_PROTECTED);
	c = (struct nv_cmd){.opc = NVME_CMD_DSM, .nsid = 2, .prp1 = NV_BUF, .cdw = {0, 4}};
	assert_int_equal(nv_do(t, 1, &c).status, NVME_SC_NS_WRITE_PROTECTED);
	c = (struct nv_cmd){.opc = NVME_CMD_FLUSH, .nsid = 2};
	assert_int_equal(nv_do(t, 1, &c).status, 0);
	assert_int_equal(test_file_hash(t->image[1]), before);
	/* Namespace 1 is writable and its own file. */
	memset(data, 0x5A, 512);
	c = nv_rw(t, NVME_CMD_WRITE, 1, 3, 1);
	assert_int_equal(nv_do(t, 1, &c).status, 0);
	uint8_t blk[512];
	int fd = open(t->image[0], O_RDONLY);
	assert_int_equal(pread(fd, blk, 512, 3 * 512), 512);
	close(fd);
	assert_int_equal(blk[17], 0x5A);
	nv_free(t);
}

/* MSI-X on, vectors 0..2 unmasked (65 vectors offered). */
static void enable_msix(struct nv *t)
{
	unsigned cap = 0;
	for (unsigned p = pci_config_read(t->f.bus, t->f.devfn, PCI_CAP_PTR, 1); p;
	     p = pci_config_read(t->f.bus, t->f.devfn, p + 1, 1))
		if (pci_config_read(t->f.bus, t->f.devfn, p, 1) == PCI_CAP_ID_MSIX)
			cap = p;
	assert_int_not_equal(cap, 0);
	assert_int_equal((pci_config_read(t->f.bus, t->f.devfn, cap + 2, 2) & 0x7FF) + 1, 65);
	for (unsigned v = 0; v < 3; v++) {
		nv_w(t, 0x2000 + 16 * v, 4, 0xFEE00000);
		nv_w(t, 0x2000 + 16 * v + 8, 4, 0x40 + v);
		nv_w(t, 0x2000 + 16 * v + 12, 4, 0);
	}
	pci_config_write(t->f.bus, t->f.devfn, cap + 2, 2, 0x8000);
}

static void msix_vector_per_cq_and_intx(void **state)
{
	(void)state;
	struct nv *t = nv_new(1, NULL, 2);
	/* INTx: raised by a completion, lowered when the host consumed it. */
	assert_int_equal(nv_enable(t, 16), NVME_CSTS_RDY);
	struct nv_cmd c = {.opc = NVME_ADM_GET_FEATURES, .cdw = {NVME_FEAT_VOLATILE_WC}};
	nv_put(t, 0, &c);
	nv_ring(t, 0);
	assert_true(t->f.intx);
	nv_w(t, NVME_REG_INTMS, 4, 1); /* masked: line down */
	assert_false(t->f.intx);
	nv_w(t, NVME_REG_INTMC, 4, 1);
	assert_true(t->f.intx);
	nv_reap(t, 0);
	assert_false(t->f.intx);

	/* MSI-X on: the I/O CQ's vector 1 fires through the bus, INTx stays low. */
	enable_msix(t);
	nv_disable(t);
	nv_start(t);
	int before = t->f.signal_msi_count;
	c = nv_rw(t, NVME_CMD_READ, 1, 0, 1);
	assert_int_equal(nv_do(t, 1, &c).status, 0);
	assert_int_equal(t->f.signal_msi_count, before + 1);
	assert_false(t->f.intx);
	nv_free(t);
}

/* CC.EN = 0 with reads in flight: the write returns only when they ended, and nothing they
 * would have completed reaches the (old) completion queue. */
static void controller_reset_with_requests_in_flight(void **state)
{
	(void)state;
	struct nv *t = nv_new(1, NULL, 2);
	nv_start(t);
	for (unsigned i = 0; i < 16; i++) {
		struct nv_cmd c = nv_rw(t, NVME_CMD_READ, 1, 64ULL * i, 16);
		c.prp1 = NV_DATA + 0x2000ULL * i;
		c.prp2 = c.prp1 + 0x1000;
		nv_put(t, 1, &c);
	}
	nv_ring(t, 1);
	assert_int_equal(nvme_inflight(t->c), 16);
	assert_int_equal(pthread_create(&t->completer, NULL, nv_gated_completer, t), 0);
	nv_disable(t);
	assert_int_equal(nvme_inflight(t->c), 0);
	t->completer_stop = true;
	pthread_join(t->completer, NULL);
	uint8_t zero[NV_QSIZE * 16] = {0};
	assert_memory_equal(vf_ram(&t->f, NV_IOCQ, sizeof(zero)), zero, sizeof(zero));
	/* Works again after a fresh set-up. */
	nv_start(t);
	struct nv_cmd c = nv_rw(t, NVME_CMD_READ, 1, 0, 1);
	assert_int_equal(nv_do(t, 1, &c).status, 0);
	nv_free(t);
}

/* The machine reset (in-process reboot) with writes in flight: the same wait, then power-on. */
static void machine_reset_with_requests_in_flight(void **state)
{
	(void)state;
	struct nv *t = nv_new(1, NULL, 2);
	nv_start(t);
	for (unsigned i = 0; i < 8; i++) {
		struct nv_cmd c = nv_rw(t, NVME_CMD_WRITE, 1, 64ULL * i, 8);
		nv_put(t, 1, &c);
	}
	nv_ring(t, 1);
	assert_int_equal(pthread_create(&t->completer, NULL, nv_completer, t), 0);
	nvme_reset(t->c);
	assert_int_equal(nvme_inflight(t->c), 0);
	t->completer_stop = true;
	pthread_join(t->completer, NULL);
	assert_int_equal(nv_r(t, NVME_REG_CSTS, 4), 0);
	assert_int_equal(nv_r(t, NVME_REG_CC, 4), 0);
	assert_int_equal(nv_r(t, NVME_REG_AQA, 4), 0);
	nv_start(t);
	struct nv_cmd c = nv_rw(t, NVME_CMD_READ, 1, 0, 1);
	assert_int_equal(nv_do(t, 1, &c).status, 0);
	nv_free(t);
}

/* werror=stop: a write parked for want of space must not hold a controller reset (CC.EN = 0)
 * forever: the reset fails it, waits for it, and the queues are dropped as usual. */
static void controller_reset_with_a_stopped_write(void **state)
{
	(void)state;
	struct nv *t = nv_new(1, NULL, 2);
	const char *flag = test_path("nvme-full");
	nv_start(t);
	assert_int_equal(test_disk_stop_writes(t->disk[0], flag), 0);
	struct nv_cmd c = nv_rw(t, NVME_CMD_WRITE, 1, 0, 8);
	nv_put(t, 1, &c);
	nv_ring(t, 1);
	assert_true(test_disk_wait_parked(t->disk[0], 1));
	assert_int_equal(nvme_inflight(t->c), 1);
	alarm(60); /* only against a hang: the reset below returns at once when it works */
	assert_int_equal(pthread_create(&t->completer, NULL, nv_completer, t), 0);
	nv_disable(t);
	alarm(0);
	assert_int_equal(nvme_inflight(t->c), 0);
	assert_int_equal(block_aio_stopped_count(t->disk[0]->aio), 0);
	t->completer_stop = true;
	pthread_join(t->completer, NULL);
	test_disk_fault_end(flag);
	nv_start(t);
	c = nv_rw(t, NVME_CMD_WRITE, 1, 0, 8);
	assert_int_equal(nv_do(t, 1, &c).status, 0);
	nv_free(t);
}

/* MSI-X messages sent so far, through the bus or the irqfd routes. */
static int msi_total(struct nv *t)
{
	int n = __atomic_load_n(&t->f.signal_msi_count, __ATOMIC_SEQ_CST);
	for (unsigned i = 0; i < 64; i++)
		n += __atomic_load_n(&t->f.route_fires[i], __ATOMIC_SEQ_CST);
	return n;
}

/* Submit `n` one-block reads on I/O queue 1 and run completions until entry `last` of the fresh
 * CQ is posted (its phase tag set), without moving the CQ head. */
static void reads_posted(struct nv *t, unsigned n, unsigned last)
{
	for (unsigned i = 0; i < n; i++) {
		struct nv_cmd c = nv_rw(t, NVME_CMD_READ, 1, i, 1);
		nv_put(t, 1, &c);
	}
	nv_ring(t, 1);
	const uint8_t *e = vf_ram(&t->f, NV_IOCQ + 16ULL * last, 16);
	for (int i = 0; i < 20000 && !(__atomic_load_n(e + 14, __ATOMIC_ACQUIRE) & 1); i++)
		nv_poll(t);
	assert_true(e[14] & 1);
}

static void set_feature(struct nv *t, uint32_t fid, uint32_t v)
{
	struct nv_cmd c = {.opc = NVME_ADM_SET_FEATURES, .cdw = {fid, v}};
	assert_int_equal(nv_admin(t, &c), 0);
}

/* Set Features 08h: THR 3 holds the I/O queue's interrupt until the 4th completion (the event
 * loop stands still, so the aggregation time cannot run out meanwhile); Coalescing Disable on
 * the vector (09h) and the admin queue interrupt at once. */
static void interrupt_coalescing_threshold(void **state)
{
	(void)state;
	struct nv *t = nv_new_loop(1, NULL, 2, true);
	vf_loop_stop(&t->f);
	enable_msix(t);
	nv_start(t);
	set_feature(t, NVME_FEAT_IRQ_COALESCE, 3 | 255u << 8);
	int before = msi_total(t);
	reads_posted(t, 3, 2);
	assert_int_equal(msi_total(t), before);
	reads_posted(t, 1, 3);
	assert_int_equal(msi_total(t), before + 1);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(nv_reap(t, 1).status, 0);
	/* The admin queue is never held back. */
	before = msi_total(t);
	set_feature(t, NVME_FEAT_IRQ_CONFIG, 1 | 1u << 16); /* vector 1: coalescing disabled */
	assert_int_equal(msi_total(t), before + 1);
	struct nv_cmd c = nv_rw(t, NVME_CMD_READ, 1, 0, 1);
	assert_int_equal(nv_do(t, 1, &c).status, 0);
	assert_int_equal(msi_total(t), before + 2);
	/* A controller reset forgets the setting. */
	nv_disable(t);
	nv_start(t);
	struct nv_cmd get = {.opc = NVME_ADM_GET_FEATURES, .cdw = {NVME_FEAT_IRQ_COALESCE}};
	assert_int_equal(nv_do(t, 0, &get).dw0, 0);
	nv_free(t);
}

/* The aggregation time: one completion, far below the threshold, still gets its interrupt once
 * the event loop's timer runs out (waited for by polling, bounded only against a hang). */
static void interrupt_coalescing_time(void **state)
{
	(void)state;
	struct nv *t = nv_new_loop(1, NULL, 2, true);
	enable_msix(t);
	nv_start(t);
	set_feature(t, NVME_FEAT_IRQ_COALESCE, 200 | 10u << 8); /* 201 entries or 1 ms */
	int before = msi_total(t);
	reads_posted(t, 1, 0);
	for (int i = 0; i < 20000 && msi_total(t) == before; i++)
		usleep(100);
	assert_int_equal(msi_total(t), before + 1);
	assert_int_equal(nv_reap(t, 1).status, 0);
	nv_free(t);
}

static int group_setup(void **state)
{
	(void)state;
	return test_tmpdir_setup("nvme");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(registers_and_enable),
	    cmocka_unit_test(controller_reset_with_a_stopped_write),
	    cmocka_unit_test(identify),
	    cmocka_unit_test(features),
	    cmocka_unit_test(log_pages),
	    cmocka_unit_test(read_write_prp_lands_in_image),
	    cmocka_unit_test(sgl_data_blocks_and_segments),
	    cmocka_unit_test(flush_compare_zeroes_dsm),
	    cmocka_unit_test(two_namespaces_and_read_only),
	    cmocka_unit_test(msix_vector_per_cq_and_intx),
	    cmocka_unit_test(interrupt_coalescing_threshold),
	    cmocka_unit_test(interrupt_coalescing_time),
	    cmocka_unit_test(controller_reset_with_requests_in_flight),
	    cmocka_unit_test(machine_reset_with_requests_in_flight),
	};
	return cmocka_run_group_tests(tests, group_setup, test_tmpdir_teardown);
}
