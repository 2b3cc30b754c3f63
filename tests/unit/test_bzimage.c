/* bzImage header parsing with crafted headers, initrd placement, a full load into guest RAM, and
 * the boot CPU's registers for it. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "memory/e820.h"
#include "memory/guest_memory.h"
#include "lib/endian.h"
#include "vmm/boot_bzimage.h"
#include "memory/layout.h"
#include "lib/error.h"

#define IMG_SIZE (64 * 1024)

static uint8_t img[IMG_SIZE];

/* A plausible 2.15 header: 4 setup sectors, 64-bit entry, 2 MiB alignment. */
static void craft(void)
{
	memset(img, 0, sizeof(img));
	img[0x1F1] = 4;
	put_le16(img + 0x1FE, 0xAA55);
	img[0x200] = 0xEB;
	img[0x201] = 0x6A; /* header ends at 0x26C */
	memcpy(img + 0x202, "HdrS", 4);
	put_le16(img + 0x206, 0x020F);
	img[0x211] = 0x01; /* LOADED_HIGH */
	put_le32(img + 0x22C, 0x7FFFFFFF);
	put_le32(img + 0x230, 0x200000);
	put_le16(img + 0x236, 0x0003); /* XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G */
	put_le32(img + 0x238, 2047);
	put_le32(img + 0x258, 0x1000000);
	put_le32(img + 0x260, 0x800000);
	for (size_t i = 5 * 512; i < IMG_SIZE; i++)
		img[i] = (uint8_t)i;
}

static int parse(size_t len)
{
	struct bzimage_header h;
	return bzimage_parse(img, len, &h);
}

static void test_good(void **state)
{
	(void)state;
	craft();
	struct bzimage_header h;
	assert_int_equal(bzimage_parse(img, IMG_SIZE, &h), 0);
	assert_int_equal(h.version, 0x020F);
	assert_int_equal(h.setup_sects, 4);
	assert_int_equal(h.kernel_offset, 5 * 512);
	assert_int_equal(h.kernel_size, IMG_SIZE - 5 * 512);
	assert_int_equal(h.header_end, 0x26C);
	assert_int_equal(h.cmdline_size, 2047);
	assert_int_equal(h.initrd_addr_max, 0x7FFFFFFF);
	img[0x1F1] = 0; /* 0 means 4 */
	assert_int_equal(bzimage_parse(img, IMG_SIZE, &h), 0);
	assert_int_equal(h.setup_sects, 4);
}

static void test_bad(void **state)
{
	(void)state;
	craft();
	assert_int_equal(parse(0x100), -ENOEXEC);
	assert_non_null(strstr(error_msg(), "too short"));
	craft();
	img[0x202] = 'X';
	assert_int_equal(parse(IMG_SIZE), -ENOEXEC);
	assert_non_null(strstr(error_msg(), "HdrS"));
	craft();
	put_le16(img + 0x1FE, 0);
	assert_int_equal(parse(IMG_SIZE), -ENOEXEC);
	assert_non_null(strstr(error_msg(), "boot flag"));
	craft();
	put_le16(img + 0x206, 0x020B);
	assert_int_equal(parse(IMG_SIZE), -ENOEXEC);
	assert_non_null(strstr(error_msg(), "2.11 is too old"));
	craft();
	put_le16(img + 0x236, 0);
	assert_int_equal(parse(IMG_SIZE), -ENOEXEC);
	assert_non_null(strstr(error_msg(), "64-bit"));
	craft();
	img[0x1F1] = 200; /* setup larger than the file */
	assert_int_equal(parse(IMG_SIZE), -ENOEXEC);
	assert_non_null(strstr(error_msg(), "truncated"));
	craft();
	assert_int_equal(parse(5 * 512), -ENOEXEC); /* no protected-mode part */
}

static void test_initrd_place(void **state)
{
	(void)state;
	craft();
	struct bzimage_header h;
	uint64_t a;
	assert_int_equal(bzimage_parse(img, IMG_SIZE, &h), 0);
	assert_int_equal(bzimage_place_initrd(&h, 512 * MiB, 10 * MiB + 5, &a), 0);
	assert_true(a + 10 * MiB + 5 <= 512 * MiB);
	assert_int_equal(a % 4096, 0);
	assert_true(a >= 0x1000000 + 0x800000); /* above the kernel's init_size */
	/* limited by initrd_addr_max below the end of RAM */
	put_le32(img + 0x22C, 0x0FFFFFFF);
	assert_int_equal(bzimage_parse(img, IMG_SIZE, &h), 0);
	assert_int_equal(bzimage_place_initrd(&h, 512 * MiB, MiB, &a), 0);
	assert_true(a + MiB <= 0x10000000);
	/* does not fit between the kernel and the top */
	assert_int_equal(bzimage_place_initrd(&h, 512 * MiB, 250 * MiB, &a), -ENOMEM);
	assert_int_equal(bzimage_place_initrd(&h, 32 * MiB, 20 * MiB, &a), -ENOMEM);
	assert_int_equal(bzimage_place_initrd(&h, 512 * MiB, UINT64_MAX, &a), -ENOMEM);
}

static void test_load(void **state)
{
	(void)state;
	craft();
	struct bzimage_header h;
	struct guest_memory gm;
	struct e820_entry map[E820_MAX_ENTRIES];
	struct bzimage_boot boot;
	assert_int_equal(bzimage_parse(img, IMG_SIZE, &h), 0);
	assert_int_equal(guest_memory_create(&gm, 64 * MiB), 0);
	int n = e820_build(gm.size, map, E820_MAX_ENTRIES);
	assert_true(n > 0);
	assert_int_equal(
	    bzimage_load(&gm, img, IMG_SIZE, &h, NULL, "console=ttyS0", map, n, 0xE0000, &boot), 0);
	assert_int_equal(boot.entry, LAYOUT_KERNEL_START + 0x200);
	assert_int_equal(boot.zero_page, LAYOUT_BOOT_ZERO_PAGE);
	uint8_t *zp = guest_memory_ptr(&gm, LAYOUT_BOOT_ZERO_PAGE, 4096);
	assert_memory_equal(zp + 0x202, "HdrS", 4);
	assert_int_equal(zp[0x210], 0xFF); /* type_of_loader */
	assert_int_equal(zp[0x1E8], n);
	uint32_t cl;
	memcpy(&cl, zp + 0x228, 4);
	assert_int_equal(cl, LAYOUT_BOOT_CMDLINE);
	assert_string_equal((char *)guest_memory_ptr(&gm, cl, 14), "console=ttyS0");
	uint64_t rsdp;
	memcpy(&rsdp, zp + 0x70, 8);
	assert_int_equal(rsdp, 0xE0000);
	assert_memory_equal(zp + 0x2D0, map, n * sizeof(map[0]));
	assert_memory_equal(guest_memory_ptr(&gm, LAYOUT_KERNEL_START, IMG_SIZE - 2560), img + 2560,
			    IMG_SIZE - 2560);
	/* identity map: PML4[0] -> PDPT, PD entry 1 maps 2 MiB */
	uint64_t e;
	memcpy(&e, guest_memory_ptr(&gm, LAYOUT_BOOT_PML4, 8), 8);
	assert_int_equal(e, (LAYOUT_BOOT_PML4 + 0x1000) | 3);
	memcpy(&e, guest_memory_ptr(&gm, LAYOUT_BOOT_PML4 + 0x2000 + 8, 8), 8);
	assert_int_equal(e, (2 * MiB) | 0x83);

	/* the boot CPU: 64-bit mode at the entry, on the boot GDT and page tables just written */
	struct cpu_boot cpu;
	bzimage_boot_cpu(&boot, &cpu);
	assert_int_equal(cpu.regs.rip, boot.entry);
	assert_int_equal(cpu.regs.rsi, LAYOUT_BOOT_ZERO_PAGE);
	assert_int_equal(cpu.regs.rsp, LAYOUT_BOOT_STACK);
	assert_int_equal(cpu.regs.rflags, 0x2);
	assert_int_equal(cpu.cr3, LAYOUT_BOOT_PML4);
	assert_int_equal(cpu.cr0 & 0x80000001, 0x80000001); /* PG, PE */
	assert_int_equal(cpu.cr4 & 0x20, 0x20);		    /* PAE */
	assert_int_equal(cpu.efer & 0x500, 0x500);	    /* LME, LMA */
	assert_int_equal(cpu.gdt.base, LAYOUT_BOOT_GDT);
	assert_true(cpu.cs.l && !cpu.cs.db && cpu.cs.present);
	assert_true(cpu.ss.db && !cpu.ss.l && cpu.ss.selector == cpu.ds.selector);
	uint64_t desc;
	assert_true(cpu.cs.selector + 8u <= cpu.gdt.limit + 1u);
	memcpy(&desc, guest_memory_ptr(&gm, LAYOUT_BOOT_GDT + cpu.cs.selector, 8), 8);
	assert_true(desc >> 53 & 1); /* the GDT's code descriptor is 64-bit too */
	assert_true(desc >> 47 & 1); /* present */

	/* too long a command line, and a missing initrd, fail cleanly */
	char big[3000];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	assert_int_equal(bzimage_load(&gm, img, IMG_SIZE, &h, NULL, big, map, n, 0, &boot), -E2BIG);
	assert_true(
	    bzimage_load(&gm, img, IMG_SIZE, &h, "/nonexistent/initrd", "", map, n, 0, &boot) < 0);
	assert_non_null(strstr(error_msg(), "/nonexistent/initrd"));
	guest_memory_destroy(&gm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good),
	    cmocka_unit_test(test_bad),
	    cmocka_unit_test(test_initrd_place),
	    cmocka_unit_test(test_load),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
