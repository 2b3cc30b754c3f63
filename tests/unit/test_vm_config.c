/* `minivmm run` command-line parsing: defaults, every accepted form and every error, with its
 * message. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "memory/layout.h"
#include "vmm/vm_config.h"
#include "lib/error.h"

#define HOST_MIB 8192

static int parse(struct vm_config *cfg, const char *line)
{
	static char buf[1024];
	char *argv[32];
	int argc = 0;
	snprintf(buf, sizeof(buf), "%s", line);
	for (char *t = strtok(buf, " "); t && argc < 31; t = strtok(NULL, " "))
		argv[argc++] = t;
	argv[argc] = NULL;
	error_clear();
	return vm_config_parse(argc, argv, HOST_MIB, cfg);
}

static void test_defaults(void **state)
{
	(void)state;
	struct vm_config c;
	assert_int_equal(parse(&c, "run --kernel bz"), 0);
	assert_string_equal(c.kernel, "bz");
	assert_int_equal(c.cpus, 1);
	assert_int_equal(c.memory_mib, 1024);
	assert_int_equal(c.console, VM_CONSOLE_STDIO);
	assert_string_equal(c.name, "");
	assert_true(c.name_auto);
	assert_null(c.initrd);
	assert_string_equal(c.cmdline, "");
	assert_int_equal(c.reboot, VM_REBOOT_EXIT);
}

static void test_all_options(void **state)
{
	(void)state;
	struct vm_config c;
	assert_int_equal(parse(&c, "run --name web-1 --cpus 4 --memory=1024 --kernel=k --initrd i "
				   "--append root=x --console /tmp/log --reboot exit"),
			 0);
	assert_string_equal(c.name, "web-1");
	assert_false(c.name_auto);
	assert_int_equal(c.cpus, 4);
	assert_int_equal(c.memory_mib, 1024);
	assert_string_equal(c.kernel, "k");
	assert_string_equal(c.initrd, "i");
	assert_string_equal(c.cmdline, "root=x");
	assert_int_equal(c.console, VM_CONSOLE_FILE);
	assert_string_equal(c.console_path, "/tmp/log");
	assert_int_equal(parse(&c, "run --kernel k --console none --cpus 64"), 0);
	assert_int_equal(c.console, VM_CONSOLE_NONE);
	assert_int_equal(c.cpus, 64);
	assert_int_equal(parse(&c, "run --kernel k --memory 32 --reboot restart"), 0);
	assert_int_equal(c.memory_mib, 32);
	assert_int_equal(c.reboot, VM_REBOOT_RESTART);
	assert_int_equal(parse(&c, "run --help"), 0);
	assert_true(c.help);
}

static void expect_error(const char *line, const char *needle)
{
	struct vm_config c;
	assert_int_equal(parse(&c, line), -EINVAL);
	if (!strstr(error_msg(), needle))
		fail_msg("'%s': message '%s' lacks '%s'", line, error_msg(), needle);
	assert_null(strchr(error_msg(), '\n'));
}

static void test_firmware_boot(void **state)
{
	(void)state;
	struct vm_config c;
	assert_int_equal(parse(&c, "run --cpus 4"), 0);
	assert_null(c.kernel);
	assert_null(c.firmware_file);
	assert_int_equal(c.nboot, 2);
	assert_int_equal(c.boot[0], VM_BOOT_CDROM);
	assert_int_equal(c.boot[1], VM_BOOT_DISK);
	vm_config_free(&c);
	assert_int_equal(parse(&c, "run --boot disk --firmware bios --firmware-file /x/b.bin"), 0);
	assert_int_equal(c.nboot, 1);
	assert_int_equal(c.boot[0], VM_BOOT_DISK);
	assert_string_equal(c.firmware_file, "/x/b.bin");
	assert_false(c.firmware_efi);
	vm_config_free(&c);
	assert_int_equal(parse(&c, "run --firmware efi"), 0);
	assert_true(c.firmware_efi);
	vm_config_free(&c);
	expect_error("run --kernel k --firmware efi", "for firmware boot");
	assert_int_equal(parse(&c, "run --boot=order=disk,cdrom"), 0);
	assert_int_equal(c.nboot, 2);
	assert_int_equal(c.boot[0], VM_BOOT_DISK);
	assert_int_equal(c.boot[1], VM_BOOT_CDROM);
	vm_config_free(&c);
}

static void test_errors(void **state)
{
	(void)state;
	expect_error("run --initrd i", "need --kernel");
	expect_error("run --append x", "need --kernel");
	expect_error("run --kernel k --boot disk", "for firmware boot");
	expect_error("run --kernel k --firmware-file f", "for firmware boot");
	expect_error("run --boot floppy", "bad --boot");
	expect_error("run --boot order=disk,disk", "twice");
	expect_error("run --boot order=", "bad --boot");
	expect_error("run --boot disk,", "bad --boot");
	expect_error("run --boot net", "no network device");
	expect_error("run --firmware coreboot", "bad --firmware");
	expect_error("run --firmware-file=", "empty --firmware-file");
	expect_error("run --kernel k --cpus 0", "bad --cpus '0'");
	expect_error("run --kernel k --cpus 65", "bad --cpus '65'");
	expect_error("run --kernel k --cpus -1", "bad --cpus");
	expect_error("run --kernel k --cpus 2x", "bad --cpus");
	expect_error("run --kernel k --cpus 99999999999999999999999", "bad --cpus");
	expect_error("run --kernel k --memory 31", "too small");
	expect_error("run --kernel k --memory 0", "too small");
	expect_error("run --kernel k --memory 8193", "more than the host's 8192 MiB");
	expect_error("run --kernel k --memory 1G", "bad --memory");
	expect_error("run --kernel k --memory", "needs a value");
	expect_error("run --kernel k --bogus", "unknown option '--bogus'");
	expect_error("run --kernel k extra", "unknown option 'extra'");
	expect_error("run --kernelx k", "unknown option '--kernelx'");
	expect_error("run --kernel k --name ../x", "bad --name");
	expect_error("run --kernel k --name .hidden", "bad --name");
	expect_error("run --kernel k --name=", "bad --name");
	expect_error("run --kernel k --console=", "empty --console");
	expect_error("run --kernel k --reboot later", "bad --reboot");
	expect_error("run --kernel= ", "empty --kernel");
	expect_error("run --kernel k --initrd=", "empty --initrd");
}

static void test_machine_limit(void **state)
{
	(void)state;
	struct vm_config c;
	char ok_mib[32], big_mib[32], msg[80];
	uint64_t limit =
	    (LAYOUT_PCI_MMIO64_START - LAYOUT_HIGH_RAM_START + LAYOUT_LOW_RAM_END) / MiB;
	snprintf(ok_mib, sizeof(ok_mib), "%llu", (unsigned long long)limit);
	snprintf(big_mib, sizeof(big_mib), "%llu", (unsigned long long)limit + 1);
	snprintf(msg, sizeof(msg), "more than the machine's %llu MiB", (unsigned long long)limit);
	char *ok[] = {"run", "--kernel", "k", "--memory", ok_mib, NULL};
	char *big[] = {"run", "--kernel", "k", "--memory", big_mib, NULL};
	assert_int_equal(vm_config_parse(5, ok, UINT64_MAX, &c), 0);
	vm_config_free(&c);
	assert_int_equal(vm_config_parse(5, big, UINT64_MAX, &c), -EINVAL);
	assert_non_null(strstr(error_msg(), msg));
}

static void test_names(void **state)
{
	(void)state;
	assert_true(vm_config_name_valid("a"));
	assert_true(vm_config_name_valid("vm_1.test-2"));
	assert_false(vm_config_name_valid(""));
	assert_false(vm_config_name_valid("-x"));
	assert_false(vm_config_name_valid("a/b"));
	assert_false(vm_config_name_valid("a b"));
	char longname[80];
	memset(longname, 'a', 65);
	longname[65] = 0;
	assert_false(vm_config_name_valid(longname));
	longname[64] = 0;
	assert_true(vm_config_name_valid(longname));
}

/* --allow-backing-path DIR, repeatable, in order; never empty. */
static void test_cpu_hotplug(void **state)
{
	(void)state;
	struct vm_config c;
	assert_int_equal(parse(&c, "run --kernel k --cpus 4"), 0);
	assert_false(c.cpu_hotplug);
	assert_int_equal(vm_config_boot_cpus(&c), 0xF);
	assert_int_equal(c.cpu_cap, 100);
	assert_int_equal(c.cpu_weight, 0);
	assert_int_equal(parse(&c, "run --kernel k --cpus 4 --cpuhotplug"), 0);
	assert_true(c.cpu_hotplug);
	assert_int_equal(vm_config_boot_cpus(&c), 0x1); /* CPU 0 alone, as VirtualBox */
	assert_int_equal(parse(&c, "run --kernel k --cpus 4 --cpuhotplug --plugged-cpus 0-1,3"), 0);
	assert_int_equal(vm_config_boot_cpus(&c), 0xB);
	assert_int_equal(parse(&c, "run --kernel k --cpus 64 --cpuhotplug --plugged-cpus=0,63"), 0);
	assert_int_equal(vm_config_boot_cpus(&c), 0x8000000000000001ULL);
	assert_int_equal(parse(&c, "run --kernel k --cpus 64"), 0);
	assert_int_equal(vm_config_boot_cpus(&c), ~0ULL);
	assert_int_equal(parse(&c, "run --kernel k --cpu-cap 30"), 0);
	assert_int_equal(c.cpu_cap, 30);
	assert_int_equal(parse(&c, "run --kernel k --cpuexecutioncap=80 --cpu-weight 50"), 0);
	assert_int_equal(c.cpu_cap, 80);
	assert_int_equal(c.cpu_weight, 50);
	expect_error("run --kernel k --plugged-cpus 0", "needs --cpuhotplug");
	expect_error("run --kernel k --cpus 4 --cpuhotplug --plugged-cpus 1-2",
		     "must include CPU 0");
	expect_error("run --kernel k --cpus 2 --cpuhotplug --plugged-cpus 0-2", "past --cpus 2");
	expect_error("run --kernel k --cpus 4 --cpuhotplug --plugged-cpus 0-64", "IDs are 0 to 63");
	expect_error("run --kernel k --cpus 4 --cpuhotplug --plugged-cpus 2-1", "IDs are 0 to 63");
	expect_error("run --kernel k --cpus 4 --cpuhotplug --plugged-cpus 0,",
		     "bad --plugged-cpus");
	expect_error("run --kernel k --cpus 4 --cpuhotplug --plugged-cpus ,0",
		     "bad --plugged-cpus");
	expect_error("run --kernel k --cpus 4 --cpuhotplug --plugged-cpus 0-",
		     "bad --plugged-cpus");
	expect_error("run --kernel k --cpus 4 --cpuhotplug --plugged-cpus 0x1",
		     "bad --plugged-cpus");
	expect_error("run --kernel k --cpus 4 --cpuhotplug --plugged-cpus 0,,1",
		     "bad --plugged-cpus");
	expect_error("run --kernel k --cpus 4 --cpuhotplug --plugged-cpus 99999999999999999999",
		     "IDs are 0 to 63");
	expect_error("run --kernel k --cpuhotplug=yes", "takes no value");
	expect_error("run --kernel k --cpu-cap 0", "bad --cpu-cap '0'");
	expect_error("run --kernel k --cpu-cap 101", "bad --cpu-cap '101'");
	expect_error("run --kernel k --cpuexecutioncap 5%", "bad --cpuexecutioncap");
	expect_error("run --kernel k --cpu-weight 0", "bad --cpu-weight");
	expect_error("run --kernel k --cpu-weight 10001", "bad --cpu-weight");
}

static void test_allow_backing_path(void **state)
{
	(void)state;
	struct vm_config c;
	assert_int_equal(parse(&c, "run --kernel k"), 0);
	assert_int_equal(c.nallow_paths, 0);
	assert_int_equal(
	    parse(&c, "run --allow-backing-path /a --kernel k --allow-backing-path=/b/c"), 0);
	assert_int_equal(c.nallow_paths, 2);
	assert_string_equal(c.allow_paths[0], "/a");
	assert_string_equal(c.allow_paths[1], "/b/c");
	vm_config_free(&c);
	assert_null(c.allow_paths);
	expect_error("run --kernel k --allow-backing-path=", "empty --allow-backing-path");
	expect_error("run --kernel k --allow-backing-path", "needs a value");
}

static void test_balloon_pagefusion(void **state)
{
	(void)state;
	struct vm_config c;
	/* by default the balloon is there, empty, and page fusion is off (VirtualBox's defaults) */
	assert_int_equal(parse(&c, "run --kernel k"), 0);
	assert_false(c.balloon_off);
	assert_int_equal(c.balloon_mib, 0);
	assert_false(c.pagefusion);
	assert_int_equal(parse(&c, "run --kernel k --balloon 700 --pagefusion on"), 0);
	assert_int_equal(c.balloon_mib, 700);
	assert_true(c.pagefusion);
	assert_int_equal(parse(&c, "run --kernel k --balloon=off --pagefusion=off"), 0);
	assert_true(c.balloon_off);
	assert_false(c.pagefusion);
	/* the limit follows --memory, wherever it comes: RAM minus max(RAM/8, 64 MiB) */
	assert_int_equal(parse(&c, "run --kernel k --balloon 896"), 0);
	assert_int_equal(parse(&c, "run --kernel k --balloon 1500 --memory 2048"), 0);
	expect_error("run --kernel k --balloon 897",
		     "--balloon 897 MB is more than --memory 1024 MB minus a floor of 128 MB "
		     "(at most 896)");
	expect_error("run --kernel k --memory 64 --balloon 1", "at most 0");
	expect_error("run --kernel k --balloon -5", "bad --balloon '-5' (MB, or off)");
	expect_error("run --kernel k --balloon 1G", "bad --balloon '1G'");
	expect_error("run --kernel k --balloon", "needs a value");
	expect_error("run --kernel k --pagefusion yes", "bad --pagefusion 'yes' (on or off)");
	assert_false(c.no_free_page_reporting);
	assert_int_equal(parse(&c, "run --kernel k --free-page-reporting off"), 0);
	assert_true(c.no_free_page_reporting);
	assert_int_equal(parse(&c, "run --kernel k --free-page-reporting=on"), 0);
	assert_false(c.no_free_page_reporting);
	expect_error("run --kernel k --free-page-reporting 1", "bad --free-page-reporting '1'");
	/* --memory MIN:MAX: RAM is MAX, the automatic balloon keeps MIN */
	assert_int_equal(parse(&c, "run --kernel k --memory 512:1024"), 0);
	assert_int_equal(c.memory_mib, 1024);
	assert_int_equal(c.memory_min_mib, 512);
	assert_int_equal(parse(&c, "run --kernel k --memory 512:1024 --memory 768"), 0);
	assert_int_equal(c.memory_min_mib, 0);
	assert_int_equal(parse(&c, "run --kernel k --memory 1024:1024"), 0);
	expect_error("run --kernel k --memory 100:1024", "MIN must be from 128");
	expect_error("run --kernel k --memory 600:512", "MIN must be from 64");
	expect_error("run --kernel k --memory :512", "bad --memory ':512'");
	expect_error("run --kernel k --memory 16:512", "MIN >= 32");
	expect_error("run --kernel k --memory 512:", "bad --memory ''");
	expect_error("run --kernel k --memory 512:1024 --balloon 100", "no --balloon with it");
}

static void test_nics(void **state)
{
	(void)state;
	struct vm_config c;
	assert_int_equal(
	    parse(&c, "run --kernel k --nic switch=sw0 --nic=tap=tap0,mac=02:00:00:00:00:07 "
		      "--nic switch=sw1,vlan=20"),
	    0);
	assert_int_equal(c.nnics, 3);
	assert_int_equal(c.nics[0].backend, NIC_SWITCH);
	assert_string_equal(c.nics[0].name, "sw0");
	assert_int_equal(c.nics[1].backend, NIC_TAP);
	assert_true(c.nics[1].has_mac);
	assert_int_equal(c.nics[2].vlan, 20);
	vm_config_free(&c);
	expect_error("run --kernel k --nic", "needs a value");
	expect_error("run --kernel k --nic bogus=1", "unknown item");
	expect_error("run --kernel k --nic tap=t0,vlan=2", "vlan= is for switch ports");
	char line[400] = "run --kernel k";
	for (int i = 0; i <= NIC_MAX; i++)
		strcat(line, " --nic switch=s");
	expect_error(line, "at most");
}

static void test_sandbox(void **state)
{
	(void)state;
	struct vm_config c;
	assert_int_equal(parse(&c, "run --kernel k"), 0);
	assert_false(c.sandbox_off); /* on by default */
	assert_int_equal(parse(&c, "run --kernel k --sandbox off"), 0);
	assert_true(c.sandbox_off);
	assert_int_equal(parse(&c, "run --sandbox=on --kernel k"), 0);
	assert_false(c.sandbox_off);
	expect_error("run --kernel k --sandbox maybe", "bad --sandbox 'maybe' (on or off)");
	expect_error("run --kernel k --sandbox", "needs a value");
}

static void test_jail(void **state)
{
	(void)state;
	struct vm_config c;
	assert_int_equal(parse(&c, "run --kernel k"), 0);
	assert_null(c.jail.chroot_dir); /* no jail by default */
	assert_false(c.jail.set_user);
	assert_int_equal(parse(&c, "run --kernel k --chroot /srv/jail --user 1000"), 0);
	assert_string_equal(c.jail.chroot_dir, "/srv/jail");
	assert_true(c.jail.set_user);
	assert_int_equal(c.jail.uid, 1000);
	assert_int_equal(c.jail.gid, 1000); /* GID defaults to UID */
	assert_int_equal(parse(&c, "run --kernel k --user=65534:100"), 0);
	assert_null(c.jail.chroot_dir);
	assert_int_equal(c.jail.uid, 65534);
	assert_int_equal(c.jail.gid, 100);
	expect_error("run --kernel k --chroot", "needs a value");
	expect_error("run --kernel k --chroot=", "empty --chroot");
	expect_error("run --kernel k --user 0", "bad --user '0' (UID[:GID], numbers from 1)");
	expect_error("run --kernel k --user 5:0", "bad --user '5:0'");
	expect_error("run --kernel k --user nobody", "bad --user 'nobody'");
	expect_error("run --kernel k --user 5:", "bad --user '5:'");
	expect_error("run --kernel k --user -5", "bad --user '-5'");
	expect_error("run --kernel k --user 4294967295", "bad --user '4294967295'");
	expect_error("run --kernel k --user 99999999999999999999", "bad --user");
	expect_error("run --kernel k --user 7:8:9", "bad --user '7:8:9'");
	expect_error("run --kernel k --initrd i --reboot restart --chroot /j",
		     "--reboot restart reads --initrd again");
	assert_int_equal(parse(&c, "run --kernel k --reboot restart --chroot /j"), 0);
	assert_int_equal(parse(&c, "run --kernel k --initrd i --chroot /j"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_all_options),
	    cmocka_unit_test(test_firmware_boot),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_machine_limit),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_allow_backing_path),
	    cmocka_unit_test(test_balloon_pagefusion),
	    cmocka_unit_test(test_nics),
	    cmocka_unit_test(test_sandbox),
	    cmocka_unit_test(test_cpu_hotplug),
	    cmocka_unit_test(test_jail),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
