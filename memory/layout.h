/* minivmm's x86 machine: where things live in guest-physical memory, port space and interrupts.
 * One place, so that the e820 map, the ACPI tables and the devices always agree. */
#ifndef MINIVMM_MEMORY_LAYOUT_H
#define MINIVMM_MEMORY_LAYOUT_H

#define KiB (1024ULL)
#define MiB (1024ULL * KiB)
#define GiB (1024ULL * MiB)

/* Guest RAM: [0, min(ram, LOW_RAM_END)) and, for the rest, from HIGH_RAM_START up. */
#define LAYOUT_LOW_RAM_END 0xC0000000ULL /* 3 GiB: the 32-bit PCI hole starts here */
#define LAYOUT_HIGH_RAM_START (4 * GiB)

/* Low memory used by direct boot (all below 1 MiB, inside RAM). */
#define LAYOUT_BOOT_GDT 0x500ULL
#define LAYOUT_BOOT_ZERO_PAGE 0x7000ULL
#define LAYOUT_BOOT_STACK 0x8ff0ULL
#define LAYOUT_BOOT_PML4 0x9000ULL /* 0x9000..0xefff: PML4, PDPT, 4 page directories */
#define LAYOUT_BOOT_CMDLINE 0x20000ULL
#define LAYOUT_BOOT_CMDLINE_MAX 0x10000ULL
#define LAYOUT_EBDA_START 0x9fc00ULL /* RAM below this is usable; [EBDA, 1 MiB) is reserved */
#define LAYOUT_ACPI_START                                                                          \
	0xE0000ULL		    /* ACPI tables (RSDP first, found by the BIOS-area scan too)   \
				     */
#define LAYOUT_ACPI_SIZE 0x20000ULL /* up to 1 MiB */
#define LAYOUT_KERNEL_START 0x100000ULL /* 1 MiB: protected-mode kernel */

/* 32-bit MMIO: PCI BARs from the PCI hole up to the IOAPIC. */
#define LAYOUT_PCI_MMIO32_START 0xC0000000ULL
#define LAYOUT_PCI_MMIO32_END 0xFEC00000ULL /* exclusive */
#define LAYOUT_IOAPIC_BASE 0xFEC00000ULL
#define LAYOUT_LAPIC_BASE 0xFEE00000ULL
/* KVM's real-mode helper pages (identity-map page, then the 3-page TSS), where QEMU keeps them:
 * below the 16 MiB that firmware flash may take under 4 GiB. */
#define LAYOUT_KVM_HELPER_START 0xFEFFC000ULL
#define LAYOUT_KVM_HELPER_SIZE 0x4000ULL
#define LAYOUT_FIRMWARE_MAX_SIZE (16 * MiB) /* firmware images end at 4 GiB */
/* 64-bit MMIO for large BARs. */
#define LAYOUT_PCI_MMIO64_START                                                                    \
	(256 * GiB) /* below 2^39: addressable with 40 physical-address bits */
#define LAYOUT_PCI_MMIO64_SIZE (64 * GiB)

/* Port I/O. */
#define LAYOUT_PORT_PIC_MASTER 0x20
#define LAYOUT_PORT_PIT 0x40
#define LAYOUT_PORT_I8042 0x60 /* 0x60 and 0x64: reset through the keyboard controller */
#define LAYOUT_PORT_RTC 0x70   /* 0x70, 0x71: CMOS RTC */
#define LAYOUT_PORT_POST 0x80
#define LAYOUT_PORT_COM1 0x3F8
#define LAYOUT_PORT_PCI_CONFIG 0xCF8 /* 0xCF8 address, 0xCFC..0xCFF data */
#define LAYOUT_PORT_RESET 0xCF9	     /* reset control register */
#define LAYOUT_PORT_ACPI_PM 0x600    /* PM1a_EVT (4), PM1a_CNT (2) at +4, PM_TMR (4) at +8 */
#define LAYOUT_PORT_ACPI_GPE0 0x620  /* GPE0 block: 4 bytes status, 4 bytes enable */
#define LAYOUT_PORT_ACPI_GPE0_LEN 8
#define LAYOUT_PORT_CPU_HOTPLUG 0x0CD8	/* 12-byte CPU hot-plug register block */
#define LAYOUT_PORT_PCI_HOTPLUG 0x0CC0	/* 16-byte PCI hot-plug register block (bus 0) */
#define LAYOUT_PORT_PCI_IO_START 0x1000 /* PCI I/O BARs */
#define LAYOUT_PORT_PCI_IO_END 0x10000

/* Interrupts (GSIs on the in-kernel IOAPIC; 0..15 are the ISA IRQs). */
#define LAYOUT_IRQ_COM1 4
#define LAYOUT_IRQ_RTC 8
#define LAYOUT_IRQ_SCI 9
#define LAYOUT_IRQ_IDE_PRIMARY 14
#define LAYOUT_IRQ_IDE_SECONDARY 15
#define LAYOUT_GSI_PCI_FIRST 16 /* PCI INTx: slot s pin p (0=A) -> 16 + (s + p) % 8 */
#define LAYOUT_GSI_PCI_COUNT 8
#define LAYOUT_IOAPIC_PINS 24

static inline unsigned layout_pci_intx_gsi(unsigned slot, unsigned pin)
{
	return LAYOUT_GSI_PCI_FIRST + (slot + pin) % LAYOUT_GSI_PCI_COUNT;
}

#define LAYOUT_MAX_VCPUS 64

#endif
