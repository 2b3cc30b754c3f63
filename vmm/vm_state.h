/* A VM's state directory: where its differencing images, its recorded disk list and (later) its
 * snapshot tree live.
 *
 * --state-dir DIR, else $XDG_DATA_HOME/minivmm/vms/NAME, else ~/.local/share/minivmm/vms/NAME.
 * Contents:
 *   disks.json                       the disks of the last run: file (absolute), mode, format, bus,
 *                                    and "uuid" for a hard disk whose format has none (raw, qcow2,
 *                                    ...): the UUID the guest sees, from uuids.json. Rewritten at
 *                                    every start; nothing reads it back at start.
 *   uuids.json                       real path -> UUID of every UUID-less file the VM ever
 *                                    attached, made at first attach, never changed (vmm/vm_uuid.h).
 *                                    A malformed uuids.json refuses the start with one line naming
 *                                    it: fix or delete it (the guest then sees new UUIDs).
 *   formats.json                     real path -> format of every file the VM attached without
 *                                    format=, probed at its first attach and used ever after
 *                                    (never probed again: vmm/vm_disk_format.h). A malformed one
 *                                    refuses the start.
 *   run.pid                          "PID STARTTIME" of the process running the VM: an exec'ed
 *                                    restart (--reboot restart) keeps both, a fresh start does not
 *   diskN-STEM.immutable.qcow2       see devices/disk_mode.h
 *   diskN-STEM.multiattach.qcow2
 */
#ifndef MINIVMM_VMM_VM_STATE_H
#define MINIVMM_VMM_VM_STATE_H

#include <stddef.h>

struct vm_config;

/* The state directory of VM `name` (dir: --state-dir or NULL), not created. */
int vm_state_dir(const char *dir, const char *name, char *buf, size_t len);
/* Before the disks are opened: create the state directory, tell a restart from a fresh start,
 * record the disk list, and set up disk modes and lock holder names for this process. */
int vm_state_prepare(const struct vm_config *cfg);
/* The state directory of the VM this process runs, NULL when it has none (no disks, no UEFI
 * variables). */
const char *vm_state_current(void);
/* For `minivmm img`: when `image` lies in a VM state directory under the default root
 * ($XDG_DATA_HOME/minivmm/vms/NAME or ~/.local/share/minivmm/vms/NAME), allow the disks that VM
 * recorded in its disks.json as files images may name (storage/core/block_path.h): its snapshot
 * layers and diffs name the user's --disk files wherever they are.  A disks.json anywhere else is
 * not trusted: an appliance could bring one naming /etc/shadow. */
void vm_state_allow_recorded_disks(const char *image);
/* After the disks are closed (clean exit): drop the lock registry entry. */
void vm_state_release(void);

#endif
