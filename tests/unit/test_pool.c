/* storage/pool/pool.c: pool and volume names, definitions written and read back, refusals (taken
 * names, one directory under two names, hostile definition files), volume paths and formats. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/error.h"
#include "storage/pool/pool.h"
#include "tests/lib/testlib.h"

static int setup(void **state)
{
	(void)state;
	if (test_tmpdir_setup("pool") < 0)
		return -1;
	return setenv("MINIVMM_CONFIG_DIR", test_path("cfg"), 1);
}

static void test_names(void **state)
{
	(void)state;
	const char *good[] = {"a", "default", "vm-disks_2", "x.y", "A9"};
	const char *bad[] = {"", ".hidden", "-opt", "a/b", "..", "a b", "é", "a\nb", "a:b"};
	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
		assert_int_equal(pool_name_check(good[i]), 0);
		assert_int_equal(vol_name_check(good[i]), 0);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		assert_int_equal(pool_name_check(bad[i]), -EINVAL);
		assert_int_equal(vol_name_check(bad[i]), -EINVAL);
	}
	char longname[POOL_NAME_MAX + 2];
	memset(longname, 'p', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	assert_int_equal(pool_name_check(longname), -EINVAL);
	assert_int_equal(vol_name_check(longname), 0); /* volumes may be longer */
	assert_int_equal(pool_name_check(NULL), -EINVAL);
}

static void test_define_list_undefine(void **state)
{
	(void)state;
	char **names;
	size_t n;
	assert_int_equal(pool_list(&names, &n), 0); /* no config dir yet: no pools */
	assert_int_equal(n, 0);
	assert_int_equal(pool_define("beta", test_path("b/deeper")), 0);
	assert_int_equal(pool_define("alpha", test_path("a")), 0);
	struct stat st;
	assert_int_equal(stat(test_path("b/deeper"), &st), 0); /* created with its parents */
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(pool_list(&names, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(names[0], "alpha");
	assert_string_equal(names[1], "beta");
	pool_list_free(names, n);
	char *path;
	assert_int_equal(pool_path("alpha", &path), 0);
	char real[4096];
	assert_non_null(realpath(test_path("a"), real));
	assert_string_equal(path, real);
	free(path);
	/* Taken name; the same directory under a second name, also spelled differently. */
	assert_int_equal(pool_define("alpha", test_path("other")), -EEXIST);
	assert_non_null(strstr(error_msg(), "alpha"));
	assert_int_equal(pool_define("gamma", test_path("b/../a/")), -EEXIST);
	assert_non_null(strstr(error_msg(), "already pool 'alpha'"));
	/* A file where the directory should be. */
	test_file_write(test_path("afile"), "x", 1);
	assert_true(pool_define("delta", test_path("afile")) < 0);
	assert_int_equal(pool_undefine("beta"), 0);
	assert_int_equal(pool_undefine("beta"), -ENOENT);
	assert_int_equal(pool_path("beta", &path), -ENOENT);
	assert_non_null(strstr(error_msg(), "no pool named 'beta'"));
	assert_int_equal(stat(test_path("b/deeper"), &st), 0); /* the directory stays */
	assert_int_equal(pool_undefine("alpha"), 0);
}

/* Definition files are read back checked: anything but ours is refused with its file named. */
static void test_hostile_definitions(void **state)
{
	(void)state;
	assert_int_equal(mkdir(test_path("cfg/pools"), 0700) == 0 || errno == EEXIST, 1);
	static const char *const bodies[] = {
	    "",
	    "not json",
	    "[]",
	    "{\"name\":\"h\",\"type\":\"dir\"}",
	    "{\"name\":\"h\",\"type\":\"dir\",\"path\":\"relative/dir\"}",
	    "{\"name\":\"h\",\"type\":\"iscsi\",\"path\":\"/x\"}",
	    "{\"name\":\"other\",\"type\":\"dir\",\"path\":\"/x\"}",
	    "{\"name\":\"h\",\"type\":\"dir\",\"path\":7}",
	};
	for (size_t i = 0; i < sizeof(bodies) / sizeof(*bodies); i++) {
		test_file_write(test_path("cfg/pools/h.json"), bodies[i], strlen(bodies[i]));
		char *path = NULL;
		assert_int_equal(pool_path("h", &path), -EINVAL);
		assert_null(path);
		assert_non_null(strstr(error_msg(), "h.json"));
	}
	/* Too large to be a definition: refused before it is parsed. */
	size_t big = 70000;
	char *junk = malloc(big);
	assert_non_null(junk);
	memset(junk, ' ', big);
	test_file_write(test_path("cfg/pools/h.json"), junk, big);
	free(junk);
	char *path = NULL;
	assert_int_equal(pool_path("h", &path), -EFBIG);
	/* Files that are not definitions are not listed. */
	test_file_write(test_path("cfg/pools/.x.json"), "{}", 2);
	test_file_write(test_path("cfg/pools/notes.txt"), "{}", 2);
	char **names;
	size_t n;
	assert_int_equal(pool_list(&names, &n), 0);
	for (size_t i = 0; i < n; i++)
		assert_true(!strcmp(names[i], "h"));
	pool_list_free(names, n);
	unlink(test_path("cfg/pools/h.json"));
}

static void test_volume_paths(void **state)
{
	(void)state;
	assert_int_equal(pool_define("vols", test_path("v")), 0);
	char *path = NULL, real[4096];
	assert_non_null(realpath(test_path("v"), real));
	assert_int_equal(pool_volume_path("vols/disk.qcow2", &path), 0);
	char want[4200];
	snprintf(want, sizeof(want), "%s/disk.qcow2", real);
	assert_string_equal(path, want);
	free(path);
	/* Nothing reaches outside the pool's directory. */
	static const char *const bad[] = {"vols/../x",	  "vols/a/b", "vols/.secret", "vols/",
					  "../vols/x",	  "vols",     "/vols/x",      "vols/-x",
					  "nosuch/x.raw", ""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		path = NULL;
		assert_true(pool_volume_path(bad[i], &path) < 0);
		assert_null(path);
	}
	assert_int_equal(pool_undefine("vols"), 0);
}

static void test_volume_formats(void **state)
{
	(void)state;
	assert_string_equal(pool_vol_format("a.qcow2"), "qcow2");
	assert_string_equal(pool_vol_format("a.VDI"), "vdi");
	assert_string_equal(pool_vol_format("a.vhd"), "vpc");
	assert_string_equal(pool_vol_format("a.vhdx"), "vhdx");
	assert_string_equal(pool_vol_format("a.vmdk"), "vmdk");
	assert_string_equal(pool_vol_format("a.hdd"), "parallels");
	assert_string_equal(pool_vol_format("a.img"), "raw");
	assert_string_equal(pool_vol_format("a.iso"), "raw");
	assert_null(pool_vol_format("a"));
	assert_null(pool_vol_format("a.qcow2.bak"));
	assert_null(pool_vol_format("/dir.qcow2/a"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_define_list_undefine),
	    cmocka_unit_test(test_hostile_definitions),
	    cmocka_unit_test(test_volume_paths),
	    cmocka_unit_test(test_volume_formats),
	};
	return cmocka_run_group_tests(tests, setup, test_tmpdir_teardown);
}
