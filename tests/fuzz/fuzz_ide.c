/* The PIIX IDE controller (task files, ATAPI packets, bus-master DMA with PRD tables) driven by
 * random port accesses from a fake vCPU, against a hard disk and a CD-ROM, with the first 64 KiB
 * of guest RAM (PRD tables, buffers) filled from the input and completions run at random points.
 * A fresh machine per input, so a crash input replays alone. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/device/ide_rig.h"
#include "tests/fuzz/fuzz_input.h"

#define RAM_FILL 0x10000

static char hdd_arg[128], cd_arg[128];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char dir[] = "/tmp/minivmm-fuzz-ide-XXXXXX";
	char hdd[96], cd[96];
	(void)argc;
	(void)argv;
	if (!mkdtemp(dir))
		abort();
	snprintf(hdd, sizeof(hdd), "%s/hdd.raw", dir);
	snprintf(cd, sizeof(cd), "%s/cd.iso", dir);
	if (fake_make_raw(hdd, 1 << 20, true) < 0 || fake_make_raw(cd, 1 << 20, true) < 0)
		abort();
	snprintf(hdd_arg, sizeof(hdd_arg), "%s,format=raw", hdd);
	snprintf(cd_arg, sizeof(cd_arg), "%s", cd);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = {data, size};
	const char *args[4] = {hdd_arg, NULL, cd_arg, NULL};
	const bool cdrom[4] = {false, false, true, false};
	struct rig *r = rig_new(args, cdrom);
	if (!r)
		abort();
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
	rig_free(r);
	return 0;
}
