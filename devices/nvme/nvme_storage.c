/* The storage controller for bus=nvme: NVMe controllers whose namespaces are the disks.
 *
 *   --disk FILE[,MODE],bus=nvme[,controller=nvmeN]
 *
 * Disks go to nvme0 unless controller= names another (nvme0 ... nvme7); on each controller they
 * become namespaces 1, 2, ... in command-line order (Linux /dev/nvmeXnY).  A controller offers one
 * I/O queue pair per vCPU.  CD-ROMs cannot go on this bus (disk_config_parse refuses them).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/disk.h"
#include "devices/nvme/nvme.h"
#include "devices/storage.h"
#include "lib/error.h"

#define NVME_CONTROLLERS 8

struct nvme_group {
	struct nvme_ctrl *ctrl[NVME_CONTROLLERS];
};

static int nvme_check(const struct disk_config *cfgs, unsigned n)
{
	unsigned count[NVME_CONTROLLERS] = {0};
	for (unsigned i = 0; i < n; i++) {
		const char *path = cfgs[i].path ? cfgs[i].path : "cdrom";
		if (cfgs[i].media != DISK_MEDIA_HDD)
			return error_set(-EINVAL, "%s: bus=nvme takes hard disks only", path);
		if (cfgs[i].controller >= NVME_CONTROLLERS ||
		    ++count[cfgs[i].controller] > NVME_MAX_NAMESPACES)
			return error_set(-ENOSPC, "%s: nvme%u has at most %u namespaces", path,
					 cfgs[i].controller, NVME_MAX_NAMESPACES);
	}
	return 0;
}

static void nvme_storage_destroy(void *state)
{
	struct nvme_group *g = state;
	for (unsigned i = NVME_CONTROLLERS; i-- > 0;)
		nvme_destroy(g->ctrl[i]);
	free(g);
}

static void nvme_storage_reset(void *state)
{
	struct nvme_group *g = state;
	for (unsigned i = 0; i < NVME_CONTROLLERS; i++)
		if (g->ctrl[i])
			nvme_reset(g->ctrl[i]);
}

static int nvme_storage_create(const struct storage_env *env, struct disk **disks, unsigned n,
			       void **state)
{
	struct nvme_group *g = calloc(1, sizeof(*g));
	if (!g)
		return error_set(-ENOMEM, "bus=nvme: out of memory");
	unsigned nq = env->ncpus ? env->ncpus : 1;
	if (nq > NVME_MAX_IO_QUEUES)
		nq = NVME_MAX_IO_QUEUES;
	for (unsigned k = 0; k < NVME_CONTROLLERS; k++) {
		struct disk *ns[NVME_MAX_NAMESPACES];
		unsigned m = 0;
		for (unsigned i = 0; i < n; i++)
			if (disks[i]->controller == k && m < NVME_MAX_NAMESPACES)
				ns[m++] = disks[i];
		if (!m)
			continue;
		struct nvme_env nenv = {.pci = env->pci,
					.mem = env->mem,
					.loop = env->loop,
					.io_queues = nq,
					.index = k};
		int r = nvme_create(&nenv, ns, m, &g->ctrl[k]);
		if (r < 0) {
			error_set(r, "%s: NVMe controller nvme%u: %s", ns[0]->path, k,
				  strerror(-r));
			nvme_storage_destroy(g);
			return r;
		}
	}
	*state = g;
	return 0;
}

static const struct storage_controller nvme_controller = {
    .bus = DISK_BUS_NVME,
    .name = "NVMe",
    .check = nvme_check,
    .create = nvme_storage_create,
    .destroy = nvme_storage_destroy,
    .reset = nvme_storage_reset,
};
STORAGE_CONTROLLER(nvme_controller);
