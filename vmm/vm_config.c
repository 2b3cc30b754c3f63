/* Command-line parsing for `minivmm run` (see vm_config.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/storage.h"
#include "memory/layout.h"
#include "vmm/vm_config.h"

const char vm_config_usage[] =
    "usage: minivmm run [--name NAME] [--cpus N] [--memory MiB]\n"
    "                   [--kernel BZIMAGE [--initrd FILE] [--append CMDLINE]]\n"
    "                   [--boot disk|cdrom|order=cdrom,disk] [--firmware bios]\n"
    "                   [--firmware-file FILE] [--console stdio|none|FILE]\n"
    "                   [--reboot exit|restart]\n"
    "                   [--disk FILE[,MODE][,bus=ide|sata|scsi|nvme|virtio][,format=FMT]\n"
    "                          [,cache=writeback|none|directsync|unsafe]]...\n"
    "                   [--cdrom ISO[,bus=ide|sata]]... [--state-dir DIR]\n"
    "                   [--allow-backing-path DIR]...\n"
    "                   [--cpuhotplug [--plugged-cpus LIST]]\n"
    "                   [--cpu-cap PERCENT] [--cpu-weight N]\n"
    "  MODE: normal, immutable, writethrough, shareable, multiattach, readonly\n"
    "  Images may name backing files, parents and extents only beside themselves (no device\n"
    "  nodes); --allow-backing-path DIR allows any under DIR.\n"
    "  Without --kernel, firmware (SeaBIOS) boots what is installed on the disks.\n"
    "  --cpuhotplug: --cpus is the most CPUs; CPU 0 alone is present at start, or the\n"
    "  --plugged-cpus LIST (e.g. 0-1,3); 'control NAME plugcpu|unplugcpu ID' while running.\n"
    "  --cpu-cap PERCENT (or --cpuexecutioncap): 1-100 of a host CPU per vCPU.\n"
    "  --cpu-weight N: 1-10000, share against other VMs (100 = default).\n";

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

static const char *const options[] = {
    "--name",
    "--cpus",
    "--memory",
    "--kernel",
    "--initrd",
    "--append",
    "--console",
    "--reboot",
    "--disk",
    "--cdrom",
    "--state-dir",
    "--boot",
    "--firmware",
    "--firmware-file",
    "--allow-backing-path",
    "--cpuhotplug",
    "--plugged-cpus",
    "--cpu-cap",
    "--cpuexecutioncap",
    "--cpu-weight",
};

/* Options that take no value. */
static bool option_is_flag(const char *opt)
{
	return !strcmp(opt, "--cpuhotplug");
}

/* --plugged-cpus LIST: IDs and ranges (0-1,3), checked against --cpus after parsing. */
static int parse_cpu_list(const char *val, uint64_t *mask, char *err, size_t errlen)
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
		if (a > b || b >= LAYOUT_MAX_VCPUS) {
			snprintf(err, errlen, "run: --plugged-cpus '%.60s': IDs are 0 to %d", val,
				 LAYOUT_MAX_VCPUS - 1);
			return -EINVAL;
		}
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
	snprintf(err, errlen, "run: bad --plugged-cpus '%.60s' (IDs and ranges: 0-1,3)", val);
	return -EINVAL;
}

/* --cpu-cap / --cpuexecutioncap PERCENT (VirtualBox's execution cap). */
static int parse_cpu_cap(const char *opt, const char *val, struct vm_config *cfg, char *err,
			 size_t errlen)
{
	uint64_t n;
	if (parse_uint(val, 1, 100, &n) < 0) {
		snprintf(err, errlen, "run: bad %s '%.40s' (1 to 100 percent)", opt, val);
		return -EINVAL;
	}
	cfg->cpu_cap = n;
	return 0;
}

/* --cpu-weight N: as cgroup v2 cpu.weight, 1 to 10000, 100 the default. */
static int parse_cpu_weight(const char *val, struct vm_config *cfg, char *err, size_t errlen)
{
	uint64_t n;
	if (parse_uint(val, 1, 10000, &n) < 0) {
		snprintf(err, errlen, "run: bad --cpu-weight '%.40s' (1 to 10000)", val);
		return -EINVAL;
	}
	cfg->cpu_weight = n;
	return 0;
}

/* --boot disk | cdrom | order=KIND[,KIND]... (VirtualBox's --boot1..4). */
static int parse_boot(const char *val, struct vm_config *cfg, char *err, size_t errlen)
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
			snprintf(err, errlen, "run: --boot net: minivmm has no network device yet");
			return -EINVAL;
		} else {
			snprintf(err, errlen,
				 "run: bad --boot '%.60s' (disk, cdrom or order=cdrom,disk)", val);
			return -EINVAL;
		}
		for (unsigned i = 0; i < n; i++)
			if (cfg->boot[i] == d) {
				snprintf(err, errlen, "run: --boot '%.60s' names a device twice",
					 val);
				return -EINVAL;
			}
		if (n == VM_BOOT_MAX) {
			snprintf(err, errlen, "run: --boot '%.60s': too many devices", val);
			return -EINVAL;
		}
		cfg->boot[n++] = d;
		list += len;
		if (*list == ',' && !*++list)
			n = 0; /* a trailing comma: refused below */
	}
	if (n == 0) {
		snprintf(err, errlen, "run: bad --boot '%.60s' (disk, cdrom or order=cdrom,disk)",
			 val);
		return -EINVAL;
	}
	cfg->nboot = n;
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
static int vm_config_add_disk(struct vm_config *cfg, const char *val, enum disk_media media,
			      char *err, size_t errlen)
{
	char msg[400];
	struct disk_config *v = realloc(cfg->disks, (cfg->ndisks + 1) * sizeof(*v));
	if (!v) {
		snprintf(err, errlen, "run: out of memory");
		return -ENOMEM;
	}
	cfg->disks = v;
	if (disk_config_parse(val, media, &v[cfg->ndisks], msg, sizeof(msg)) < 0) {
		snprintf(err, errlen, "run: %s", msg);
		return -EINVAL;
	}
	cfg->ndisks++;
	return 0;
}

static int vm_config_parse_args(int argc, char **argv, uint64_t host_ram_mib, struct vm_config *cfg,
				char *err, size_t errlen)
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
	bool boot_given = false, firmware_given = false;

	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
			cfg->help = true;
			return 0;
		}
		int opt = -1;
		const char *val = NULL;
		for (size_t k = 0; k < sizeof(options) / sizeof(options[0]); k++) {
			size_t n = strlen(options[k]);
			if (!strncmp(arg, options[k], n) && (arg[n] == '\0' || arg[n] == '=')) {
				opt = k;
				val = arg[n] == '=' ? arg + n + 1 : NULL;
				break;
			}
		}
		if (opt < 0) {
			snprintf(err, errlen, "run: unknown option '%s'", arg);
			return -EINVAL;
		}
		if (!val && !option_is_flag(options[opt])) {
			if (i + 1 >= argc) {
				snprintf(err, errlen, "run: option %s needs a value", options[opt]);
				return -EINVAL;
			}
			val = argv[++i];
		}
		uint64_t n;
		switch (opt) {
		case 0:
			if (!vm_config_name_valid(val)) {
				snprintf(err, errlen,
					 "run: bad --name '%.80s' (1-64 of A-Z a-z 0-9 _ . -, not "
					 "starting with . or -)",
					 val);
				return -EINVAL;
			}
			snprintf(cfg->name, sizeof(cfg->name), "%s", val);
			cfg->name_auto = false;
			break;
		case 1:
			if (parse_uint(val, 1, LAYOUT_MAX_VCPUS, &n) < 0) {
				snprintf(err, errlen, "run: bad --cpus '%.40s' (1 to %d)", val,
					 LAYOUT_MAX_VCPUS);
				return -EINVAL;
			}
			cfg->cpus = n;
			break;
		case 2:
			if (parse_uint(val, 0, UINT64_MAX / MiB, &n) < 0) {
				snprintf(err, errlen, "run: bad --memory '%.40s' (a size in MiB)",
					 val);
				return -EINVAL;
			}
			if (n < VM_MEMORY_MIN_MIB) {
				snprintf(err, errlen,
					 "run: --memory %llu MiB is too small (minimum %d)",
					 (unsigned long long)n, VM_MEMORY_MIN_MIB);
				return -EINVAL;
			}
			/* High RAM must end below the 64-bit PCI window. */
			uint64_t limit =
			    (LAYOUT_PCI_MMIO64_START - LAYOUT_HIGH_RAM_START + LAYOUT_LOW_RAM_END) /
			    MiB;
			if (n > limit) {
				snprintf(
				    err, errlen,
				    "run: --memory %llu MiB is more than the machine's %llu MiB",
				    (unsigned long long)n, (unsigned long long)limit);
				return -EINVAL;
			}
			if (n > host_ram_mib) {
				snprintf(err, errlen,
					 "run: --memory %llu MiB is more than the host's %llu MiB",
					 (unsigned long long)n, (unsigned long long)host_ram_mib);
				return -EINVAL;
			}
			cfg->memory_mib = n;
			break;
		case 3:
			cfg->kernel = val;
			break;
		case 4:
			cfg->initrd = val;
			break;
		case 5:
			cfg->cmdline = val;
			break;
		case 6:
			if (!strcmp(val, "stdio")) {
				cfg->console = VM_CONSOLE_STDIO;
			} else if (!strcmp(val, "none")) {
				cfg->console = VM_CONSOLE_NONE;
			} else if (*val) {
				cfg->console = VM_CONSOLE_FILE;
				cfg->console_path = val;
			} else {
				snprintf(err, errlen,
					 "run: empty --console (stdio, none or a file)");
				return -EINVAL;
			}
			break;
		case 7:
			if (!strcmp(val, "exit")) {
				cfg->reboot = VM_REBOOT_EXIT;
			} else if (!strcmp(val, "restart")) {
				cfg->reboot = VM_REBOOT_RESTART;
			} else {
				snprintf(err, errlen, "run: bad --reboot '%.40s' (exit or restart)",
					 val);
				return -EINVAL;
			}
			break;
		case 8:
		case 9:
			if (vm_config_add_disk(cfg, val,
					       opt == 8 ? DISK_MEDIA_HDD : DISK_MEDIA_CDROM, err,
					       errlen) < 0)
				return -EINVAL;
			break;
		case 10:
			if (!*val) {
				snprintf(err, errlen, "run: empty --state-dir");
				return -EINVAL;
			}
			cfg->state_dir = val;
			break;
		case 11:
			if (parse_boot(val, cfg, err, errlen) < 0)
				return -EINVAL;
			boot_given = true;
			break;
		case 12:
			if (!strcmp(val, "efi")) {
				snprintf(err, errlen,
					 "run: --firmware efi: UEFI (OVMF) is not supported yet");
				return -EINVAL;
			}
			if (strcmp(val, "bios")) {
				snprintf(err, errlen, "run: bad --firmware '%.40s' (bios)", val);
				return -EINVAL;
			}
			firmware_given = true;
			break;
		case 13:
			if (!*val) {
				snprintf(err, errlen, "run: empty --firmware-file");
				return -EINVAL;
			}
			cfg->firmware_file = val;
			firmware_given = true;
			break;
		case 14: {
			if (!*val) {
				snprintf(err, errlen, "run: empty --allow-backing-path");
				return -EINVAL;
			}
			const char **v =
			    realloc(cfg->allow_paths, (cfg->nallow_paths + 1) * sizeof(*v));
			if (!v) {
				snprintf(err, errlen, "run: out of memory");
				return -ENOMEM;
			}
			cfg->allow_paths = v;
			v[cfg->nallow_paths++] = val;
			break;
		}
		case 15:
			if (val) {
				snprintf(err, errlen, "run: --cpuhotplug takes no value");
				return -EINVAL;
			}
			cfg->cpu_hotplug = true;
			break;
		case 16:
			if (parse_cpu_list(val, &cfg->plugged_cpus, err, errlen) < 0)
				return -EINVAL;
			break;
		case 17:
		case 18:
			if (parse_cpu_cap(options[opt], val, cfg, err, errlen) < 0)
				return -EINVAL;
			break;
		case 19:
			if (parse_cpu_weight(val, cfg, err, errlen) < 0)
				return -EINVAL;
			break;
		}
	}
	if (cfg->plugged_cpus && !cfg->cpu_hotplug) {
		snprintf(err, errlen, "run: --plugged-cpus needs --cpuhotplug");
		return -EINVAL;
	}
	if (cfg->plugged_cpus && !(cfg->plugged_cpus & 1)) {
		snprintf(err, errlen, "run: --plugged-cpus must include CPU 0");
		return -EINVAL;
	}
	if (cfg->cpus < 64 && cfg->plugged_cpus >> cfg->cpus) {
		snprintf(err, errlen,
			 "run: --plugged-cpus names a CPU past --cpus %u (IDs 0 to %u)", cfg->cpus,
			 cfg->cpus - 1);
		return -EINVAL;
	}
	if (cfg->kernel && !*cfg->kernel) {
		snprintf(err, errlen, "run: empty --kernel");
		return -EINVAL;
	}
	if (cfg->kernel && (boot_given || firmware_given)) {
		snprintf(err, errlen,
			 "run: --kernel boots directly: --boot, --firmware and "
			 "--firmware-file are for firmware boot (no --kernel)");
		return -EINVAL;
	}
	if (!cfg->kernel && (cfg->initrd || *cfg->cmdline)) {
		snprintf(err, errlen, "run: --initrd and --append need --kernel");
		return -EINVAL;
	}
	if (cfg->initrd && !*cfg->initrd) {
		snprintf(err, errlen, "run: empty --initrd");
		return -EINVAL;
	}
	/* Every disk's bus has a controller with a free position for it. */
	char msg[400];
	if (storage_check(cfg->disks, cfg->ndisks, msg, sizeof(msg)) < 0) {
		snprintf(err, errlen, "run: %s", msg);
		return -EINVAL;
	}
	return 0;
}

int vm_config_parse(int argc, char **argv, uint64_t host_ram_mib, struct vm_config *cfg, char *err,
		    size_t errlen)
{
	int ret = vm_config_parse_args(argc, argv, host_ram_mib, cfg, err, errlen);
	if (ret < 0)
		vm_config_free(cfg);
	return ret;
}
