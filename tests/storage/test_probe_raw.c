/* Probed raw images (QEMU's CVE-2008-2004 class, issue 10 point 1): the probe window is the most
 * any driver's probe reads; a raw image opened without a format refuses writes, write-zeroes and
 * discards that would make that window probe as another format (a VMDK descriptor spread over
 * sectors 1-7 under a comment line in sector 0 included), two threads writing halves of a header
 * at once never both get through (nor two processes), and format=raw lifts the guard. A VM records
 * the format it probed at a disk's first attach in STATE/formats.json and opens the disk with it
 * afterwards, even once the file probes as something else; a malformed formats.json refuses the
 * start.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/disk.h"
#include "storage/core/block.h"
#include "storage/core/block_probe_guard.h"
#include "storage/core/disk_lock.h"
#include "storage/core/host_file.h"
#include "vmm/vm_config.h"
#include "vmm/vm_snapshot.h"
#include "vmm/vm_state.h"
#include "tests/lib/testlib.h"
#include "lib/error.h"

#define WINDOW 4096

static int setup(void **state)
{
	(void)state;
	return test_tmpdir_setup("test-probe-raw");
}

static int teardown(void **state)
{
	(void)state;
	vm_state_release();
	return test_tmpdir_teardown(NULL);
}

/* A 1 MiB raw file of zeroes (a VMDK descriptor may be at most that large). */
static const char *zero_disk(const char *name)
{
	const char *p = test_path(name);
	assert_int_equal(test_run("rm -f '%s' && truncate -s 1M '%s'", p, p), 0);
	return p;
}

static const char *probe_name(const char *path)
{
	const struct block_driver *drv = NULL;
	assert_int_equal(block_probe(path, &drv), 0);
	return drv->name;
}

/* A VMDK descriptor without its "# Disk DescriptorFile" line, naming `extent` as a flat extent:
 * a comment and newlines in sector 0, the keys in sectors 1-7, no NUL byte in its 4 KiB. */
static void vmdk_text(uint8_t buf[WINDOW], const char *extent)
{
	memset(buf, '\n', WINDOW);
	memcpy(buf, "# nothing to see\n", 17);
	int n = snprintf((char *)buf + 512, WINDOW - 512,
			 "version=1\nCID=fffffffe\nparentCID=ffffffff\n"
			 "createType=\"monolithicFlat\"\nRDONLY 2048 FLAT \"%s\" 0\n",
			 extent);
	buf[512 + n] = '\n'; /* snprintf's NUL */
}

/* The window is derived from the drivers: the largest probe_bytes, VMDK's 4 KiB of text. */
static void test_window_from_drivers(void **state)
{
	(void)state;
	size_t n, max = 0;
	const struct block_driver *const *drv = block_drivers(&n);
	for (size_t i = 0; i < n; i++) {
		if (!drv[i]->probe)
			continue;
		assert_true(drv[i]->probe_bytes > 0);
		if (drv[i]->probe_bytes > max)
			max = drv[i]->probe_bytes;
	}
	assert_int_equal(block_probe_window(), max);
	assert_int_equal(block_probe_window(), WINDOW);
	/* The descriptor below probes as vmdk when written whole, only with its last sector. */
	uint8_t buf[WINDOW];
	vmdk_text(buf, "/etc/passwd");
	assert_non_null(block_probe_head(buf, WINDOW, "x"));
	assert_string_equal(block_probe_head(buf, WINDOW, "x")->name, "vmdk");
	assert_null(block_probe_head(buf, 512, "x"));
}

/* Issue 10's attack: sectors 1-7 first (sector 0 still zeroes: raw), then the comment line into
 * sector 0. The old guard looked at sector 0 only and let it through. */
static void test_vmdk_in_sectors_1_to_7(void **state)
{
	(void)state;
	const char *p = zero_disk("v.raw");
	uint8_t buf[WINDOW], back[WINDOW];
	struct block_device *bs;
	vmdk_text(buf, "/etc/passwd");
	assert_int_equal(block_open(p, NULL, BLOCK_OPEN_RDWR, &bs), 0);
	assert_string_equal(bs->drv->name, "raw");
	assert_non_null(bs->probe_guard);
	assert_int_equal(block_pwrite(bs, 512, buf + 512, WINDOW - 512), 0);
	assert_int_equal(block_pwrite(bs, 0, buf, 512), -EPERM);
	assert_non_null(strstr(error_msg(), "look like vmdk"));
	assert_int_equal(block_pwrite(bs, 0, buf, WINDOW), -EPERM);
	assert_int_equal(block_pwrite(bs, 0, buf, 8192), -EPERM); /* beyond the window too */
	/* Nothing of the refused writes landed; writes that keep it raw go through. */
	assert_int_equal(block_pread(bs, 0, back, WINDOW), 0);
	for (int i = 0; i < 512; i++)
		assert_int_equal(back[i], 0);
	assert_memory_equal(back + 512, buf + 512, WINDOW - 512);
	uint8_t zero[512] = {0};
	zero[100] = 'x';
	assert_int_equal(block_pwrite(bs, 0, zero, 512), 0);
	assert_int_equal(block_pwrite(bs, WINDOW, buf, 512), 0); /* past the window: not checked */
	block_close(bs);
	assert_string_equal(probe_name(p), "raw");
	/* With format=raw the user said what it is: no guard (and now it probes as vmdk). */
	assert_int_equal(block_open(p, "raw", BLOCK_OPEN_RDWR, &bs), 0);
	assert_null(bs->probe_guard);
	assert_int_equal(block_pwrite(bs, 0, buf, 512), 0);
	block_close(bs);
	assert_string_equal(probe_name(p), "vmdk");
	/* Read-only opens have nothing to guard. */
	assert_int_equal(block_open(p, "raw", 0, &bs), 0);
	assert_null(bs->probe_guard);
	block_close(bs);
}

/* Zeroes complete a header as well as data: qcow2 needs version 2 or 3 after its magic. */
static void test_zeroes_and_discard_checked(void **state)
{
	(void)state;
	const char *p = zero_disk("z.raw");
	const uint8_t head[8] = {'Q', 'F', 'I', 0xfb, 0, 0, 1, 3}; /* version 259: not qcow2 */
	struct block_device *bs;
	assert_int_equal(block_open(p, NULL, BLOCK_OPEN_RDWR, &bs), 0);
	assert_int_equal(block_pwrite(bs, 0, head, sizeof(head)), 0);
	assert_int_equal(block_write_zeroes(bs, 6, 1, 0), -EPERM);
	assert_int_equal(block_write_zeroes(bs, 0, 4096, BLOCK_ZERO_MAY_UNMAP), 0); /* all raw */
	assert_int_equal(block_pwrite(bs, 0, head, sizeof(head)), 0);
	assert_int_equal(block_discard(bs, 0, 4096), 0);
	assert_int_equal(block_pwrite(bs, 0, head, sizeof(head)), 0);
	assert_int_equal(block_discard(bs, 6, 1), -EPERM);
	block_close(bs);
	assert_string_equal(probe_name(p), "raw");
}

struct half {
	struct block_device *bs;
	uint64_t off;
	const uint8_t *buf;
	size_t len;
	pthread_barrier_t *go;
	int ret;
};

static void *half_write(void *arg)
{
	struct half *h = arg;
	pthread_barrier_wait(h->go);
	h->ret = block_pwrite(h->bs, h->off, h->buf, h->len);
	return NULL;
}

/* Two threads each write half of a descriptor (sectors 0-6 with version=, sector 7 with
 * createType=), released together: each half alone keeps the image raw, both together do not,
 * so the guard's lock must let exactly one through, every time. */
static void test_concurrent_halves(void **state)
{
	(void)state;
	const char *p = zero_disk("c.raw");
	uint8_t buf[WINDOW], junk[WINDOW], back[WINDOW];
	struct block_device *bs;
	pthread_barrier_t go;
	vmdk_text(buf, "/etc/passwd");
	memset(junk, 0, sizeof(junk));
	assert_int_equal(block_open(p, NULL, BLOCK_OPEN_RDWR, &bs), 0);
	/* sectors 0-6: comment and version= only (createType= moved to sector 7) */
	uint8_t a[3584], b[512];
	memset(a, '\n', sizeof(a));
	memset(b, '\n', sizeof(b));
	memcpy(a, "# x\n", 4);
	memcpy(a + 512, "version=1\n", 10);
	memcpy(b, "createType=\"monolithicFlat\"\nRW 2048 FLAT \"/etc/shadow\" 0\n", 57);
	pthread_barrier_init(&go, NULL, 2);
	for (int i = 0; i < 200; i++) {
		assert_int_equal(block_pwrite(bs, 0, junk, WINDOW), 0); /* NULs: raw again */
		struct half h[2] = {{bs, 0, a, sizeof(a), &go, 1}, {bs, 3584, b, 512, &go, 1}};
		pthread_t t[2];
		for (int k = 0; k < 2; k++)
			assert_int_equal(pthread_create(&t[k], NULL, half_write, &h[k]), 0);
		for (int k = 0; k < 2; k++)
			pthread_join(t[k], NULL);
		assert_true((h[0].ret == 0) != (h[1].ret == 0));
		assert_int_equal(h[0].ret | h[1].ret, -EPERM);
		assert_int_equal(block_pread(bs, 0, back, WINDOW), 0);
		assert_null(block_probe_head(back, WINDOW, p));
	}
	pthread_barrier_destroy(&go);
	block_close(bs);
	assert_string_equal(probe_name(p), "raw");
}

/* The same across processes (two VMs on one shareable probed-raw disk), each with its own file
 * description: a child checks its half (sector 7) and holds the guard before writing it; a write
 * of the other half by this process must wait for the child's write and then be refused.
 * "Waits" is seen in the guard's count of waits, with a bound that only stops a hang: without the
 * cross-process lock the write goes through at once and the test fails. */
struct pwrite_job {
	struct block_device *bs;
	const uint8_t *buf;
	size_t len;
	int ret;
	bool done;
};

static void *pwrite_job(void *arg)
{
	struct pwrite_job *j = arg;
	j->ret = block_pwrite(j->bs, 0, j->buf, j->len);
	__atomic_store_n(&j->done, true, __ATOMIC_RELEASE);
	return NULL;
}

static void test_two_processes_halves(void **state)
{
	(void)state;
	const char *p = zero_disk("p.raw");
	uint8_t back[WINDOW], a[3584], b[512];
	memset(a, '\n', sizeof(a));
	memset(b, '\n', sizeof(b));
	memcpy(a, "# x\n", 4);
	memcpy(a + 512, "version=1\n", 10);
	memcpy(b, "createType=\"monolithicFlat\"\nRW 2048 FLAT \"/etc/shadow\" 0\n", 57);
	int held[2], go[2];
	/* Both processes are VMs of one user: their runtime dir holds the lock file. */
	assert_int_equal(disk_lock_owner_set("probe-two", test_tmpdir), 0);
	assert_int_equal(pipe(held), 0);
	assert_int_equal(pipe(go), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct block_device *mine;
		struct iovec iov = {b, sizeof(b)};
		char c = 0;
		alarm(60); /* never outlive a parent that failed */
		if (block_open(p, NULL, BLOCK_OPEN_RDWR, &mine) < 0 ||
		    block_probe_guard_begin(mine, 3584, sizeof(b), &iov, 1) != 1 ||
		    write(held[1], "h", 1) != 1 || read(go[0], &c, 1) != 1 ||
		    host_file_pwrite(&mine->file, 3584, b, sizeof(b)) < 0)
			_exit(1);
		block_probe_guard_end(mine, 1);
		block_close(mine);
		_exit(0);
	}
	struct block_device *bs;
	char c;
	assert_int_equal(block_open(p, NULL, BLOCK_OPEN_RDWR, &bs), 0);
	assert_int_equal(read(held[0], &c, 1), 1);
	unsigned long waits = block_probe_guard_waits();
	struct pwrite_job job = {bs, a, sizeof(a), 1, false};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, pwrite_job, &job), 0);
	for (int ms = 0; ms < 10000 && !__atomic_load_n(&job.done, __ATOMIC_ACQUIRE) &&
			 block_probe_guard_waits() == waits;
	     ms++)
		usleep(1000);
	assert_int_equal(write(go[1], "g", 1), 1);
	pthread_join(t, NULL);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(job.ret, -EPERM);
	assert_int_equal(block_pread(bs, 0, back, WINDOW), 0);
	assert_null(block_probe_head(back, WINDOW, p));
	block_close(bs);
	for (int i = 0; i < 2; i++) {
		close(held[i]);
		close(go[i]);
	}
	assert_string_equal(probe_name(p), "raw");
	disk_lock_owner_clear();
}

/* The cross-process lock is a file in the VM's runtime dir, not the image: another user who can
 * open the image and holds its flock (or an OFD read lock on it) delays no guarded write. */
static void test_image_lock_holder_delays_nothing(void **state)
{
	(void)state;
	const char *p = zero_disk("dos.raw");
	int held[2], done[2];
	assert_int_equal(disk_lock_owner_set("probe-dos", test_tmpdir), 0);
	assert_int_equal(pipe(held), 0);
	assert_int_equal(pipe(done), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
		char c;
		int fd = open(p, O_RDONLY);
		alarm(60); /* never outlive a parent that failed */
		if (fd < 0 || flock(fd, LOCK_EX) < 0 || fcntl(fd, F_OFD_SETLK, &fl) < 0 ||
		    write(held[1], "h", 1) != 1 || read(done[0], &c, 1) != 1)
			_exit(1);
		_exit(0);
	}
	char c;
	assert_int_equal(read(held[0], &c, 1), 1);
	struct block_device *bs;
	assert_int_equal(block_open(p, NULL, BLOCK_OPEN_RDWR, &bs), 0);
	assert_true(block_probe_guarded(bs, 0));
	uint8_t buf[512], back[512];
	memset(buf, 0x5A, sizeof(buf));
	unsigned long waits = block_probe_guard_waits();
	assert_int_equal(block_pwrite(bs, 0, buf, sizeof(buf)), 0);
	assert_int_equal(block_probe_guard_waits(), waits); /* not one wait */
	assert_int_equal(block_pread(bs, 0, back, sizeof(back)), 0);
	assert_memory_equal(back, buf, sizeof(buf));
	/* The lock file: in the runtime dir, this user's only. */
	struct stat st, ls;
	char lock[512];
	assert_int_equal(stat(p, &st), 0);
	snprintf(lock, sizeof(lock), "%s/probe-%llx-%llu.lock", test_tmpdir,
		 (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	assert_int_equal(stat(lock, &ls), 0);
	assert_int_equal(ls.st_mode & 0777, 0600);
	block_close(bs);
	assert_int_equal(write(done[1], "d", 1), 1);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	for (int i = 0; i < 2; i++) {
		close(held[i]);
		close(done[i]);
	}
	disk_lock_owner_clear();
}

/* One start of VM "pr" with state `st` and one --disk argument: the opened disk's format, whether
 * its probe window is guarded, and its first bytes (n of them), or a failure in err. */
static int vm_start(const char *st, const char *disk, char fmt[16], bool *guarded, uint8_t *head,
		    size_t n)
{
	char *argv[] = {"run",	       "--name",   "pr",     "--kernel",  "k",
			"--state-dir", (char *)st, "--disk", (char *)disk};
	struct vm_config cfg;
	struct disk *d = NULL;
	assert_int_equal(vm_config_parse(9, argv, 1 << 20, &cfg), 0);
	int ret = vm_state_prepare(&cfg);
	if (!ret)
		ret = disk_open(&cfg.disks[0], 0, &d);
	if (!ret) {
		snprintf(fmt, 16, "%s", d->bs->drv->name);
		*guarded = d->bs->probe_guard != NULL;
		assert_int_equal(block_pread(d->bs, 0, head, n), 0);
	}
	disk_close(d);
	vm_state_release();
	vm_config_free(&cfg);
	return ret;
}

/* formats.json in state `st` records `fmt` for `file` (by its real path). */
static bool state_has(const char *st, const char *file, const char *fmt)
{
	char path[PATH_MAX], *real = realpath(file, NULL);
	snprintf(path, sizeof(path), "%s/formats.json", st);
	json_object *o = json_object_from_file(path), *v;
	bool has = o && real && json_object_object_get_ex(o, real, &v) &&
		   !strcmp(json_object_get_string(v), fmt);
	json_object_put(o);
	free(real);
	return has;
}

/* The first attach probes and records; later starts open with the record, never a new probe: a
 * file that became a qcow2 naming a host file (written while attached with format=raw) stays raw
 * to the guest, which reads its own bytes. */
static void test_recorded_format_used(void **state)
{
	(void)state;
	char fmt[16];
	bool guarded;
	uint8_t head[512], want[512];
	const char *st = test_path("vm-pr"), *p = zero_disk("r.raw"), *q = test_path("a.qcow2");
	assert_int_equal(vm_start(st, p, fmt, &guarded, head, sizeof(head)), 0);
	assert_string_equal(fmt, "raw");
	assert_true(guarded);
	assert_true(state_has(st, p, "raw"));
	/* What a guest can write while the user gives format=raw: a qcow2 over a host file (next to
	 * the image, so that a policy on backing paths does not stop the fresh probe below). */
	assert_int_equal(test_run("cd '%s' && echo host-secret >secret.bin && "
				  "qemu-img create -q -f qcow2 -b secret.bin -F raw '%s' 1M && "
				  "dd if='%s' of='%s' conv=notrunc status=none",
				  test_tmpdir, q, q, p),
			 0);
	char arg[PATH_MAX];
	snprintf(arg, sizeof(arg), "%s,format=raw", p);
	assert_int_equal(vm_start(st, arg, fmt, &guarded, head, sizeof(head)), 0);
	assert_false(guarded);
	assert_string_equal(probe_name(p), "qcow2");
	/* The next start without format= opens it as the recorded raw, guarded. */
	assert_int_equal(vm_start(st, p, fmt, &guarded, head, sizeof(head)), 0);
	assert_string_equal(fmt, "raw");
	assert_true(guarded);
	FILE *f = fopen(q, "rb");
	assert_non_null(f);
	assert_int_equal(fread(want, 1, sizeof(want), f), sizeof(want));
	fclose(f);
	assert_memory_equal(head, want, sizeof(want));
	assert_true(state_has(st, p, "raw"));
	/* The same file through a symlink is the same record; a new VM probes afresh (and would
	 * follow the backing file: that is what the record prevents). */
	const char *link = test_path("r-link.raw");
	assert_int_equal(test_run("ln -sf '%s' '%s'", p, link), 0);
	assert_int_equal(vm_start(st, link, fmt, &guarded, head, sizeof(head)), 0);
	assert_string_equal(fmt, "raw");
	assert_int_equal(vm_start(test_path("vm-new"), p, fmt, &guarded, head, sizeof(head)), 0);
	assert_string_equal(fmt, "qcow2");
	assert_true(state_has(test_path("vm-new"), p, "qcow2"));
}

/* A VM snapshot of a powered-off VM layers over the base with its recorded format too: the new
 * layer names the base as raw, whatever the base probes as now. */
static void test_snapshot_layer_uses_record(void **state)
{
	(void)state;
	char fmt[16];
	bool guarded;
	uint8_t head[16];
	const char *st = test_path("vm-snap"), *p = zero_disk("s.raw"), *q = test_path("s.qcow2");
	assert_int_equal(vm_start(st, p, fmt, &guarded, head, sizeof(head)), 0);
	assert_int_equal(test_run("cd '%s' && echo host-secret >secret2.bin && "
				  "qemu-img create -q -f qcow2 -b secret2.bin -F raw '%s' 1M && "
				  "dd if='%s' of='%s' conv=notrunc status=none",
				  test_tmpdir, q, q, p),
			 0);
	assert_string_equal(probe_name(p), "qcow2");
	if (vm_snapshot_apply(st, VM_SNAPSHOT_TAKE, "s1") < 0)
		fail_msg("take: %s", error_msg());
	/* The next start writes the new layer, over the base opened as raw. */
	assert_int_equal(vm_start(st, p, fmt, &guarded, head, sizeof(head)), 0);
	assert_string_equal(fmt, "qcow2"); /* the layer */
	assert_int_equal(test_run("qemu-img info --output=json -U $(ls '%s'/*.qcow2) | "
				  "grep -q '\"backing-filename-format\": \"raw\"'",
				  st),
			 0);
}

/* A formats.json minivmm cannot trust refuses the start with one line naming it. */
static void test_malformed_record(void **state)
{
	(void)state;
	char fmt[16];
	bool guarded;
	uint8_t head[16];
	const char *st = test_path("vm-bad"), *p = zero_disk("b.raw");
	const char *bad[][2] = {
	    {"{\"/a\": \"qcow3\"}", "not a disk format"},
	    {"{\"/a\": 7}", "not a disk format"},
	    {"{\"a.raw\": \"raw\"}", "not an absolute file name"},
	    {"[]", "not a JSON object"},
	    {"{\"/a\": \"raw\"", "not JSON"},
	};
	assert_int_equal(test_run("mkdir -p '%s'", st), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/formats.json", st);
		test_file_write(path, bad[i][0], strlen(bad[i][0]));
		error_clear();
		assert_int_equal(vm_start(st, p, fmt, &guarded, head, sizeof(head)), -EINVAL);
		assert_non_null(strstr(error_msg(), "formats.json"));
		assert_non_null(strstr(error_msg(), bad[i][1]));
		assert_non_null(strstr(error_msg(), "probed again"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_window_from_drivers),
	    cmocka_unit_test(test_vmdk_in_sectors_1_to_7),
	    cmocka_unit_test(test_zeroes_and_discard_checked),
	    cmocka_unit_test(test_concurrent_halves),
	    cmocka_unit_test(test_two_processes_halves),
	    cmocka_unit_test(test_image_lock_holder_delays_nothing),
	    cmocka_unit_test(test_recorded_format_used),
	    cmocka_unit_test(test_snapshot_layer_uses_record),
	    cmocka_unit_test(test_malformed_record),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
