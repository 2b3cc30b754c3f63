/* Disk UUIDs kept in the VM's state (vmm/vm_uuid.c, vmm/vm_state.c, devices/disk.c): raw, qcow2
 * and a VMDK without ddb.uuid.image get a random UUID at first attach, recorded in uuids.json and
 * disks.json and kept across starts, snapshots and renamed symlinks; two files never share one,
 * one file attached twice (same name, symlink, hard link) is refused; a VDI keeps its own; a
 * malformed uuids.json refuses the start with one line and is left as it was.
 * A "start" is what `minivmm run` does before its devices: vm_state_prepare, then disk_open and
 * disk_check_uuid of each --disk in order (as storage_create).
 */
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/disk.h"
#include "storage/core/block.h"
#include "devices/disk_mode.h"
#include "vmm/vm_config.h"
#include "vmm/vm_snapshot.h"
#include "vmm/vm_state.h"
#include "vmm/vm_uuid.h"
#include "tests/lib/testlib.h"
#include "lib/error.h"

#define MAXD 4

static int setup(void **state)
{
	(void)state;
	return test_tmpdir_setup("test-diskuuid");
}

static int teardown(void **state)
{
	(void)state;
	vm_state_release();
	return test_tmpdir_teardown(NULL);
}

/* One start of VM "uv" with state directory `st` and the --disk arguments `disks` (n of them):
 * 0 or the first failure, with its message in err. uuids[i] receives the UUID of each disk
 * opened. */
static int vm_start(const char *st, const char *const *disks, unsigned n, uint8_t uuids[][16])
{
	char *argv[7 + 2 * MAXD] = {"run", "--name",	  "uv",	     "--kernel",
				    "k",   "--state-dir", (char *)st};
	struct vm_config cfg;
	struct disk *d[MAXD] = {0};
	assert_true(n <= MAXD);
	for (unsigned i = 0; i < n; i++) {
		argv[7 + 2 * i] = "--disk";
		argv[8 + 2 * i] = (char *)disks[i];
	}
	assert_int_equal(vm_config_parse(7 + 2 * n, argv, 1 << 20, &cfg), 0);
	int ret = vm_state_prepare(&cfg);
	for (unsigned k = 0; !ret && k < cfg.ndisks; k++) {
		ret = disk_open(&cfg.disks[k], k, &d[k]);
		if (!ret) {
			memcpy(uuids[k], d[k]->uuid, 16);
			ret = disk_check_uuid(d, k + 1);
		}
	}
	for (unsigned k = 0; k < n; k++)
		disk_close(d[k]);
	vm_state_release();
	vm_config_free(&cfg);
	return ret;
}

static void start_ok(const char *st, const char *const *disks, unsigned n, uint8_t uuids[][16])
{
	if (vm_start(st, disks, n, uuids))
		fail_msg("start: %s", error_msg());
}

/* The UUID string recorded for `file` in uuids.json (real path key), or NULL; malloc'ed. */
static char *state_uuid(const char *st, const char *file)
{
	char path[PATH_MAX], *real = realpath(file, NULL), *out = NULL;
	snprintf(path, sizeof(path), "%s/uuids.json", st);
	json_object *o = json_object_from_file(path), *v;
	if (o && real && json_object_object_get_ex(o, real, &v))
		out = strdup(json_object_get_string(v));
	json_object_put(o);
	free(real);
	return out;
}

/* Entry i's "uuid" in disks.json, or NULL; malloc'ed. */
static char *record_uuid(const char *st, unsigned i)
{
	char path[PATH_MAX], *out = NULL;
	snprintf(path, sizeof(path), "%s/disks.json", st);
	json_object *o = json_object_from_file(path), *v;
	json_object *e = o ? json_object_array_get_idx(o, i) : NULL;
	if (e && json_object_object_get_ex(e, "uuid", &v) &&
	    json_object_is_type(v, json_type_string))
		out = strdup(json_object_get_string(v));
	json_object_put(o);
	return out;
}

static void assert_recorded(const char *st, const char *file, unsigned index, const uint8_t u[16])
{
	char text[37];
	vm_uuid_format(u, text);
	char *a = state_uuid(st, file), *b = record_uuid(st, index);
	assert_non_null(a);
	assert_non_null(b);
	assert_string_equal(a, text);
	assert_string_equal(b, text);
	free(a);
	free(b);
}

static void test_parse_format(void **state)
{
	(void)state;
	uint8_t u[16], v[16];
	char text[37];
	assert_int_equal(vm_uuid_parse("0F8fad5b-d9cb-469f-a165-70867728950e", u), 0);
	vm_uuid_format(u, text);
	assert_string_equal(text, "0f8fad5b-d9cb-469f-a165-70867728950e");
	assert_int_equal(vm_uuid_parse(text, v), 0);
	assert_memory_equal(u, v, 16);
	const char *bad[] = {"",
			     "0f8fad5b",
			     "0f8fad5b-d9cb-469f-a165-70867728950",
			     "0f8fad5b-d9cb-469f-a165-70867728950e0",
			     "0f8fad5bd9cb-469f-a165-70867728950e0",
			     "0f8fad5b-d9cb-469f-a165-70867728950g",
			     "{0f8fad5b-d9cb-469f-a165-708677289}"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(vm_uuid_parse(bad[i], u), -EINVAL);
}

/* raw, qcow2 and a VMDK without ddb.uuid.image: random v4 UUIDs made at first attach, recorded,
 * kept by the next starts (whatever the order and the name the file is reached by). */
static void test_kept_across_starts(void **state)
{
	(void)state;
	uint8_t u[MAXD][16], again[MAXD][16], hashed[1][16];
	const char *st = test_path("vm-keep"), *raw = test_path("a.raw"), *q = test_path("b.qcow2"),
		   *vmdk = test_path("c.vmdk"), *link = test_path("a-link.raw");
	assert_int_equal(test_run("truncate -s 8M '%s' && qemu-img create -q -f qcow2 '%s' 8M && "
				  "qemu-img create -q -f vmdk '%s' 8M && ln -s '%s' '%s' && "
				  "! grep -a -q ddb.uuid.image '%s'",
				  raw, q, vmdk, raw, link, vmdk),
			 0);
	const char *disks[] = {raw, q, vmdk};
	start_ok(st, disks, 3, u);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(u[i][6] >> 4, 4);	/* version 4 */
		assert_int_equal(u[i][8] & 0xc0, 0x80); /* RFC 4122 variant */
		assert_recorded(st, disks[i], i, u[i]);
	}
	assert_memory_not_equal(u[0], u[1], 16);
	assert_memory_not_equal(u[1], u[2], 16);

	/* A second start (also what --reboot restart does) keeps them. */
	start_ok(st, disks, 3, again);
	assert_memory_equal(u, again, 2 * 16);
	/* Another order, the raw file through a symlink: each file keeps its own. */
	const char *other[] = {vmdk, link, q};
	start_ok(st, other, 3, again);
	assert_memory_equal(again[0], u[2], 16);
	assert_memory_equal(again[1], u[0], 16);
	assert_memory_equal(again[2], u[1], 16);
	assert_recorded(st, raw, 1, u[0]);

	/* Immutable: the guest writes a diff, but the UUID is the base file's. */
	const char *imm[] = {test_path("a.raw,immutable")};
	start_ok(st, imm, 1, again);
	assert_memory_equal(again[0], u[0], 16);

	/* Without a state (tests, CD-ROM media) the UUID is made up from the path: the state's
	 * UUID above is not that one. */
	struct disk_config c;
	struct disk *d;
	assert_int_equal(disk_config_parse(raw, DISK_MEDIA_HDD, &c), 0);
	assert_int_equal(disk_open(&c, 0, &d), 0);
	memcpy(hashed[0], d->uuid, 16);
	disk_close(d);
	disk_config_free(&c);
	assert_memory_not_equal(hashed[0], u[0], 16);
}

/* Two raw files, and a raw file and its `cp`: different UUIDs; another VM: its own. */
static void test_files_differ(void **state)
{
	(void)state;
	uint8_t u[MAXD][16], w[MAXD][16];
	const char *st = test_path("vm-differ"), *a = test_path("d1.raw"), *b = test_path("d2.raw"),
		   *copy = test_path("d1-copy.raw");
	assert_int_equal(test_run("truncate -s 4M '%s' '%s' && cp '%s' '%s'", a, b, a, copy), 0);
	const char *disks[] = {a, b, copy};
	start_ok(st, disks, 3, u);
	assert_memory_not_equal(u[0], u[1], 16);
	assert_memory_not_equal(u[0], u[2], 16);
	assert_memory_not_equal(u[1], u[2], 16);
	/* The UUID belongs to this VM: another VM gives the same file its own. */
	start_ok(test_path("vm-differ2"), disks, 1, w);
	assert_memory_not_equal(u[0], w[0], 16);
}

/* One file twice in one VM: refused with the duplicate-UUID message, whatever the names. */
static void test_same_file_twice(void **state)
{
	(void)state;
	char a1[600], a2[600];
	uint8_t u[MAXD][16];
	char st[PATH_MAX], raw[PATH_MAX], q[PATH_MAX];
	/* Copies: test_path's buffers are reused by the loop below. */
	snprintf(st, sizeof(st), "%s", test_path("vm-twice"));
	snprintf(raw, sizeof(raw), "%s", test_path("t.raw"));
	snprintf(q, sizeof(q), "%s", test_path("t.qcow2"));
	assert_int_equal(
	    test_run("truncate -s 4M '%s' && qemu-img create -q -f qcow2 '%s' 4M && ln -s '%s' "
		     "'%s' && ln '%s' '%s' && ln -s '%s' '%s'",
		     raw, q, raw, test_path("t-sym.raw"), raw, test_path("t-hard.raw"), q,
		     test_path("t-sym.qcow2")),
	    0);
	const char *pairs[][2] = {{"t.raw", "t.raw"},
				  {"t.raw", "t-sym.raw"},
				  {"t-hard.raw", "t.raw"},
				  {"t.qcow2", "t-sym.qcow2"}};
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		/* readonly: two normal opens would already be refused by the write lock. */
		snprintf(a1, sizeof(a1), "%s,readonly", test_path(pairs[i][0]));
		snprintf(a2, sizeof(a2), "%s,readonly", test_path(pairs[i][1]));
		const char *disks[] = {a1, a2};
		error_clear();
		int r = vm_start(st, disks, 2, u);
		if (r != -EEXIST)
			fail_msg("%s + %s: %d %s", pairs[i][0], pairs[i][1], r, error_msg());
		assert_non_null(strstr(error_msg(), "UUID"));
		assert_non_null(strstr(error_msg(), "is the same as that of"));
		assert_non_null(strstr(error_msg(), pairs[i][0]));
		assert_non_null(strstr(error_msg(), pairs[i][1]));
		assert_null(strchr(error_msg(), '\n'));
		assert_memory_equal(u[0], u[1], 16);
	}
	/* ...while each alone is fine. */
	const char *one[] = {raw};
	start_ok(st, one, 1, u);
}

/* A VDI (or a VMDK with ddb.uuid.image) carries its own UUID: the guest sees it, the state
 * records nothing for it. */
static void test_image_own_uuid(void **state)
{
	(void)state;
	uint8_t u[MAXD][16], own[16];
	struct block_device *bs;
	const char *st = test_path("vm-vdi"), *vdi = test_path("v.vdi"), *raw = test_path("v.raw");
	assert_int_equal(
	    test_run("qemu-img create -q -f vdi '%s' 8M && truncate -s 4M '%s'", vdi, raw), 0);
	assert_int_equal(block_open(vdi, NULL, 0, &bs), 0);
	assert_int_equal(block_get_uuid(bs, own), 0);
	block_close(bs);
	const char *disks[] = {vdi, raw};
	start_ok(st, disks, 2, u);
	assert_memory_equal(u[0], own, 16);
	assert_null(state_uuid(st, vdi));
	assert_null(record_uuid(st, 0));
	assert_recorded(st, raw, 1, u[1]);

	/* A VMDK with ddb.uuid.image: that one; a bad one is refused, not replaced. */
	char good[PATH_MAX], bad[PATH_MAX];
	snprintf(good, sizeof(good), "%s", test_path("g.vmdk"));
	snprintf(bad, sizeof(bad), "%s", test_path("h.vmdk"));
	assert_int_equal(
	    test_run(
		"qemu-img create -q -f vmdk -o subformat=monolithicFlat '%s' 4M && echo "
		"'ddb.uuid.image = \"60 00 C2 9b 69 2f c9 76-74 c4 07 9e 10 87 3b f9\"' >> '%s' "
		"&& qemu-img create -q -f vmdk -o subformat=monolithicFlat '%s' 4M && echo "
		"'ddb.uuid.image = \"zz\"' >> '%s'",
		good, good, bad, bad),
	    0);
	const char *vmdks[] = {good};
	start_ok(st, vmdks, 1, u);
	assert_int_equal(vm_uuid_parse("6000c29b-692f-c976-74c4-079e10873bf9", own), 0);
	assert_memory_equal(u[0], own, 16);
	assert_null(state_uuid(st, good));
	vmdks[0] = bad;
	assert_int_equal(vm_start(st, vmdks, 1, u), -EINVAL);
	assert_non_null(strstr(error_msg(), "h.vmdk"));
	assert_non_null(strstr(error_msg(), "ddb.uuid.image"));
	assert_null(state_uuid(st, bad));
}

/* VM snapshots layer qcow2 diffs over the file: its UUID stays the file's. */
static void test_snapshots_keep_uuid(void **state)
{
	(void)state;
	uint8_t u[MAXD][16], again[MAXD][16];
	const char *st = test_path("vm-snap"), *raw = test_path("s.raw"), *q = test_path("s.qcow2");
	assert_int_equal(
	    test_run("truncate -s 4M '%s' && qemu-img create -q -f qcow2 '%s' 4M", raw, q), 0);
	const char *disks[] = {raw, q};
	start_ok(st, disks, 2, u);
	if (vm_snapshot_apply(st, VM_SNAPSHOT_TAKE, "one"))
		fail_msg("take: %s", error_msg());
	start_ok(st, disks, 2, again);
	assert_memory_equal(u, again, 2 * 16);
	if (vm_snapshot_apply(st, VM_SNAPSHOT_TAKE, "two") ||
	    vm_snapshot_apply(st, VM_SNAPSHOT_RESTORE, "one"))
		fail_msg("take/restore: %s", error_msg());
	start_ok(st, disks, 2, again);
	assert_memory_equal(u, again, 2 * 16);
	assert_recorded(st, raw, 0, u[0]);
	assert_recorded(st, q, 1, u[1]);
}

/* A UUID written by hand (upper case) is read back, not replaced. */
static void test_state_is_read(void **state)
{
	(void)state;
	uint8_t u[MAXD][16], want[16];
	char body[PATH_MAX + 100];
	const char *st = test_path("vm-read"), *raw = test_path("r.raw");
	assert_int_equal(test_run("truncate -s 4M '%s' && mkdir -p '%s'", raw, st), 0);
	char *real = realpath(raw, NULL);
	assert_non_null(real);
	int n = snprintf(body, sizeof(body),
			 "{ \"%s\": \"0F8FAD5B-D9CB-469F-A165-70867728950E\",\n"
			 "  \"/gone/elsewhere.raw\": \"00000000-0000-4000-8000-000000000001\" }",
			 real);
	free(real);
	test_file_write(test_path("vm-read/uuids.json"), body, (size_t)n);
	const char *disks[] = {raw};
	start_ok(st, disks, 1, u);
	assert_int_equal(vm_uuid_parse("0f8fad5b-d9cb-469f-a165-70867728950e", want), 0);
	assert_memory_equal(u[0], want, 16);
}

/* Malformed uuids.json: the start is refused with one line naming it; the file is untouched. */
static void test_corrupt_state(void **state)
{
	(void)state;
	uint8_t u[MAXD][16];
	const char *st = test_path("vm-bad"), *raw = test_path("x.raw"),
		   *file = test_path("vm-bad/uuids.json");
	assert_int_equal(test_run("truncate -s 4M '%s' && mkdir -p '%s'", raw, st), 0);
	const struct {
		const char *body, *why;
	} cases[] = {
	    {"not json", "not JSON"},
	    {"", "not JSON"},
	    {"{\"/a\": \"0f8fad5b-d9cb-469f-a165-70867728950e\"", "not JSON"},
	    {"{} {}", "data after"},
	    {"[]", "not a JSON object"},
	    {"\"0f8fad5b-d9cb-469f-a165-70867728950e\"", "not a JSON object"},
	    {"{\"/a\": 5}", "not a UUID"},
	    {"{\"/a\": null}", "not a UUID"},
	    {"{\"/a\": \"0f8fad5b-d9cb-469f-a165-70867728950\"}", "not a UUID"},
	    {"{\"/a\": \"0f8fad5b-d9cb-469f-a165-70867728950g\"}", "not a UUID"},
	    {"{\"a.raw\": \"0f8fad5b-d9cb-469f-a165-70867728950e\"}", "not an absolute"},
	    {"{\"/a\\nb\": 7}", "'/a?b': not a UUID"},
	};
	const char *disks[] = {raw};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = strlen(cases[i].body);
		test_file_write(file, cases[i].body, len);
		error_clear();
		int r = vm_start(st, disks, 1, u);
		if (r != -EINVAL || !strstr(error_msg(), cases[i].why))
			fail_msg("case %zu: %d '%s'", i, r, error_msg());
		assert_non_null(strstr(error_msg(), "vm-bad/uuids.json: "));
		assert_null(strchr(error_msg(), '\n'));
		/* Left exactly as it was, for the user to look at. */
		assert_int_equal(test_run("printf '%%s' '%s' | cmp -s - '%s'", cases[i].body, file),
				 0);
	}
	/* A NUL byte after the object is not hidden by the parser stopping there. */
	test_file_write(file, "{}\0{\"/a\": 1}", 13);
	assert_int_equal(vm_start(st, disks, 1, u), -EINVAL);
	assert_non_null(strstr(error_msg(), "data after"));
	/* Not a regular file (a FIFO must not hang the start), or too large. */
	assert_int_equal(test_run("rm -f '%s' && mkfifo '%s'", file, file), 0);
	assert_int_equal(vm_start(st, disks, 1, u), -EINVAL);
	assert_non_null(strstr(error_msg(), "not a regular file"));
	assert_int_equal(test_run("rm -f '%s' && truncate -s 5M '%s'", file, file), 0);
	assert_int_equal(vm_start(st, disks, 1, u), -EINVAL);
	assert_non_null(strstr(error_msg(), "larger than"));
	/* Refused before any disk is opened, even when no disk would need the file. */
	char vdi[PATH_MAX];
	snprintf(vdi, sizeof(vdi), "%s", test_path("x.vdi"));
	assert_int_equal(test_run("qemu-img create -q -f vdi '%s' 4M", vdi), 0);
	const char *vdis[] = {vdi};
	assert_int_equal(vm_start(st, vdis, 1, u), -EINVAL);
	assert_non_null(strstr(error_msg(), "uuids.json"));
	/* Deleted by the user: the start goes on with a new UUID. */
	unlink(file);
	start_ok(st, disks, 1, u);
	assert_recorded(st, raw, 0, u[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_format),   cmocka_unit_test(test_kept_across_starts),
	    cmocka_unit_test(test_files_differ),   cmocka_unit_test(test_same_file_twice),
	    cmocka_unit_test(test_image_own_uuid), cmocka_unit_test(test_snapshots_keep_uuid),
	    cmocka_unit_test(test_state_is_read),  cmocka_unit_test(test_corrupt_state),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
