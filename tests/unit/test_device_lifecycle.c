/* The device lifecycle (devices/device.h): creation by level and in registration order, reverse
 * destruction, a failure half way, quiesce and reset order; then the machine's real devices
 * created from the registry on a stub environment, each reset to its power-on values after the
 * guest changed it (serial registers, RTC, i8042, ACPI PM, PCI config and BARs, fw_cfg, the
 * debug console), and the requests devices make of the VM. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "devices/debugcon.h"
#include "devices/device.h"
#include "devices/fw_cfg.h"
#include "devices/disk.h"
#include "devices/storage.h"
#include "storage/core/block_aio.h"
#include "devices/io_bus.h"
#include "devices/pci.h"
#include "memory/guest_memory.h"
#include "memory/layout.h"
#include "devices/machine_config.h"
#include "lib/error.h"

/* --- fake devices: a log of calls --- */

static char calls[512];

static void log_call(const char *what, const char *name)
{
	size_t n = strlen(calls);
	snprintf(calls + n, sizeof(calls) - n, "%s%s:%s", n ? " " : "", what, name);
}

struct fake {
	const char *name;
	int create_ret, quiesce_ret;
};

static struct fake fakes[5] = {
    {.name = "storage1"}, {.name = "bus1"}, {.name = "plat1"}, {.name = "plat2"}, {.name = "pci1"},
};

#define FAKE_OPS(i)                                                                                \
	static int create##i(struct device_env *env, void **state)                                 \
	{                                                                                          \
		(void)env;                                                                         \
		log_call("create", fakes[i].name);                                                 \
		if (fakes[i].create_ret)                                                           \
			error_set(0, "%s refused", fakes[i].name);                                 \
		*state = &fakes[i];                                                                \
		return fakes[i].create_ret;                                                        \
	}
FAKE_OPS(0)
FAKE_OPS(1)
FAKE_OPS(2)
FAKE_OPS(3)
FAKE_OPS(4)

static int fake_quiesce(void *state)
{
	struct fake *f = state;
	log_call("quiesce", f->name);
	if (f->quiesce_ret)
		error_set(0, "%s busy", f->name);
	return f->quiesce_ret;
}

static void fake_reset(void *state)
{
	log_call("reset", ((struct fake *)state)->name);
}

static void fake_destroy(void *state)
{
	log_call("destroy", ((struct fake *)state)->name);
}

static const struct device_ops fake_ops[5] = {
    {"storage1", create0, fake_quiesce, fake_reset, fake_destroy},
    {"bus1", create1, NULL, fake_reset, fake_destroy},
    {"plat1", create2, NULL, NULL, fake_destroy}, /* stateless: no reset */
    {"plat2", create3, fake_quiesce, fake_reset, fake_destroy},
    {"pci1", create4, NULL, fake_reset, fake_destroy},
};

/* Registered out of level order on purpose. */
static const struct device_type fake_types[5] = {
    {&fake_ops[0], DEVICE_LEVEL_STORAGE},  {&fake_ops[1], DEVICE_LEVEL_BUS},
    {&fake_ops[2], DEVICE_LEVEL_PLATFORM}, {&fake_ops[3], DEVICE_LEVEL_PLATFORM},
    {&fake_ops[4], DEVICE_LEVEL_PCI},
};

static void test_order(void **state)
{
	(void)state;
	struct devices *d;
	struct device_env env = {0};
	calls[0] = 0;
	assert_int_equal(devices_create_types(fake_types, 5, &env, &d), 0);
	assert_string_equal(calls, "create:bus1 create:plat1 create:plat2 create:pci1 "
				   "create:storage1");
	assert_string_equal(devices_name(d, 0), "bus1");
	assert_string_equal(devices_name(d, 4), "storage1");
	assert_null(devices_name(d, 5));
	assert_ptr_equal(devices_find(d, "plat2"), &fakes[3]);
	assert_null(devices_find(d, "nothing"));

	calls[0] = 0;
	assert_int_equal(devices_quiesce(d), 0);
	devices_reset(d);
	assert_string_equal(calls, "quiesce:plat2 quiesce:storage1 reset:bus1 reset:plat2 "
				   "reset:pci1 reset:storage1");
	/* A quiesce that fails stops there, with the device's message. */
	fakes[3].quiesce_ret = -EBUSY;
	calls[0] = 0;
	assert_int_equal(devices_quiesce(d), -EBUSY);
	assert_string_equal(error_msg(), "plat2 busy");
	assert_string_equal(calls, "quiesce:plat2");
	fakes[3].quiesce_ret = 0;

	calls[0] = 0;
	devices_destroy(d);
	assert_string_equal(calls, "destroy:storage1 destroy:pci1 destroy:plat2 destroy:plat1 "
				   "destroy:bus1");
}

static void test_failure_half_way(void **state)
{
	(void)state;
	struct devices *d = (struct devices *)1;
	struct device_env env = {0};
	fakes[4].create_ret = -ENOSPC; /* pci1 */
	calls[0] = 0;
	assert_int_equal(devices_create_types(fake_types, 5, &env, &d), -ENOSPC);
	fakes[4].create_ret = 0;
	assert_null(d);
	assert_string_equal(error_msg(), "pci1 refused");
	/* Those made are destroyed in reverse; the one that failed undid itself; later levels
	 * never started. */
	assert_string_equal(calls, "create:bus1 create:plat1 create:plat2 create:pci1 "
				   "destroy:plat2 destroy:plat1 destroy:bus1");
}

/* --- the machine's devices --- */

struct machine {
	struct io_bus pio, mmio;
	struct guest_memory mem;
	struct machine_config cfg;
	struct device_env env;
	struct devices *devs;
	bool irq[24];
	unsigned resets, poweroffs, no_boots;
};

static struct machine M;

static int rec_irq(void *opaque, unsigned gsi, bool level)
{
	struct machine *m = opaque;
	if (gsi < 24)
		m->irq[gsi] = level;
	return 0;
}

static int rec_msi(void *opaque, uint64_t address, uint32_t data)
{
	(void)opaque, (void)address, (void)data;
	return 0;
}

static const struct device_irq_ops rec_irq_ops = {.set_irq = rec_irq, .signal_msi = rec_msi};

static void rec_request(void *opaque, enum device_request why)
{
	struct machine *m = opaque;
	if (why == DEVICE_REQUEST_RESET)
		m->resets++;
	else if (why == DEVICE_REQUEST_NO_BOOT)
		m->no_boots++;
	else
		m->poweroffs++;
}

static int machine_setup(void **state)
{
	(void)state;
	memset(&M, 0, sizeof(M));
	assert_int_equal(io_bus_init(&M.pio), 0);
	assert_int_equal(io_bus_init(&M.mmio), 0);
	assert_int_equal(guest_memory_create(&M.mem, 16 << 20), 0);
	M.env = (struct device_env){.pio = &M.pio,
				    .mmio = &M.mmio,
				    .mem = &M.mem,
				    .machine = &M.cfg, /* no disks */
				    .console_fd = -1,
				    .irq = &rec_irq_ops,
				    .request = rec_request,
				    .opaque = &M};
	if (devices_create(&M.env, &M.devs))
		fail_msg("%s", error_msg());
	return 0;
}

static int machine_teardown(void **state)
{
	(void)state;
	devices_destroy(M.devs);
	/* Every device took its ports and regions back. */
	assert_int_equal(M.pio.n, 0);
	assert_int_equal(M.mmio.n, 0);
	guest_memory_destroy(&M.mem);
	io_bus_destroy(&M.pio);
	io_bus_destroy(&M.mmio);
	return 0;
}

static void outb(uint16_t port, uint8_t v)
{
	assert_true(io_bus_access(&M.pio, port, &v, 1, true));
}

static uint8_t inb(uint16_t port)
{
	uint8_t v = 0;
	assert_true(io_bus_access(&M.pio, port, &v, 1, false));
	return v;
}

static void outw(uint16_t port, uint16_t v)
{
	uint8_t d[2] = {v & 0xFF, v >> 8};
	assert_true(io_bus_access(&M.pio, port, d, 2, true));
}

static uint16_t inw(uint16_t port)
{
	uint8_t d[2] = {0};
	assert_true(io_bus_access(&M.pio, port, d, 2, false));
	return d[0] | d[1] << 8;
}

static void test_registry_order(void **state)
{
	(void)state;
	/* The bus first, storage last; the platform devices between, each once. */
	assert_string_equal(devices_name(M.devs, 0), "pci-bus");
	unsigned n = 0;
	while (devices_name(M.devs, n))
		n++;
	assert_string_equal(devices_name(M.devs, n - 1), "storage");
	const char *platform[] = {"serial", "rtc", "i8042", "post", "acpi-pm"};
	for (unsigned i = 0; i < 5; i++)
		assert_non_null(devices_find(M.devs, platform[i]));
	assert_non_null(M.env.pci); /* published by the bus for later levels */
}

static void test_serial_reset(void **state)
{
	(void)state;
	const uint16_t com = LAYOUT_PORT_COM1;
	outb(com + 3, 0x80); /* DLAB */
	outb(com + 0, 0x01); /* 115200 baud */
	outb(com + 3, 0x1B); /* 8E1 */
	outb(com + 4, 0x0B); /* DTR, RTS, OUT2 */
	outb(com + 7, 0x5A);
	outb(com + 2, 0xC7); /* FIFO on */
	outb(com + 1, 0x02); /* THRE interrupt */
	assert_true(M.irq[LAYOUT_IRQ_COM1]);
	devices_reset(M.devs);
	assert_false(M.irq[LAYOUT_IRQ_COM1]); /* the line went down with the reset */
	assert_int_equal(inb(com + 3), 0x03);
	assert_int_equal(inb(com + 1), 0x00);
	assert_int_equal(inb(com + 2) & 0xCF, 0x01); /* no interrupt, FIFOs off */
	assert_int_equal(inb(com + 4), 0x00);
	assert_int_equal(inb(com + 7), 0x00);
	assert_int_equal(inb(com + 5), 0x60); /* THRE | TEMT, nothing received */
	outb(com + 3, 0x80);
	assert_int_equal(inb(com + 0), 12); /* 9600 baud again */
	assert_int_equal(inb(com + 1), 0);
	outb(com + 3, 0x03);
}

static void test_rtc_reset(void **state)
{
	(void)state;
	outb(LAYOUT_PORT_RTC, 0x0B);
	outb(LAYOUT_PORT_RTC + 1, 0x06 | 0x40); /* binary, 24 h, periodic interrupt */
	outb(LAYOUT_PORT_RTC, 0x0A);
	outb(LAYOUT_PORT_RTC + 1, 0x2F);
	outb(LAYOUT_PORT_RTC, 0x34); /* CMOS: memory above 16 MiB, set at creation */
	uint8_t above16 = inb(LAYOUT_PORT_RTC + 1);
	devices_reset(M.devs);
	outb(LAYOUT_PORT_RTC, 0x0B);
	assert_int_equal(inb(LAYOUT_PORT_RTC + 1), 0x02);
	outb(LAYOUT_PORT_RTC, 0x0A);
	assert_int_equal(inb(LAYOUT_PORT_RTC + 1) & 0x7F, 0x26);
	outb(LAYOUT_PORT_RTC, 0x34); /* battery-backed bytes stay */
	assert_int_equal(inb(LAYOUT_PORT_RTC + 1), above16);
}

static void test_i8042_reset_and_request(void **state)
{
	(void)state;
	const uint16_t data = LAYOUT_PORT_I8042, cmd = LAYOUT_PORT_I8042 + 4;
	outb(cmd, 0x60);
	outb(data, 0x47); /* configuration byte */
	outb(cmd, 0xAA);  /* self test: 0x55 waits in the output buffer */
	assert_true(inb(cmd) & 0x01);
	devices_reset(M.devs);
	assert_false(inb(cmd) & 0x01); /* output buffer empty */
	outb(cmd, 0x20);
	assert_int_equal(inb(data), 0x30);
	/* 0xFE pulses the reset line: a request to the VM, not a device's own business. */
	outb(cmd, 0xFE);
	assert_int_equal(M.resets, 1);
}

static void test_acpi_pm_reset_and_request(void **state)
{
	(void)state;
	const uint16_t pm = LAYOUT_PORT_ACPI_PM, gpe = LAYOUT_PORT_ACPI_GPE0;
	outw(pm + 2, 0x0100);		/* PWRBTN_EN */
	outb(gpe + 4, 0x04);		/* GPE0 bit 2 enabled */
	outw(pm + 4, 0x0001 | 5 << 10); /* SLP_TYP=5 without SLP_EN */
	uint8_t gpe_sts = 0x04;
	assert_true(io_bus_access(&M.pio, gpe, &gpe_sts, 1, false));
	devices_reset(M.devs);
	assert_int_equal(inw(pm + 2), 0);
	assert_int_equal(inw(pm + 4), 0x0001); /* SCI_EN only */
	assert_int_equal(inb(gpe + 4), 0);
	assert_int_equal(inw(pm + 0) & 0x0100, 0);
	assert_false(M.irq[LAYOUT_IRQ_SCI]);
	/* S5 asks the VM to power off. */
	outw(pm + 4, 0x0001 | 5 << 10 | 1 << 13);
	assert_int_equal(M.poweroffs, 1);
}

static void bar_access(struct pci_device *dev, unsigned bar, uint64_t offset, uint8_t *data,
		       unsigned len, bool is_write)
{
	(void)dev, (void)bar, (void)offset;
	if (!is_write)
		memset(data, 0xAB, len);
}

static const struct pci_device_ops bar_ops = {.bar_access = bar_access};

static void test_pci_reset(void **state)
{
	(void)state;
	struct pci_device dev = {.vendor_id = 0x1234,
				 .device_id = 0x5678,
				 .class_code = 0xFF0000,
				 .irq_pin = 1,
				 .ops = &bar_ops};
	dev.bars[0] = (struct pci_bar){.type = PCI_BAR_MEM32, .size = 4096};
	assert_int_equal(pci_device_register(M.env.pci, &dev, -1), 0);
	unsigned devfn = dev.slot << 3;
	uint32_t bar0 = pci_config_read(M.env.pci, devfn, PCI_BAR0, 4) & ~0xFu;
	uint16_t cmd0 = pci_config_read(M.env.pci, devfn, PCI_COMMAND, 2);
	uint8_t line0 = pci_config_read(M.env.pci, devfn, PCI_INTERRUPT_LINE, 1);
	uint8_t v[4];
	assert_true(io_bus_access(&M.mmio, bar0, v, 4, false));
	/* The guest moves the BAR, turns on bus mastering and sets the interrupt line. */
	uint32_t moved = bar0 + 0x100000;
	pci_config_write(M.env.pci, devfn, PCI_BAR0, 4, moved);
	pci_config_write(M.env.pci, devfn, PCI_COMMAND, 2, cmd0 | PCI_COMMAND_MASTER);
	pci_config_write(M.env.pci, devfn, PCI_INTERRUPT_LINE, 1, line0 ^ 0x0F);
	assert_true(io_bus_access(&M.mmio, moved, v, 4, false));
	assert_false(io_bus_access(&M.mmio, bar0, v, 4, false));
	pci_irq_assert(&dev);
	devices_reset(M.devs);
	assert_int_equal(pci_config_read(M.env.pci, devfn, PCI_BAR0, 4) & ~0xFu, bar0);
	assert_int_equal(pci_config_read(M.env.pci, devfn, PCI_COMMAND, 2), cmd0);
	assert_int_equal(pci_config_read(M.env.pci, devfn, PCI_INTERRUPT_LINE, 1), line0);
	assert_true(io_bus_access(&M.mmio, bar0, v, 4, false)); /* mapped back where it was */
	assert_false(io_bus_access(&M.mmio, moved, v, 4, false));
	assert_false(dev.intx_level); /* INTx lowered */
	pci_device_unregister(&dev);
}

/* --- firmware boot's devices: fw_cfg and the debug console, only without --kernel --- */

static void debugcon_puts(const char *s)
{
	for (; *s; s++) {
		uint8_t c = (uint8_t)*s;
		assert_true(io_bus_access(&M.pio, DEBUGCON_PORT, &c, 1, true));
	}
}

static void test_firmware_devices(void **state)
{
	(void)state;
	/* M.cfg has no kernel: firmware boots, so both are there and answer on their ports. */
	struct fw_cfg *c = fw_cfg_device_store(devices_find(M.devs, "fw_cfg"));
	assert_non_null(c);
	assert_int_equal(inb(DEBUGCON_PORT), DEBUGCON_READBACK);
	outw(FW_CFG_PORT_BASE, FW_CFG_SIGNATURE);
	assert_int_equal(inb(FW_CFG_PORT_BASE + 1), 'Q');
	assert_int_equal(inb(FW_CFG_PORT_BASE + 1), 'E');
	/* The VM fills the store; the guest reads it through the ports. */
	assert_int_equal(fw_cfg_add_u32(c, FW_CFG_NB_CPUS, 3), 0);
	outw(FW_CFG_PORT_BASE, FW_CFG_NB_CPUS);
	assert_int_equal(inb(FW_CFG_PORT_BASE + 1), 3);
	/* Reset: back to the signature at offset 0; the items stay. */
	outw(FW_CFG_PORT_BASE, FW_CFG_SIGNATURE);
	assert_int_equal(inb(FW_CFG_PORT_BASE + 1), 'Q');
	devices_reset(M.devs);
	assert_int_equal(inb(FW_CFG_PORT_BASE + 1), 'Q');
	outw(FW_CFG_PORT_BASE, FW_CFG_NB_CPUS);
	assert_int_equal(inb(FW_CFG_PORT_BASE + 1), 3);
	/* The log: an ordinary line asks nothing; SeaBIOS's boot failure ends the VM. */
	debugcon_puts("Booting from Hard Disk...\n");
	assert_int_equal(M.no_boots, 0);
	/* A half line is dropped by a reset: it cannot join the next boot's first line. */
	debugcon_puts("No bootable");
	devices_reset(M.devs);
	debugcon_puts(" device.\n");
	assert_int_equal(M.no_boots, 0);
	debugcon_puts("No bootable device.  Retrying in 2 seconds.\n");
	assert_int_equal(M.no_boots, 1);
	assert_int_equal(M.resets + M.poweroffs, 0);
}

static void test_firmware_devices_direct_boot(void **state)
{
	(void)state;
	devices_destroy(M.devs);
	M.cfg.kernel_boot = true;
	M.env.pci = NULL;
	if (devices_create(&M.env, &M.devs))
		fail_msg("%s", error_msg());
	assert_null(fw_cfg_device_store(devices_find(M.devs, "fw_cfg")));
	uint8_t v;
	assert_false(io_bus_access(&M.pio, FW_CFG_PORT_BASE + 1, &v, 1, false));
	assert_false(io_bus_access(&M.pio, DEBUGCON_PORT, &v, 1, false));
	devices_reset(M.devs); /* the absent ones have nothing to reset */
}

/* OVMF's PIIX4 PM function: only with --firmware efi, at 00:01.3, PMBA naming the PM block. */
static void test_piix4_pm_for_efi(void **state)
{
	(void)state;
	const unsigned devfn = 1 << 3 | 3;
	assert_null(devices_find(M.devs, "piix4-pm")); /* SeaBIOS: not there */
	assert_int_equal(pci_config_read(M.env.pci, devfn, 0, 4), 0xFFFFFFFF);
	devices_destroy(M.devs);
	M.cfg.firmware_efi = true;
	M.env.pci = NULL;
	if (devices_create(&M.env, &M.devs))
		fail_msg("%s", error_msg());
	assert_non_null(devices_find(M.devs, "piix4-pm"));
	assert_int_equal(pci_config_read(M.env.pci, devfn, 0, 4), 0x71138086);
	assert_int_equal(pci_config_read(M.env.pci, devfn, 0x40, 4), LAYOUT_PORT_ACPI_PM | 1);
	assert_int_equal(pci_config_read(M.env.pci, devfn, 0x80, 1), 1);
	pci_config_write(M.env.pci, devfn, 0x40, 4, 0xB001);
	devices_reset(M.devs);
	assert_int_equal(pci_config_read(M.env.pci, devfn, 0x40, 4), LAYOUT_PORT_ACPI_PM | 1);
	/* The PM timer it names answers there. */
	uint8_t t[4];
	assert_true(io_bus_access(&M.pio, LAYOUT_PORT_ACPI_PM + 8, t, 4, false));
	M.cfg.firmware_efi = false;
}

/* --- storage: quiesce waits for requests in flight, reset gives AHCI its power-on registers --- */

static char disk_dir[64];
static struct disk_config disk_cfg;

static int storage_setup(void **state)
{
	snprintf(disk_dir, sizeof(disk_dir), "/var/tmp/minivmm-test-lifecycle-XXXXXX");
	assert_non_null(mkdtemp(disk_dir));
	char path[128], arg[160];
	snprintf(path, sizeof(path), "%s/d.raw", disk_dir);
	assert_int_equal(truncate(path, 0), -1); /* not there yet */
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(truncate(path, 4 << 20), 0);
	snprintf(arg, sizeof(arg), "%s,bus=sata", path);
	assert_int_equal(disk_config_parse(arg, DISK_MEDIA_HDD, &disk_cfg), 0);
	machine_setup(state); /* with M.cfg zeroed: no disks yet */
	devices_destroy(M.devs);
	M.cfg.disks = &disk_cfg;
	M.cfg.ndisks = 1;
	M.env.pci = NULL;
	if (devices_create(&M.env, &M.devs))
		fail_msg("%s", error_msg());
	return 0;
}

static int storage_teardown(void **state)
{
	machine_teardown(state);
	disk_config_free(&disk_cfg);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", disk_dir);
	return system(cmd) == 0 ? 0 : -1;
}

static atomic_int read_done;

static void read_cb(struct block_aio_req *req, int ret)
{
	(void)req;
	assert_int_equal(ret, 0);
	atomic_store(&read_done, 1);
}

static uint32_t mmio_read32(uint64_t addr)
{
	uint8_t d[4];
	assert_true(io_bus_access(&M.mmio, addr, d, 4, false));
	return d[0] | d[1] << 8 | d[2] << 16 | (uint32_t)d[3] << 24;
}

static void mmio_write32(uint64_t addr, uint32_t v)
{
	uint8_t d[4] = {v, v >> 8, v >> 16, v >> 24};
	assert_true(io_bus_access(&M.mmio, addr, d, 4, true));
}

static void test_storage_quiesce_and_reset(void **state)
{
	(void)state;
	struct storage *st = devices_find(M.devs, "storage");
	assert_non_null(st);
	/* A request in flight: quiesce returns only after its callback ran (the storage's loop
	 * delivers it; the wait is woken by the completion, not a timer). */
	static uint8_t buf[4096];
	struct iovec iov = {buf, sizeof(buf)};
	struct block_aio_req req = {
	    .op = BLOCK_AIO_READ, .offset = 8192, .iov = &iov, .iovcnt = 1, .cb = read_cb};
	atomic_store(&read_done, 0);
	assert_int_equal(block_aio_submit(storage_disk(st, 0)->aio, &req), 0);
	assert_int_equal(devices_quiesce(M.devs), 0);
	assert_int_equal(atomic_load(&read_done), 1);

	/* The AHCI function: the one with class 01:06:01. */
	unsigned devfn = 0;
	for (unsigned slot = 1; slot < PCI_SLOTS && !devfn; slot++)
		if (pci_config_read(M.env.pci, slot << 3, 0x08, 4) >> 8 == 0x010601)
			devfn = slot << 3;
	assert_true(devfn != 0);
	uint64_t abar = pci_config_read(M.env.pci, devfn, 0x24, 4) & ~0xFu;
	mmio_write32(abar + 0x04, 0x80000002);	/* GHC: AE | IE */
	mmio_write32(abar + 0x100, 0x00100000); /* P0CLB */
	mmio_write32(abar + 0x108, 0x00200000); /* P0FB */
	assert_int_equal(mmio_read32(abar + 0x100), 0x00100000);
	devices_reset(M.devs);
	assert_int_equal(mmio_read32(abar + 0x04), 0x80000000);
	assert_int_equal(mmio_read32(abar + 0x100), 0);
	assert_int_equal(mmio_read32(abar + 0x108), 0);
	assert_int_equal(mmio_read32(abar + 0x124), 0x00000101); /* P0SIG: a disk again */
	/* The disk stayed open: it still reads. */
	atomic_store(&read_done, 0);
	assert_int_equal(block_aio_submit(storage_disk(st, 0)->aio, &req), 0);
	assert_int_equal(devices_quiesce(M.devs), 0);
	assert_int_equal(atomic_load(&read_done), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_order),
	    cmocka_unit_test(test_failure_half_way),
	    cmocka_unit_test_setup_teardown(test_registry_order, machine_setup, machine_teardown),
	    cmocka_unit_test_setup_teardown(test_serial_reset, machine_setup, machine_teardown),
	    cmocka_unit_test_setup_teardown(test_rtc_reset, machine_setup, machine_teardown),
	    cmocka_unit_test_setup_teardown(test_i8042_reset_and_request, machine_setup,
					    machine_teardown),
	    cmocka_unit_test_setup_teardown(test_acpi_pm_reset_and_request, machine_setup,
					    machine_teardown),
	    cmocka_unit_test_setup_teardown(test_pci_reset, machine_setup, machine_teardown),
	    cmocka_unit_test_setup_teardown(test_firmware_devices, machine_setup, machine_teardown),
	    cmocka_unit_test_setup_teardown(test_firmware_devices_direct_boot, machine_setup,
					    machine_teardown),
	    cmocka_unit_test_setup_teardown(test_piix4_pm_for_efi, machine_setup, machine_teardown),
	    cmocka_unit_test_setup_teardown(test_storage_quiesce_and_reset, storage_setup,
					    storage_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
