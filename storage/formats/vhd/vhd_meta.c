/* VHD metadata helpers: checksums, the CHS geometry, footers. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "lib/endian.h"
#include "storage/formats/vhd/vhd.h"

/* One's complement of the byte sum, the 4-byte checksum field at skip_off counted as zero. */
uint32_t vhd_checksum(const uint8_t *buf, size_t len, size_t skip_off)
{
	uint32_t sum = 0;

	for (size_t i = 0; i < len; i++)
		if (i < skip_off || i >= skip_off + 4)
			sum += buf[i];
	return ~sum;
}

void vhd_geometry(uint64_t sectors, uint16_t *cyls, uint8_t *heads, uint8_t *secs)
{
	uint64_t cth;
	unsigned h, s;

	if (sectors > VHD_MAX_GEOMETRY)
		sectors = VHD_MAX_GEOMETRY;
	if (sectors >= 65535ull * 16 * 63) {
		s = 255;
		h = 16;
		cth = sectors / s;
	} else {
		s = 17;
		cth = sectors / s;
		h = (unsigned)((cth + 1023) / 1024);
		if (h < 4)
			h = 4;
		if (cth >= h * 1024ull || h > 16) {
			s = 31;
			h = 16;
			cth = sectors / s;
		}
		if (cth >= h * 1024ull) {
			s = 63;
			h = 16;
			cth = sectors / s;
		}
	}
	*cyls = (uint16_t)(cth / h);
	*heads = (uint8_t)h;
	*secs = (uint8_t)s;
}

void vhd_footer_set_checksum(uint8_t *f)
{
	put_be32(f + VHD_F_CHECKSUM, vhd_checksum(f, VHD_FOOTER_SIZE, VHD_F_CHECKSUM));
}

void vhd_footer_fill(uint8_t *f, uint32_t type, uint64_t size, uint64_t data_offset,
		     const uint8_t uuid[16], const char creator[4])
{
	uint16_t cyls;
	uint8_t heads, secs;
	time_t now = time(NULL);

	memset(f, 0, VHD_FOOTER_SIZE);
	memcpy(f + VHD_F_COOKIE, VHD_COOKIE, 8);
	put_be32(f + VHD_F_FEATURES, 2); /* "reserved", always set */
	put_be32(f + VHD_F_VERSION, 0x00010000);
	put_be64(f + VHD_F_DATA_OFFSET, data_offset);
	put_be32(f + VHD_F_TIMESTAMP, now > VHD_EPOCH ? (uint32_t)(now - VHD_EPOCH) : 0);
	memcpy(f + VHD_F_CREATOR_APP, creator, 4);
	put_be32(f + VHD_F_CREATOR_VER, 0x00010000);
	memcpy(f + VHD_F_CREATOR_OS, "Lnux", 4);
	put_be64(f + VHD_F_ORIG_SIZE, size);
	put_be64(f + VHD_F_CUR_SIZE, size);
	vhd_geometry(size / VHD_SECTOR, &cyls, &heads, &secs);
	put_be16(f + VHD_F_CYLS, cyls);
	f[VHD_F_HEADS] = heads;
	f[VHD_F_SECS] = secs;
	put_be32(f + VHD_F_TYPE, type);
	memcpy(f + VHD_F_UUID, uuid, 16);
	vhd_footer_set_checksum(f);
}
