/* Guest side of bench/disk.sh's kick figure: the cost of one virtqueue notification.
 *
 *   kick PCI_SYSFS_DIR WRITES
 *
 * Finds the virtio-pci notify capability and queue 0's notify address in the device's config space
 * (PCI_SYSFS_DIR/config), maps that BAR (resourceN) and writes queue 0's index there WRITES times,
 * timed with clock_gettime.  The ring has nothing new, so the device only looks and returns: what
 * is measured is the trip of one doorbell write (an exit handled in the kernel with an ioeventfd, a
 * return to the VMM's user space without).  Prints one line:
 *   KICK: writes=N ns_per_kick=X
 * Built static on the host (busybox guests have no libc).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define CAP_VENDOR 0x09
#define CAP_COMMON 1
#define CAP_NOTIFY 2

static uint32_t le32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

/* BAR `bar`'s length from the device's `resource` file (one "start end flags" line per BAR):
 * seeking to the end of resourceN gives 0 on some kernels. */
static uint64_t bar_len(const char *dir, unsigned bar)
{
	char path[512];
	unsigned long long start = 0, end = 0, flags;
	snprintf(path, sizeof(path), "%s/resource", dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	for (unsigned i = 0; i <= bar; i++)
		if (fscanf(f, "%llx %llx %llx", &start, &end, &flags) != 3) {
			end = start = 0;
			break;
		}
	fclose(f);
	return end > start ? end - start + 1 : 0;
}

static volatile uint8_t *map_bar(const char *dir, unsigned bar, size_t *len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/resource%u", dir, bar);
	int fd = open(path, O_RDWR | O_SYNC);
	if (fd < 0) {
		fprintf(stderr, "kick: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	uint64_t size = bar_len(dir, bar);
	void *p =
	    size ? mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
	if (p == MAP_FAILED)
		fprintf(stderr, "kick: %s: mmap of %llu bytes: %s\n", path,
			(unsigned long long)size, strerror(errno));
	close(fd);
	*len = (size_t)size;
	return p == MAP_FAILED ? NULL : p;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: kick PCI_SYSFS_DIR WRITES\n");
		return 2;
	}
	long writes = strtol(argv[2], NULL, 10);
	char path[512];
	uint8_t cfg[256] = {0};
	snprintf(path, sizeof(path), "%s/config", argv[1]);
	int fd = open(path, O_RDONLY);
	if (fd < 0 || read(fd, cfg, sizeof(cfg)) < 64 || writes <= 0) {
		fprintf(stderr, "kick: %s: cannot read config space\n", path);
		return 1;
	}
	close(fd);
	int common_bar = -1, notify_bar = -1;
	uint32_t common_off = 0, notify_off = 0, mult = 0;
	for (unsigned p = cfg[0x34], n = 0; p && p < 252 && n < 48; p = cfg[p + 1], n++) {
		if (cfg[p] != CAP_VENDOR)
			continue;
		if (cfg[p + 3] == CAP_COMMON) {
			common_bar = cfg[p + 4];
			common_off = le32(cfg + p + 8);
		} else if (cfg[p + 3] == CAP_NOTIFY && p + 20 <= 256) {
			notify_bar = cfg[p + 4];
			notify_off = le32(cfg + p + 8);
			mult = le32(cfg + p + 16);
		}
	}
	if (common_bar < 0 || notify_bar < 0) {
		fprintf(stderr, "kick: %s: not a modern virtio-pci device\n", argv[1]);
		return 1;
	}
	size_t clen, nlen;
	volatile uint8_t *common = map_bar(argv[1], (unsigned)common_bar, &clen);
	volatile uint8_t *notify = map_bar(argv[1], (unsigned)notify_bar, &nlen);
	if (!common || !notify) {
		fprintf(stderr, "kick: %s: cannot map the BARs\n", argv[1]);
		return 1;
	}
	/* queue_select (0x16) is only used by the driver while it sets queues up: queue 0's
	 * queue_notify_off (0x1E) can be read now. */
	*(volatile uint16_t *)(common + common_off + 0x16) = 0;
	uint16_t qoff = *(volatile uint16_t *)(common + common_off + 0x1E);
	uint64_t at = notify_off + (uint64_t)qoff * mult;
	if (at + 2 > nlen) {
		fprintf(stderr, "kick: notify address outside the BAR\n");
		return 1;
	}
	volatile uint16_t *doorbell = (volatile uint16_t *)(notify + at);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < writes; i++)
		*doorbell = 0;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
	printf("KICK: writes=%ld ns_per_kick=%.0f\n", writes, ns / writes);
	return 0;
}
