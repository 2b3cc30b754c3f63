/* Direct boot of an x86-64 Linux bzImage through the 64-bit boot protocol
 * (Documentation/arch/x86/boot.rst): no firmware, the vCPU starts in long mode at startup_64.
 */
#ifndef MINIVMM_VMM_BOOT_BZIMAGE_H
#define MINIVMM_VMM_BOOT_BZIMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "cpu/cpus.h"

struct guest_memory;
struct e820_entry;

/* What the loader needs from the setup header. */
struct bzimage_header {
	unsigned setup_sects; /* real-mode sectors after the boot sector */
	uint16_t version;     /* boot protocol version, >= 0x020C */
	uint8_t loadflags;
	uint16_t xloadflags;
	uint32_t initrd_addr_max; /* highest byte the initrd may occupy */
	uint32_t kernel_alignment;
	uint32_t cmdline_size; /* max command line length, without the NUL */
	uint64_t pref_address;
	uint32_t init_size;   /* memory the kernel needs from its load address while starting */
	size_t header_end;    /* bytes 0x1F1..header_end are copied into the zero page */
	size_t kernel_offset; /* protected-mode kernel: file offset and size */
	size_t kernel_size;
};

/* Parse and check the header of an image in memory (pure). On error returns -ENOEXEC (or -EINVAL)
 * with a one-line reason recorded (lib/error.h), e.g. "no HdrS signature: not a bzImage". */
int bzimage_parse(const uint8_t *img, size_t len, struct bzimage_header *hdr);

struct bzimage_boot {
	uint64_t entry;	    /* RIP */
	uint64_t zero_page; /* RSI */
	uint64_t initrd_addr, initrd_size;
};

/* Where the initrd goes: as high as allowed (below initrd_addr_max, the end of low RAM and
 * `ram_top`), page aligned, never over [LAYOUT_KERNEL_START, kernel_end). Pure; -ENOMEM if it does
 * not fit. */
int bzimage_place_initrd(const struct bzimage_header *hdr, uint64_t ram_low_end,
			 uint64_t initrd_size, uint64_t *addr);

/* Load the kernel, initrd (a file path or NULL) and command line into guest memory, write the zero
 * page with the e820 map and the RSDP address, and the boot page tables and GDT. */
int bzimage_load(struct guest_memory *gm, const uint8_t *img, size_t len,
		 const struct bzimage_header *hdr, const char *initrd_path, const char *cmdline,
		 const struct e820_entry *e820, unsigned e820_n, uint64_t rsdp,
		 struct bzimage_boot *boot);

/* The boot vCPU's registers for the kernel's 64-bit entry: paging on with the boot page tables,
 * flat segments of the boot GDT, RSI at the zero page (cpus_reset() applies them). Pure. */
void bzimage_boot_cpu(const struct bzimage_boot *boot, struct cpu_boot *cpu);

#endif
