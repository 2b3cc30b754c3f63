/* Guest-side benchmark helper: the progress of a CPU-bound loop per wall second.
 *
 *   cpu-spin SECONDS [THREADS]
 * Spins for SECONDS of the guest's CLOCK_MONOTONIC (kvmclock: the host's wall time) and prints
 * "SPIN: rate=<iterations per second>" summed over THREADS threads (1 by default), then
 * "SPIN: done".  bench/cpu.sh compares a capped vCPU's rate with its uncapped one; with THREADS
 * it is the parallel load of the oversubscription row, which has to run to its end.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double seconds;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Counts iterations of a dependent chain (no memory traffic) until the deadline. */
static void *spin(void *arg)
{
	double *rate = arg, t0 = now(), t = t0;
	unsigned long iters = 0;
	volatile unsigned long x = 1;

	while (t - t0 < seconds) {
		for (int i = 0; i < 10000; i++)
			x = x * 6364136223846793005UL + 1442695040888963407UL;
		iters += 10000;
		t = now();
	}
	*rate = iters / (t - t0);
	return NULL;
}

int main(int argc, char **argv)
{
	int threads = argc > 2 ? atoi(argv[2]) : 1;
	pthread_t tid[64];
	double rate[64], total = 0;

	seconds = argc > 1 ? atof(argv[1]) : 0;
	if (seconds <= 0 || seconds > 3600 || threads < 1 || threads > 64) {
		fprintf(stderr, "usage: cpu-spin SECONDS(1-3600) [THREADS(1-64)]\n");
		return 2;
	}
	for (int i = 0; i < threads; i++)
		if (pthread_create(&tid[i], NULL, spin, &rate[i]) != 0) {
			fprintf(stderr, "cpu-spin: cannot start thread %d\n", i);
			return 1;
		}
	for (int i = 0; i < threads; i++) {
		pthread_join(tid[i], NULL);
		total += rate[i];
	}
	printf("SPIN: rate=%.0f\n", total);
	printf("SPIN: done\n");
	return 0;
}
