/* --disk / --cdrom parsing (devices/disk_config.c), the attachment checks run by `run` before
 * anything starts (storage_check, vm_config_parse), and disk_open's mapping of modes and cache
 * options onto the block layer. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/disk.h"
#include "devices/storage.h"
#include "storage/core/block.h"
#include "vmm/vm_config.h"
#include "lib/error.h"

static void test_parse_ok(void **state)
{
	(void)state;
	struct disk_config c;

	assert_int_equal(disk_config_parse("a.qcow2", DISK_MEDIA_HDD, &c), 0);
	assert_string_equal(c.path, "a.qcow2");
	assert_null(c.format);
	assert_int_equal(c.bus, DISK_BUS_SATA);
	assert_int_equal(c.mode, DISK_MODE_NORMAL);
	assert_int_equal(c.cache, DISK_CACHE_WRITEBACK);
	assert_int_equal(c.werror, DISK_WERROR_REPORT);
	disk_config_free(&c);
	assert_int_equal(disk_config_parse("a.raw,werror=stop", DISK_MEDIA_HDD, &c), 0);
	assert_int_equal(c.werror, DISK_WERROR_STOP);
	disk_config_free(&c);
	assert_int_equal(disk_config_parse("a.raw,werror=report", DISK_MEDIA_HDD, &c), 0);
	assert_int_equal(c.werror, DISK_WERROR_REPORT);
	disk_config_free(&c);

	assert_int_equal(disk_config_parse("/x/y.img,readonly,bus=ide,format=raw,cache=none",
					   DISK_MEDIA_HDD, &c),
			 0);
	assert_string_equal(c.path, "/x/y.img");
	assert_string_equal(c.format, "raw");
	assert_int_equal(c.bus, DISK_BUS_IDE);
	assert_int_equal(c.mode, DISK_MODE_READONLY);
	assert_int_equal(c.cache, DISK_CACHE_NONE);
	disk_config_free(&c);

	/* Every mode, bus and cache name. */
	const char *modes[] = {"normal",    "immutable",   "writethrough",
			       "shareable", "multiattach", "readonly"};
	for (int i = 0; i < 6; i++) {
		char arg[64];
		snprintf(arg, sizeof(arg), "d,%s", modes[i]);
		assert_int_equal(disk_config_parse(arg, DISK_MEDIA_HDD, &c), 0);
		assert_int_equal(c.mode, i);
		assert_string_equal(disk_mode_name(c.mode), modes[i]);
		disk_config_free(&c);
	}
	const char *buses[] = {"sata", "ide", "scsi", "nvme"};
	for (int i = 0; i < 4; i++) {
		char arg[64];
		snprintf(arg, sizeof(arg), "d,bus=%s", buses[i]);
		assert_int_equal(disk_config_parse(arg, DISK_MEDIA_HDD, &c), 0);
		assert_int_equal(c.bus, i);
		disk_config_free(&c);
	}
	const char *caches[] = {"writeback", "none", "directsync", "unsafe"};
	for (int i = 0; i < 4; i++) {
		char arg[64];
		snprintf(arg, sizeof(arg), "d,cache=%s", caches[i]);
		assert_int_equal(disk_config_parse(arg, DISK_MEDIA_HDD, &c), 0);
		assert_int_equal(c.cache, i);
		disk_config_free(&c);
	}
	/* NVMe: nvme0 unless controller= says otherwise (in any order with bus=). */
	assert_int_equal(disk_config_parse("d,bus=nvme", DISK_MEDIA_HDD, &c), 0);
	assert_int_equal(c.controller, 0);
	disk_config_free(&c);
	assert_int_equal(disk_config_parse("d,controller=nvme3,bus=nvme", DISK_MEDIA_HDD, &c), 0);
	assert_int_equal(c.controller, 3);
	disk_config_free(&c);
	/* CD-ROM: IDE by default, SATA on request. */
	assert_int_equal(disk_config_parse("x.iso", DISK_MEDIA_CDROM, &c), 0);
	assert_int_equal(c.bus, DISK_BUS_IDE);
	assert_int_equal(c.media, DISK_MEDIA_CDROM);
	disk_config_free(&c);
	assert_int_equal(disk_config_parse("x.iso,bus=sata", DISK_MEDIA_CDROM, &c), 0);
	assert_int_equal(c.bus, DISK_BUS_SATA);
	disk_config_free(&c);
}

static void test_parse_errors(void **state)
{
	(void)state;
	struct disk_config c;
	const struct {
		const char *arg;
		enum disk_media media;
		const char *msg;
	} bad[] = {
	    {"", DISK_MEDIA_HDD, "missing file name"},
	    {",bus=ide", DISK_MEDIA_HDD, "missing file name"},
	    {"d,bus=usb", DISK_MEDIA_HDD, "unknown bus 'usb'"},
	    {"d,cache=sometimes", DISK_MEDIA_HDD, "unknown cache mode"},
	    {"d,readwrite", DISK_MEDIA_HDD, "unknown disk mode 'readwrite'"},
	    {"d,readonly,normal", DISK_MEDIA_HDD, "'mode' given twice"},
	    {"d,bus=ide,bus=sata", DISK_MEDIA_HDD, "'bus' given twice"},
	    {"d,format=", DISK_MEDIA_HDD, "empty format name"},
	    {"d,,bus=ide", DISK_MEDIA_HDD, "empty option"},
	    {"d,", DISK_MEDIA_HDD, "empty option"},
	    {"d,speed=fast", DISK_MEDIA_HDD, "unknown option 'speed'"},
	    {"x.iso,bus=nvme", DISK_MEDIA_CDROM, "unknown bus 'nvme'"},
	    {"x.iso,bus=sas", DISK_MEDIA_CDROM, "unknown bus 'sas'"},
	    {"x.iso,readonly", DISK_MEDIA_CDROM, "unknown option 'readonly'"},
	    {"x.iso,cache=none", DISK_MEDIA_CDROM, "unknown option 'cache'"},
	    {"x.iso,format=raw", DISK_MEDIA_CDROM, "unknown option 'format'"},
	    {"d,controller=nvme1", DISK_MEDIA_HDD, "controller= is for bus=nvme"},
	    {"d,bus=nvme,controller=nvme8", DISK_MEDIA_HDD, "unknown controller 'nvme8'"},
	    {"d,bus=nvme,controller=scsi0", DISK_MEDIA_HDD, "unknown controller 'scsi0'"},
	    {"d,bus=nvme,controller=nvme0,controller=nvme1", DISK_MEDIA_HDD, "given twice"},
	    {"x.iso,controller=nvme0", DISK_MEDIA_CDROM, "unknown option 'controller'"},
	    {"d,werror=ignore", DISK_MEDIA_HDD, "unknown werror 'ignore' (report, stop)"},
	    {"d,werror=stop,werror=stop", DISK_MEDIA_HDD, "'werror' given twice"},
	    {"x.iso,werror=stop", DISK_MEDIA_CDROM, "unknown option 'werror'"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		error_clear();
		assert_int_equal(disk_config_parse(bad[i].arg, bad[i].media, &c), -EINVAL);
		if (!strstr(error_msg(), bad[i].msg))
			fail_msg("'%s': got '%s', want '%s'", bad[i].arg, error_msg(), bad[i].msg);
		assert_null(c.path); /* nothing left allocated */
	}
}

static void test_storage_check(void **state)
{
	(void)state;
	struct disk_config c[5];
	memset(c, 0, sizeof(c));
	c[0] = (struct disk_config){.path = (char *)"a", .bus = DISK_BUS_NVME};
	assert_int_equal(storage_check(c, 1), 0);
	c[0].controller = 9; /* only nvme0 ... nvme7 exist */
	assert_int_equal(storage_check(c, 1), -ENOSPC);
	for (int i = 0; i < 5; i++)
		c[i] = (struct disk_config){.path = (char *)"a", .bus = DISK_BUS_IDE};
	assert_int_equal(storage_check(c, 4), 0);
	assert_int_equal(storage_check(c, 5), -ENOSPC);
	assert_non_null(strstr(error_msg(), "no free IDE position"));
}

static int parse(const char *const *args, int n, struct vm_config *cfg)
{
	char *argv[32] = {(char *)"run", (char *)"--kernel", (char *)"k"};
	for (int i = 0; i < n; i++)
		argv[3 + i] = (char *)args[i];
	return vm_config_parse(3 + n, argv, 1 << 20, cfg);
}

static void test_vm_config(void **state)
{
	(void)state;
	struct vm_config cfg;
	const char *ok[] = {"--disk", "a.raw,bus=ide", "--cdrom=b.iso", "--disk",
			    "c.vdi,readonly,bus=ide"};
	assert_int_equal(parse(ok, 5, &cfg), 0);
	assert_int_equal(cfg.ndisks, 3);
	assert_string_equal(cfg.disks[1].path, "b.iso");
	assert_int_equal(cfg.disks[1].media, DISK_MEDIA_CDROM);
	assert_int_equal(cfg.disks[2].mode, DISK_MODE_READONLY);
	vm_config_free(&cfg);

	const char *sas[18];
	for (int i = 0; i < 18; i += 2) {
		sas[i] = "--disk";
		sas[i + 1] = "a.raw,bus=sas";
	}
	assert_int_equal(parse(sas, 18, &cfg), -EINVAL);
	assert_non_null(strstr(error_msg(), "bus=sas: 9 drives, the SAS1068 takes at most 8"));
	const char *many[] = {"--disk",	   "a,bus=ide", "--disk", "b,bus=ide", "--disk",
			      "c,bus=ide", "--cdrom",	"d.iso",  "--disk",    "e,bus=ide"};
	assert_int_equal(parse(many, 10, &cfg), -EINVAL);
	assert_non_null(strstr(error_msg(), "e: no free IDE position"));
	const char *typo[] = {"--disk", "a,bus=ide", "--disk", "b,redonly"};
	assert_int_equal(parse(typo, 4, &cfg), -EINVAL);
	assert_non_null(strstr(error_msg(), "unknown disk mode 'redonly'"));
	assert_null(cfg.disks); /* freed on failure */
	const char *noval[] = {"--disk"};
	assert_int_equal(parse(noval, 1, &cfg), -EINVAL);
}

static void test_disk_open(void **state)
{
	(void)state;
	char dir[] = "/var/tmp/minivmm-test-diskcfg-XXXXXX", path[128], arg[160], cmd[256];
	struct disk_config c;
	struct disk *d;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/d.img", dir);
	snprintf(cmd, sizeof(cmd), "truncate -s 100M '%s'", path);
	assert_int_equal(system(cmd), 0);

	/* Probed format, geometry and identity. */
	snprintf(arg, sizeof(arg), "%s,bus=ide", path);
	assert_int_equal(disk_config_parse(arg, DISK_MEDIA_HDD, &c), 0);
	assert_int_equal(disk_open(&c, 3, &d), 0);
	assert_string_equal(d->bs->drv->name, "raw"); /* never probed as anything else */
	assert_int_equal(d->sectors, 100 * 2048);
	assert_int_equal(d->heads, 16);
	assert_int_equal(d->sectors_per_track, 63);
	assert_int_equal(d->cylinders, 100 * 2048 / (16 * 63));
	assert_false(d->read_only);
	assert_true(d->bs->flags & BLOCK_OPEN_RDWR);
	assert_int_equal(strlen(d->serial), 20);
	assert_memory_equal(d->serial, "MV03", 4);
	disk_close(d);
	disk_config_free(&c);

	/* readonly: the image is not opened for writing. cache modes map to the block flags. */
	const struct {
		const char *opts;
		int flags, absent;
	} maps[] = {
	    {",readonly", 0, BLOCK_OPEN_RDWR},
	    {",cache=none", BLOCK_OPEN_RDWR | BLOCK_OPEN_CACHE_NONE, BLOCK_OPEN_CACHE_DSYNC},
	    {",cache=directsync", BLOCK_OPEN_CACHE_NONE | BLOCK_OPEN_CACHE_DSYNC, 0},
	    {",cache=unsafe", BLOCK_OPEN_CACHE_UNSAFE, BLOCK_OPEN_CACHE_NONE},
	    {",writethrough", BLOCK_OPEN_RDWR, 0},
	};
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		snprintf(arg, sizeof(arg), "%s%s", path, maps[i].opts);
		assert_int_equal(disk_config_parse(arg, DISK_MEDIA_HDD, &c), 0);
		if (disk_open(&c, 0, &d) != 0)
			fail_msg("%s: %s", arg, error_msg());
		assert_int_equal(d->bs->flags & maps[i].flags, maps[i].flags);
		assert_int_equal(d->bs->flags & maps[i].absent, 0);
		disk_close(d);
		disk_config_free(&c);
	}
	/* An unknown format and a missing file fail with a message naming them. */
	snprintf(arg, sizeof(arg), "%s,format=nosuchformat", path);
	assert_int_equal(disk_config_parse(arg, DISK_MEDIA_HDD, &c), 0);
	assert_true(disk_open(&c, 0, &d) < 0);
	assert_non_null(strstr(error_msg(), "nosuchformat"));
	disk_config_free(&c);
	snprintf(arg, sizeof(arg), "%s/missing.img", dir);
	assert_int_equal(disk_config_parse(arg, DISK_MEDIA_HDD, &c), 0);
	assert_true(disk_open(&c, 0, &d) < 0);
	assert_non_null(strstr(error_msg(), "missing.img"));
	disk_config_free(&c);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_ok),	  cmocka_unit_test(test_parse_errors),
	    cmocka_unit_test(test_storage_check), cmocka_unit_test(test_vm_config),
	    cmocka_unit_test(test_disk_open),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
