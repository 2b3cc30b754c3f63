/* Guest-side benchmark: the round-trip cost of a port-I/O exit.
 *
 * Runs as a static program in the benchmark guest's initramfs: N one-byte writes to port 0x80 (the
 * POST port, which every VMM here handles and which has no side effect), timed with CLOCK_MONOTONIC
 * inside the guest.  Prints "BENCH: outb_ns=<mean ns per write>".
 *   pio-loop [N] [port|direct]
 * "port" (default) writes through /dev/port: the kernel does the outb, one pwrite per exit, which
 * adds a system call (well under 1% of an exit here) but works where a user-mode outb after
 * iopl(3) is refused: under QEMU q35 in level 1 the latter died with SIGSEGV.  "direct" uses iopl.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 20000;
	int direct = argc > 2 && strcmp(argv[2], "direct") == 0;
	unsigned char b = 0;
	int fd = -1;

	if (n <= 0 || n > 100000000) {
		fprintf(stderr, "pio-loop: bad count '%s'\n", argv[1]);
		return 2;
	}
	if (direct && iopl(3) < 0) {
		perror("pio-loop: iopl");
		return 1;
	}
	if (!direct && (fd = open("/dev/port", O_WRONLY)) < 0) {
		perror("pio-loop: /dev/port");
		return 1;
	}
	/* One write outside the timing: page-in, the VMM's first look-up of the port. */
	if (direct)
		outb(0, 0x80);
	else if (pwrite(fd, &b, 1, 0x80) != 1)
		return perror("pio-loop: write"), 1;
	double t0 = now_ns();
	for (long i = 0; i < n; i++) {
		b = (unsigned char)i;
		if (direct)
			outb(b, 0x80);
		else if (pwrite(fd, &b, 1, 0x80) != 1)
			return perror("pio-loop: write"), 1;
	}
	double t1 = now_ns();
	printf("BENCH: outb_ns=%.0f (%s)\n", (t1 - t0) / n, direct ? "outb after iopl" : "/dev/port");
	return 0;
}
