/* --cpu-weight as a nice level (cpu_weight.h). */
#include <errno.h>
#include <sys/resource.h>

#include "cpu/cpu_weight.h"

#define NICE_STEP 1.25
#define SQRT_NICE_STEP 1.1180339887498949

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

int cpu_weight_apply(unsigned weight)
{
	return setpriority(PRIO_PROCESS, 0, cpu_weight_to_nice(weight)) < 0 ? -errno : 0;
}
