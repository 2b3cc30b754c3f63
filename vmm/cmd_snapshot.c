/* `minivmm snapshot NAME take|list|restore|delete [SNAP] [--state-dir DIR]`: VM snapshots
 * (vmm/vm_snapshot.h) of a powered-off VM, and `take` of a paused one (sent to the VM over its
 * control socket). Exit codes: 0 done, 1 failed, 2 bad command line. */
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/core/disk_lock.h"
#include "vmm/command.h"
#include "vmm/control.h"
#include "vmm/vm_config.h"
#include "vmm/vm_snapshot.h"
#include "vmm/vm_state.h"
#include "lib/log.h"
#include "lib/error.h"

/* Quiescing waits up to a minute for the disks; making the layers is quick. */
#define SNAPSHOT_TIMEOUT_MS 120000

static const char snapshot_usage[] =
    "usage: minivmm snapshot NAME take|restore|delete SNAP [--state-dir DIR]\n"
    "       minivmm snapshot NAME list [--state-dir DIR]\n";

/* `take` of a running VM goes through its control socket. Returns the exit code, or -1 when no
 * VM of that name runs (the powered-off path applies). */
static int snapshot_take_running(const char *name, const char *snap, const char *state)
{
	char *real = state ? realpath(state, NULL) : NULL;
	char *args[3] = {"take", (char *)snap, real ? real : (char *)state};
	struct json_object *reply = NULL;
	int ret = control_call(name, "snapshot", state ? 3 : 2, args, SNAPSHOT_TIMEOUT_MS, &reply);
	free(real);
	json_object_put(reply);
	if (ret == -ENOENT || ret == -ECONNREFUSED)
		return -1;
	if (ret < 0) {
		log_error(NULL, "snapshot %s: %s", name, error_msg());
		return 1;
	}
	return 0;
}

static int snapshot_main(int argc, char **argv)
{
	const char *pos[3] = {NULL, NULL, NULL}, *state = NULL;
	int npos = 0;
	char dir[4096];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help")) {
			fputs(snapshot_usage, stdout);
			return 0;
		} else if (!strcmp(argv[i], "--state-dir") && i + 1 < argc && argv[i + 1][0]) {
			state = argv[++i];
		} else if (argv[i][0] == '-' || npos == 3) {
			log_error("snapshot", "unexpected argument '%.80s'", argv[i]);
			fputs(snapshot_usage, stderr);
			return 2;
		} else {
			pos[npos++] = argv[i];
		}
	}
	static const char *const ops[] = {"take", "restore", "delete", "list"};
	int op = -1;
	for (int k = 0; npos >= 2 && k < 4; k++)
		if (!strcmp(pos[1], ops[k]))
			op = k;
	if (op < 0 || (op == 3) != (npos == 2) || !vm_config_name_valid(pos[0]) ||
	    (pos[2] && (!pos[2][0] || strlen(pos[2]) > 200))) {
		log_error("snapshot", "bad command line");
		fputs(snapshot_usage, stderr);
		return 2;
	}
	if (op == 0) { /* take: a running VM does it itself (it must be paused) */
		int r = snapshot_take_running(pos[0], pos[2], state);
		if (r >= 0)
			return r;
	}
	/* A running VM holding the disks is named from its lock registry. */
	disk_lock_registry_dir_fn(control_runtime_dir);
	int ret = vm_state_dir(state, pos[0], dir, sizeof(dir));
	if (!ret)
		ret = op == 3 ? vm_snapshot_list(dir)
			      : vm_snapshot_apply(dir, (enum vm_snapshot_op)op, pos[2]);
	if (ret < 0) {
		log_error(NULL, "snapshot %s: %s", pos[0], error_msg());
		return 1;
	}
	return 0;
}

static const struct command snapshot_command = {
    .name = "snapshot",
    .summary = "take, list, restore or delete VM snapshots (take also on a paused VM)",
    .run = snapshot_main,
};
COMMAND(snapshot_command);
