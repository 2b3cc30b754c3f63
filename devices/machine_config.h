/* The machine the devices are part of, as the command line chose it: filled in by vmm/ (from
 * vmm/vm_config.h) and handed to every device through its env, so that devices/ includes nothing
 * from vmm/. Pointers stay valid for the VM's life. */
#ifndef MINIVMM_DEVICES_MACHINE_CONFIG_H
#define MINIVMM_DEVICES_MACHINE_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

struct disk_config;
struct nic_config;

struct machine_config {
	const char *name;   /* the VM's name: NIC switch ports and default MACs derive from it */
	unsigned cpus;	    /* --cpus: the vCPUs there can be */
	uint64_t boot_cpus; /* present at power-on (bit = APIC ID) */
	bool kernel_boot;   /* --kernel: no firmware runs (no fw_cfg, no debugcon) */
	bool firmware_efi;  /* OVMF (UEFI) instead of SeaBIOS */
	const struct disk_config *disks; /* --disk and --cdrom in order (devices/disk.h) */
	unsigned ndisks;
	const struct nic_config *nics; /* --nic in order (devices/virtio/net/nic_config.h) */
	unsigned nnics;
	uint64_t memory_mib;	     /* --memory (MAX with MIN:MAX) */
	uint64_t memory_min_mib;     /* --memory MIN:MAX: MIN for the automatic balloon; 0: off */
	bool balloon_off;	     /* --balloon off: no virtio-balloon device */
	uint64_t balloon_mib;	     /* --balloon MB: the balloon's target at power-on */
	bool pagefusion;	     /* --pagefusion on: report merged pages in stats */
	bool no_free_page_reporting; /* --free-page-reporting off */
};

#endif
