/* minivmm's own ACPI tables (devices/acpi.h) packaged for firmware the way QEMU hands them over
 * fw_cfg: the files "etc/acpi/tables" and "etc/acpi/rsdp", and "etc/table-loader", a script of
 * 128-byte commands the firmware runs (SeaBIOS src/fw/romfile_loader.c, OVMF's AcpiPlatformDxe):
 *
 *   ALLOCATE      copy a file into guest memory (tables: high, 64-byte aligned for the FACS;
 *                 the RSDP: the F segment, where the OS's scan finds it);
 *   ADD_POINTER   add the address where a file landed to a 1/2/4/8-byte field of another;
 *   ADD_CHECKSUM  fix a table's checksum byte once its pointers are patched.
 *
 * Pointer fields in the files hold offsets into "etc/acpi/tables", so after the script runs the
 * guest sees exactly the tables direct boot would have placed at the same addresses.
 */
#ifndef MINIVMM_DEVICES_ACPI_LOADER_H
#define MINIVMM_DEVICES_ACPI_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "devices/acpi.h"

#define ACPI_LOADER_FILE_TABLES "etc/acpi/tables"
#define ACPI_LOADER_FILE_RSDP "etc/acpi/rsdp"
#define ACPI_LOADER_FILE_SCRIPT "etc/table-loader"

/* The command format (little-endian). */
#define ACPI_LOADER_ENTRY_LEN 128
#define ACPI_LOADER_NAME_LEN 56
#define ACPI_LOADER_ALLOCATE 1
#define ACPI_LOADER_ADD_POINTER 2
#define ACPI_LOADER_ADD_CHECKSUM 3
#define ACPI_LOADER_ZONE_HIGH 1
#define ACPI_LOADER_ZONE_FSEG 2
/* Offsets inside an entry, after the 4-byte command. */
#define ACPI_LOADER_ALLOC_ALIGN 60 /* u32, after file[56] */
#define ACPI_LOADER_ALLOC_ZONE 64  /* u8 */
#define ACPI_LOADER_PTR_SRC 60	   /* src_file[56], after dest_file[56] */
#define ACPI_LOADER_PTR_OFFSET 116 /* u32 */
#define ACPI_LOADER_PTR_SIZE 120   /* u8 */
#define ACPI_LOADER_CKSUM_OFFSET 60
#define ACPI_LOADER_CKSUM_START 64
#define ACPI_LOADER_CKSUM_LENGTH 68

struct acpi_loader_files {
	uint8_t *tables, *rsdp, *script;
	size_t tables_len, rsdp_len, script_len;
};

/* Build the three files for `cfg`. Returns 0, -EINVAL (bad config), -ENOSPC or -ENOMEM. */
int acpi_loader_build(const struct acpi_config *cfg, struct acpi_loader_files *out);
void acpi_loader_free(struct acpi_loader_files *f);

#endif
