/* The storage controller for bus=virtio: one virtio-blk PCI function per disk (Linux virtio_blk,
 * /dev/vda, vdb, ... in command-line order), each with one request queue per vCPU.
 *
 *   --disk FILE[,MODE],bus=virtio
 *
 * CD-ROMs cannot go on this bus (disk_config_parse refuses them).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/disk.h"
#include "devices/pci.h"
#include "devices/storage.h"
#include "devices/virtio/blk/virtio_blk.h"
#include "devices/virtio/virtio_pci.h"
#include "lib/error.h"

struct vblk_group {
	unsigned n;
	struct virtio_blk *dev[];
};

static int vblk_check(const struct disk_config *cfgs, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (cfgs[i].media != DISK_MEDIA_HDD)
			return error_set(-EINVAL, "%s: bus=virtio takes hard disks only",
					 cfgs[i].path ? cfgs[i].path : "cdrom");
	return 0;
}

static void vblk_destroy(void *state)
{
	struct vblk_group *g = state;
	for (unsigned i = g->n; i-- > 0;)
		virtio_blk_destroy(g->dev[i]);
	free(g);
}

/* A guest reboot in the same process: each function back to power-on (it waits for requests
 * in flight itself, though storage_drain has already let them finish). */
static void vblk_reset(void *state)
{
	struct vblk_group *g = state;
	for (unsigned i = 0; i < g->n; i++)
		virtio_blk_reset(g->dev[i]);
}

static int vblk_create(const struct storage_env *env, struct disk **disks, unsigned n, void **state)
{
	struct vblk_group *g = calloc(1, sizeof(*g) + n * sizeof(g->dev[0]));
	if (!g)
		return error_set(-ENOMEM, "bus=virtio: out of memory");
	unsigned nq = env->ncpus ? env->ncpus : 1;
	if (nq > VIRTIO_PCI_MAX_QUEUES)
		nq = VIRTIO_PCI_MAX_QUEUES;
	struct virtio_blk_env venv = {
	    .pci = env->pci, .mem = env->mem, .loop = env->loop, .nqueues = nq};
	for (unsigned i = 0; i < n; i++) {
		int r = virtio_blk_create(&venv, disks[i], &g->dev[i]);
		if (r < 0) {
			error_set(r, "%s: virtio-blk: %s", disks[i]->path, strerror(-r));
			vblk_destroy(g);
			return r;
		}
		g->n++;
		/* SeaBIOS drives virtio-blk itself and finds a PCI drive's boot priority by its
		 * slot (a glob on "/pci@i0cf8/", any name, "@SLOT", matched as a prefix); the
		 * path is QEMU's. */
		snprintf(disks[i]->fw_path, sizeof(disks[i]->fw_path),
			 "/pci@i0cf8/scsi@%x/disk@0,0",
			 virtio_pci_dev(virtio_blk_transport(g->dev[i]))->slot);
	}
	*state = g;
	return 0;
}

static const struct storage_controller virtio_blk_controller = {
    .bus = DISK_BUS_VIRTIO,
    .name = "virtio-blk",
    .check = vblk_check,
    .create = vblk_create,
    .destroy = vblk_destroy,
    .reset = vblk_reset,
};
STORAGE_CONTROLLER(virtio_blk_controller);
