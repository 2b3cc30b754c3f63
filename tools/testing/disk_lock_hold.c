/* `minivmm disk-lock-hold NAME MODE FILE [STATE_DIR]` (testing): hold an image as a running VM
 * does, without a VM (no KVM needed).
 *
 * Opens FILE in disk MODE (normal, immutable, writethrough, shareable, multiattach, readonly)
 * through disk_mode_open, the VM's own path, with this process listed as VM NAME in the lock
 * registry of the control runtime dir; prints "locked" and holds the locks until stdin closes,
 * then closes the image and removes its registry file. immutable and multiattach put their
 * differencing image in STATE_DIR. Used by tests/storage/test_img_locks.sh.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "devices/disk.h"
#include "storage/core/block.h"
#include "storage/core/disk_lock.h"
#include "devices/disk_mode.h"
#include "vmm/command.h"
#include "vmm/control.h"
#include "lib/error.h"

/* NAME becomes a file name in the runtime dir: the characters a VM name may have. */
static int hold_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64 || s[0] == '.')
		return 0;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static int hold_mode(const char *s, enum disk_mode *out)
{
	for (int m = DISK_MODE_NORMAL; m <= DISK_MODE_READONLY; m++)
		if (!strcmp(s, disk_mode_name((enum disk_mode)m))) {
			*out = (enum disk_mode)m;
			return 0;
		}
	return -1;
}

static int hold_run(int argc, char **argv)
{
	struct disk_mode_env env = {0};
	struct block_device *bs = NULL, *user = NULL;
	char rundir[4096], buf[256];
	enum disk_mode mode;

	if (argc < 4 || argc > 5 || !hold_name_ok(argv[1]) || hold_mode(argv[2], &mode) < 0) {
		fprintf(stderr, "usage: minivmm disk-lock-hold NAME "
				"normal|immutable|writethrough|shareable|multiattach|readonly FILE "
				"[STATE_DIR]\n");
		return 2;
	}
	if (argc == 5 && snprintf(env.state_dir, sizeof(env.state_dir), "%s", argv[4]) >=
			     (int)sizeof(env.state_dir)) {
		fprintf(stderr, "disk-lock-hold: %s: path too long\n", argv[4]);
		return 1;
	}
	if (control_runtime_dir(rundir, sizeof(rundir)) < 0 ||
	    disk_lock_owner_set(argv[1], rundir) < 0) {
		fprintf(stderr, "disk-lock-hold: cannot register in the runtime dir\n");
		return 1;
	}
	disk_mode_env_set(&env);
	int ret = disk_mode_open(argv[3], NULL, mode, 0, 0, &bs, &user);
	if (ret < 0) {
		fprintf(stderr, "disk-lock-hold: %s\n", error_msg());
		disk_lock_owner_clear();
		return 1;
	}
	printf("locked\n");
	fflush(stdout);
	for (;;) {
		ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n == 0 || (n < 0 && errno != EINTR))
			break;
	}
	block_close(bs);
	disk_lock_owner_clear();
	return 0;
}

static const struct command disk_lock_hold_command = {
    .name = "disk-lock-hold",
    .summary = "(testing) hold an image's locks as a VM in a disk mode would",
    .testing = true,
    .run = hold_run,
};
COMMAND(disk_lock_hold_command);
