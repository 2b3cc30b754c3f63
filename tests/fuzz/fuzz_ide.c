/* The PIIX IDE controller (task files, ATAPI packets, bus-master DMA with PRD tables) driven by
 * random port accesses from a fake vCPU, against a hard disk and a CD-ROM, with the first 64 KiB
 * of guest RAM (PRD tables, buffers) filled from the input and completions run at random points.
 * The machine is made once (opening disks and starting I/O threads per input held the rate at a
 * few hundred inputs a second); before each input the requests in flight complete, both channels
 * go through a soft reset (SRST, as a driver recovers), the RAM is zeroed and bus mastering is on
 * again.  What such a reset keeps, the disk files' contents and a CD's tray, carries over from one
 * input to the next, as the disk files did with a fresh machine. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/device/ide_rig.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/fuzz_ram.h"

#define RAM_FILL 0x10000

static struct rig *r;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char dir[] = "/tmp/minivmm-fuzz-ide-XXXXXX";
	char hdd[96], cd[96], hdd_arg[128];
	(void)argc;
	(void)argv;
	if (!mkdtemp(dir))
		abort();
	snprintf(hdd, sizeof(hdd), "%s/hdd.raw", dir);
	snprintf(cd, sizeof(cd), "%s/cd.iso", dir);
	if (fake_make_raw(hdd, 1 << 20, true) < 0 || fake_make_raw(cd, 1 << 20, true) < 0)
		abort();
	snprintf(hdd_arg, sizeof(hdd_arg), "%s,format=raw", hdd);
	const char *args[4] = {hdd_arg, NULL, cd, NULL};
	const bool cdrom[4] = {false, false, true, false};
	r = rig_new(args, cdrom);
	if (!r)
		abort();
	fuzz_ram_small_pages(&r->mem);
	return 0;
}

/* Back to a controller just reset by its driver, with zeroed RAM. */
static void rig_reset(void)
{
	rig_drain(r);
	for (unsigned i = 0; i < 2; i++) {
		uint16_t ctl = i ? 0x376 : 0x3F6;
		rig_out(r, ctl, 0x04, 1); /* SRST: the reset happens on its rising edge */
		rig_out(r, ctl, 0x00, 1);
	}
	rig_drain(r);
	/* Private anonymous RAM: the pages read as zero again, at the cost of those touched. */
	fuzz_ram_zero(&r->mem, 0, r->mem.size);
	pci_config_write(r->pci, r->ide->pci.slot << 3, PCI_COMMAND, 2, 0x0005);
	memset(r->irq, 0, sizeof(r->irq));
	memset(r->irq_edges, 0, sizeof(r->irq_edges));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = {data, size};
	rig_reset();
	uint8_t *ram = guest_memory_ptr(&r->mem, 0, RAM_FILL);
	take_bytes(&in, ram, take_u16(&in) % 4096);
	while (fuzz_left(&in)) {
		uint8_t op = take_u8(&in), reg = take_u8(&in);
		unsigned len = 1u << (op >> 6 & 3);
		if (len > 4)
			len = 4;
		uint32_t v = take_u32(&in);
		uint16_t port;
		switch (op & 7) {
		case 0:
		case 1:
			port = 0x1F0 + reg % 8; /* primary command block */
			break;
		case 2:
			port = 0x170 + reg % 8; /* secondary: the CD-ROM */
			break;
		case 3:
			port = (reg & 1) ? 0x3F6 : 0x376; /* device control: soft reset, nIEN */
			break;
		case 4:
		case 5:
			port = r->bm_base + reg % 16; /* bus master: command, status, PRD address */
			break;
		case 6:
			rig_drain(r); /* completions arrive */
			continue;
		default:
			port = 0x1F0; /* data port bursts: PIO transfers */
			len = 2;
			for (unsigned i = 0; i < (reg & 63); i++) {
				if (op & 8)
					rig_out(r, (op & 16) ? 0x170 : 0x1F0, v, 2);
				else
					rig_in(r, (op & 16) ? 0x170 : 0x1F0, 2);
			}
			continue;
		}
		if (op & 8)
			rig_out(r, port, v, len);
		else
			rig_in(r, port, len);
	}
	rig_drain(r); /* nothing in flight between inputs (LeakSanitizer's end-of-input check) */
	return 0;
}
