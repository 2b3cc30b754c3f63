/* VM snapshots of a running VM, through the control socket:
 *   minivmm control NAME snapshot take SNAP [STATE_DIR]
 * (`minivmm snapshot NAME take SNAP` sends this when NAME is running.) The VM must be paused:
 * requests in flight finish, every disk is flushed, then each normal disk switches to a new
 * differencing layer (vmm/vm_snapshot.h) and the guest, once resumed, writes there. STATE_DIR,
 * when given (the client's --state-dir), must be the VM's own state directory. */
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/storage.h"
#include "lib/jail.h"
#include "storage/core/block.h"
#include "vmm/control.h"
#include "vmm/vm.h"
#include "vmm/vm_internal.h"
#include "vmm/vm_snapshot.h"
#include "vmm/vm_state.h"
#include "lib/error.h"

static int snapshot_switch(void *opaque, const char *const *layers, const char *const *formats,
			   unsigned n)
{
	return storage_switch_layers(opaque, layers, formats, n);
}

/* args: "take", SNAP and perhaps STATE_DIR, all strings. */
static int snapshot_args(struct json_object *args, const char **snap, const char **dir)
{
	size_t n =
	    args && json_object_is_type(args, json_type_array) ? json_object_array_length(args) : 0;
	const char *a[3] = {NULL, NULL, NULL};
	for (size_t i = 0; i < n && i < 3; i++) {
		struct json_object *v = json_object_array_get_idx(args, i);
		a[i] = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
	}
	if (n < 2 || n > 3 || !a[0] || strcmp(a[0], "take") || !a[1] || !a[1][0] ||
	    strlen(a[1]) > 200 || (n == 3 && (!a[2] || !a[2][0])))
		return error_set(
		    -EINVAL,
		    "usage: snapshot take SNAP (restore and delete need the VM powered off)");
	*snap = a[1];
	*dir = n == 3 ? a[2] : NULL;
	return 0;
}

static int verb_snapshot(void *opaque, struct json_object *args, struct json_object *result)
{
	struct vm *vm = opaque;
	const char *snap = NULL, *want = NULL, *dir = vm_state_current();
	int ret = snapshot_args(args, &snap, &want);
	if (ret < 0)
		return ret;
	bool paused = vm_paused(vm);
	if (!paused)
		return error_set(
		    -EBUSY,
		    "the VM is running: pause it first (minivmm control %s pause), take the "
		    "snapshot, then resume it",
		    vm->cfg->name);
	if (!dir || !vm_storage(vm))
		return error_set(-ENOENT, "the VM has no disks: nothing to snapshot");
	if (jail_chrooted())
		/* Its layers would be created where the jailed VMM cannot reach. */
		return error_set(
		    -EPERM,
		    "snapshots are not available under --chroot: the state directory %s "
		    "is outside the jail",
		    dir);
	if (want) {
		char *a = realpath(want, NULL), *b = realpath(dir, NULL);
		bool same = a && b && !strcmp(a, b);
		free(a);
		free(b);
		if (!same)
			return error_set(-EINVAL, "the VM keeps its state in %s, not %s", dir,
					 want);
	}
	if ((ret = storage_quiesce(vm_storage(vm))) < 0)
		return ret;
	unsigned n = vm->cfg->ndisks;
	const char **tops = calloc(n ? n : 1, sizeof(*tops));
	if (!tops)
		return error_set(-ENOMEM, "out of memory");
	for (unsigned i = 0; i < n; i++) {
		struct disk *d = storage_disk(vm_storage(vm), i);
		tops[i] = d && d->bs && d->media == DISK_MEDIA_HDD ? d->bs->filename : NULL;
	}
	ret = vm_snapshot_take_live(dir, snap, tops, n, snapshot_switch, vm_storage(vm));
	free(tops);
	if (ret < 0)
		return ret;
	if (json_object_object_add(result, "snapshot", json_object_new_string(snap)) < 0 ||
	    json_object_object_add(result, "state_dir", json_object_new_string(dir)) < 0)
		return error_set(-ENOMEM, "out of memory");
	return 0;
}

int vm_snapshot_register_verb(struct vm *vm)
{
	int r = control_register_verb(vm->control, "snapshot", "snapshot take SNAP (VM paused)",
				      verb_snapshot, vm);
	if (r < 0)
		error_set(r, "control verb snapshot: %s", strerror(-r));
	return r;
}
