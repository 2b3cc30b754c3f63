/* `minivmm run` options, parsed and checked without touching the system (unit-tested). */
#ifndef MINIVMM_VMM_VM_CONFIG_H
#define MINIVMM_VMM_VM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/disk.h"
#include "devices/virtio/net/nic_config.h"
#include "lib/jail.h"

enum vm_console { VM_CONSOLE_STDIO, VM_CONSOLE_NONE, VM_CONSOLE_FILE };
enum vm_reboot_action { VM_REBOOT_EXIT, VM_REBOOT_RESTART };
/* What firmware boots from, in order (--boot). */
enum vm_boot_device { VM_BOOT_DISK, VM_BOOT_CDROM };
#define VM_BOOT_MAX 4

#define VM_NAME_MAX 64
#define VM_MEMORY_MIN_MIB 32
#define VM_MEMORY_DEFAULT_MIB 1024 /* VirtualBox's default for a Linux VM */

struct vm_config {
	char name[VM_NAME_MAX + 1]; /* "" until chosen when name_auto */
	bool name_auto;		    /* no --name: `run` takes the first free vm1, vm2, ... */
	unsigned cpus;
	uint64_t memory_mib;
	const char *kernel;  /* NULL: boot through firmware (vmm/boot_firmware.h) */
	const char *initrd;  /* NULL: none */
	const char *cmdline; /* "" when not given */
	enum vm_console console;
	const char *console_path; /* VM_CONSOLE_FILE */
	enum vm_reboot_action reboot;
	bool help;		   /* --help was given: print usage, run nothing */
	struct disk_config *disks; /* --disk and --cdrom in order (malloc'ed: vm_config_free) */
	unsigned ndisks;
	const char *state_dir;		       /* --state-dir, NULL: the default (vmm/vm_state.h) */
	const char *firmware_file;	       /* --firmware-file, NULL: Debian's SeaBIOS */
	enum vm_boot_device boot[VM_BOOT_MAX]; /* --boot, default: CD-ROM, then disk */
	unsigned nboot;
	/* --allow-backing-path DIRs (storage/core/block_path.h; malloc'ed array of argv strings) */
	const char **allow_paths;
	unsigned nallow_paths;
	bool firmware_efi;		 /* --firmware efi: OVMF (UEFI) instead of SeaBIOS */
	bool boot_given, firmware_given; /* --boot; --firmware or --firmware-file */
	bool balloon_off;		 /* --balloon off: no virtio-balloon device */
	uint64_t balloon_mib;		 /* --balloon MB: the balloon's target at power-on */
	bool pagefusion; /* --pagefusion on: guest RAM is MADV_MERGEABLE for the host's KSM */
	bool no_free_page_reporting; /* --free-page-reporting off: the balloon does not offer it */
	uint64_t memory_min_mib;     /* --memory MIN:MAX: MIN for the automatic balloon; 0: off */
	/* --nic in order (devices/virtio/net/nic_config.h); vmm fills in switch_path */
	struct nic_config nics[NIC_MAX];
	unsigned nnics;
	bool sandbox_off;	 /* --sandbox off, or MINIVMM_SANDBOX=off: no seccomp filters */
	bool cpu_hotplug;	 /* --cpuhotplug: --cpus is the maximum, plugged at run time */
	uint64_t plugged_cpus;	 /* --plugged-cpus mask (bit = APIC ID); 0: CPU 0 alone */
	unsigned cpu_cap;	 /* --cpu-cap percent of a host CPU per vCPU, 100: no cap */
	unsigned cpu_weight;	 /* --cpu-weight 1..10000, 0: not given (the host's default) */
	struct jail_config jail; /* --chroot DIR, --user UID[:GID] (lib/jail.h) */
};

/* Parse argv (argv[0] is the verb).  host_ram_mib bounds --memory.  Returns 0, or -EINVAL with one
 * line recorded with error_set() (no trailing newline). Pure: the kernel file is not opened here.
 */
int vm_config_parse(int argc, char **argv, uint64_t host_ram_mib, struct vm_config *cfg);
/* Frees what vm_config_parse allocated (the disk list); safe on a zeroed or failed config. */
void vm_config_free(struct vm_config *cfg);
/* A VM name is 1..64 of [A-Za-z0-9_.-], not starting with '.' or '-' (it names a socket). */
bool vm_config_name_valid(const char *name);
/* The CPUs present at power-on (bit = APIC ID): all --cpus, or with --cpuhotplug the
 * --plugged-cpus (CPU 0 alone by default). */
static inline uint64_t vm_config_boot_cpus(const struct vm_config *cfg)
{
	if (cfg->cpu_hotplug)
		return cfg->plugged_cpus ? cfg->plugged_cpus : 1;
	return cfg->cpus >= 64 ? ~0ULL : (1ULL << cfg->cpus) - 1;
}

extern const char vm_config_usage[];

#endif
