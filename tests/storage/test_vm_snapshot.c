/* VM snapshots through the block layer (vmm/vm_snapshot.c, vmm/vm_state.c, disk_open): "runs"
 * of a VM are simulated by vm_state_prepare + disk_open of its --disk list, writing through
 * whatever layers the snapshots made; take/restore/delete are checked by what each disk reads.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/disk.h"
#include "storage/core/block.h"
#include "vmm/vm_config.h"
#include "vmm/vm_snapshot.h"
#include "vmm/vm_state.h"
#include "tests/lib/testlib.h"
#include "lib/error.h"

static char state[300], base[300], wt[300];

static int setup(void **st)
{
	(void)st;
	if (test_tmpdir_setup("test-vmsnap") < 0)
		return -1;
	snprintf(state, sizeof(state), "%s/state", test_tmpdir);
	snprintf(base, sizeof(base), "%s/base.raw", test_tmpdir);
	snprintf(wt, sizeof(wt), "%s/wt.qcow2", test_tmpdir);
	return test_run("truncate -s 16M '%s' && qemu-img create -q -f qcow2 '%s' 16M", base, wt);
}

static int teardown(void **st)
{
	(void)st;
	return getenv("KEEP") ? 0 : test_tmpdir_teardown(NULL);
}

/* One "run": open the VM's two disks (normal base, writethrough wt), check what offset 0 reads
 * on each (-1: do not check), then write one byte pattern to each (0: do not write). */
static void vm_run(int want0, int want1, int put0, int put1)
{
	char a0[400], a1[400];
	snprintf(a0, sizeof(a0), "%s,bus=ide", base);
	snprintf(a1, sizeof(a1), "%s,writethrough,bus=ide", wt);
	const char *argv[] = {"run", "--name", "snapvm", "--kernel",	"k",  "--disk",
			      a0,    "--disk", a1,	 "--state-dir", state};
	struct vm_config cfg;
	struct disk *d[2];
	assert_int_equal(vm_config_parse(11, (char **)argv, 1 << 20, &cfg), 0);
	if (vm_state_prepare(&cfg))
		fail_msg("%s", error_msg());
	int want[2] = {want0, want1}, put[2] = {put0, put1};
	for (int i = 0; i < 2; i++) {
		if (disk_open(&cfg.disks[i], i, &d[i]))
			fail_msg("%s", error_msg());
		unsigned char buf[4096];
		assert_int_equal(block_pread(d[i]->bs, 0, buf, sizeof(buf)), 0);
		if (want[i] >= 0 && buf[0] != want[i])
			fail_msg("disk %d reads %#x, expected %#x", i, buf[0], want[i]);
		if (put[i]) {
			memset(buf, put[i], sizeof(buf));
			assert_int_equal(block_pwrite(d[i]->bs, 0, buf, sizeof(buf)), 0);
			assert_int_equal(block_flush(d[i]->bs), 0);
		}
	}
	for (int i = 0; i < 2; i++)
		disk_close(d[i]);
	vm_state_release();
	vm_config_free(&cfg);
}

static int snap(enum vm_snapshot_op op, const char *name)
{
	return vm_snapshot_apply(state, op, name);
}

static void test_take_restore_delete(void **st)
{
	(void)st;
	/* Before any run there is no disk record. */
	assert_int_equal(snap(VM_SNAPSHOT_TAKE, "s0"), -ENOENT);
	assert_non_null(strstr(error_msg(), "disks.json"));

	vm_run(0, 0, 'B', 'b');
	assert_int_equal(snap(VM_SNAPSHOT_TAKE, "s1"), 0);
	assert_int_equal(snap(VM_SNAPSHOT_TAKE, "s1"), -EEXIST);
	vm_run('B', 'b', 'C', 'c');
	/* The base is frozen under the snapshot: the VM's write went to the new layer. */
	assert_int_equal(test_run("test \"$(head -c1 '%s')\" = B", base), 0);
	assert_int_equal(snap(VM_SNAPSHOT_TAKE, "s2"), 0);
	vm_run('C', 'c', 'D', 'd');

	/* restore: the normal disk goes back; the writethrough disk keeps its changes. */
	assert_int_equal(snap(VM_SNAPSHOT_RESTORE, "s1"), 0);
	vm_run('B', 'd', 0, 0);
	assert_int_equal(snap(VM_SNAPSHOT_RESTORE, "s2"), 0);
	vm_run('C', 'd', 'E', 0);
	assert_int_equal(snap(VM_SNAPSHOT_RESTORE, "nope"), -ENOENT);

	/* delete s1: its layer (the base) takes s2's layer's data; s2 still reads 'C'. */
	assert_int_equal(snap(VM_SNAPSHOT_DELETE, "s1"), 0);
	assert_int_equal(test_run("test \"$(head -c1 '%s')\" = C", base), 0);
	vm_run('E', -1, 0, 0);
	assert_int_equal(snap(VM_SNAPSHOT_RESTORE, "s2"), 0);
	vm_run('C', -1, 'F', 0);
	/* delete s2: the current state merges down; it reads the same. */
	assert_int_equal(snap(VM_SNAPSHOT_DELETE, "s2"), 0);
	vm_run('F', -1, 0, 0);
	assert_int_equal(test_run("test \"$(head -c1 '%s')\" = F", base), 0);
	assert_int_equal(snap(VM_SNAPSHOT_DELETE, "s2"), -ENOENT);
	/* Every layer left behind is a sound image. */
	assert_int_equal(
	    test_run("for f in '%s'/*.qcow2; do [ -e \"$f\" ] || continue; qemu-img check -q "
		     "\"$f\" || exit 1; done",
		     state),
	    0);
}

static void test_branch_and_running(void **st)
{
	(void)st;
	vm_run(-1, -1, 'G', 0);
	assert_int_equal(snap(VM_SNAPSHOT_TAKE, "a"), 0);
	vm_run('G', -1, 'H', 0);
	assert_int_equal(snap(VM_SNAPSHOT_TAKE, "b"), 0);
	assert_int_equal(snap(VM_SNAPSHOT_RESTORE, "a"), 0);
	/* a's layer now has two children (b's and the current one): refused, nothing changed. */
	assert_int_equal(snap(VM_SNAPSHOT_DELETE, "a"), -EBUSY);
	assert_non_null(strstr(error_msg(), "child layers"));
	vm_run('G', -1, 0, 0);
	assert_int_equal(snap(VM_SNAPSHOT_RESTORE, "b"), 0);
	vm_run('H', -1, 0, 0);

	/* A running VM (its disks open and locked) keeps snapshot verbs out. */
	char a0[400];
	struct disk_config c;
	struct disk *d;
	snprintf(a0, sizeof(a0), "%s,bus=ide", base);
	const char *argv[] = {"run",	"--name", "snapvm",	 "--kernel", "k",
			      "--disk", a0,	  "--state-dir", state};
	struct vm_config cfg;
	assert_int_equal(vm_config_parse(9, (char **)argv, 1 << 20, &cfg), 0);
	assert_int_equal(disk_config_parse(a0, DISK_MEDIA_HDD, &c), 0);
	/* The VM opens what snapshots.json says: disk 0's current layer. */
	assert_int_equal(vm_state_prepare(&cfg), 0);
	assert_int_equal(disk_open(&c, 0, &d), 0);
	assert_string_equal(d->bs->drv->name, "qcow2");
	assert_int_equal(snap(VM_SNAPSHOT_TAKE, "c"), -EBUSY);
	disk_close(d);
	vm_state_release();
	disk_config_free(&c);
	vm_config_free(&cfg);
	assert_int_equal(snap(VM_SNAPSHOT_TAKE, "c"), 0);
	/* The CLI lists them. */
	assert_int_equal(
	    test_run("./minivmm snapshot snapvm list --state-dir '%s' | awk '{print $1}' | "
		     "tr '\\n' ' ' | grep -qx 'a b c '",
		     state),
	    0);
	assert_int_equal(
	    test_run("./minivmm snapshot snapvm restore zz --state-dir '%s' 2>/dev/null", state),
	    1);
	assert_int_equal(test_run("./minivmm snapshot 'bad/name' list 2>/dev/null"), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_take_restore_delete),
	    cmocka_unit_test(test_branch_and_running),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
