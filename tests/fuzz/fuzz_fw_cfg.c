/* fw_cfg (QEMU's firmware configuration interface) driven by random port accesses: selector,
 * data port and the DMA address register, with DMA descriptors and buffers in a fake guest RAM
 * the input also fills.  Every descriptor and buffer must be checked against RAM. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/fw_cfg.h"
#include "memory/guest_memory.h"
#include "memory/layout.h"
#include "tests/fuzz/fuzz_input.h"

#define RAM (2ull << 20)
#define SCRATCH 4096 /* the first page: where the input puts descriptors */

static struct guest_memory mem;
static struct fw_cfg *cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const uint8_t blob[3000] = {1, 2, 3};
	(void)argc;
	(void)argv;
	if (guest_memory_create(&mem, RAM) < 0 || fw_cfg_create(&mem, &cfg) < 0 ||
	    fw_cfg_add_u32(cfg, 0x05, 2) < 0 || fw_cfg_add_file(cfg, "etc/a", blob, 10) < 0 ||
	    fw_cfg_add_file(cfg, "etc/big", blob, sizeof(blob)) < 0 ||
	    fw_cfg_add_file(cfg, "etc/empty", blob, 0) < 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = {data, size};
	uint8_t *ram = guest_memory_ptr(&mem, 0, SCRATCH);

	fw_cfg_reset(cfg);
	take_bytes(&in, ram, 64); /* a few descriptors at GPA 0 */
	while (fuzz_left(&in)) {
		uint8_t op = take_u8(&in);
		unsigned len = 1u << (op >> 6);
		unsigned off = take_u8(&in) % FW_CFG_PORT_LEN;
		uint8_t buf[8];
		take_bytes(&in, buf, sizeof(buf));
		if (off + len > FW_CFG_PORT_LEN)
			continue; /* the I/O bus delivers only accesses inside the range */
		if ((op & 0x3e) == 0x3e) {
			fw_cfg_reset(cfg);
			continue;
		}
		fw_cfg_io(cfg, off, buf, len, op & 1);
	}
	return 0;
}
