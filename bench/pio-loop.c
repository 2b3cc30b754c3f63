/* Guest-side benchmark: the round-trip cost of a port-I/O exit.
 *
 * Runs as a static program in the benchmark guest's initramfs: N `outb` to port 0x80 (the POST port,
 * which every VMM here handles and which has no side effect), timed with CLOCK_MONOTONIC inside
 * the guest, so the figure holds no host scheduling of the measuring side.  Prints
 * "BENCH: outb_ns=<mean ns per outb>".  Usage: pio-loop [N] (default 20000).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/io.h>
#include <time.h>

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 20000;

	if (n <= 0 || n > 100000000) {
		fprintf(stderr, "pio-loop: bad count '%s'\n", argv[1]);
		return 2;
	}
	if (ioperm(0x80, 1, 1) < 0) {
		perror("pio-loop: ioperm");
		return 1;
	}
	outb(0, 0x80); /* first exit outside the timing: page-in, device lookup caches */
	double t0 = now_ns();
	for (long i = 0; i < n; i++)
		outb((unsigned char)i, 0x80);
	double t1 = now_ns();
	printf("BENCH: outb_ns=%.0f\n", (t1 - t0) / n);
	return 0;
}
