/* VM snapshot layers in the base image's own format (vmm/vm_snapshot.c): for every base format
 * minivmm can run, take/restore/delete through "runs" of a one-disk VM (vm_state_prepare +
 * disk_open, as in test_vm_snapshot.c), checked by a hash of the whole virtual disk, by the
 * probed format of every layer file, and by `minivmm img check` and `qemu-img check`.
 */
#include <errno.h>
#include <glob.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "devices/disk.h"
#include "storage/core/block.h"
#include "vmm/vm_config.h"
#include "vmm/vm_snapshot.h"
#include "vmm/vm_state.h"
#include "tests/lib/testlib.h"
#include "lib/error.h"

#define DISK_SIZE (8u << 20)
#define CHUNK (1u << 20)

struct case_fmt {
	const char *fmt;   /* the base's format */
	const char *ext;   /* its file extension */
	const char *layer; /* the format every snapshot layer must have */
	const char *lext;  /* and the layer files' extension */
};

/* qcow2, VDI, VMDK and VHD bases get layers of their own format; raw, VHDX and Parallels ones
 * (no backing file in minivmm's drivers) get qcow2 layers. */
static const struct case_fmt cases[] = {
    {"raw", "img", "qcow2", "qcow2"},	    {"qcow2", "qcow2", "qcow2", "qcow2"},
    {"vdi", "vdi", "vdi", "vdi"},	    {"vmdk", "vmdk", "vmdk", "vmdk"},
    {"vpc", "vhd", "vpc", "vhd"},	    {"vhdx", "vhdx", "qcow2", "qcow2"},
    {"parallels", "hds", "qcow2", "qcow2"},
};

static int setup(void **st)
{
	(void)st;
	return test_tmpdir_setup("test-vmsnapfmt");
}

static int teardown(void **st)
{
	(void)st;
	return getenv("KEEP") ? 0 : test_tmpdir_teardown(NULL);
}

static uint64_t fnv(uint64_t h, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

static uint64_t hash_dev(struct block_device *bs)
{
	unsigned char *buf = malloc(CHUNK);
	uint64_t h = 0xcbf29ce484222325ull;
	assert_non_null(buf);
	for (uint64_t off = 0; off < bs->size; off += CHUNK) {
		size_t n = bs->size - off < CHUNK ? bs->size - off : CHUNK;
		assert_int_equal(block_pread(bs, off, buf, n), 0);
		h = fnv(h, buf, n);
	}
	free(buf);
	return h;
}

/* The hash of what image `path` alone (with its own chain, if any) reads. */
static uint64_t image_hash(const char *path, const char *fmt)
{
	struct block_device *bs;
	if (block_open(path, fmt, 0, &bs))
		fail_msg("%s", error_msg());
	uint64_t h = hash_dev(bs);
	block_close(bs);
	return h;
}

/* One "run" of VM `name` with disk `base`: optionally write byte `put` at three places (the
 * first sector, a run across a 1 MiB boundary, the last 4 KiB); returns a hash of the whole disk
 * as the VM then reads it. */
static uint64_t vm_run(const char *name, const char *base, const char *fmt, const char *state,
		       int put)
{
	char a0[600];
	snprintf(a0, sizeof(a0), "%s,bus=ide,format=%s", base, fmt);
	const char *argv[] = {"run",	"--name", name,		 "--kernel", "k",
			      "--disk", a0,	  "--state-dir", state};
	struct vm_config cfg;
	struct disk *d;
	assert_int_equal(vm_config_parse(9, (char **)argv, 1 << 20, &cfg), 0);
	if (vm_state_prepare(&cfg))
		fail_msg("%s", error_msg());
	if (disk_open(&cfg.disks[0], 0, &d))
		fail_msg("%s", error_msg());
	uint64_t size = d->bs->size;
	assert_true(size >= 4u << 20);
	if (put) {
		unsigned char buf[4096];
		uint64_t at[3] = {0, (1u << 20) - 1536, size - 4096};
		memset(buf, put, sizeof(buf));
		for (int i = 0; i < 3; i++)
			assert_int_equal(block_pwrite(d->bs, at[i], buf, sizeof(buf)), 0);
		assert_int_equal(block_flush(d->bs), 0);
	}
	uint64_t h = hash_dev(d->bs);
	disk_close(d);
	vm_state_release();
	vm_config_free(&cfg);
	return h;
}

/* A VHD layer names its parent as the specification says (qemu ignores VHD parents). */
static void check_vhd_parent(const char *f)
{
	struct block_device *bs;
	assert_int_equal(block_open(f, "vpc", BLOCK_OPEN_NO_BACKING, &bs), 0);
	assert_non_null(bs->backing_name);
	if (test_run("python3 tests/storage/vhd_parent_check.py '%s' '%s' '%s'", f,
		     bs->backing_name, bs->backing_name) != 0)
		fail_msg("%s: parent fields do not name %s", f, bs->backing_name);
	block_close(bs);
}

/* Every layer file in state is of the expected format and sound; returns how many there are. */
static int check_layers(const struct case_fmt *c, const char *state)
{
	char pat[600];
	glob_t g;
	snprintf(pat, sizeof(pat), "%s/disk0-base.snap*", state);
	if (glob(pat, 0, NULL, &g) != 0)
		return 0;
	for (size_t i = 0; i < g.gl_pathc; i++) {
		const char *f = g.gl_pathv[i];
		const struct block_driver *drv = NULL;
		const char *ext = strrchr(f, '.');
		assert_int_equal(block_probe(f, &drv), 0);
		if (strcmp(drv->name, c->layer) || !ext || strcmp(ext + 1, c->lext))
			fail_msg("%s: a %s layer of a %s base, expected %s", f, drv->name, c->fmt,
				 c->layer);
		/* Neither tool checks VHD (exit 63: "format does not support checks"); its parent
		 * fields are checked against the specification instead. */
		int want = strcmp(c->layer, "vpc") ? 0 : 63;
		/* The layers name the base outside the state directory: the user allows it, as
		 * `minivmm img` users must for a state directory outside the default root. */
		if (test_run("./minivmm img check --allow-backing-path '%s' '%s' >/dev/null 2>&1",
			     test_tmpdir, f) != want)
			fail_msg("minivmm img check %s failed", f);
		/* qemu-img cannot open a differencing VDI (its vdi driver refuses the type). */
		if (strcmp(c->layer, "vdi") &&
		    test_run("qemu-img check -q '%s' 2>/dev/null", f) != want)
			fail_msg("qemu-img check %s failed", f);
		if (!strcmp(c->layer, "vpc"))
			check_vhd_parent(f);
		/* A VMDK's parentCID is its parent's CID all down the chain (as qemu sees them). */
		if (!strcmp(c->layer, "vmdk") &&
		    test_run(
			"qemu-img info --output=json --backing-chain '%s' | python3 -c '"
			"import json,sys; c=json.load(sys.stdin); "
			"d=[i[\"format-specific\"][\"data\"] for i in c]; "
			"sys.exit(any(a[\"parent-cid\"]!=b[\"cid\"] for a,b in zip(d,d[1:])))'",
			f) != 0)
			fail_msg("%s: a parentCID does not match its parent's CID", f);
	}
	int n = (int)g.gl_pathc;
	globfree(&g);
	return n;
}

/* snapshots.json names the layer format of disk 0. */
static void check_tree_format(const char *state, const char *want)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/snapshots.json", state);
	json_object *t = json_object_from_file(path), *disks, *fmt;
	assert_non_null(t);
	assert_true(json_object_object_get_ex(t, "disks", &disks));
	assert_true(
	    json_object_object_get_ex(json_object_array_get_idx(disks, 0), "layer_format", &fmt));
	assert_string_equal(json_object_get_string(fmt), want);
	json_object_put(t);
}

/* qemu reads through the VM's current chain exactly what minivmm does (hash h). qemu cannot open
 * a differencing VDI, and ignores a VHD's parent, so only qcow2 and VMDK chains are compared. */
static void check_qemu_reads(const struct case_fmt *c, const char *state, const char *base,
			     uint64_t h)
{
	char path[600], out[600];
	const char *cur = base, *fmt = c->fmt;
	json_object *t, *disks, *v;
	if (strcmp(c->layer, "qcow2") && strcmp(c->layer, "vmdk"))
		return;
	snprintf(path, sizeof(path), "%s/snapshots.json", state);
	t = json_object_from_file(path);
	if (t && json_object_object_get_ex(t, "disks", &disks) &&
	    json_object_object_get_ex(json_object_array_get_idx(disks, 0), "current", &v) &&
	    json_object_is_type(v, json_type_string)) {
		cur = json_object_get_string(v);
		fmt = c->layer;
	}
	if (!strcmp(fmt, "vpc") || !strcmp(fmt, "vdi")) {
		json_object_put(t);
		return;
	}
	snprintf(out, sizeof(out), "%s/qemu-view.raw", state);
	if (test_run("qemu-img convert -f %s -O raw '%s' '%s'", fmt, cur, out) != 0)
		fail_msg("qemu-img convert %s failed", cur);
	if (image_hash(out, "raw") != h)
		fail_msg("qemu reads %s differently from minivmm", cur);
	unlink(out);
	json_object_put(t);
}

static void one_format(const struct case_fmt *c)
{
	char base[400], state[400], name[64];
	snprintf(base, sizeof(base), "%s/%s/base.%s", test_tmpdir, c->fmt, c->ext);
	snprintf(state, sizeof(state), "%s/%s/state", test_tmpdir, c->fmt);
	snprintf(name, sizeof(name), "fmt-%s", c->fmt);
	assert_int_equal(test_run("mkdir -p '%s/%s' && qemu-img create -q -f %s '%s' %u",
				  test_tmpdir, c->fmt, c->fmt, base, DISK_SIZE),
			 0);

	uint64_t h0 = vm_run(name, base, c->fmt, state, 0);
	uint64_t h1 = vm_run(name, base, c->fmt, state, 'A');
	assert_true(h1 != h0);
	assert_int_equal(vm_snapshot_apply(state, VM_SNAPSHOT_TAKE, "s1"), 0);
	check_tree_format(state, c->layer);
	assert_int_equal(check_layers(c, state), 1);
	uint64_t h2 = vm_run(name, base, c->fmt, state, 'B');
	assert_true(h2 != h1);
	assert_int_equal(vm_snapshot_apply(state, VM_SNAPSHOT_TAKE, "s2"), 0);
	assert_int_equal(check_layers(c, state), 2);
	uint64_t h3 = vm_run(name, base, c->fmt, state, 'C');
	assert_true(h3 != h2);
	check_qemu_reads(c, state, base, h3);
	/* The base is frozen under s1: the VM's writes went to the layers. */
	assert_true(image_hash(base, c->fmt) == h1);

	assert_int_equal(vm_snapshot_apply(state, VM_SNAPSHOT_RESTORE, "s1"), 0);
	assert_true(vm_run(name, base, c->fmt, state, 0) == h1);
	assert_int_equal(vm_snapshot_apply(state, VM_SNAPSHOT_RESTORE, "s2"), 0);
	assert_true(vm_run(name, base, c->fmt, state, 0) == h2);
	uint64_t h4 = vm_run(name, base, c->fmt, state, 'D');
	assert_int_equal(check_layers(c, state), 2);
	check_qemu_reads(c, state, base, h4);

	/* delete s1: the base takes s2's layer's data; the VM reads what it did. */
	if (vm_snapshot_apply(state, VM_SNAPSHOT_DELETE, "s1"))
		fail_msg("%s: delete s1: %s", c->fmt, error_msg());
	assert_true(vm_run(name, base, c->fmt, state, 0) == h4);
	assert_int_equal(check_layers(c, state), 1);
	check_qemu_reads(c, state, base, h4);
	assert_int_equal(vm_snapshot_apply(state, VM_SNAPSHOT_RESTORE, "s2"), 0);
	assert_true(vm_run(name, base, c->fmt, state, 0) == h2);
	uint64_t h5 = vm_run(name, base, c->fmt, state, 'E');
	check_qemu_reads(c, state, base, h5);
	/* delete s2: the current layer merges into the base, which the VM then opens alone. */
	if (vm_snapshot_apply(state, VM_SNAPSHOT_DELETE, "s2"))
		fail_msg("%s: delete s2: %s", c->fmt, error_msg());
	assert_int_equal(check_layers(c, state), 0);
	assert_true(vm_run(name, base, c->fmt, state, 0) == h5);
	/* The base alone now holds the last state, and is sound (raw has nothing to check; neither
	 * tool checks VHD: exit 63, "format does not support checks"). */
	assert_true(image_hash(base, c->fmt) == h5);
	check_qemu_reads(c, state, base, h5);
	int want = !strcmp(c->fmt, "vpc") ? 63 : 0;
	if (strcmp(c->fmt, "raw") &&
	    test_run("./minivmm img check -f %s '%s' >/dev/null 2>&1", c->fmt, base) != want)
		fail_msg("minivmm img check %s failed", base);
	if (strcmp(c->fmt, "raw") &&
	    test_run("qemu-img check -q -f %s '%s' 2>/dev/null", c->fmt, base) != want)
		fail_msg("qemu-img check %s failed", base);
}

static void test_formats(void **st)
{
	(void)st;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		print_message("base format %s\n", cases[i].fmt);
		one_format(&cases[i]);
	}
}

/* A tree written before layer_format existed: its layers are qcow2, here over a VDI base. New
 * layers stay qcow2, and deleting merges a qcow2 child into the VDI base. */
static void test_legacy_tree(void **st)
{
	(void)st;
	const struct case_fmt c = {"vdi", "vdi", "qcow2", "qcow2"};
	char base[400], state[400], old[600];
	const char *name = "legacy";
	snprintf(base, sizeof(base), "%s/legacy/base.vdi", test_tmpdir);
	snprintf(state, sizeof(state), "%s/legacy/state", test_tmpdir);
	snprintf(old, sizeof(old), "%s/disk0-base.snap1.qcow2", state);
	assert_int_equal(test_run("mkdir -p '%s/legacy' && qemu-img create -q -f vdi '%s' %u",
				  test_tmpdir, base, DISK_SIZE),
			 0);
	uint64_t h1 = vm_run(name, base, "vdi", state, 'A');
	assert_int_equal(test_run("qemu-img create -q -f qcow2 -b '%s' -F vdi '%s' && "
				  "printf '{\"disks\": [{\"file\": \"%s\", \"format\": "
				  "\"vdi\", \"normal\": true, \"current\": \"%s\"}], "
				  "\"snapshots\": [{\"name\": \"old\", \"created\": 0, "
				  "\"layers\": [\"%s\"]}]}' > '%s/snapshots.json'",
				  base, old, base, old, base, state),
			 0);
	assert_true(vm_run(name, base, "vdi", state, 0) == h1);
	uint64_t h2 = vm_run(name, base, "vdi", state, 'B');
	assert_int_equal(vm_snapshot_apply(state, VM_SNAPSHOT_TAKE, "new"), 0);
	assert_int_equal(check_layers(&c, state), 2);
	uint64_t h3 = vm_run(name, base, "vdi", state, 'C');
	assert_int_equal(vm_snapshot_apply(state, VM_SNAPSHOT_RESTORE, "old"), 0);
	assert_true(vm_run(name, base, "vdi", state, 0) == h1);
	assert_int_equal(vm_snapshot_apply(state, VM_SNAPSHOT_RESTORE, "new"), 0);
	assert_true(vm_run(name, base, "vdi", state, 0) == h2);
	h3 = vm_run(name, base, "vdi", state, 'D');
	if (vm_snapshot_apply(state, VM_SNAPSHOT_DELETE, "old"))
		fail_msg("delete old: %s", error_msg());
	assert_true(vm_run(name, base, "vdi", state, 0) == h3);
	assert_int_equal(check_layers(&c, state), 1);
	if (vm_snapshot_apply(state, VM_SNAPSHOT_DELETE, "new"))
		fail_msg("delete new: %s", error_msg());
	assert_int_equal(check_layers(&c, state), 0);
	assert_true(image_hash(base, "vdi") == h3);
	assert_int_equal(test_run("qemu-img check -q -f vdi '%s'", base), 0);

	/* A layer format that cannot hold a layer is refused, naming the file. */
	assert_int_equal(test_run("sed -i 's/\"normal\"/\"layer_format\": \"raw\", "
				  "\"normal\"/' '%s/snapshots.json'",
				  state),
			 0);
	assert_int_equal(vm_snapshot_apply(state, VM_SNAPSHOT_TAKE, "x"), -EINVAL);
	assert_non_null(strstr(error_msg(), "cannot be a layer format"));
}

/* A VDI base whose path does not fit a differencing VDI's 256-byte comment gets qcow2 layers
 * (chosen once, at the first layer, and kept). */
static void test_fallback(void **st)
{
	(void)st;
	const struct case_fmt c = {"vdi", "vdi", "qcow2", "qcow2"};
	char dir[600], base[700], state[600];
	snprintf(dir, sizeof(dir), "%s/%0240d", test_tmpdir, 0);
	snprintf(base, sizeof(base), "%s/base.vdi", dir);
	snprintf(state, sizeof(state), "%s/long/state", test_tmpdir);
	assert_int_equal(
	    test_run("mkdir -p '%s' && qemu-img create -q -f vdi '%s' %u", dir, base, DISK_SIZE),
	    0);
	uint64_t h1 = vm_run("long", base, "vdi", state, 'A');
	assert_int_equal(vm_snapshot_apply(state, VM_SNAPSHOT_TAKE, "s1"), 0);
	check_tree_format(state, "qcow2");
	uint64_t h2 = vm_run("long", base, "vdi", state, 'B');
	assert_int_equal(vm_snapshot_apply(state, VM_SNAPSHOT_TAKE, "s2"), 0);
	assert_int_equal(check_layers(&c, state), 2);
	check_tree_format(state, "qcow2");
	vm_run("long", base, "vdi", state, 'C');
	assert_int_equal(vm_snapshot_apply(state, VM_SNAPSHOT_RESTORE, "s1"), 0);
	assert_true(vm_run("long", base, "vdi", state, 0) == h1);
	assert_int_equal(vm_snapshot_apply(state, VM_SNAPSHOT_RESTORE, "s2"), 0);
	assert_true(vm_run("long", base, "vdi", state, 0) == h2);
	/* s1's layer is the VDI base, its child a qcow2 layer: merged, the VM reads the same. */
	if (vm_snapshot_apply(state, VM_SNAPSHOT_DELETE, "s1"))
		fail_msg("delete s1: %s", error_msg());
	assert_true(vm_run("long", base, "vdi", state, 0) == h2);
	assert_int_equal(check_layers(&c, state), 1);
	assert_int_equal(test_run("qemu-img check -q -f vdi '%s'", base), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_formats),
	    cmocka_unit_test(test_legacy_tree),
	    cmocka_unit_test(test_fallback),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
