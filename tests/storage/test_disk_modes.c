/* Disk modes without a guest (devices/disk_mode.c, storage/core/disk_lock.c, vmm/vm_state.c):
 * locks between processes with the holder's name and after kill -9, readonly and shareable
 * sharing, shareable refusing dynamic images, immutable diffs reset on a fresh start but kept on
 * a restart, multiattach per-VM diffs, duplicate UUIDs, and a writer killed mid-write leaving
 * images that `qemu-img check` passes. Processes hand-shake through pipes: no timing.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/disk.h"
#include "storage/core/block.h"
#include "storage/core/disk_lock.h"
#include "devices/disk_mode.h"
#include "vmm/vm_config.h"
#include "vmm/vm_state.h"
#include "tests/lib/testlib.h"
#include "lib/error.h"

#define MiB (1024 * 1024)

static int setup(void **state)
{
	(void)state;
	return test_tmpdir_setup("test-diskmodes");
}

static int teardown(void **state)
{
	(void)state;
	disk_lock_owner_clear();
	disk_mode_env_set(NULL);
	return test_tmpdir_teardown(NULL);
}

static void set_state_dir(const char *dir, bool restarted)
{
	struct disk_mode_env env = {.restarted = restarted};
	snprintf(env.state_dir, sizeof(env.state_dir), "%s", dir);
	mkdir(dir, 0700);
	disk_mode_env_set(&env);
}

static int open_mode(const char *path, enum disk_mode mode, struct block_device **bs)
{
	struct block_device *user;
	return disk_mode_open(path, NULL, mode, 0, 1, bs, &user);
}

/* A child that opens `path` in `mode` as VM `name`, reports the result on a pipe and waits to be
 * killed (or, with writes, writes forever after reporting). */
static pid_t holder_start(const char *name, const char *state, const char *path,
			  enum disk_mode mode, bool writes, int *result)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct block_device *bs;
		close(p[0]);
		/* A failed assertion in the parent must not leave us holding locks forever. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			_exit(1);
		disk_lock_owner_set(name, test_tmpdir);
		if (state)
			set_state_dir(state, false);
		int r = open_mode(path, mode, &bs);
		if (r == 0 && writes) {
			/* A first batch is durable before the parent is told to kill us. */
			static char buf[65536];
			for (unsigned i = 0; i < 64; i++) {
				memset(buf, i + 1, sizeof(buf));
				block_pwrite(bs, (uint64_t)i * 3 * 65536 % (16 * MiB), buf,
					     sizeof(buf));
			}
			block_flush(bs);
		}
		if (write(p[1], &r, sizeof(r)) != sizeof(r))
			_exit(1);
		for (unsigned i = 0; r == 0 && writes; i++) {
			static char buf[4096 * 3];
			memset(buf, i, sizeof(buf));
			block_pwrite(bs, (uint64_t)(i * 7919) % (16 * MiB - sizeof(buf)), buf,
				     sizeof(buf));
		}
		for (;;)
			pause();
	}
	close(p[1]);
	assert_int_equal(read(p[0], result, sizeof(*result)), sizeof(*result));
	close(p[0]);
	return pid;
}

static void holder_kill(pid_t pid)
{
	int st;
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &st, 0), pid);
}

static void test_lock_normal(void **state)
{
	(void)state;
	struct block_device *bs;
	int r;
	const char *img = test_path("lock.qcow2");
	assert_int_equal(test_run("qemu-img create -q -f qcow2 '%s' 16M", img), 0);
	disk_lock_owner_set("second", test_tmpdir);

	pid_t pid = holder_start("first-vm", NULL, img, DISK_MODE_NORMAL, false, &r);
	assert_int_equal(r, 0);
	/* A second writer, and a reader, are refused with the holder's name. */
	assert_int_equal(open_mode(img, DISK_MODE_NORMAL, &bs), -EBUSY);
	assert_null(bs);
	assert_non_null(strstr(error_msg(), "first-vm"));
	assert_non_null(strstr(error_msg(), "lock.qcow2"));
	assert_int_equal(open_mode(img, DISK_MODE_READONLY, &bs), -EBUSY);
	assert_int_equal(open_mode(img, DISK_MODE_WRITETHROUGH, &bs), -EBUSY);
	/* kill -9: the lock dies with the process; its registry file is then ignored. */
	holder_kill(pid);
	assert_int_equal(open_mode(img, DISK_MODE_NORMAL, &bs), 0);
	block_close(bs);
	/* A clean exit leaves no registry file behind. */
	disk_lock_owner_clear();
	assert_int_equal(access(test_path("second.disks"), F_OK), -1);
	unlink(test_path("first-vm.disks"));
}

static void test_lock_shared(void **state)
{
	(void)state;
	struct block_device *a, *b;
	int r;
	const char *img = test_path("shared.raw");
	assert_int_equal(test_run("truncate -s 16M '%s'", img), 0);
	disk_lock_owner_set("me", test_tmpdir);

	/* readonly is shared freely, but keeps writers out. */
	pid_t pid = holder_start("reader", NULL, img, DISK_MODE_READONLY, false, &r);
	assert_int_equal(r, 0);
	assert_int_equal(open_mode(img, DISK_MODE_READONLY, &a), 0);
	assert_false(a->flags & BLOCK_OPEN_RDWR);
	block_close(a);
	assert_int_equal(open_mode(img, DISK_MODE_NORMAL, &a), -EBUSY);
	assert_non_null(strstr(error_msg(), "reader"));
	holder_kill(pid);

	/* shareable: several VMs write one fixed-size image at once. */
	pid = holder_start("sharer", NULL, img, DISK_MODE_SHAREABLE, false, &r);
	assert_int_equal(r, 0);
	assert_int_equal(open_mode(img, DISK_MODE_SHAREABLE, &a), 0);
	assert_true(a->flags & BLOCK_OPEN_RDWR);
	assert_int_equal(open_mode(img, DISK_MODE_SHAREABLE, &b), 0);
	block_close(b);
	block_close(a);
	assert_int_equal(open_mode(img, DISK_MODE_NORMAL, &a), -EBUSY);
	holder_kill(pid);
	unlink(test_path("reader.disks"));
	unlink(test_path("sharer.disks"));
}

static void test_shareable_fixed(void **state)
{
	(void)state;
	struct block_device *bs;
	const struct {
		const char *fmt, *opts;
		bool ok;
	} cases[] = {
	    {"qcow2", "", false},
	    {"qcow2", "-o preallocation=metadata", true},
	    {"qcow2", "-o preallocation=full", true},
	    {"vdi", "", false},
	    {"vdi", "-o static=on", true},
	    {"vpc", "-o subformat=dynamic", false},
	    {"vpc", "-o subformat=fixed", true},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *img = test_path("fixed.img");
		unlink(img);
		assert_int_equal(test_run("qemu-img create -q -f %s %s '%s' 8M", cases[i].fmt,
					  cases[i].opts, img),
				 0);
		int r = open_mode(img, DISK_MODE_SHAREABLE, &bs);
		if (cases[i].ok) {
			if (r)
				fail_msg("%s %s: %s", cases[i].fmt, cases[i].opts, error_msg());
			block_close(bs);
		} else {
			assert_int_equal(r, -EINVAL);
			assert_non_null(strstr(error_msg(), "cannot be shareable"));
			assert_non_null(strstr(error_msg(), "fixed.img"));
		}
	}
	/* A qcow2 overlay over a fixed base is still not fixed. */
	assert_int_equal(
	    test_run("qemu-img create -q -f raw '%s' 8M && qemu-img create -q -f qcow2 -b "
		     "'%s' -F raw '%s'",
		     test_path("fb.raw"), test_path("fb.raw"), test_path("fo.qcow2")),
	    0);
	assert_int_equal(open_mode(test_path("fo.qcow2"), DISK_MODE_SHAREABLE, &bs), -EINVAL);
	assert_non_null(strstr(error_msg(), "backing file"));
}

static void fill(struct block_device *bs, uint64_t off, int c)
{
	char buf[4096];
	memset(buf, c, sizeof(buf));
	assert_int_equal(block_pwrite(bs, off, buf, sizeof(buf)), 0);
	assert_int_equal(block_flush(bs), 0);
}

static int byte_at(struct block_device *bs, uint64_t off)
{
	unsigned char c;
	assert_int_equal(block_pread(bs, off, &c, 1), 0);
	return c;
}

static void test_immutable(void **state)
{
	(void)state;
	char diff[512];
	struct block_device *bs, *user;
	const char *base = test_path("imm.vdi"), *st = test_path("vm-imm");
	assert_int_equal(
	    test_run("qemu-img create -q -f vdi '%s' 16M && qemu-io -f vdi -c 'write -P 7 0 "
		     "64k' '%s' >/dev/null && cp '%s' '%s.orig'",
		     base, base, base, base),
	    0);
	/* No state directory: refused with a clear message. */
	disk_mode_env_set(NULL);
	assert_int_equal(open_mode(base, DISK_MODE_IMMUTABLE, &bs), -EINVAL);
	assert_non_null(strstr(error_msg(), "state directory"));

	set_state_dir(st, false);
	assert_int_equal(disk_mode_open(base, NULL, DISK_MODE_IMMUTABLE, 0, 2, &bs, &user), 0);
	assert_string_equal(bs->drv->name, "qcow2");
	assert_ptr_equal(user, bs->backing);
	assert_string_equal(user->drv->name, "vdi");
	assert_int_equal(disk_mode_diff_path(st, base, 2, DISK_MODE_IMMUTABLE, diff, sizeof(diff)),
			 0);
	assert_non_null(strstr(diff, "/disk2-imm.immutable.qcow2"));
	assert_int_equal(access(diff, F_OK), 0);
	assert_int_equal(byte_at(bs, 0), 7);
	fill(bs, 0, 0x55);
	/* The base is read-locked: no writer while the immutable VM runs. */
	struct block_device *w;
	assert_int_equal(open_mode(base, DISK_MODE_NORMAL, &w), -EBUSY);
	block_close(bs);

	/* A restart (reboot inside the guest) keeps the guest's writes... */
	set_state_dir(st, true);
	assert_int_equal(disk_mode_open(base, NULL, DISK_MODE_IMMUTABLE, 0, 2, &bs, &user), 0);
	assert_int_equal(byte_at(bs, 0), 0x55);
	block_close(bs);
	/* ...a fresh start throws them away; the base was never written. */
	set_state_dir(st, false);
	assert_int_equal(disk_mode_open(base, NULL, DISK_MODE_IMMUTABLE, 0, 2, &bs, &user), 0);
	assert_int_equal(byte_at(bs, 0), 7);
	block_close(bs);
	assert_int_equal(test_run("cmp -s '%s' '%s.orig'", base, base), 0);
	assert_int_equal(test_run("qemu-img check -q '%s' && qemu-img check -q '%s'", diff, base),
			 0);
	/* qemu-img reads the same chain. */
	assert_int_equal(test_run("qemu-img info --backing-chain '%s' | grep -q 'imm.vdi'", diff),
			 0);
}

static void test_multiattach(void **state)
{
	(void)state;
	char d1[512], d2[512];
	struct block_device *a, *b, *user;
	const char *base = test_path("multi.qcow2");
	assert_int_equal(
	    test_run("qemu-img create -q -f qcow2 '%s' 16M && cp '%s' '%s.orig'", base, base, base),
	    0);
	/* Two VMs on one base at once, each with its own diff (same process: OFD locks still
	 * conflict between separate opens, so this is the two-VM case). */
	set_state_dir(test_path("vm1"), false);
	assert_int_equal(disk_mode_open(base, NULL, DISK_MODE_MULTIATTACH, 0, 0, &a, &user), 0);
	set_state_dir(test_path("vm2"), false);
	assert_int_equal(disk_mode_open(base, NULL, DISK_MODE_MULTIATTACH, 0, 0, &b, &user), 0);
	fill(a, 4096, 0x11);
	fill(b, 4096, 0x22);
	/* Nobody may write the base meanwhile. */
	struct block_device *w;
	assert_int_equal(open_mode(base, DISK_MODE_NORMAL, &w), -EBUSY);
	block_close(a);
	block_close(b);
	/* Fresh starts keep each VM's own changes. */
	set_state_dir(test_path("vm1"), false);
	assert_int_equal(disk_mode_open(base, NULL, DISK_MODE_MULTIATTACH, 0, 0, &a, &user), 0);
	assert_int_equal(byte_at(a, 4096), 0x11);
	block_close(a);
	set_state_dir(test_path("vm2"), false);
	assert_int_equal(disk_mode_open(base, NULL, DISK_MODE_MULTIATTACH, 0, 0, &b, &user), 0);
	assert_int_equal(byte_at(b, 4096), 0x22);
	block_close(b);
	assert_int_equal(test_run("cmp -s '%s' '%s.orig'", base, base), 0);
	disk_mode_diff_path(test_path("vm1"), base, 0, DISK_MODE_MULTIATTACH, d1, sizeof(d1));
	disk_mode_diff_path(test_path("vm2"), base, 0, DISK_MODE_MULTIATTACH, d2, sizeof(d2));
	assert_non_null(strstr(d1, "vm1/disk0-multi.multiattach.qcow2"));
	assert_int_equal(test_run("qemu-img check -q '%s' && qemu-img check -q '%s'", d1, d2), 0);

	/* A diff over another base is refused rather than silently used. */
	const char *other = test_path("multi2.qcow2");
	assert_int_equal(
	    test_run("qemu-img create -q -f qcow2 '%s' 16M && mkdir -p '%s' && cp '%s' "
		     "'%s/disk0-multi2.multiattach.qcow2'",
		     other, test_path("vm3"), d1, test_path("vm3")),
	    0);
	set_state_dir(test_path("vm3"), false);
	assert_int_equal(disk_mode_open(other, NULL, DISK_MODE_MULTIATTACH, 0, 0, &a, &user),
			 -EINVAL);
	assert_non_null(strstr(error_msg(), "differencing image is over"));
}

static void test_duplicate_uuid(void **state)
{
	(void)state;
	char arg[600];
	struct disk_config c[3];
	struct disk *d[3];
	const char *a = test_path("u1.vdi"), *copy = test_path("u2.vdi"),
		   *clone = test_path("u3.vdi");
	assert_int_equal(
	    test_run("qemu-img create -q -f vdi '%s' 8M && cp '%s' '%s' && ./minivmm img "
		     "clonemedium '%s' '%s' --format VDI >/dev/null",
		     a, a, copy, a, clone),
	    0);
	const char *files[] = {a, copy, clone};
	for (int i = 0; i < 3; i++) {
		snprintf(arg, sizeof(arg), "%s,readonly", files[i]);
		assert_int_equal(disk_config_parse(arg, DISK_MEDIA_HDD, &c[i]), 0);
		assert_int_equal(disk_open(&c[i], i, &d[i]), 0);
	}
	/* A plain copy has the same UUID: refused, naming both files. */
	assert_int_equal(disk_check_uuid(d, 2), -EEXIST);
	assert_non_null(strstr(error_msg(), "u2.vdi"));
	assert_non_null(strstr(error_msg(), "u1.vdi"));
	assert_non_null(strstr(error_msg(), "UUID"));
	/* clonemedium gave the clone a new one. */
	struct disk *ok[2] = {d[0], d[2]};
	assert_int_equal(disk_check_uuid(ok, 2), 0);
	for (int i = 0; i < 3; i++) {
		disk_close(d[i]);
		disk_config_free(&c[i]);
	}
	/* Formats without a UUID: one file reached by two names is one disk. */
	const char *raw = test_path("u.raw"), *link = test_path("u-link.raw");
	assert_int_equal(test_run("truncate -s 8M '%s' && ln -s '%s' '%s'", raw, raw, link), 0);
	const char *rfiles[] = {raw, link};
	for (int i = 0; i < 2; i++) {
		snprintf(arg, sizeof(arg), "%s,readonly", rfiles[i]);
		assert_int_equal(disk_config_parse(arg, DISK_MEDIA_HDD, &c[i]), 0);
		assert_int_equal(disk_open(&c[i], i, &d[i]), 0);
	}
	assert_int_equal(disk_check_uuid(d, 2), -EEXIST);
	for (int i = 0; i < 2; i++) {
		disk_close(d[i]);
		disk_config_free(&c[i]);
	}
}

/* kill -9 of a VM writing its multiattach diff: base and diff both pass qemu-img check. */
static void test_kill_mid_write(void **state)
{
	(void)state;
	char diff[512];
	int r;
	const char *base = test_path("crash.qcow2");
	assert_int_equal(test_run("qemu-img create -q -f qcow2 '%s' 16M", base), 0);
	pid_t pid =
	    holder_start("writer", test_path("vm-crash"), base, DISK_MODE_MULTIATTACH, true, &r);
	assert_int_equal(r, 0);
	holder_kill(pid);
	disk_mode_diff_path(test_path("vm-crash"), base, 1, DISK_MODE_MULTIATTACH, diff,
			    sizeof(diff));
	/* Leaked clusters (exit 3) are allowed after a crash; corruption (exit 2) is not. */
	int rc = test_run("qemu-img check -q '%s'", diff);
	assert_true(rc == 0 || rc == 3);
	assert_int_equal(test_run("qemu-img check -q '%s'", base), 0);
	/* The flushed first batch survived. */
	assert_int_equal(
	    test_run("qemu-io -r -c 'read -P 1 0 64k' '%s' | grep -q 'read 65536'", diff), 0);
	unlink(test_path("writer.disks"));
}

/* vm_state_prepare: the state directory, the disk record and restart detection. */
static void test_vm_state(void **state)
{
	(void)state;
	char dir[600];
	struct vm_config cfg;
	char sarg[600];
	snprintf(sarg, sizeof(sarg), "%s,bus=ide", test_path("s.raw"));
	const char *argv[] = {"run",	  "--name",	 "sv",
			      "--kernel", "k",		 "--disk",
			      sarg,	  "--state-dir", test_path("deep/state/sv")};
	assert_int_equal(vm_config_parse(9, (char **)argv, 1 << 20, &cfg), 0);
	assert_int_equal(test_run("truncate -s 8M '%s'", test_path("s.raw")), 0);
	assert_int_equal(vm_state_prepare(&cfg), 0);
	assert_int_equal(
	    test_run("grep -q '\"mode\": *\"normal\"' '%s/disks.json' && grep -q 's.raw' "
		     "'%s/disks.json'",
		     test_path("deep/state/sv"), test_path("deep/state/sv")),
	    0);
	vm_state_release();
	/* Defaults follow XDG_DATA_HOME, then HOME. */
	setenv("XDG_DATA_HOME", "/x", 1);
	assert_int_equal(vm_state_dir(NULL, "vm1", dir, sizeof(dir)), 0);
	assert_string_equal(dir, "/x/minivmm/vms/vm1");
	unsetenv("XDG_DATA_HOME");
	setenv("HOME", "/h", 1);
	assert_int_equal(vm_state_dir(NULL, "vm1", dir, sizeof(dir)), 0);
	assert_string_equal(dir, "/h/.local/share/minivmm/vms/vm1");
	vm_config_free(&cfg);

	/* An immutable disk: a fresh process resets it, this same process (an exec'ed restart
	 * keeps the pid and start time) keeps it. */
	const char *iargv[] = {"run",	 "--name", "iv",	  "--kernel",	  "k",
			       "--disk", NULL,	   "--state-dir", test_path("iv")};
	char darg[600];
	snprintf(darg, sizeof(darg), "%s,immutable,bus=ide", test_path("s.raw"));
	iargv[6] = darg;
	assert_int_equal(vm_config_parse(9, (char **)iargv, 1 << 20, &cfg), 0);
	pid_t pid = fork();
	if (pid == 0) {
		/* The "first start", in another process. */
		struct block_device *bs, *u;
		if (vm_state_prepare(&cfg) ||
		    disk_mode_open(test_path("s.raw"), NULL, DISK_MODE_IMMUTABLE, 0, 0, &bs, &u))
			_exit(1);
		fill(bs, 0, 0x33);
		block_close(bs);
		vm_state_release();
		_exit(0);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	struct block_device *bs, *u;
	for (int round = 0; round < 2; round++) {
		assert_int_equal(vm_state_prepare(&cfg), 0);
		assert_int_equal(
		    disk_mode_open(test_path("s.raw"), NULL, DISK_MODE_IMMUTABLE, 0, 0, &bs, &u),
		    0);
		/* round 0: fresh start after another process: reset; round 1: "restart". */
		assert_int_equal(byte_at(bs, 0), round == 0 ? 0 : 0x44);
		fill(bs, 0, 0x44);
		block_close(bs);
		vm_state_release();
	}
	vm_config_free(&cfg);
	assert_int_equal(test_run("test \"$(od -An -tx1 -N1 '%s')\" = ' 00'", test_path("s.raw")),
			 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lock_normal),	    cmocka_unit_test(test_lock_shared),
	    cmocka_unit_test(test_shareable_fixed), cmocka_unit_test(test_immutable),
	    cmocka_unit_test(test_multiattach),	    cmocka_unit_test(test_duplicate_uuid),
	    cmocka_unit_test(test_kill_mid_write),  cmocka_unit_test(test_vm_state),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
