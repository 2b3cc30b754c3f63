/* fw_cfg as SeaBIOS drives it: signature and ID over the data port, the file directory, DMA reads,
 * skips and selects, and hostile DMA descriptors (bad bits, buffers outside RAM, writes). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "devices/fw_cfg.h"
#include "lib/endian.h"
#include "memory/layout.h"

struct fx {
	struct guest_memory gm;
	struct fw_cfg *c;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_int_equal(guest_memory_create(&f->gm, 16 * MiB), 0);
	assert_int_equal(fw_cfg_create(&f->gm, &f->c), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	fw_cfg_destroy(f->c);
	guest_memory_destroy(&f->gm);
	free(f);
	return 0;
}

static void sel(struct fx *f, uint16_t key)
{
	uint8_t b[2];
	put_le16(b, key);
	fw_cfg_io(f->c, 0, b, 2, true);
}

static void data(struct fx *f, void *buf, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fw_cfg_io(f->c, 1, (uint8_t *)buf + i, 1, false);
}

/* Write a descriptor at `desc` and kick it the way SeaBIOS does (outl of the be32 to 0x518). */
static uint32_t dma(struct fx *f, uint64_t desc, uint32_t control, uint32_t len, uint64_t addr)
{
	uint8_t d[16];
	put_be32(d, control);
	put_be32(d + 4, len);
	put_be64(d + 8, addr);
	assert_int_equal(guest_memory_write(&f->gm, desc, d, 16), 0);
	uint8_t hi[4], lo[4];
	put_be32(hi, desc >> 32);
	put_be32(lo, (uint32_t)desc);
	fw_cfg_io(f->c, 4, hi, 4, true);
	fw_cfg_io(f->c, 8, lo, 4, true);
	assert_int_equal(guest_memory_read(&f->gm, desc, d, 4), 0);
	return get_be32(d);
}

static void test_signature_and_id(void **state)
{
	struct fx *f = *state;
	char sig[4];
	sel(f, FW_CFG_SIGNATURE);
	data(f, sig, 4);
	assert_memory_equal(sig, "QEMU", 4);
	uint8_t id[4], past;
	sel(f, FW_CFG_ID);
	data(f, id, 4);
	assert_int_equal(get_le32(id), FW_CFG_ID_TRADITIONAL | FW_CFG_ID_DMA);
	data(f, &past, 1);
	assert_int_equal(past, 0); /* past the end: zero */
	sel(f, 0x1234);		   /* no such item: zeroes */
	data(f, &past, 1);
	assert_int_equal(past, 0);
	uint8_t reg[4];
	fw_cfg_io(f->c, 4, reg, 4, false);
	assert_memory_equal(reg, "QEMU", 4);
	fw_cfg_io(f->c, 8, reg, 4, false);
	assert_memory_equal(reg, " CFG", 4);
}

static void test_directory(void **state)
{
	struct fx *f = *state;
	assert_int_equal(fw_cfg_add_file(f->c, "etc/boot-fail-wait", "\x10\x27\0\0", 4), 0);
	assert_int_equal(fw_cfg_add_file(f->c, "bootorder", "/pci@i0cf8/*@1f\n", 16), 0);
	assert_int_equal(fw_cfg_add_file(f->c, "bootorder", "x", 1), -EEXIST);
	assert_int_equal(fw_cfg_add_file(f->c, "", "x", 1), -EINVAL);
	char longname[80];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[79] = 0;
	assert_int_equal(fw_cfg_add_file(f->c, longname, "x", 1), -EINVAL);
	assert_int_equal(fw_cfg_add_item(f->c, FW_CFG_FILE_DIR, "x", 1), -EINVAL);
	assert_int_equal(fw_cfg_add_item(f->c, FW_CFG_FILE_FIRST, "x", 1), -EINVAL);

	uint8_t cnt[4], e[64];
	sel(f, FW_CFG_FILE_DIR);
	data(f, cnt, 4);
	assert_int_equal(get_be32(cnt), 2);
	data(f, e, 64);
	assert_int_equal(get_be32(e), 4);
	assert_int_equal(get_be16(e + 4), FW_CFG_FILE_FIRST);
	assert_string_equal((char *)e + 8, "etc/boot-fail-wait");
	data(f, e, 64);
	assert_int_equal(get_be32(e), 16);
	assert_int_equal(get_be16(e + 4), FW_CFG_FILE_FIRST + 1);
	assert_string_equal((char *)e + 8, "bootorder");
	char bo[16];
	sel(f, FW_CFG_FILE_FIRST + 1);
	data(f, bo, 16);
	assert_memory_equal(bo, "/pci@i0cf8/*@1f\n", 16);
}

static void test_dma_read_skip_select(void **state)
{
	struct fx *f = *state;
	uint8_t blob[300];
	for (unsigned i = 0; i < sizeof(blob); i++)
		blob[i] = i * 7 + 1;
	assert_int_equal(fw_cfg_add_file(f->c, "etc/acpi/tables", blob, sizeof(blob)), 0);
	uint8_t *ram = f->gm.host;
	/* select + read of the first 100 bytes */
	uint32_t ctl = (FW_CFG_FILE_FIRST << 16) | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ;
	assert_int_equal(dma(f, 0x1000, ctl, 100, 0x2000), 0);
	assert_memory_equal(ram + 0x2000, blob, 100);
	/* skip 50, then read past the end: the rest is zero-filled */
	assert_int_equal(dma(f, 0x1000, FW_CFG_DMA_SKIP, 50, 0), 0);
	memset(ram + 0x3000, 0xAA, 200);
	assert_int_equal(dma(f, 0x1000, FW_CFG_DMA_READ, 200, 0x3000), 0);
	assert_memory_equal(ram + 0x3000, blob + 150, 150);
	for (unsigned i = 150; i < 200; i++)
		assert_int_equal(ram[0x3000 + i], 0);
	/* the port sees the same read position (past the end now) */
	uint8_t b = 0xFF;
	data(f, &b, 1);
	assert_int_equal(b, 0);
	/* a skip beyond the end stops at the end */
	assert_int_equal(dma(f, 0x1000,
			     FW_CFG_DMA_SELECT | (FW_CFG_FILE_FIRST << 16) | FW_CFG_DMA_SKIP,
			     0xFFFFFFFFu, 0),
			 0);
	data(f, &b, 1);
	assert_int_equal(b, 0);
	/* a read of length 0 is fine */
	assert_int_equal(dma(f, 0x1000, FW_CFG_DMA_READ, 0, 0x3000), 0);
}

static void test_dma_hostile(void **state)
{
	struct fx *f = *state;
	uint8_t blob[64] = {1, 2, 3};
	assert_int_equal(fw_cfg_add_file(f->c, "etc/e820", blob, sizeof(blob)), 0);
	uint32_t sel_read = (FW_CFG_FILE_FIRST << 16) | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ;
	/* unknown control bits */
	assert_int_equal(dma(f, 0x1000, sel_read | 0x20, 4, 0x2000), FW_CFG_DMA_ERROR);
	/* buffers outside RAM, straddling its end, wrapping, huge */
	assert_int_equal(dma(f, 0x1000, sel_read, 4, 16 * MiB), FW_CFG_DMA_ERROR);
	assert_int_equal(dma(f, 0x1000, sel_read, 8, 16 * MiB - 4), FW_CFG_DMA_ERROR);
	assert_int_equal(dma(f, 0x1000, sel_read, 16, UINT64_MAX - 7), FW_CFG_DMA_ERROR);
	assert_int_equal(dma(f, 0x1000, sel_read, 0xFFFFFFFFu, 0), FW_CFG_DMA_ERROR);
	assert_int_equal(dma(f, 0x1000, sel_read, 4, LAYOUT_PCI_MMIO32_START), FW_CFG_DMA_ERROR);
	/* writes: every item is read-only, and the item is unchanged */
	memset((uint8_t *)f->gm.host + 0x2000, 0x55, 4);
	assert_int_equal(dma(f, 0x1000,
			     (FW_CFG_FILE_FIRST << 16) | FW_CFG_DMA_SELECT | FW_CFG_DMA_WRITE, 4,
			     0x2000),
			 FW_CFG_DMA_ERROR);
	assert_int_equal(dma(f, 0x1000, sel_read, 4, 0x2000), 0);
	assert_memory_equal((uint8_t *)f->gm.host + 0x2000, blob, 4);
	memset((uint8_t *)f->gm.host + 0x2000, 0x55, 4);
	/* error bit set by the guest on entry is only cleared by success */
	assert_int_equal(dma(f, 0x1000, sel_read | FW_CFG_DMA_ERROR, 4, 0x2000), 0);
	assert_memory_equal((uint8_t *)f->gm.host + 0x2000, blob, 4);
	/* a descriptor outside RAM (or straddling its end) is ignored: nothing to write back */
	uint8_t lo[4];
	put_be32(lo, 16 * MiB - 8);
	fw_cfg_io(f->c, 8, lo, 4, true);
	put_be32(lo, 0xFEE00000u);
	fw_cfg_io(f->c, 8, lo, 4, true);
	/* odd-sized and misplaced port accesses neither crash nor select */
	uint8_t junk[4] = {0xFF, 0xFF, 0xFF, 0xFF};
	fw_cfg_io(f->c, 0, junk, 1, true);
	fw_cfg_io(f->c, 2, junk, 2, true);
	fw_cfg_io(f->c, 10, junk, 4, true); /* would run past the register */
	fw_cfg_io(f->c, 1, junk, 4, false);
	char sig[4];
	sel(f, FW_CFG_SIGNATURE);
	data(f, sig, 4);
	assert_memory_equal(sig, "QEMU", 4);
}

static void test_items_and_reset(void **state)
{
	struct fx *f = *state;
	assert_int_equal(fw_cfg_add_u16(f->c, FW_CFG_NB_CPUS, 4), 0);
	assert_int_equal(fw_cfg_add_u16(f->c, FW_CFG_NB_CPUS, 3), 0); /* replaced */
	assert_int_equal(fw_cfg_add_u64(f->c, FW_CFG_RAM_SIZE, 1ULL << 30), 0);
	assert_int_equal(fw_cfg_add_u32(f->c, FW_CFG_IRQ0_OVERRIDE, 1), 0);
	uint8_t b[8];
	sel(f, FW_CFG_NB_CPUS);
	data(f, b, 2);
	assert_int_equal(get_le16(b), 3);
	sel(f, FW_CFG_RAM_SIZE);
	data(f, b, 8);
	assert_int_equal(get_le64(b), 1ULL << 30);
	sel(f, FW_CFG_IRQ0_OVERRIDE);
	data(f, b, 1);
	assert_int_equal(b[0], 1);
	fw_cfg_reset(f->c);
	data(f, b, 4); /* selector 0 after reset: the signature */
	assert_memory_equal(b, "QEMU", 4);
	/* too many files */
	char name[16];
	int r = 0;
	for (unsigned i = 0; r == 0; i++) {
		snprintf(name, sizeof(name), "f%u", i);
		r = fw_cfg_add_file(f->c, name, "x", 1);
	}
	assert_int_equal(r, -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_signature_and_id, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_directory, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dma_read_skip_select, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dma_hostile, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_items_and_reset, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
