/* The storage controller for bus=sata (the default bus): one AHCI HBA, drives on ports 0, 1, ...
 * in command-line order.
 *
 *   --disk FILE[,MODE][,bus=sata]...   a disk on the next free port
 *   --cdrom ISO,bus=sata               an ATAPI CD-ROM on the next free port
 *
 * The HBA has max(6, drives) ports (6 as on ICH9, so unused ports look like empty connectors),
 * at most 30.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "devices/ahci_internal.h"
#include "devices/disk.h"
#include "devices/storage.h"
#include "lib/error.h"

static int ahci_check(const struct disk_config *cfgs, unsigned n)
{
	if (n > AHCI_MAX_PORTS)
		return error_set(
		    -ENOSPC, "%s: bus=sata: %u drives, the AHCI controller has at most %u ports",
		    cfgs[n - 1].path ? cfgs[n - 1].path : "cdrom", n, AHCI_MAX_PORTS);
	return 0;
}

static int ahci_storage_create(const struct storage_env *env, struct disk **disks, unsigned n,
			       void **state)
{
	if (n > AHCI_MAX_PORTS)
		return error_set(-ENOSPC, "bus=sata: %u drives, at most %u", n, AHCI_MAX_PORTS);
	struct ahci *hba;
	unsigned nports = n > AHCI_DEFAULT_PORTS ? n : AHCI_DEFAULT_PORTS;
	int ret = ahci_create(env->pci, -1, env->mem, nports, &hba);
	if (ret < 0)
		return error_set(ret, "AHCI controller: %s", strerror(-ret));
	for (unsigned i = 0; i < n; i++) {
		ret = ahci_attach(hba, i, disks[i]);
		if (ret < 0) {
			error_set(ret, "%s: AHCI port %u: %s",
				  disks[i]->path ? disks[i]->path : "cdrom", i, strerror(-ret));
			ahci_destroy(hba);
			return ret;
		}
	}
	*state = hba;
	return 0;
}

static void ahci_storage_destroy(void *state)
{
	ahci_destroy(state);
}

static int ahci_change_medium(void *state, struct disk *d, struct disk_medium *m, bool force)
{
	struct ahci *hba = state;
	for (unsigned i = 0; i < hba->nports; i++) {
		struct ahci_port *p = &hba->ports[i];
		if (p->disk != d)
			continue;
		int ret = 0;
		pthread_mutex_lock(&hba->lock);
		if (p->x.active || ahci_port_busy(p)) {
			ret = error_set(-EBUSY, "the drive is busy: try again");
		} else if (p->ata.lun.locked && !force) {
			ret = error_set(
			    -EPERM,
			    "the guest locked the tray (medium in use): eject it in the guest, "
			    "or force");
		} else {
			disk_medium_swap(d, m);
			scsi_lun_medium_changed(&p->ata.lun);
		}
		pthread_mutex_unlock(&hba->lock);
		return ret;
	}
	return error_set(-ENODEV, "the drive is not on the AHCI controller");
}

static void ahci_storage_reset(void *state)
{
	ahci_power_on(state);
}

static const struct storage_controller ahci_controller = {
    .bus = DISK_BUS_SATA,
    .name = "AHCI (ICH9)",
    .check = ahci_check,
    .create = ahci_storage_create,
    .destroy = ahci_storage_destroy,
    .reset = ahci_storage_reset,
    .change_medium = ahci_change_medium,
};
STORAGE_CONTROLLER(ahci_controller);
