/* PCI bus logic with a fake bus (no KVM): mechanism 1, host bridge, BAR sizing and moving,
 * COMMAND decode bits, read-only bits, the capability chain, INTx sharing, MSI and MSI-X. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "devices/io_bus.h"
#include "devices/pci.h"
#include "memory/layout.h"

struct fake {
	struct io_bus pio, mmio;
	struct pci_bus *bus;
	bool gsi[LAYOUT_IOAPIC_PINS];
	unsigned gsi_calls;
	unsigned msis;
	uint64_t msi_addr;
	uint32_t msi_data;
	unsigned resets;
	unsigned bar_hits;
	uint64_t bar_off;
};

static struct fake F;

static int fake_irq(void *o, unsigned gsi, bool level)
{
	(void)o;
	assert_true(gsi < LAYOUT_IOAPIC_PINS);
	F.gsi[gsi] = level;
	F.gsi_calls++;
	return 0;
}

static int fake_msi(void *o, uint64_t addr, uint32_t data)
{
	(void)o;
	F.msis++;
	F.msi_addr = addr;
	F.msi_data = data;
	return 0;
}

static void fake_reset(void *o)
{
	(void)o;
	F.resets++;
}

static void dev_bar(struct pci_device *dev, unsigned bar, uint64_t off, uint8_t *data, unsigned len,
		    bool is_write)
{
	(void)dev;
	(void)bar;
	F.bar_hits++;
	F.bar_off = off;
	if (!is_write)
		memset(data, 0xAB, len);
}

static const struct pci_device_ops dev_ops = {.bar_access = dev_bar};

static int setup(void **state)
{
	(void)state;
	memset(&F, 0, sizeof(F));
	assert_int_equal(io_bus_init(&F.pio), 0);
	assert_int_equal(io_bus_init(&F.mmio), 0);
	struct pci_bus_ops ops = {
	    .set_irq = fake_irq, .signal_msi = fake_msi, .reset = fake_reset, .opaque = &F};
	assert_int_equal(pci_bus_create(&F.pio, &F.mmio, &ops, &F.bus), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	pci_bus_destroy(F.bus);
	io_bus_destroy(&F.pio);
	io_bus_destroy(&F.mmio);
	return 0;
}

static uint32_t pio_in(uint16_t port, unsigned len)
{
	uint8_t d[4] = {0};
	io_bus_access(&F.pio, port, d, len, false);
	uint32_t v = 0;
	memcpy(&v, d, len);
	return v;
}

static void pio_out(uint16_t port, unsigned len, uint32_t v)
{
	uint8_t d[4];
	memcpy(d, &v, 4);
	io_bus_access(&F.pio, port, d, len, true);
}

static uint32_t cfg_in(unsigned slot, unsigned reg, unsigned len)
{
	pio_out(0xCF8, 4, 0x80000000u | slot << 11 | (reg & 0xFC));
	return pio_in(0xCFC + (reg & 3), len);
}

static void cfg_out(unsigned slot, unsigned reg, unsigned len, uint32_t v)
{
	pio_out(0xCF8, 4, 0x80000000u | slot << 11 | (reg & 0xFC));
	pio_out(0xCFC + (reg & 3), len, v);
}

static void test_mechanism1(void **state)
{
	(void)state;
	pio_out(0xCF8, 4, 0x80000000);
	assert_int_equal(pio_in(0xCF8, 4), 0x80000000); /* Linux's type-1 probe reads it back */
	assert_int_equal(cfg_in(0, 0, 4), 0x12378086);
	assert_int_equal(cfg_in(0, 0x0A, 2), 0x0600); /* host bridge class */
	assert_int_equal(cfg_in(0, 0x2C, 4), 0x11001AF4);
	assert_int_equal(cfg_in(0, 0x02, 2), 0x1237);
	assert_int_equal(cfg_in(0, 0x03, 1), 0x12);
	assert_int_equal(cfg_in(5, 0, 4), 0xFFFFFFFF); /* empty slot */
	pio_out(0xCF8, 4, 0x80000000u | 1 << 8);       /* function 1 */
	assert_int_equal(pio_in(0xCFC, 4), 0xFFFFFFFF);
	pio_out(0xCF8, 4, 0x80010000u); /* bus 1 */
	assert_int_equal(pio_in(0xCFC, 4), 0xFFFFFFFF);
	pio_out(0xCF8, 4, 0x00000000u); /* disabled */
	assert_int_equal(pio_in(0xCFC, 4), 0xFFFFFFFF);
	/* read-only IDs */
	cfg_out(0, 0, 4, 0);
	assert_int_equal(cfg_in(0, 0, 4), 0x12378086);
	/* misaligned data access */
	pio_out(0xCF8, 4, 0x80000000);
	assert_int_equal(pio_in(0xCFD, 2) & 0xFFFF, 0xFFFF);
}

/* i440FX PAM0-6 and SMRAM: stored as SeaBIOS writes them (dword read-modify-write). */
static void test_host_bridge_pam(void **state)
{
	(void)state;
	assert_int_equal(cfg_in(0, 0x58, 4), 0);
	cfg_out(0, 0x58, 4, 0x30000000u | 0x12); /* PAM0 = 0x30; 0x58 itself is not writable */
	cfg_out(0, 0x5C, 4, 0x33333333u);
	assert_int_equal(cfg_in(0, 0x58, 4), 0x30000000u);
	assert_int_equal(cfg_in(0, 0x5C, 4), 0x33333333u);
	cfg_out(0, 0x5F, 1, 0x11);
	assert_int_equal(cfg_in(0, 0x5F, 1), 0x11);
	assert_int_equal(cfg_in(0, 0x60, 1), 0); /* past PAM6: not writable */
	cfg_out(0, 0x60, 1, 0xFF);
	assert_int_equal(cfg_in(0, 0x60, 1), 0);
	assert_int_equal(cfg_in(0, 0x72, 1), 0x02); /* SMRAM: the A segment */
	cfg_out(0, 0x72, 1, 0xFF);
	assert_int_equal(cfg_in(0, 0x72, 1), 0x7A);
}

static void test_reset_register(void **state)
{
	(void)state;
	pio_out(0xCF9, 1, 0x02);
	assert_int_equal(F.resets, 0);
	assert_int_equal(pio_in(0xCF9, 1), 0x02);
	pio_out(0xCF9, 1, 0x06);
	assert_int_equal(F.resets, 1);
	pio_out(0xCF9, 1, 0x0E);
	assert_int_equal(F.resets, 2);
	pio_out(0xCFB, 1, 0x01); /* Linux's probe pokes here: harmless */
	assert_int_equal(F.resets, 2);
}

static struct pci_device dev;

static void add_device(void)
{
	memset(&dev, 0, sizeof(dev));
	dev.vendor_id = 0x1234;
	dev.device_id = 0x5678;
	dev.class_code = 0x010802;
	dev.irq_pin = 1;
	dev.bars[0] = (struct pci_bar){.type = PCI_BAR_MEM64, .size = 0x4000};
	dev.bars[2] = (struct pci_bar){.type = PCI_BAR_IO, .size = 0x20};
	dev.bars[3] = (struct pci_bar){.type = PCI_BAR_MEM32, .size = 0x1000, .prefetchable = true};
	dev.ops = &dev_ops;
	assert_int_equal(pci_msi_init(&dev, 2), 0);
	assert_int_equal(pci_msix_init(&dev, 8, 0, 0x2000, 0x3000), 0);
	assert_int_equal(pci_device_register(F.bus, &dev, 3), 0);
}

static void test_bars(void **state)
{
	(void)state;
	add_device();
	uint32_t b0 = cfg_in(3, 0x10, 4), b1 = cfg_in(3, 0x14, 4);
	assert_int_equal(b0 & 0xF, 0x4); /* 64-bit, not prefetchable */
	uint64_t addr = ((uint64_t)b1 << 32) | (b0 & ~0xFu);
	assert_true(addr >= LAYOUT_PCI_MMIO32_START && addr < LAYOUT_PCI_MMIO32_END);
	assert_int_equal(addr % 0x4000, 0);
	uint32_t io = cfg_in(3, 0x18, 4);
	assert_int_equal(io & 1, 1);
	assert_true((io & ~3u) >= LAYOUT_PORT_PCI_IO_START);
	assert_int_equal(cfg_in(3, 0x1C, 4) & 0xF, 0x8); /* prefetchable 32-bit */
	/* firmware-like: decoding on, BAR live */
	assert_int_equal(cfg_in(3, 0x04, 2) & 3, 3);
	uint8_t d[4];
	assert_true(io_bus_access(&F.mmio, addr + 0x10, d, 4, false));
	assert_int_equal(F.bar_off, 0x10);
	assert_true(io_bus_access(&F.pio, (io & ~3u) + 4, d, 1, false));

	/* sizing */
	cfg_out(3, 0x04, 2, 0); /* decoding off first, as Linux does */
	assert_false(io_bus_access(&F.mmio, addr + 0x10, d, 4, false));
	cfg_out(3, 0x10, 4, 0xFFFFFFFF);
	cfg_out(3, 0x14, 4, 0xFFFFFFFF);
	assert_int_equal(cfg_in(3, 0x10, 4), 0xFFFFC004);
	assert_int_equal(cfg_in(3, 0x14, 4), 0xFFFFFFFF);
	cfg_out(3, 0x18, 4, 0xFFFFFFFF);
	assert_int_equal(cfg_in(3, 0x18, 4), 0xFFFFFFE1);
	cfg_out(3, 0x1C, 4, 0xFFFFFFFF);
	assert_int_equal(cfg_in(3, 0x1C, 4), 0xFFFFF008);
	assert_int_equal(cfg_in(3, 0x20, 4), 0); /* unimplemented BAR */
	cfg_out(3, 0x20, 4, 0xFFFFFFFF);
	assert_int_equal(cfg_in(3, 0x20, 4), 0);

	/* move BAR0 to a new address and turn memory decoding on */
	cfg_out(3, 0x10, 4, 0xD0000000);
	cfg_out(3, 0x14, 4, 0);
	cfg_out(3, 0x18, 4, 0x2000);
	cfg_out(3, 0x1C, 4, 0xD0010000);
	cfg_out(3, 0x04, 2, PCI_COMMAND_MEMORY);
	assert_false(io_bus_access(&F.mmio, addr + 0x10, d, 4, false));
	assert_true(io_bus_access(&F.mmio, 0xD0000000 + 0x20, d, 4, false));
	assert_int_equal(F.bar_off, 0x20);
	assert_false(io_bus_access(&F.pio, 0x2000, d, 1, false)); /* I/O decode still off */
	cfg_out(3, 0x04, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_IO);
	assert_true(io_bus_access(&F.pio, 0x2000, d, 1, false));
	/* a BAR the guest puts on top of another device's is left unmapped, not crashed */
	cfg_out(3, 0x1C, 4, 0xD0000000);
	assert_true(io_bus_access(&F.mmio, 0xD0000000 + 0x20, d, 4, false));
}

static void test_command_and_status(void **state)
{
	(void)state;
	add_device();
	cfg_out(3, 0x04, 2, 0xFFFF);
	assert_int_equal(cfg_in(3, 0x04, 2), 0x0547); /* only implemented bits stick */
	/* STATUS: capability list bit read-only, error bits write-1-to-clear */
	assert_int_equal(cfg_in(3, 0x06, 2) & PCI_STATUS_CAP_LIST, PCI_STATUS_CAP_LIST);
	cfg_out(3, 0x06, 2, 0xFFFF);
	assert_int_equal(cfg_in(3, 0x06, 2) & PCI_STATUS_CAP_LIST, PCI_STATUS_CAP_LIST);
	assert_int_equal(cfg_in(3, 0x3D, 1), 1); /* INTA, read-only */
	cfg_out(3, 0x3D, 1, 3);
	assert_int_equal(cfg_in(3, 0x3D, 1), 1);
	assert_int_equal(cfg_in(3, 0x3C, 1), layout_pci_intx_gsi(3, 0));
	cfg_out(3, 0x3C, 1, 11);
	assert_int_equal(cfg_in(3, 0x3C, 1), 11);
}

static void test_capabilities(void **state)
{
	(void)state;
	add_device();
	unsigned seen = 0, ptr = cfg_in(3, PCI_CAP_PTR, 1);
	bool msi = false, msix = false;
	while (ptr && seen < 48) {
		assert_true(ptr >= 0x40 && ptr % 4 == 0);
		unsigned id = cfg_in(3, ptr, 1);
		msi |= id == PCI_CAP_ID_MSI;
		msix |= id == PCI_CAP_ID_MSIX;
		ptr = cfg_in(3, ptr + 1, 1);
		seen++;
	}
	assert_true(msi && msix);
	assert_int_equal(seen, 2);
	/* the chain is read-only */
	unsigned first = cfg_in(3, PCI_CAP_PTR, 1);
	cfg_out(3, PCI_CAP_PTR, 1, 0x80);
	cfg_out(3, first + 1, 1, 0x44);
	assert_int_equal(cfg_in(3, PCI_CAP_PTR, 1), first);
	assert_int_not_equal(cfg_in(3, first + 1, 1), 0x44);
	/* running out of config space */
	struct pci_device d2;
	memset(&d2, 0, sizeof(d2));
	int n = 0;
	while (pci_add_capability(&d2, 0x09, 16) >= 0)
		n++;
	assert_int_equal(n, (256 - 0x40) / 16);
	assert_int_equal(pci_add_capability(&d2, 0x09, 16), -ENOSPC);
}

static void test_intx(void **state)
{
	(void)state;
	add_device();
	unsigned gsi = layout_pci_intx_gsi(3, 0);
	static struct pci_device other; /* slot 11 shares the GSI: (11 + 0) % 8 == 3 */
	memset(&other, 0, sizeof(other));
	other.vendor_id = 0x1111;
	other.irq_pin = 1;
	assert_int_equal(pci_device_register(F.bus, &other, 11), 0);
	assert_int_equal(layout_pci_intx_gsi(11, 0), gsi);
	pci_irq_assert(&dev);
	assert_true(F.gsi[gsi]);
	assert_true(cfg_in(3, 0x06, 2) & PCI_STATUS_INTERRUPT);
	pci_irq_assert(&other);
	pci_irq_deassert(&dev);
	assert_true(F.gsi[gsi]); /* still held by the other device */
	pci_irq_deassert(&other);
	assert_false(F.gsi[gsi]);
	assert_false(cfg_in(3, 0x06, 2) & PCI_STATUS_INTERRUPT);
	/* INTx disable masks the line while the device still asserts it */
	pci_irq_assert(&dev);
	assert_true(F.gsi[gsi]);
	cfg_out(3, 0x04, 2, PCI_COMMAND_INTX_DISABLE | PCI_COMMAND_MEMORY);
	assert_false(F.gsi[gsi]);
	assert_true(cfg_in(3, 0x06, 2) & PCI_STATUS_INTERRUPT);
	cfg_out(3, 0x04, 2, PCI_COMMAND_MEMORY);
	assert_true(F.gsi[gsi]);
	pci_irq_deassert(&dev);
	assert_false(F.gsi[gsi]);
}

static unsigned find_cap(unsigned slot, unsigned id)
{
	for (unsigned p = cfg_in(slot, PCI_CAP_PTR, 1); p; p = cfg_in(slot, p + 1, 1))
		if (cfg_in(slot, p, 1) == id)
			return p;
	return 0;
}

static void test_msi(void **state)
{
	(void)state;
	add_device();
	unsigned c = find_cap(3, PCI_CAP_ID_MSI);
	assert_int_not_equal(c, 0);
	assert_int_equal(pci_msi_notify(&dev, 0), -ENODEV);   /* nothing enabled: use INTx */
	assert_int_equal(cfg_in(3, c + 2, 2) & 0x18E, 0x184); /* 64-bit, maskable, 4 vectors */
	cfg_out(3, c + 4, 4, 0xFEE00003);
	assert_int_equal(cfg_in(3, c + 4, 4), 0xFEE00000); /* low bits read-only */
	cfg_out(3, c + 8, 4, 0);
	cfg_out(3, c + 12, 2, 0x4040);
	cfg_out(3, c + 2, 2, 0x0021);			 /* enable, 4 vectors */
	assert_int_equal(pci_msi_notify(&dev, 1), -EIO); /* bus mastering off */
	cfg_out(3, 0x04, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	assert_int_equal(pci_msi_notify(&dev, 1), 0);
	assert_int_equal(F.msis, 1);
	assert_int_equal(F.msi_addr, 0xFEE00000);
	assert_int_equal(F.msi_data, 0x4041);
	assert_int_equal(pci_msi_notify(&dev, 4), -EINVAL);
	/* masked: pending, delivered on unmask */
	cfg_out(3, c + 16, 4, 0x4);
	assert_int_equal(pci_msi_notify(&dev, 2), 0);
	assert_int_equal(F.msis, 1);
	assert_int_equal(cfg_in(3, c + 20, 4), 0x4);
	cfg_out(3, c + 20, 4, 0); /* pending bits are read-only */
	assert_int_equal(cfg_in(3, c + 20, 4), 0x4);
	cfg_out(3, c + 16, 4, 0);
	assert_int_equal(F.msis, 2);
	assert_int_equal(F.msi_data, 0x4042);
	assert_int_equal(cfg_in(3, c + 20, 4), 0);
}

static uint32_t mmio_in32(uint64_t a)
{
	uint8_t d[4];
	io_bus_access(&F.mmio, a, d, 4, false);
	uint32_t v;
	memcpy(&v, d, 4);
	return v;
}

static void mmio_out32(uint64_t a, uint32_t v)
{
	uint8_t d[4];
	memcpy(d, &v, 4);
	io_bus_access(&F.mmio, a, d, 4, true);
}

static void test_msix(void **state)
{
	(void)state;
	add_device();
	unsigned c = find_cap(3, PCI_CAP_ID_MSIX);
	assert_int_not_equal(c, 0);
	assert_int_equal(cfg_in(3, c + 2, 2) & 0x7FF, 7); /* 8 vectors */
	assert_int_equal(cfg_in(3, c + 4, 4), 0x2000);	  /* table in BAR0 */
	assert_int_equal(cfg_in(3, c + 8, 4), 0x3000);
	uint64_t bar = ((uint64_t)cfg_in(3, 0x14, 4) << 32) | (cfg_in(3, 0x10, 4) & ~0xFu);
	uint64_t t = bar + 0x2000, pba = bar + 0x3000;
	cfg_out(3, 0x04, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	assert_int_equal(mmio_in32(t + 5 * 16 + 12), 1); /* entries start masked */
	mmio_out32(t + 5 * 16 + 0, 0xFEE01000);
	mmio_out32(t + 5 * 16 + 4, 0);
	mmio_out32(t + 5 * 16 + 8, 0x55);
	assert_int_equal(mmio_in32(t + 5 * 16 + 8), 0x55);
	cfg_out(3, c + 2, 2, 0x8000); /* enable MSI-X */
	assert_int_equal(pci_msi_notify(&dev, 5), 0);
	assert_int_equal(F.msis, 0); /* masked: pending */
	assert_int_equal(mmio_in32(pba), 1u << 5);
	mmio_out32(pba, 0); /* PBA is read-only */
	assert_int_equal(mmio_in32(pba), 1u << 5);
	mmio_out32(t + 5 * 16 + 12, 0); /* unmask: the pending message goes out */
	assert_int_equal(F.msis, 1);
	assert_int_equal(F.msi_addr, 0xFEE01000);
	assert_int_equal(F.msi_data, 0x55);
	assert_int_equal(mmio_in32(pba), 0);
	/* function mask */
	cfg_out(3, c + 2, 2, 0xC000);
	assert_int_equal(pci_msi_notify(&dev, 5), 0);
	assert_int_equal(F.msis, 1);
	cfg_out(3, c + 2, 2, 0x8000);
	assert_int_equal(F.msis, 2);
	assert_int_equal(pci_msi_notify(&dev, 8), -EINVAL);
	/* odd accesses to the table are ignored, other BAR offsets go to the device */
	uint8_t d[8];
	io_bus_access(&F.mmio, t + 1, d, 2, false);
	assert_int_equal(d[0], 0xFF);
	F.bar_hits = 0;
	mmio_in32(bar + 0x100);
	assert_int_equal(F.bar_hits, 1);
	/* bad MSI-X declarations are refused */
	struct pci_device bad;
	memset(&bad, 0, sizeof(bad));
	bad.bars[1] = (struct pci_bar){.type = PCI_BAR_MEM32, .size = 0x1000};
	assert_int_equal(pci_msix_init(&bad, 8, 0, 0, 0x800), -EINVAL);	  /* BAR0 absent */
	assert_int_equal(pci_msix_init(&bad, 300, 1, 0, 0x800), -EINVAL); /* table too big */
	assert_int_equal(pci_msix_init(&bad, 8, 1, 0, 0x40), -EINVAL);	  /* overlap */
	assert_int_equal(pci_msix_init(&bad, 0, 1, 0, 0x800), -EINVAL);
}

static void test_register_errors(void **state)
{
	(void)state;
	struct pci_device d;
	memset(&d, 0, sizeof(d));
	d.bars[0] = (struct pci_bar){.type = PCI_BAR_MEM32, .size = 0x1001};
	assert_int_equal(pci_device_register(F.bus, &d, -1), -EINVAL);
	memset(&d, 0, sizeof(d));
	d.bars[5] = (struct pci_bar){.type = PCI_BAR_MEM64, .size = 0x1000};
	assert_int_equal(pci_device_register(F.bus, &d, -1), -EINVAL);
	memset(&d, 0, sizeof(d));
	assert_int_equal(pci_device_register(F.bus, &d, 0), -EBUSY); /* host bridge's slot */
	assert_int_equal(pci_device_register(F.bus, &d, 32), -EINVAL);
	d.irq_pin = 5;
	assert_int_equal(pci_device_register(F.bus, &d, -1), -EINVAL);
	d.irq_pin = 0;
	assert_int_equal(pci_device_register(F.bus, &d, -1), 0);
	assert_int_equal(d.slot, 1);
	pci_device_unregister(&d);
	assert_int_equal(cfg_in(1, 0, 4), 0xFFFFFFFF);
}

/* A configuration-only function beyond function 0 (OVMF's PIIX4 PM at 00:01.3). */
static void test_function(void **state)
{
	(void)state;
	struct pci_device fn0, pm, bad;
	memset(&fn0, 0, sizeof(fn0));
	memset(&pm, 0, sizeof(pm));
	fn0.vendor_id = 0x1AF4;
	assert_int_equal(pci_device_register(F.bus, &fn0, 1), 0);
	pm.vendor_id = 0x8086;
	pm.device_id = 0x7113;
	pm.cfg[0x40] = 0x01;
	pm.cfg[0x41] = 0x06;
	pm.cfg[0x80] = 0x01;
	assert_int_equal(pci_function_register(F.bus, &pm, 1, 3), 0);
	/* 00:01.3 through mechanism 1: its IDs and its own registers; 00:01.1 is empty. */
	assert_int_equal(cfg_in(1, 0, 4) & 0xFFFF, 0x1AF4);
	pio_out(0xCF8, 4, 0x80000000u | 1 << 11 | 3 << 8 | 0x00);
	assert_int_equal(pio_in(0xCFC, 4), 0x71138086);
	pio_out(0xCF8, 4, 0x80000000u | 1 << 11 | 3 << 8 | 0x40);
	assert_int_equal(pio_in(0xCFC, 4), 0x0601);
	pio_out(0xCFC, 4, 0xB001); /* read-only: OVMF would move it */
	assert_int_equal(pio_in(0xCFC, 4), 0x0601);
	pio_out(0xCF8, 4, 0x80000000u | 1 << 11 | 1 << 8);
	assert_int_equal(pio_in(0xCFC, 4), 0xFFFFFFFF);
	/* Function 0 does not announce it. */
	assert_int_equal(cfg_in(1, 0x0E, 1) & 0x80, 0);
	/* Reset keeps it; slot and function taken, bad numbers, BARs refused. */
	pci_config_write(F.bus, 1 << 3 | 3, 0x3C, 1, 9);
	assert_int_equal(pci_config_read(F.bus, 1 << 3 | 3, 0x3C, 1), 9);
	pci_bus_reset(F.bus);
	assert_int_equal(pci_config_read(F.bus, 1 << 3 | 3, 0x3C, 1), 0);
	assert_int_equal(pci_config_read(F.bus, 1 << 3 | 3, 0x80, 1), 1);
	memset(&bad, 0, sizeof(bad));
	assert_int_equal(pci_function_register(F.bus, &bad, 1, 3), -EBUSY);
	assert_int_equal(pci_function_register(F.bus, &bad, 1, 0), -EINVAL);
	assert_int_equal(pci_function_register(F.bus, &bad, 1, 8), -EINVAL);
	assert_int_equal(pci_function_register(F.bus, &bad, 32, 1), -EINVAL);
	bad.bars[0] = (struct pci_bar){.type = PCI_BAR_IO, .size = 0x10};
	assert_int_equal(pci_function_register(F.bus, &bad, 2, 1), -EINVAL);
	pci_device_unregister(&pm);
	assert_int_equal(pci_config_read(F.bus, 1 << 3 | 3, 0, 4), 0xFFFFFFFF);
	pci_device_unregister(&fn0);
	/* Left registered at teardown: pci_bus_destroy removes it. */
	assert_int_equal(pci_function_register(F.bus, &pm, 5, 7), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_mechanism1, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_host_bridge_pam, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reset_register, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bars, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_command_and_status, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_capabilities, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_intx, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_msi, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_msix, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_register_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_function, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
