/* The AHCI HBA (ICH9) driven through ABAR by a fake vCPU: generic and port registers, command
 * lists, command tables with any FIS (ATA, NCQ, ATAPI on a CD port) and PRD tables the input
 * writes into a fake guest RAM; completions run on a helper thread, as on the VM's loop.  One HBA
 * for the process (an image per input would be slow), reset by GHC.HR before each input, which
 * also proves a reset with requests in flight. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/device/ahci_fixture.h"
#include "tests/fuzz/fuzz_completer.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/fuzz_ram.h"

#define RAM_USED 0x200000 /* command lists, FIS areas, tables and data buffers */

static struct fix fix;
static struct fuzz_completer completer;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (fix_init(&fix, 2) < 0 || fix_attach(&fix, 0, ",format=raw", DISK_MEDIA_HDD) < 0 ||
	    fix_attach(&fix, 1, NULL, DISK_MEDIA_CDROM) < 0)
		abort();
	fuzz_ram_small_pages(&fix.mem);
	for (unsigned p = 0; p < 2; p++)
		fuzz_completer_add(&completer, fix.disk[p]->aio);
	fuzz_completer_start(&completer);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = {data, size};
	struct fix *f = &fix;

	fix_w(f, AHCI_GHC, AHCI_GHC_HR);     /* waits for what the last input left in flight */
	fuzz_ram_zero(&f->mem, 0, RAM_USED); /* not a 2 MiB memset */
	if (take_u8(&in) & 1) {
		fix_port_start(f, 0);
		fix_port_start(f, 1);
	}
	while (fuzz_left(&in)) {
		uint8_t op = take_u8(&in);
		unsigned p = (op >> 3) & 1, s = (op >> 4) & 31;
		switch (op & 7) {
		case 0: { /* guest RAM: anywhere in the used part */
			uint32_t gpa = (take_u32(&in) % RAM_USED);
			size_t n = take_u8(&in);
			if (gpa + n > RAM_USED)
				n = RAM_USED - gpa;
			take_bytes(&in, fix_ram(f, gpa, n ? n : 1), n);
			break;
		}
		case 1: /* a command in slot s: the FIS from the input, PRDs into the data area */
		{
			uint8_t fis[20], acmd[16];
			struct fix_prd prd[4];
			take_bytes(&in, fis, sizeof(fis));
			take_bytes(&in, acmd, sizeof(acmd));
			unsigned nprd = take_u8(&in) % 5;
			for (unsigned i = 0; i < nprd; i++) {
				prd[i].addr = FIX_DATA + take_u16(&in) * 16ull;
				prd[i].len = 1 + take_u16(&in) % 0x10000;
			}
			fix_cmd(f, p, s, fis, p ? acmd : NULL, op & 0x80, prd, nprd);
			break;
		}
		case 2:
		case 3: /* port registers; CI and SACT issue commands */
			fix_pw(f, p, (take_u8(&in) % 32) * 4, take_u32(&in));
			break;
		case 4: /* generic host control */
			fix_w(f, (take_u8(&in) % 12) * 4, take_u32(&in));
			break;
		case 5:
			fix_pr(f, p, (take_u8(&in) % 32) * 4);
			break;
		case 6: /* issue slot s the usual way */
			fix_pw(f, p, PORT_CI, 1u << s);
			break;
		default:
			fix_complete(f, p);
			break;
		}
	}
	/* Drained before the input ends (see fuzz_nvme.c): LeakSanitizer cannot see a request
	 * referenced only from io_uring's user data. */
	fix_w(f, AHCI_GHC, AHCI_GHC_HR);
	return 0;
}
