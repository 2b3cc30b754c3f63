/* The storage controllers for bus=scsi (an LSI53C1030, Linux mptspi) and bus=sas (an SAS1068,
 * Linux mptsas): one host bus adapter per bus, drives on target ids in command-line order.
 *
 *   --disk FILE[,MODE],bus=scsi   a disk on the next target id (0-6, 8-15: 7 is the HBA's own)
 *   --cdrom ISO,bus=scsi          a SCSI CD-ROM drive on the next target id
 *   --disk FILE[,MODE],bus=sas    a disk on the next PHY (targets 0-7)
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "devices/disk.h"
#include "devices/lsi/mpt.h"
#include "devices/storage.h"
#include "lib/error.h"

/* Target id of the i-th drive: the ids in order, skipping the HBA's own. */
static unsigned target_of(const struct mpt_personality *p, unsigned i)
{
	return i >= p->initiator_id && p->initiator_id < p->max_targets ? i + 1 : i;
}

static unsigned max_drives(const struct mpt_personality *p)
{
	return p->initiator_id < p->max_targets ? p->max_targets - 1 : p->max_targets;
}

static int check(const struct mpt_personality *p, const char *bus, const struct disk_config *cfgs,
		 unsigned n)
{
	if (n > max_drives(p))
		return error_set(-ENOSPC, "%s: bus=%s: %u drives, the %s takes at most %u",
				 cfgs[n - 1].path ? cfgs[n - 1].path : "cdrom", bus, n, p->name,
				 max_drives(p));
	return 0;
}

static int create(const struct mpt_personality *p, const struct storage_env *env,
		  struct disk **disks, unsigned n, void **state)
{
	struct mpt *m;
	int ret = mpt_create(env->pci, -1, env->mem, p, &m);
	if (ret < 0)
		return error_set(ret, "LSI Logic %s: %s", p->name, strerror(-ret));
	for (unsigned i = 0; i < n; i++) {
		ret = i < max_drives(p) ? mpt_attach(m, target_of(p, i), disks[i]) : -ENOSPC;
		if (ret < 0) {
			error_set(ret, "%s: %s target %u: %s",
				  disks[i]->path ? disks[i]->path : "cdrom", p->name,
				  target_of(p, i), strerror(-ret));
			mpt_destroy(m);
			return ret;
		}
	}
	*state = m;
	return 0;
}

static int spi_check(const struct disk_config *cfgs, unsigned n)
{
	return check(&mpt_53c1030, "scsi", cfgs, n);
}

static int spi_create(const struct storage_env *env, struct disk **disks, unsigned n, void **state)
{
	return create(&mpt_53c1030, env, disks, n, state);
}

static int sas_check(const struct disk_config *cfgs, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (cfgs[i].media != DISK_MEDIA_HDD)
			return error_set(-EINVAL, "%s: bus=sas takes hard disks only",
					 cfgs[i].path ? cfgs[i].path : "cdrom");
	return check(&mpt_sas1068, "sas", cfgs, n);
}

static int sas_create(const struct storage_env *env, struct disk **disks, unsigned n, void **state)
{
	return create(&mpt_sas1068, env, disks, n, state);
}

static void destroy(void *state)
{
	mpt_destroy(state);
}

static void reset(void *state)
{
	mpt_power_on(state);
}

static int change_medium(void *state, struct disk *d, struct disk_medium *med, bool force)
{
	struct mpt *m = state;
	int ret = -ENODEV;
	pthread_mutex_lock(&m->lock);
	for (unsigned t = 0; t < MPT_MAX_TARGETS; t++) {
		struct scsi_lun *lun = &m->targets[t].lun;
		if (!m->targets[t].present || lun->disk != d)
			continue;
		if (lun->inflight) {
			ret = error_set(-EBUSY, "the drive is busy: try again");
		} else if (lun->locked && !force) {
			ret = error_set(
			    -EPERM,
			    "the guest locked the tray (medium in use): eject it in the guest, "
			    "or force");
		} else {
			disk_medium_swap(d, med);
			scsi_lun_medium_changed(lun);
			ret = 0;
		}
		break;
	}
	pthread_mutex_unlock(&m->lock);
	if (ret == -ENODEV)
		error_set(ret, "the drive is not on the LSI Logic controller");
	return ret;
}

static const struct storage_controller spi_controller = {
    .bus = DISK_BUS_SCSI,
    .name = "LSI Logic 53C1030 (SCSI)",
    .check = spi_check,
    .create = spi_create,
    .destroy = destroy,
    .reset = reset,
    .change_medium = change_medium,
};
STORAGE_CONTROLLER(spi_controller);

static const struct storage_controller sas_controller = {
    .bus = DISK_BUS_SAS,
    .name = "LSI Logic SAS1068 (SAS)",
    .check = sas_check,
    .create = sas_create,
    .destroy = destroy,
    .reset = reset,
};
STORAGE_CONTROLLER(sas_controller);
