/* UUIDs in VDI headers: VirtualBox writes its RTUUID structure as it sits in memory on x86, so the
 * first three fields (time_low, time_mid, time_hi_and_version) are little-endian on disk. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "storage/formats/vdi/vdi.h"
#include "lib/uuid.h"

/* Reverses the byte order of the three leading fields; the mapping is its own inverse. */
static void vdi_uuid_swap(uint8_t out[16], const uint8_t in[16])
{
	static const uint8_t order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};

	for (int i = 0; i < 16; i++)
		out[i] = in[order[i]];
}

void vdi_uuid_from_disk(uint8_t out[16], const uint8_t *disk)
{
	vdi_uuid_swap(out, disk);
}

void vdi_uuid_to_disk(uint8_t *disk, const uint8_t uuid[16])
{
	uint8_t tmp[16];

	vdi_uuid_swap(tmp, uuid);
	memcpy(disk, tmp, 16);
}

int vdi_uuid_generate(uint8_t *disk)
{
	uint8_t u[16];
	int ret = uuid_random_v4(u);

	if (ret < 0)
		return ret;
	vdi_uuid_to_disk(disk, u);
	return 0;
}

bool vdi_uuid_is_null(const uint8_t *disk)
{
	for (int i = 0; i < 16; i++)
		if (disk[i])
			return false;
	return true;
}

void vdi_uuid_format(char out[37], const uint8_t *disk)
{
	uint8_t u[16];

	vdi_uuid_from_disk(u, disk);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
		 u[13], u[14], u[15]);
}
