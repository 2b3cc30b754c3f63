/* SMBIOS 2.8 tables describing minivmm's machine, handed to firmware as QEMU does
 * ("etc/smbios/smbios-tables" and "etc/smbios/smbios-anchor" over fw_cfg; SeaBIOS copies them to
 * the F segment and patches the anchor's table address and checksums).
 *
 * Structures: BIOS (type 0), system with the VM's UUID (1), chassis (3), one processor per
 * possible vCPU (4, present ones enabled), the memory array (16), one memory device (17), one
 * mapped-address range per RAM block (19), boot status (32) and the end (127).  Pure and
 * unit-tested.
 */
#ifndef MINIVMM_DEVICES_SMBIOS_H
#define MINIVMM_DEVICES_SMBIOS_H

#include <stddef.h>
#include <stdint.h>

#define SMBIOS_ANCHOR_LEN 31 /* the 2.1-style 32-bit entry point ("_SM_" ... "_DMI_") */

struct smbios_config {
	unsigned ncpus, ncpus_possible;
	uint64_t low_ram, high_ram; /* bytes at 0 and at 4 GiB */
	uint8_t uuid[16];	    /* the VM's UUID, in RFC 4122 (big-endian) byte order */
	const char *version;	    /* minivmm's version, for types 0 and 1 */
};

/* Build the structure table (malloc'ed into *tables) and the entry point (its table address 0,
 * for the firmware to fill).  -EINVAL for a bad config, -ENOMEM. */
int smbios_build(const struct smbios_config *c, uint8_t **tables, size_t *len,
		 uint8_t anchor[SMBIOS_ANCHOR_LEN]);

#endif
