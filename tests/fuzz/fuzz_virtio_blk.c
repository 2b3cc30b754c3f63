/* virtio-blk driven by a hostile driver (fuzz_virtio_ops.h) on two request queues, against a raw
 * image: headers of any type and sector, data buffers of any size and direction, discard and
 * write-zeroes ranges of any length, GET_ID into any buffer, status bytes anywhere, with the
 * block layer's completions run at points the input picks and machine resets between.
 * One device per process (an image opened per input would be slow); before each input the
 * requests in flight complete, the device and the PCI bus are reset, the RAM is zeroed and the
 * driver's queue state forgotten.  What the image holds carries over. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/disk.h"
#include "devices/virtio/blk/virtio_blk.h"
#include "tests/device/ata_fake.h"
#include "tests/fuzz/fuzz_virtio_ops.h"
#include "tests/lib/testdisk.h"

#define NQ 2

static struct vf f;
static struct disk *disk;
static struct virtio_blk *blk;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char dir[] = "/tmp/minivmm-fuzz-virtio-blk-XXXXXX";
	char path[96], arg[160];
	(void)argc;
	(void)argv;
	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/disk.raw", dir);
	snprintf(arg, sizeof(arg), "%s,format=raw,bus=virtio", path);
	if (fake_make_raw(path, 1 << 20, true) < 0 || vf_init(&f, false) < 0 ||
	    !(disk = test_disk_open(arg, DISK_MEDIA_HDD)))
		abort();
	fuzz_ram_small_pages(&f.mem);
	struct virtio_blk_env env = {.pci = f.bus, .mem = &f.mem, .nqueues = NQ};
	if (virtio_blk_create(&env, disk, &blk) < 0)
		abort();
	return 0;
}

/* A machine reset: nothing in flight first (the device's reset waits for it, and no other
 * thread runs completions here). */
static void machine_reset(void)
{
	fake_drain(disk);
	virtio_blk_reset(blk);
	pci_bus_reset(f.bus);
}

/* The target's own steps: block-layer completions and resets at points the input picks. */
static void blk_step(struct fuzz_input *in, uint8_t op)
{
	(void)in;
	switch (op & 3) {
	case 0: /* one completion, if any is ready */
		if (disk->aio)
			block_aio_poll(disk->aio, 0);
		break;
	case 1: /* every completion */
		fake_drain(disk);
		break;
	default:
		machine_reset();
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = {data, size};
	uint8_t flags = take_u8(&in);

	machine_reset();
	fv_driver_reset(&f);
	fv_run(&f, &in, flags, NQ, blk_step);
	fake_drain(disk); /* nothing in flight between inputs (LeakSanitizer's check) */
	return 0;
}
