/* Differencing VHDs: finding the parent, and recording one on create.
 *
 * The parent is named three ways in the dynamic header: parent locators (W2ru: a relative Windows
 * path in UTF-16LE, W2ku: an absolute one, MacX: a file:// URL in UTF-8) and the parent's file name
 * in UTF-16BE. The relative locator is tried first, then the others; backslashes become slashes.
 * Every locator is checked to lie inside the file and to be of sane length before it is read.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/endian.h"
#include "storage/formats/vhd/vhd.h"

#define VHD_LOC_W2RU 0x57327275u /* "W2ru" */
#define VHD_LOC_W2KU 0x57326b75u /* "W2ku" */
#define VHD_LOC_MACX 0x4d616358u /* "MacX" */
#define VHD_LOC_MAX 4096u	 /* bytes of locator data we read */
#define VHD_NAME_MAX 1024u	 /* bytes of a parent name in UTF-8 */

/* UTF-16 (big- or little-endian) to UTF-8; false on an unpaired surrogate or overflow. */
static bool vhd_utf16_to_utf8(const uint8_t *in, size_t units, bool be, char *out, size_t cap)
{
	size_t n = 0;

	for (size_t i = 0; i < units; i++) {
		uint32_t c = be ? (uint32_t)(in[2 * i] << 8 | in[2 * i + 1])
				: (uint32_t)(in[2 * i + 1] << 8 | in[2 * i]);
		if (c == 0)
			break;
		if (c >= 0xd800 && c < 0xdc00 && i + 1 < units) {
			uint32_t d = be ? (uint32_t)(in[2 * i + 2] << 8 | in[2 * i + 3])
					: (uint32_t)(in[2 * i + 3] << 8 | in[2 * i + 2]);
			if (d < 0xdc00 || d >= 0xe000)
				return false;
			c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
			i++;
		} else if (c >= 0xd800 && c < 0xe000) {
			return false;
		}
		if (n + 5 > cap)
			return false;
		if (c < 0x80) {
			out[n++] = (char)c;
		} else if (c < 0x800) {
			out[n++] = (char)(0xc0 | c >> 6);
			out[n++] = (char)(0x80 | (c & 0x3f));
		} else if (c < 0x10000) {
			out[n++] = (char)(0xe0 | c >> 12);
			out[n++] = (char)(0x80 | (c >> 6 & 0x3f));
			out[n++] = (char)(0x80 | (c & 0x3f));
		} else {
			out[n++] = (char)(0xf0 | c >> 18);
			out[n++] = (char)(0x80 | (c >> 12 & 0x3f));
			out[n++] = (char)(0x80 | (c >> 6 & 0x3f));
			out[n++] = (char)(0x80 | (c & 0x3f));
		}
	}
	out[n] = 0;
	return n > 0;
}

/* UTF-8 to UTF-16 (BMP and surrogate pairs); returns code units, -1 on bad input or overflow. */
static int vhd_utf8_to_utf16(const char *in, bool be, uint8_t *out, size_t cap_units)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)in; *p;) {
		uint32_t c;
		int len = *p < 0x80	    ? 1
			  : (*p >> 5) == 6  ? 2
			  : (*p >> 4) == 14 ? 3
			  : (*p >> 3) == 30 ? 4
					    : 0;
		if (!len)
			return -1;
		c = len == 1 ? *p : *p & (0x7f >> len);
		for (int k = 1; k < len; k++) {
			if ((p[k] & 0xc0) != 0x80)
				return -1;
			c = c << 6 | (p[k] & 0x3f);
		}
		p += len;
		uint16_t u[2];
		int m = 1;
		if (c >= 0x10000) {
			c -= 0x10000;
			u[0] = (uint16_t)(0xd800 + (c >> 10));
			u[1] = (uint16_t)(0xdc00 + (c & 0x3ff));
			m = 2;
		} else {
			u[0] = (uint16_t)c;
		}
		for (int k = 0; k < m; k++) {
			if (n >= cap_units)
				return -1;
			out[2 * n + (be ? 0 : 1)] = (uint8_t)(u[k] >> 8);
			out[2 * n + (be ? 1 : 0)] = (uint8_t)u[k];
			n++;
		}
	}
	return (int)n;
}

static void vhd_unwindows(char *name)
{
	for (char *p = name; *p; p++)
		if (*p == '\\')
			*p = '/';
	if (name[0] == '.' && name[1] == '/')
		memmove(name, name + 2, strlen(name + 2) + 1);
}

/* One locator's name into out; 0 when it gave one. */
static int vhd_locator(struct block_device *bs, const uint8_t *loc, uint64_t fsize, char *out)
{
	uint32_t code = get_be32(loc), len = get_be32(loc + 8);
	uint64_t off = get_be64(loc + 16);
	uint8_t buf[VHD_LOC_MAX];

	if (code != VHD_LOC_W2RU && code != VHD_LOC_W2KU && code != VHD_LOC_MACX)
		return -ENOENT;
	if (len == 0 || len > VHD_LOC_MAX || off > fsize || len > fsize - off)
		return error_set(-EINVAL, "%s: parent locator of %u bytes at offset %llu invalid",
				 bs->filename, len, (unsigned long long)off);
	int ret = host_file_pread(&bs->file, off, buf, len);
	if (ret < 0)
		return error_set(ret, "%s: cannot read a parent locator: %s", bs->filename,
				 strerror(-ret));
	if (code == VHD_LOC_MACX) {
		if (len < 8 || memcmp(buf, "file://", 7) || len - 7 >= VHD_NAME_MAX)
			return -ENOENT;
		memcpy(out, buf + 7, len - 7);
		out[len - 7] = 0;
		return out[0] ? 0 : -ENOENT;
	}
	if (!vhd_utf16_to_utf8(buf, len / 2, false, out, VHD_NAME_MAX))
		return -ENOENT;
	vhd_unwindows(out);
	return 0;
}

int vhd_parent_open(struct block_device *bs, const uint8_t *hdr, uint64_t fsize)
{
	char name[VHD_NAME_MAX + 8];
	static const uint32_t order[] = {VHD_LOC_W2RU, VHD_LOC_W2KU, VHD_LOC_MACX};
	int ret = -ENOENT;

	for (int o = 0; o < 3 && ret == -ENOENT; o++) {
		for (int i = 0; i < 8 && ret == -ENOENT; i++) {
			const uint8_t *loc = hdr + VHD_D_LOCATORS + 24 * i;
			if (get_be32(loc) == order[o])
				ret = vhd_locator(bs, loc, fsize, name);
		}
	}
	if (ret == -ENOENT) {
		if (vhd_utf16_to_utf8(hdr + VHD_D_PARENT_NAME, 256, true, name, VHD_NAME_MAX))
			ret = 0;
		else
			return error_set(-EINVAL, "%s: differencing image names no parent",
					 bs->filename);
	}
	if (ret < 0)
		return ret;
	bs->backing_name = strdup(name);
	bs->backing_fmt = strdup("vpc");
	if (!bs->backing_name || !bs->backing_fmt)
		return error_set(-ENOMEM, "%s: out of memory", bs->filename);
	return 0;
}

/* Fill the parent fields of a new differencing image's header: UUID, time stamp, name and one
 * W2ru locator whose data goes at loc_off (VHD_SECTOR bytes reserved there). */
int vhd_parent_fill(const char *filename, uint8_t *hdr, const char *backing, uint64_t loc_off,
		    uint8_t *loc_data)
{
	struct block_device *p;
	char *path;
	int ret;

	const char *slash = strrchr(filename, '/');
	size_t dirlen = slash && backing[0] != '/' ? (size_t)(slash - filename) + 1 : 0;
	path = malloc(dirlen + strlen(backing) + 1);
	if (!path)
		return error_set(-ENOMEM, "%s: out of memory", filename);
	memcpy(path, filename, dirlen);
	strcpy(path + dirlen, backing);
	ret = block_open(path, "vpc", BLOCK_OPEN_NO_BACKING, &p);
	free(path);
	if (ret < 0)
		return ret;
	struct vhd_state *ps = p->state;
	memcpy(hdr + VHD_D_PARENT_UUID, ps->footer + VHD_F_UUID, 16);
	memcpy(hdr + VHD_D_PARENT_TIME, ps->footer + VHD_F_TIMESTAMP, 4);
	block_close(p);

	const char *base = strrchr(backing, '/') ? strrchr(backing, '/') + 1 : backing;
	if (vhd_utf8_to_utf16(base, true, hdr + VHD_D_PARENT_NAME, 256) < 0)
		return error_set(-EINVAL, "%s: parent name '%s' too long or not UTF-8", filename,
				 backing);
	char rel[VHD_NAME_MAX];
	if (strlen(backing) + 3 > sizeof(rel))
		return error_set(-EINVAL, "%s: parent name too long", filename);
	snprintf(rel, sizeof(rel), "%s%s", backing[0] == '/' ? "" : ".\\", backing);
	for (char *c = rel; *c; c++)
		if (*c == '/')
			*c = '\\';
	memset(loc_data, 0, VHD_SECTOR);
	int units = vhd_utf8_to_utf16(rel, false, loc_data, VHD_SECTOR / 2);
	if (units < 0)
		return error_set(-EINVAL, "%s: parent name '%s' too long for a locator", filename,
				 backing);
	uint8_t *loc = hdr + VHD_D_LOCATORS;
	put_be32(loc, backing[0] == '/' ? VHD_LOC_W2KU : VHD_LOC_W2RU);
	put_be32(loc + 4, VHD_SECTOR); /* data space, in bytes as Hyper-V writes it */
	put_be32(loc + 8, (uint32_t)units * 2);
	put_be64(loc + 16, loc_off);
	return 0;
}
