/* Image formats: the input is an image file (seeds made by qemu-img at test time, see
 * scripts/run-fuzz.sh), opened with the format FUZZ_FORMAT names (unset: probed), then checked,
 * read at several offsets, written once and checked again.  A malformed image must be refused
 * or served without a crash, a hang, or a file opened outside its directory. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/core/block.h"
#include "storage/core/block_path.h"

static char dir[] = "/dev/shm/minivmm-fuzz-image-XXXXXX";
static char path[64];
static const char *format;

static void remove_image(void)
{
	unlink(path);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* In memory (tmpfs): the write and flush of each input cost no disk I/O (on /tmp's disk the
	 * fsync held the formats at 160-450 inputs a second). */
	if (!mkdtemp(dir))
		abort();
	atexit(remove_image);
	snprintf(path, sizeof(path), "%s/image", dir);
	format = getenv("FUZZ_FORMAT");
	if (format && (!*format || !strcmp(format, "probe")))
		format = NULL;
	return 0;
}

static void read_at(struct block_device *bs, uint64_t off, size_t len)
{
	static uint8_t buf[256 << 10];
	if (bs->size == 0)
		return;
	off %= bs->size;
	if (len > bs->size - off)
		len = bs->size - off;
	block_pread(bs, off & ~511ull, buf, len & ~511ul);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct block_device *bs;
	struct block_check_result res;
	uint64_t pnum, map;
	int status;

	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	if (block_open(path, format, BLOCK_OPEN_RDWR, &bs) < 0) {
		unlink(path);
		return 0;
	}
	memset(&res, 0, sizeof(res));
	block_check(bs, &res, 0);
	read_at(bs, 0, 65536);
	read_at(bs, size * 4099, 8192);
	read_at(bs, bs->size / 2, 65536 + 512);
	if (bs->size)
		block_status(bs, 0, bs->size, &pnum, &status, &map);
	static const uint8_t sector[4096] = {0x5a};
	if (bs->size >= sizeof(sector))
		block_pwrite(bs, (size * 7 % bs->size) & ~4095ull, sector, sizeof(sector));
	block_flush(bs);
	block_check(bs, &res, 0);
	block_close(bs);
	unlink(path); /* not left in memory when the run ends without its atexit handlers */
	return 0;
}
