/* The AHCI index/data pair (AHCI 1.3.1 2.4 and 3.1, "IDP"): the ABAR registers reached through
 * two I/O ports, for software that cannot map memory (real-mode option ROMs). ICH9 puts it in
 * BAR4 (32 bytes, the legacy bus-master block): offset 10h is the index (an ABAR offset, dword
 * aligned, masked to the ABAR's size), 14h the data window onto that register; the PCI SATA
 * capability (ID 12h) says where it is. Everything else in the BAR reads 0 and ignores writes.
 */
#include <string.h>

#include "devices/ahci_internal.h"

#define IDP_INDEX 0x10
#define IDP_DATA 0x14
#define PCI_CAP_ID_SATA 0x12
#define SATA_CAP_LEN 8
#define SATACR0_REV_1_0 0x0010	/* major 1, minor 0 */
#define SATACR1_BARLOC_BAR4 0x8 /* config offset 20h */

int ahci_idp_init(struct pci_device *d)
{
	int off = pci_add_capability(d, PCI_CAP_ID_SATA, SATA_CAP_LEN);
	if (off < 0)
		return off;
	uint32_t cr1 = SATACR1_BARLOC_BAR4 | (IDP_INDEX / 4) << 4; /* BAROFST in dwords */
	d->cfg[off + 2] = SATACR0_REV_1_0 & 0xFF;
	d->cfg[off + 3] = SATACR0_REV_1_0 >> 8;
	for (int i = 0; i < 4; i++)
		d->cfg[off + 4 + i] = (uint8_t)(cr1 >> (8 * i));
	return 0;
}

void ahci_idp_access(struct ahci *hba, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	if (!is_write)
		memset(data, 0, len);
	if (len > 4 || offset >= AHCI_IDP_SIZE || len > AHCI_IDP_SIZE - offset)
		return;
	if (offset >= IDP_INDEX && offset + len <= IDP_INDEX + 4) {
		unsigned shift = (unsigned)(offset - IDP_INDEX) * 8;
		for (unsigned i = 0; i < len; i++) {
			unsigned sh = shift + 8 * i;
			if (is_write)
				hba->idp_index =
				    (hba->idp_index & ~(0xFFu << sh)) | (uint32_t)data[i] << sh;
			else
				data[i] = (uint8_t)(hba->idp_index >> sh);
		}
		/* Only dword offsets inside the ABAR can be named. */
		hba->idp_index &= (AHCI_ABAR_SIZE - 1) & ~3u;
	} else if (offset >= IDP_DATA && offset + len <= IDP_DATA + 4) {
		ahci_abar_access(hba, hba->idp_index + (offset - IDP_DATA), data, len, is_write);
	}
	/* An access straddling both registers, or elsewhere in the BAR: ignored. */
}
