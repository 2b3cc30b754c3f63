/* bzImage loader for the 64-bit boot protocol (see boot_bzimage.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "memory/e820.h"
#include "memory/guest_memory.h"
#include "lib/endian.h"
#include "vmm/boot_bzimage.h"
#include "memory/layout.h"
#include "lib/error.h"

/* Offsets in the boot sector / zero page (struct boot_params, struct setup_header). */
#define BP_ACPI_RSDP 0x070
#define BP_EXT_RAMDISK_IMAGE 0x0C0
#define BP_EXT_RAMDISK_SIZE 0x0C4
#define BP_EXT_CMD_LINE_PTR 0x0C8
#define BP_E820_ENTRIES 0x1E8
#define BP_E820_TABLE 0x2D0
#define BP_E820_MAX 128
#define HDR_START 0x1F1
#define HDR_SETUP_SECTS 0x1F1
#define HDR_BOOT_FLAG 0x1FE
#define HDR_JUMP_END 0x201
#define HDR_MAGIC 0x202
#define HDR_VERSION 0x206
#define HDR_TYPE_OF_LOADER 0x210
#define HDR_LOADFLAGS 0x211
#define HDR_RAMDISK_IMAGE 0x218
#define HDR_RAMDISK_SIZE 0x21C
#define HDR_CMD_LINE_PTR 0x228
#define HDR_INITRD_ADDR_MAX 0x22C
#define HDR_KERNEL_ALIGNMENT 0x230
#define HDR_XLOADFLAGS 0x236
#define HDR_CMDLINE_SIZE 0x238
#define HDR_PREF_ADDRESS 0x258
#define HDR_INIT_SIZE 0x260
#define HDR_MIN_END 0x264 /* a 2.12 header reaches at least here */

#define LOADED_HIGH 0x01
#define XLF_KERNEL_64 0x01

#define BOOT_GDT_ENTRIES 5
#define SEL_CODE 0x10
#define SEL_DATA 0x18
#define SEL_TSS 0x20

int bzimage_parse(const uint8_t *img, size_t len, struct bzimage_header *hdr)
{
	memset(hdr, 0, sizeof(*hdr));
	if (len < HDR_MIN_END)
		return error_set(-ENOEXEC, "file too short (%zu bytes): not a bzImage", len);
	if (memcmp(img + HDR_MAGIC, "HdrS", 4) != 0)
		return error_set(-ENOEXEC, "no HdrS signature at 0x202: not a bzImage");
	if (get_le16(img + HDR_BOOT_FLAG) != 0xAA55)
		return error_set(-ENOEXEC, "no 0xAA55 boot flag at 0x1FE: not a bzImage");
	hdr->version = get_le16(img + HDR_VERSION);
	if (hdr->version < 0x020C)
		return error_set(-ENOEXEC, "boot protocol %u.%02u is too old (need 2.12 or later)",
				 hdr->version >> 8, hdr->version & 0xFF);
	hdr->loadflags = img[HDR_LOADFLAGS];
	hdr->xloadflags = get_le16(img + HDR_XLOADFLAGS);
	if (!(hdr->loadflags & LOADED_HIGH) || !(hdr->xloadflags & XLF_KERNEL_64))
		return error_set(-ENOEXEC,
				 "kernel has no 64-bit entry point (XLF_KERNEL_64 not set)");
	hdr->setup_sects = img[HDR_SETUP_SECTS] ? img[HDR_SETUP_SECTS] : 4;
	hdr->header_end = HDR_MAGIC + img[HDR_JUMP_END];
	if (hdr->header_end < HDR_MIN_END)
		hdr->header_end = HDR_MIN_END;
	hdr->kernel_offset = (size_t)(hdr->setup_sects + 1) * 512;
	if (hdr->kernel_offset >= len)
		return error_set(-ENOEXEC, "truncated: setup is %zu bytes but the file has %zu",
				 hdr->kernel_offset, len);
	hdr->kernel_size = len - hdr->kernel_offset;
	hdr->initrd_addr_max = get_le32(img + HDR_INITRD_ADDR_MAX);
	hdr->kernel_alignment = get_le32(img + HDR_KERNEL_ALIGNMENT);
	hdr->cmdline_size = get_le32(img + HDR_CMDLINE_SIZE);
	hdr->pref_address = get_le64(img + HDR_PREF_ADDRESS);
	hdr->init_size = get_le32(img + HDR_INIT_SIZE);
	return 0;
}

/* End of the memory the kernel may use while decompressing and starting. */
static uint64_t kernel_end(const struct bzimage_header *hdr)
{
	uint64_t end = LAYOUT_KERNEL_START + hdr->kernel_size;
	uint64_t base =
	    hdr->pref_address > LAYOUT_KERNEL_START ? hdr->pref_address : LAYOUT_KERNEL_START;
	if (base < (1ULL << 40) && base + hdr->init_size > end)
		end = base + hdr->init_size;
	return end;
}

int bzimage_place_initrd(const struct bzimage_header *hdr, uint64_t ram_low_end,
			 uint64_t initrd_size, uint64_t *addr)
{
	uint64_t top = ram_low_end;
	if ((uint64_t)hdr->initrd_addr_max + 1 < top)
		top = (uint64_t)hdr->initrd_addr_max + 1;
	uint64_t lowest = kernel_end(hdr);
	if (initrd_size > top || top - initrd_size < lowest)
		return -ENOMEM;
	uint64_t a = (top - initrd_size) & ~(4 * KiB - 1);
	if (a < lowest)
		return -ENOMEM;
	*addr = a;
	return 0;
}

static int load_initrd(struct guest_memory *gm, const struct bzimage_header *hdr, const char *path,
		       struct bzimage_boot *boot)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return error_set(-errno, "%s: %s", path, strerror(errno));
	struct stat st;
	int r = 0;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		r = error_set(-EINVAL, "%s: not a regular file", path);
		goto out;
	}
	uint64_t addr;
	if (bzimage_place_initrd(hdr, gm->low_size, st.st_size, &addr) < 0) {
		r = error_set(-ENOMEM, "%s: initrd of %lld bytes does not fit in guest memory",
			      path, (long long)st.st_size);
		goto out;
	}
	uint8_t *dst = guest_memory_ptr(gm, addr, st.st_size);
	if (!dst) {
		r = -EFAULT;
		goto out;
	}
	for (off_t done = 0; done < st.st_size;) {
		ssize_t n = pread(fd, dst + done, st.st_size - done, done);
		if (n <= 0) {
			r = error_set(-EIO, "%s: read failed: %s", path,
				      n < 0 ? strerror(errno) : "file shrank");
			goto out;
		}
		done += n;
	}
	boot->initrd_addr = addr;
	boot->initrd_size = st.st_size;
out:
	close(fd);
	return r;
}

/* Identity map of the first 4 GiB with 2 MiB pages: PML4, PDPT, then 4 page directories. */
static int write_page_tables(struct guest_memory *gm)
{
	uint8_t *pt = guest_memory_ptr(gm, LAYOUT_BOOT_PML4, 6 * 4096);
	if (!pt)
		return -EFAULT;
	memset(pt, 0, 6 * 4096);
	put_le64(pt, (LAYOUT_BOOT_PML4 + 0x1000) | 0x3);
	for (int i = 0; i < 4; i++)
		put_le64(pt + 0x1000 + 8 * i, (LAYOUT_BOOT_PML4 + 0x2000 + 0x1000 * i) | 0x3);
	for (uint64_t i = 0; i < 4 * 512; i++)
		put_le64(pt + 0x2000 + 8 * i, (i << 21) | 0x83); /* present, writable, 2 MiB */
	return 0;
}

static const uint64_t boot_gdt[BOOT_GDT_ENTRIES] = {
    0,
    0,
    0x00AF9B000000FFFFULL, /* 0x10: 64-bit code */
    0x00CF93000000FFFFULL, /* 0x18: data */
    0x00008B0000000FFFULL, /* 0x20: busy 64-bit TSS, required by VM entry */
};

int bzimage_load(struct guest_memory *gm, const uint8_t *img, size_t len,
		 const struct bzimage_header *hdr, const char *initrd_path, const char *cmdline,
		 const struct e820_entry *e820, unsigned e820_n, uint64_t rsdp,
		 struct bzimage_boot *boot)
{
	memset(boot, 0, sizeof(*boot));
	if (hdr->kernel_offset + hdr->kernel_size > len || hdr->header_end > len)
		return error_set(-EINVAL, "kernel image is truncated");
	if (guest_memory_write(gm, LAYOUT_KERNEL_START, img + hdr->kernel_offset,
			       hdr->kernel_size) < 0 ||
	    kernel_end(hdr) > gm->low_size)
		return error_set(-ENOMEM, "kernel needs more guest memory");
	size_t cl = strlen(cmdline);
	uint64_t clmax = hdr->cmdline_size < LAYOUT_BOOT_CMDLINE_MAX - 1
			     ? hdr->cmdline_size
			     : LAYOUT_BOOT_CMDLINE_MAX - 1;
	if (cl > clmax)
		return error_set(-E2BIG, "command line is %zu bytes, the kernel accepts %llu", cl,
				 (unsigned long long)clmax);
	if (guest_memory_write(gm, LAYOUT_BOOT_CMDLINE, cmdline, cl + 1) < 0)
		return -EFAULT;
	if (initrd_path) {
		int r = load_initrd(gm, hdr, initrd_path, boot);
		if (r < 0)
			return r;
	}
	if (e820_n > BP_E820_MAX)
		return -EINVAL;

	uint8_t *zp = guest_memory_ptr(gm, LAYOUT_BOOT_ZERO_PAGE, 4096);
	if (!zp)
		return -EFAULT;
	memset(zp, 0, 4096);
	memcpy(zp + HDR_START, img + HDR_START, hdr->header_end - HDR_START);
	zp[HDR_TYPE_OF_LOADER] = 0xFF;
	zp[HDR_LOADFLAGS] |= LOADED_HIGH;
	put_le32(zp + HDR_CMD_LINE_PTR, LAYOUT_BOOT_CMDLINE);
	put_le32(zp + BP_EXT_CMD_LINE_PTR, 0);
	put_le32(zp + HDR_RAMDISK_IMAGE, boot->initrd_addr);
	put_le32(zp + HDR_RAMDISK_SIZE, boot->initrd_size);
	put_le32(zp + BP_EXT_RAMDISK_IMAGE, boot->initrd_addr >> 32);
	put_le32(zp + BP_EXT_RAMDISK_SIZE, boot->initrd_size >> 32);
	put_le64(zp + BP_ACPI_RSDP, rsdp);
	zp[BP_E820_ENTRIES] = e820_n;
	memcpy(zp + BP_E820_TABLE, e820, e820_n * sizeof(*e820));

	if (write_page_tables(gm) < 0 ||
	    guest_memory_write(gm, LAYOUT_BOOT_GDT, boot_gdt, sizeof(boot_gdt)) < 0)
		return -EFAULT;
	boot->entry = LAYOUT_KERNEL_START + 0x200;
	boot->zero_page = LAYOUT_BOOT_ZERO_PAGE;
	return 0;
}

static void set_seg(struct kvm_segment *s, uint16_t sel, uint8_t type, int code)
{
	*s = (struct kvm_segment){
	    .base = 0,
	    .limit = 0xFFFFFFFF,
	    .selector = sel,
	    .type = type,
	    .present = 1,
	    .s = 1,
	    .l = code,
	    .db = !code,
	    .g = 1,
	};
}

void bzimage_boot_cpu(const struct bzimage_boot *boot, struct cpu_boot *cpu)
{
	*cpu = (struct cpu_boot){
	    .regs = {.rflags = 0x2,
		     .rip = boot->entry,
		     .rsi = boot->zero_page,
		     .rsp = LAYOUT_BOOT_STACK},
	    .tr = {.base = 0, .limit = 0xFFF, .selector = SEL_TSS, .type = 0xB, .present = 1},
	    .gdt = {.base = LAYOUT_BOOT_GDT, .limit = sizeof(boot_gdt) - 1},
	    .idt = {.base = 0, .limit = 0},
	    .cr0 = 0x80000011, /* PG | ET | PE */
	    .cr3 = LAYOUT_BOOT_PML4,
	    .cr4 = 0x20,   /* PAE */
	    .efer = 0x500, /* LME | LMA */
	};
	set_seg(&cpu->cs, SEL_CODE, 0xB, 1);
	set_seg(&cpu->ds, SEL_DATA, 0x3, 0);
	cpu->es = cpu->fs = cpu->gs = cpu->ss = cpu->ds;
}
