/* Command-line parsing for `minivmm run` (see vm_config.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/storage.h"
#include "devices/virtio/balloon/virtio_balloon.h"
#include "memory/layout.h"
#include "storage/pool/pool.h"
#include "vmm/vm_config.h"
#include "lib/error.h"

const char vm_config_usage[] =
    "usage: minivmm run [--name NAME] [--cpus N] [--memory MiB]\n"
    "                   [--kernel BZIMAGE [--initrd FILE] [--append CMDLINE]]\n"
    "                   [--boot disk|cdrom|order=cdrom,disk] [--firmware bios|efi]\n"
    "                   [--firmware-file FILE] [--console stdio|none|FILE]\n"
    "                   [--reboot exit|restart]\n"
    "                   [--disk FILE[,MODE][,bus=ide|sata|scsi|sas|nvme|virtio][,format=FMT]\n"
    "                          [,cache=writeback|none|directsync|unsafe]]...\n"
    "                   [--cdrom ISO[,bus=ide|sata|scsi]]... [--state-dir DIR]\n"
    "                   [--allow-backing-path DIR]...\n"
    "                   [--balloon MB|off]\n"
    "                   [--pagefusion on|off]\n"
    "                   [--free-page-reporting on|off]\n"
    "                   [--memory MIN:MAX]  (an automatic balloon keeps the guest within)\n"
    "                   [--cpuhotplug [--plugged-cpus LIST]]\n"
    "                   [--cpu-cap PERCENT] [--cpu-weight N]\n"
    "  MODE: normal, immutable, writethrough, shareable, multiattach, readonly\n"
    "  Images may name backing files, parents and extents only beside themselves (no device\n"
    "  nodes); --allow-backing-path DIR allows any under DIR.\n"
    "  Without --kernel, firmware (SeaBIOS; OVMF with --firmware efi) boots what is installed on\n"
    "  the disks.\n"
    "  bus=nvme: disks are namespaces of nvme0; ,controller=nvmeN (0-7) picks another.\n"
    "  [--nic switch=NAME[,mac=MAC][,vlan=N][,queues=N] |\n"
    "   --nic tap=TAPNAME[,mac=MAC][,queues=N]]... virtio-net NICs\n"
    "  --cpuhotplug: --cpus is the most CPUs; CPU 0 alone is present at start, or the\n"
    "  --plugged-cpus LIST (e.g. 0-1,3); 'control NAME plugcpu|unplugcpu ID' while running.\n"
    "  --cpu-cap PERCENT (or --cpuexecutioncap): 1-100 of a host CPU per vCPU.\n"
    "  --cpu-weight N: 1-10000, share against other VMs (100 = default).\n"
    "  --sandbox on|off: seccomp filters on every thread (default on; off for debugging)\n"
    "  --disk ...,werror=report|stop: a failed write (disk full, I/O error) reaches the guest\n"
    "      (report, the default) or pauses the VM until `minivmm control NAME resume`\n"
    "  --chroot DIR [--user UID[:GID]]: after set-up the VMM's root is DIR (a private mount\n"
    "      namespace) and it runs as UID:GID (root only; paths given later are inside DIR)\n"
    "  --disk pool:POOL/VOL[,...] (and --cdrom): a volume of a storage pool (minivmm pool, vol)\n";

bool vm_config_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > VM_NAME_MAX || name[0] == '.' || name[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

/* A decimal number in [min, max], nothing else. */
static int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	if (!*s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* --sandbox on|off: off (for debugging) runs without the seccomp filters (lib/sandbox.h). */
static int parse_sandbox(const char *val, struct vm_config *cfg)
{
	if (!strcmp(val, "on") || !strcmp(val, "off")) {
		cfg->sandbox_off = !strcmp(val, "off");
		return 0;
	}
	return error_set(-EINVAL, "run: bad --sandbox '%.40s' (on or off)", val);
}

/* --plugged-cpus LIST: IDs and ranges (0-1,3), checked against --cpus after parsing. */
static int parse_cpu_list(const char *val, uint64_t *mask)
{
	uint64_t m = 0;
	const char *p = val;
	while (*p) {
		char *end;
		if (*p < '0' || *p > '9')
			goto bad;
		unsigned long a = strtoul(p, &end, 10), b = a;
		if (*end == '-') {
			p = end + 1;
			if (*p < '0' || *p > '9')
				goto bad;
			b = strtoul(p, &end, 10);
		}
		if (a > b || b >= LAYOUT_MAX_VCPUS)
			return error_set(-EINVAL, "run: --plugged-cpus '%.60s': IDs are 0 to %d",
					 val, LAYOUT_MAX_VCPUS - 1);
		for (unsigned long i = a; i <= b; i++)
			m |= 1ULL << i;
		p = end;
		if (*p == ',' && *++p == '\0')
			goto bad;
		else if (*p && *p != ',' && !(*p >= '0' && *p <= '9'))
			goto bad;
	}
	if (!m)
		goto bad;
	*mask = m;
	return 0;
bad:
	return error_set(-EINVAL, "run: bad --plugged-cpus '%.60s' (IDs and ranges: 0-1,3)", val);
}

/* --cpu-cap / --cpuexecutioncap PERCENT (VirtualBox's execution cap). */
static int parse_cpu_cap(const char *opt, const char *val, struct vm_config *cfg)
{
	uint64_t n;
	if (parse_uint(val, 1, 100, &n) < 0)
		return error_set(-EINVAL, "run: bad %s '%.40s' (1 to 100 percent)", opt, val);
	cfg->cpu_cap = n;
	return 0;
}

/* --cpu-weight N: as cgroup v2 cpu.weight, 1 to 10000, 100 the default. */
static int parse_cpu_weight(const char *val, struct vm_config *cfg)
{
	uint64_t n;
	if (parse_uint(val, 1, 10000, &n) < 0)
		return error_set(-EINVAL, "run: bad --cpu-weight '%.40s' (1 to 10000)", val);
	cfg->cpu_weight = n;
	return 0;
}

/* --boot disk | cdrom | order=KIND[,KIND]... (VirtualBox's --boot1..4). */
static int parse_boot(const char *val, struct vm_config *cfg)
{
	const char *list = !strncmp(val, "order=", 6) ? val + 6 : val;
	unsigned n = 0;
	while (*list) {
		size_t len = strcspn(list, ",");
		enum vm_boot_device d;
		if (len == 4 && !strncmp(list, "disk", 4)) {
			d = VM_BOOT_DISK;
		} else if (len == 5 && !strncmp(list, "cdrom", 5)) {
			d = VM_BOOT_CDROM;
		} else if (len == 3 && !strncmp(list, "net", 3)) {
			return error_set(-EINVAL,
					 "run: --boot net: minivmm has no network device yet");
		} else {
			return error_set(
			    -EINVAL, "run: bad --boot '%.60s' (disk, cdrom or order=cdrom,disk)",
			    val);
		}
		for (unsigned i = 0; i < n; i++)
			if (cfg->boot[i] == d)
				return error_set(-EINVAL,
						 "run: --boot '%.60s' names a device twice", val);
		if (n == VM_BOOT_MAX)
			return error_set(-EINVAL, "run: --boot '%.60s': too many devices", val);
		cfg->boot[n++] = d;
		list += len;
		if (*list == ',' && !*++list)
			n = 0; /* a trailing comma: refused below */
	}
	if (n == 0)
		return error_set(-EINVAL,
				 "run: bad --boot '%.60s' (disk, cdrom or order=cdrom,disk)", val);
	cfg->nboot = n;
	return 0;
}

/* --balloon MB | off (VBoxManage's guestmemoryballoon; checked against --memory at the end). */
static int parse_balloon(const char *val, struct vm_config *cfg)
{
	uint64_t n;
	if (!strcmp(val, "off")) {
		cfg->balloon_off = true;
		return 0;
	}
	if (parse_uint(val, 0, UINT64_MAX / MiB, &n) < 0)
		return error_set(-EINVAL, "run: bad --balloon '%.40s' (MB, or off)", val);
	cfg->balloon_off = false;
	cfg->balloon_mib = n;
	return 0;
}

/* --pagefusion on | off (VirtualBox's --page-fusion). */
static int parse_pagefusion(const char *val, struct vm_config *cfg)
{
	if (strcmp(val, "on") && strcmp(val, "off"))
		return error_set(-EINVAL, "run: bad --pagefusion '%.40s' (on or off)", val);
	cfg->pagefusion = !strcmp(val, "on");
	return 0;
}

/* --free-page-reporting on | off (QEMU's free-page-reporting): the guest hands its free memory
 * back through the balloon on its own. */
static int parse_free_page_reporting(const char *val, struct vm_config *cfg)
{
	if (strcmp(val, "on") && strcmp(val, "off"))
		return error_set(-EINVAL, "run: bad --free-page-reporting '%.40s' (on or off)",
				 val);
	cfg->no_free_page_reporting = !strcmp(val, "off");
	return 0;
}

/* --memory MIN:MAX: MIN here (checked against MAX at the end); *val moves on to MAX. */
static int parse_memory_min(const char **val, struct vm_config *cfg)
{
	char min[24];
	const char *colon = strchr(*val, ':');
	size_t len = (size_t)(colon - *val);
	uint64_t n = 0;
	if (len < sizeof(min)) {
		memcpy(min, *val, len);
		min[len] = 0;
	}
	if (len >= sizeof(min) || parse_uint(min, VM_MEMORY_MIN_MIB, UINT64_MAX / MiB, &n) < 0)
		return error_set(-EINVAL,
				 "run: bad --memory '%.40s' (MiB, or MIN:MAX in MiB, MIN >= %d)",
				 *val, VM_MEMORY_MIN_MIB);
	cfg->memory_min_mib = n;
	*val = colon + 1;
	return 0;
}

/* One --nic (a virtio-net NIC on a switch or a TAP). */
static int vm_config_add_nic(struct vm_config *cfg, const char *val)
{
	if (cfg->nnics == NIC_MAX)
		return error_set(-EINVAL, "run: at most %d --nic", NIC_MAX);
	if (nic_config_parse(val, &cfg->nics[cfg->nnics]) < 0)
		return error_wrap(-EINVAL, "run");
	cfg->nnics++;
	return 0;
}

void vm_config_free(struct vm_config *cfg)
{
	for (unsigned i = 0; i < cfg->ndisks; i++)
		disk_config_free(&cfg->disks[i]);
	free(cfg->disks);
	cfg->disks = NULL;
	cfg->ndisks = 0;
	free(cfg->allow_paths);
	cfg->allow_paths = NULL;
	cfg->nallow_paths = 0;
}

/* One --disk or --cdrom: parsed now so that a typo is a usage error before anything starts. */
static int vm_config_add_disk(struct vm_config *cfg, const char *val, enum disk_media media)
{
	struct disk_config *v = realloc(cfg->disks, (cfg->ndisks + 1) * sizeof(*v));
	if (!v)
		return error_set(-ENOMEM, "run: out of memory");
	cfg->disks = v;
	struct disk_config *d = &v[cfg->ndisks];
	if (disk_config_parse(val, media, d) < 0)
		return error_wrap(-EINVAL, "run");
	/* pool:POOL/VOL names a volume of a storage pool (minivmm pool, minivmm vol). */
	if (!strncmp(d->path, POOL_DISK_PREFIX, strlen(POOL_DISK_PREFIX))) {
		char *path;
		if (pool_volume_path(d->path + strlen(POOL_DISK_PREFIX), &path) < 0) {
			disk_config_free(d);
			return error_wrap(-EINVAL, "run: %s",
					  media == DISK_MEDIA_CDROM ? "--cdrom" : "--disk");
		}
		free(d->path);
		d->path = path;
		/* The volume's name says its format: never probed, as `minivmm vol` opens it. */
		const char *fmt = pool_vol_format(path);
		if (!d->format && fmt && !(d->format = strdup(fmt))) {
			disk_config_free(d);
			return error_set(-ENOMEM, "run: out of memory");
		}
	}
	cfg->ndisks++;
	return 0;
}

/* --firmware bios|efi */
static int parse_firmware(const char *val, struct vm_config *cfg)
{
	if (!strcmp(val, "bios") || !strcmp(val, "efi")) {
		cfg->firmware_efi = !strcmp(val, "efi");
		return 0;
	}
	return error_set(-EINVAL, "run: bad --firmware '%.40s' (bios or efi)", val);
}

/* --memory MIN:MAX: the automatic balloon holds at most MAX-MIN, within the balloon's limit. */
static int vm_config_check_memory_range(const struct vm_config *cfg, uint64_t balloon_limit)
{
	uint64_t min = cfg->memory_min_mib, max = cfg->memory_mib;
	if (min > max || max - min > balloon_limit)
		return error_set(
		    -EINVAL,
		    "run: --memory %llu:%llu: MIN must be from %llu (MAX minus the balloon's "
		    "floor) to MAX",
		    (unsigned long long)min, (unsigned long long)max,
		    (unsigned long long)(max - balloon_limit));
	if (cfg->balloon_off || cfg->balloon_mib)
		return error_set(
		    -EINVAL, "run: --memory MIN:MAX sets the balloon itself: no --balloon with it");
	return 0;
}

/* ---- one function per option: parse `val` into cfg, or -EINVAL with a message ---- */

static int opt_name(const char *val, struct vm_config *cfg)
{
	if (!vm_config_name_valid(val))
		return error_set(
		    -EINVAL,
		    "run: bad --name '%.80s' (1-64 of A-Z a-z 0-9 _ . -, not starting with . "
		    "or -)",
		    val);
	snprintf(cfg->name, sizeof(cfg->name), "%s", val);
	cfg->name_auto = false;
	return 0;
}

static int opt_cpus(const char *val, struct vm_config *cfg)
{
	uint64_t n;
	if (parse_uint(val, 1, LAYOUT_MAX_VCPUS, &n) < 0)
		return error_set(-EINVAL, "run: bad --cpus '%.40s' (1 to %d)", val,
				 LAYOUT_MAX_VCPUS);
	cfg->cpus = n;
	return 0;
}

/* --memory MiB | MIN:MAX (the host's RAM is checked once every option is read). */
static int opt_memory(const char *val, struct vm_config *cfg)
{
	uint64_t n;
	cfg->memory_min_mib = 0;
	if (strchr(val, ':') && parse_memory_min(&val, cfg) < 0)
		return -EINVAL;
	if (parse_uint(val, 0, UINT64_MAX / MiB, &n) < 0)
		return error_set(-EINVAL, "run: bad --memory '%.40s' (a size in MiB)", val);
	if (n < VM_MEMORY_MIN_MIB)
		return error_set(-EINVAL, "run: --memory %llu MiB is too small (minimum %d)",
				 (unsigned long long)n, VM_MEMORY_MIN_MIB);
	/* High RAM must end below the 64-bit PCI window. */
	uint64_t limit =
	    (LAYOUT_PCI_MMIO64_START - LAYOUT_HIGH_RAM_START + LAYOUT_LOW_RAM_END) / MiB;
	if (n > limit)
		return error_set(-EINVAL,
				 "run: --memory %llu MiB is more than the machine's %llu MiB",
				 (unsigned long long)n, (unsigned long long)limit);
	cfg->memory_mib = n;
	return 0;
}

static int opt_kernel(const char *val, struct vm_config *cfg)
{
	cfg->kernel = val;
	return 0;
}

static int opt_initrd(const char *val, struct vm_config *cfg)
{
	cfg->initrd = val;
	return 0;
}

static int opt_append(const char *val, struct vm_config *cfg)
{
	cfg->cmdline = val;
	return 0;
}

static int opt_console(const char *val, struct vm_config *cfg)
{
	if (!strcmp(val, "stdio")) {
		cfg->console = VM_CONSOLE_STDIO;
	} else if (!strcmp(val, "none")) {
		cfg->console = VM_CONSOLE_NONE;
	} else if (*val) {
		cfg->console = VM_CONSOLE_FILE;
		cfg->console_path = val;
	} else {
		return error_set(-EINVAL, "run: empty --console (stdio, none or a file)");
	}
	return 0;
}

static int opt_reboot(const char *val, struct vm_config *cfg)
{
	if (!strcmp(val, "exit")) {
		cfg->reboot = VM_REBOOT_EXIT;
	} else if (!strcmp(val, "restart")) {
		cfg->reboot = VM_REBOOT_RESTART;
	} else {
		return error_set(-EINVAL, "run: bad --reboot '%.40s' (exit or restart)", val);
	}
	return 0;
}

static int opt_disk(const char *val, struct vm_config *cfg)
{
	return vm_config_add_disk(cfg, val, DISK_MEDIA_HDD);
}

static int opt_cdrom(const char *val, struct vm_config *cfg)
{
	return vm_config_add_disk(cfg, val, DISK_MEDIA_CDROM);
}

static int opt_state_dir(const char *val, struct vm_config *cfg)
{
	if (!*val)
		return error_set(-EINVAL, "run: empty --state-dir");
	cfg->state_dir = val;
	return 0;
}

static int opt_boot(const char *val, struct vm_config *cfg)
{
	cfg->boot_given = true;
	return parse_boot(val, cfg);
}

static int opt_firmware(const char *val, struct vm_config *cfg)
{
	cfg->firmware_given = true;
	return parse_firmware(val, cfg);
}

static int opt_firmware_file(const char *val, struct vm_config *cfg)
{
	if (!*val)
		return error_set(-EINVAL, "run: empty --firmware-file");
	cfg->firmware_file = val;
	cfg->firmware_given = true;
	return 0;
}

static int opt_allow_backing_path(const char *val, struct vm_config *cfg)
{
	if (!*val)
		return error_set(-EINVAL, "run: empty --allow-backing-path");
	const char **v = realloc(cfg->allow_paths, (cfg->nallow_paths + 1) * sizeof(*v));
	if (!v)
		return error_set(-ENOMEM, "run: out of memory");
	cfg->allow_paths = v;
	v[cfg->nallow_paths++] = val;
	return 0;
}

static int opt_nic(const char *val, struct vm_config *cfg)
{
	return vm_config_add_nic(cfg, val);
}

static int opt_cpuhotplug(const char *val, struct vm_config *cfg)
{
	(void)val;
	cfg->cpu_hotplug = true;
	return 0;
}

static int opt_plugged_cpus(const char *val, struct vm_config *cfg)
{
	return parse_cpu_list(val, &cfg->plugged_cpus);
}

static int opt_cpu_cap(const char *val, struct vm_config *cfg)
{
	return parse_cpu_cap("--cpu-cap", val, cfg);
}

static int opt_cpuexecutioncap(const char *val, struct vm_config *cfg)
{
	return parse_cpu_cap("--cpuexecutioncap", val, cfg);
}

/* --chroot DIR: the jail's root after set-up (lib/jail.h); checked when the VM starts. */
static int opt_chroot(const char *val, struct vm_config *cfg)
{
	if (!*val)
		return error_set(-EINVAL, "run: empty --chroot");
	cfg->jail.chroot_dir = val;
	return 0;
}

/* --user UID[:GID]: numeric ids (no user database is read), neither 0. */
static int opt_user(const char *val, struct vm_config *cfg)
{
	if (jail_parse_user(val, &cfg->jail.uid, &cfg->jail.gid) < 0)
		return error_set(-EINVAL, "run: bad --user '%.40s' (UID[:GID], numbers from 1)",
				 val);
	cfg->jail.set_user = true;
	return 0;
}

/* The options of `run`: a row each.  A `flag` takes no value (val is NULL); the others take the
 * next argument or `--opt=VALUE`.  New options: a row here and a function above. */
static const struct run_option {
	const char *name;
	int (*parse)(const char *val, struct vm_config *cfg);
	bool flag;
} run_options[] = {
    {"--name", opt_name, false},
    {"--cpus", opt_cpus, false},
    {"--memory", opt_memory, false},
    {"--kernel", opt_kernel, false},
    {"--initrd", opt_initrd, false},
    {"--append", opt_append, false},
    {"--console", opt_console, false},
    {"--reboot", opt_reboot, false},
    {"--disk", opt_disk, false},
    {"--cdrom", opt_cdrom, false},
    {"--state-dir", opt_state_dir, false},
    {"--boot", opt_boot, false},
    {"--firmware", opt_firmware, false},
    {"--firmware-file", opt_firmware_file, false},
    {"--allow-backing-path", opt_allow_backing_path, false},
    {"--balloon", parse_balloon, false},
    {"--pagefusion", parse_pagefusion, false},
    {"--free-page-reporting", parse_free_page_reporting, false},
    {"--nic", opt_nic, false},
    {"--sandbox", parse_sandbox, false},
    {"--cpuhotplug", opt_cpuhotplug, true},
    {"--plugged-cpus", opt_plugged_cpus, false},
    {"--cpu-cap", opt_cpu_cap, false},
    {"--cpuexecutioncap", opt_cpuexecutioncap, false},
    {"--cpu-weight", parse_cpu_weight, false},
    {"--chroot", opt_chroot, false},
    {"--user", opt_user, false},
};

static const struct run_option *run_option_find(const char *arg, const char **val)
{
	for (size_t k = 0; k < sizeof(run_options) / sizeof(run_options[0]); k++) {
		size_t n = strlen(run_options[k].name);
		if (!strncmp(arg, run_options[k].name, n) && (arg[n] == '\0' || arg[n] == '=')) {
			*val = arg[n] == '=' ? arg + n + 1 : NULL;
			return &run_options[k];
		}
	}
	return NULL;
}

static int vm_config_parse_args(int argc, char **argv, uint64_t host_ram_mib, struct vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->cpus = 1;
	cfg->memory_mib = VM_MEMORY_DEFAULT_MIB;
	cfg->cmdline = "";
	cfg->console = VM_CONSOLE_STDIO;
	cfg->name_auto = true;
	cfg->boot[0] = VM_BOOT_CDROM; /* VirtualBox's default order */
	cfg->boot[1] = VM_BOOT_DISK;
	cfg->nboot = 2;
	cfg->cpu_cap = 100;

	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *val = NULL;
		if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
			cfg->help = true;
			return 0;
		}
		const struct run_option *opt = run_option_find(arg, &val);
		if (!opt)
			return error_set(-EINVAL, "run: unknown option '%s'", arg);
		if (opt->flag && val)
			return error_set(-EINVAL, "run: option %s takes no value", opt->name);
		if (!opt->flag && !val) {
			if (i + 1 >= argc)
				return error_set(-EINVAL, "run: option %s needs a value",
						 opt->name);
			val = argv[++i];
		}
		int r = opt->parse(val, cfg);
		if (r < 0)
			return r;
	}
	if (cfg->memory_mib > host_ram_mib)
		return error_set(-EINVAL, "run: --memory %llu MiB is more than the host's %llu MiB",
				 (unsigned long long)cfg->memory_mib,
				 (unsigned long long)host_ram_mib);
	uint64_t balloon_limit = virtio_balloon_limit_mib(cfg->memory_mib);
	if (cfg->memory_min_mib && vm_config_check_memory_range(cfg, balloon_limit) < 0)
		return -EINVAL;
	if (!cfg->balloon_off && cfg->balloon_mib > balloon_limit)
		return error_set(
		    -EINVAL,
		    "run: --balloon %llu MB is more than --memory %llu MB minus a floor of %llu "
		    "MB (at most %llu)",
		    (unsigned long long)cfg->balloon_mib, (unsigned long long)cfg->memory_mib,
		    (unsigned long long)(cfg->memory_mib - balloon_limit),
		    (unsigned long long)balloon_limit);
	if (cfg->plugged_cpus && !cfg->cpu_hotplug)
		return error_set(-EINVAL, "run: --plugged-cpus needs --cpuhotplug");
	if (cfg->plugged_cpus && !(cfg->plugged_cpus & 1))
		return error_set(-EINVAL, "run: --plugged-cpus must include CPU 0");
	if (cfg->cpus < 64 && cfg->plugged_cpus >> cfg->cpus)
		return error_set(-EINVAL,
				 "run: --plugged-cpus names a CPU past --cpus %u (IDs 0 to %u)",
				 cfg->cpus, cfg->cpus - 1);
	if (cfg->kernel && !*cfg->kernel)
		return error_set(-EINVAL, "run: empty --kernel");
	if (cfg->kernel && (cfg->boot_given || cfg->firmware_given))
		return error_set(-EINVAL, "run: --kernel boots directly: --boot, --firmware and "
					  "--firmware-file are for firmware boot (no --kernel)");
	if (!cfg->kernel && (cfg->initrd || *cfg->cmdline))
		return error_set(-EINVAL, "run: --initrd and --append need --kernel");
	if (cfg->initrd && !*cfg->initrd)
		return error_set(-EINVAL, "run: empty --initrd");
	if (cfg->jail.chroot_dir && cfg->initrd && cfg->reboot == VM_REBOOT_RESTART)
		/* Each reboot reads the initrd again, by a path the jail no longer shows. */
		return error_set(
		    -EINVAL, "run: --reboot restart reads --initrd again at each reboot, out of "
			     "reach under --chroot (use --reboot exit)");
	/* Every disk's bus has a controller with a free position for it. */
	if (storage_check(cfg->disks, cfg->ndisks) < 0)
		return error_wrap(-EINVAL, "run");
	return 0;
}

int vm_config_parse(int argc, char **argv, uint64_t host_ram_mib, struct vm_config *cfg)
{
	int ret = vm_config_parse_args(argc, argv, host_ram_mib, cfg);
	if (ret < 0)
		vm_config_free(cfg);
	return ret;
}
