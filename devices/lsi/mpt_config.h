/* The configuration page tables (mpt_config.c, mpt_config_sas.c). */
#ifndef MINIVMM_DEVICES_LSI_MPT_CONFIG_H
#define MINIVMM_DEVICES_LSI_MPT_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

struct mpt;

#define MPT_PAGE_MAX 512 /* bytes of the largest page */

/* One page type: build page `number` for `address` into b (zeroed, MPT_PAGE_MAX bytes); returns
 * its length in bytes (a multiple of 4), or -1 when no such page exists. */
struct mpt_page_type {
	uint8_t type; /* MPI_PAGETYPE_* or, extended, MPI_EXTPAGETYPE_* */
	int (*build)(const struct mpt *m, unsigned number, uint32_t address, uint8_t *b);
	bool standard; /* a standard type (4-byte header), else extended (8-byte header) */
};

/* The SAS1068's extended page types (NULL for other types or the 53C1030). */
const struct mpt_page_type *mpt_sas_page_type(const struct mpt *m, uint8_t type);
/* The SAS address of the controller (n 0) or of target n-1: locally assigned, unique per slot. */
uint64_t mpt_sas_address(const struct mpt *m, unsigned n);

#endif
