/* --cpu-weight as a nice level (cpu_weight.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cpu/cpu_weight.h"

#define NICE_STEP 1.25
#define SQRT_NICE_STEP 1.1180339887498949
#define AUTOGROUP "/proc/self/autogroup"

int cpu_weight_to_nice(unsigned weight)
{
	if (weight < 1)
		weight = 1;
	if (weight > 10000)
		weight = 10000;
	/* w(n) = 100 / 1.25^n; from nice 19 up, the first n whose geometric midpoint with n-1
	 * lies above the weight is the nearest in ratio. */
	double w = 100.0;
	for (int i = 0; i < 19; i++)
		w /= NICE_STEP;
	for (int n = 19; n > -20; n--, w *= NICE_STEP)
		if (weight < w * SQRT_NICE_STEP)
			return n;
	return -20;
}

int cpu_weight_parse_autogroup(const char *text, int *nice)
{
	const char *p = text;
	while (*p && *p != ' ')
		p++;
	if (sscanf(p, " nice %d", nice) != 1)
		return -EINVAL;
	return *nice >= -20 && *nice <= 19 ? 0 : -EINVAL;
}

/* The kernel takes one autogroup nice per 100 ms system-wide (else EAGAIN): a few tries. */
static int autogroup_write(int fd, int nice)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%d\n", nice);
	for (int i = 0; i < 50; i++) {
		if (write(fd, buf, len) == len)
			return 0;
		if (errno != EAGAIN)
			return -errno;
		nanosleep(&(struct timespec){.tv_nsec = 20000000}, NULL);
	}
	return -EAGAIN;
}

static int autogroup_fd = -1; /* kept open: the restore at exit needs no open (sandbox, jail) */
static int autogroup_before;

static void autogroup_restore(void)
{
	autogroup_write(autogroup_fd, autogroup_before);
}

/* With autogroups (on by default in Debian's kernels) CFS shares the CPUs between sessions first
 * and nice weighs threads only within one: two VMs started from two terminals would share alike
 * whatever their weights.  So the session's group gets the nice too while the VMM runs (back at
 * exit); other processes of the same session share that weight. */
static int autogroup_apply(int nice)
{
	if (autogroup_fd >= 0)
		return autogroup_write(autogroup_fd, nice);
	int fd = open(AUTOGROUP, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == EACCES
			   ? 0
			   : -errno; /* no autogroups (or no /proc) */
	char text[64];
	ssize_t n = read(fd, text, sizeof(text) - 1);
	if (n <= 0) { /* empty: in no autogroup (init's session), nice alone weighs it */
		close(fd);
		return n < 0 ? -errno : 0;
	}
	text[n] = 0;
	int before, r = cpu_weight_parse_autogroup(text, &before);
	if (r == 0 && before != nice)
		r = autogroup_write(fd, nice);
	if (r < 0 || before == nice) {
		close(fd);
		return r;
	}
	autogroup_fd = fd;
	autogroup_before = before;
	atexit(autogroup_restore);
	return 0;
}

int cpu_weight_apply(unsigned weight)
{
	int nice = cpu_weight_to_nice(weight);
	if (setpriority(PRIO_PROCESS, 0, nice) < 0)
		return -errno;
	return autogroup_apply(nice);
}
