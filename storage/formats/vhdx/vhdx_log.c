/* The VHDX log: replay on open, and minivmm's own metadata writes through it.
 *
 * Replay ([MS-VHDX] 2.3.3): every 4 KiB position of the circular log is tried as an entry ("loge",
 * the header's log GUID, CRC-32C over the whole entry, descriptors and data sectors carrying the
 * entry's sequence number). The entry with the highest sequence number whose chain back to its
 * `tail` holds consecutive sequence numbers is the head of the active sequence; its entries are
 * applied in order, the file is grown to the head's last file offset, and the log GUID cleared.
 * A read-only open cannot do this and refuses the image with a message saying so.
 *
 * A hostile log must not fill the host disk: every entry of the active sequence must end within
 * what the image can legitimately occupy (vhdx_log_limit), else the replay is refused before
 * anything is written. Zeroing punches holes inside the file and grows it sparsely (ftruncate)
 * past its end, so a replay never allocates blocks for zeroes.
 *
 * Writing: a session sets a fresh log GUID once; each metadata sector change is one entry at the
 * start of the log (written and flushed), then the sector in place (flushed), then the entry is
 * invalidated. A crash at any point leaves either the old sector, or an entry that replays to the
 * new one; replaying an entry twice is harmless. Close clears the log GUID.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/endian.h"
#include "storage/formats/vhdx/vhdx.h"

#define VHDX_LOG_HDR 64u
#define VHDX_DESC 32u
#define VHDX_TARGET_MAX (1ull << 48) /* replay never writes beyond 256 TiB */

struct vhdx_log_entry {
	uint64_t pos, len, seq, tail;
};

static int vhdx_log_read(struct block_device *bs, struct vhdx_state *s, uint64_t pos, uint8_t *buf,
			 uint64_t len)
{
	while (len) {
		pos %= s->log_length;
		uint64_t n = s->log_length - pos < len ? s->log_length - pos : len;
		int ret = host_file_pread(&bs->file, s->log_offset + pos, buf, n);
		if (ret < 0)
			return error_set(ret, "%s: cannot read the VHDX log: %s", bs->filename,
					 strerror(-ret));
		buf += n;
		pos += n;
		len -= n;
	}
	return 0;
}

static uint64_t vhdx_desc_area(uint32_t count)
{
	return ((uint64_t)VHDX_LOG_HDR + (uint64_t)VHDX_DESC * count + VHDX_LOG_SECTOR - 1) /
	       VHDX_LOG_SECTOR * VHDX_LOG_SECTOR;
}

/* Is the fully read entry `e` (len bytes) consistent? Its descriptors and data sectors. */
static bool vhdx_log_entry_ok(struct vhdx_state *s, const uint8_t *e, uint64_t len)
{
	uint32_t count = get_le32(e + 24);
	uint64_t seq = get_le64(e + 16), data = vhdx_desc_area(count), ndata = 0;
	uint64_t last = get_le64(e + 56); /* the file's size with the entry applied */

	if (get_le32(e + 4) != vhdx_checksum(e, len, 4) || last > VHDX_TARGET_MAX)
		return false;
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *d = e + VHDX_LOG_HDR + VHDX_DESC * i;
		uint64_t off = get_le64(d + 16), zlen = get_le64(d + 8);
		if (get_le64(d + 24) != seq || off % VHDX_LOG_SECTOR || off < VHDX_MIB ||
		    off > last)
			return false;
		if (!memcmp(d, "zero", 4)) {
			if (zlen % VHDX_LOG_SECTOR || zlen > last - off)
				return false;
		} else if (!memcmp(d, "desc", 4)) {
			zlen = VHDX_LOG_SECTOR;
			if (zlen > last - off || data + (ndata + 1) * VHDX_LOG_SECTOR > len)
				return false;
			const uint8_t *sec = e + data + ndata * VHDX_LOG_SECTOR;
			if (memcmp(sec, "data", 4) || get_le32(sec + 4) != (uint32_t)(seq >> 32) ||
			    get_le32(sec + 4092) != (uint32_t)seq)
				return false;
			ndata++;
		} else {
			return false;
		}
		/* The log never rewrites itself. */
		if (off < s->log_offset + s->log_length && s->log_offset < off + zlen)
			return false;
	}
	return data + ndata * VHDX_LOG_SECTOR == len;
}

/* Load the entry at pos into *buf (malloc'ed) when it is valid: 1 valid, 0 not, <0 error. */
static int vhdx_log_entry_load(struct block_device *bs, struct vhdx_state *s, uint64_t pos,
			       uint8_t **buf, struct vhdx_log_entry *out, uint64_t *budget)
{
	uint8_t h[VHDX_LOG_HDR];
	int ret = vhdx_log_read(bs, s, pos, h, sizeof(h));

	*buf = NULL;
	if (ret < 0)
		return ret;
	uint64_t len = get_le32(h + 8), tail = get_le32(h + 12);
	uint32_t count = get_le32(h + 24);
	if (memcmp(h, "loge", 4) || len == 0 || len % VHDX_LOG_SECTOR || len > s->log_length ||
	    tail % VHDX_LOG_SECTOR || tail >= s->log_length || get_le64(h + 16) == 0 ||
	    memcmp(h + 32, s->header + VHDX_H_LOG_GUID, 16) || vhdx_desc_area(count) > len)
		return 0;
	/* A hostile log could make every position claim a huge entry: bound the work. */
	if (len > *budget)
		return error_set(-EINVAL, "%s: VHDX log too damaged to replay", bs->filename);
	*budget -= len;
	uint8_t *e = malloc(len);
	if (!e)
		return error_set(-ENOMEM, "%s: out of memory", bs->filename);
	ret = vhdx_log_read(bs, s, pos, e, len);
	if (ret < 0 || !vhdx_log_entry_ok(s, e, len)) {
		free(e);
		return ret < 0 ? ret : 0;
	}
	*buf = e;
	*out = (struct vhdx_log_entry){pos, len, get_le64(h + 16), tail};
	return 1;
}

/* Zero [off, off + len) without allocating: holes inside the file, a sparse extension past it. */
static int vhdx_log_zero(struct block_device *bs, uint64_t off, uint64_t len)
{
	uint64_t size;
	int ret = host_file_size(&bs->file, &size);

	if (ret < 0 || len == 0)
		return ret;
	if (off < size) {
		ret = host_file_punch_hole(&bs->file, off, len < size - off ? len : size - off);
		if (ret < 0)
			return ret;
	}
	return off + len > size ? host_file_truncate(&bs->file, off + len) : 0;
}

static int vhdx_log_apply(struct block_device *bs, const uint8_t *e)
{
	uint32_t count = get_le32(e + 24);
	uint64_t data = vhdx_desc_area(count);
	uint8_t sector[VHDX_LOG_SECTOR];
	int ret = 0;

	for (uint32_t i = 0; i < count && ret == 0; i++) {
		const uint8_t *d = e + VHDX_LOG_HDR + VHDX_DESC * i;
		uint64_t off = get_le64(d + 16);
		if (!memcmp(d, "zero", 4)) {
			ret = vhdx_log_zero(bs, off, get_le64(d + 8));
			continue;
		}
		memcpy(sector, d + 8, 8); /* leading bytes */
		memcpy(sector + 8, e + data + 8, VHDX_LOG_SECTOR - 12);
		memcpy(sector + VHDX_LOG_SECTOR - 4, d + 4, 4); /* trailing bytes */
		ret = host_file_pwrite(&bs->file, off, sector, sizeof(sector));
		data += VHDX_LOG_SECTOR;
	}
	return ret < 0 ? error_set(ret, "%s: VHDX log replay write failed: %s", bs->filename,
				   strerror(-ret))
		       : 0;
}

/* Find the active sequence in `ents` (n valid entries) and apply it, unless one of its entries
 * reaches past `limit` (checked whole before anything is written). 1 when replayed. */
static int vhdx_log_apply_active(struct block_device *bs, struct vhdx_state *s,
				 struct vhdx_log_entry *ents, uint8_t **bufs, size_t n,
				 size_t *chain, uint64_t limit, uint64_t *last_file_offset)
{
	for (size_t tries = 0; tries < n; tries++) {
		size_t head = n;
		for (size_t i = 0; i < n; i++)
			if (ents[i].seq && (head == n || ents[i].seq > ents[head].seq))
				head = i;
		if (head == n)
			break;
		/* Walk from the tail to the head: consecutive sequence numbers, adjacent. */
		size_t len = 0, cur = n;
		for (size_t i = 0; i < n; i++)
			if (ents[i].pos == ents[head].tail)
				cur = i;
		while (cur != n && len < n) {
			chain[len++] = cur;
			if (cur == head)
				break;
			uint64_t next = (ents[cur].pos + ents[cur].len) % s->log_length;
			size_t nx = n;
			for (size_t i = 0; i < n; i++)
				if (ents[i].pos == next && ents[i].seq == ents[cur].seq + 1)
					nx = i;
			cur = nx;
		}
		if (cur != head) {
			ents[head].seq = 0; /* not a valid head: try the next one */
			continue;
		}
		/* Every descriptor ends within its entry's last file offset (vhdx_log_entry_ok). */
		for (size_t i = 0; i < len; i++) {
			uint64_t end = get_le64(bufs[chain[i]] + 56);
			if (end > limit)
				return error_set(
				    -EINVAL,
				    "%s: VHDX log entry %llu reaches offset %llu, beyond "
				    "the %llu bytes this image can occupy; refusing to "
				    "replay it",
				    bs->filename, (unsigned long long)ents[chain[i]].seq,
				    (unsigned long long)end, (unsigned long long)limit);
		}
		for (size_t i = 0; i < len; i++) {
			int ret = vhdx_log_apply(bs, bufs[chain[i]]);
			if (ret < 0)
				return ret;
		}
		*last_file_offset = get_le64(bufs[head] + 56);
		return 1;
	}
	return 0;
}

/* The largest file the image can legitimately need ([MS-VHDX] 2.2.3, 2.5): the header section,
 * the log and the regions, plus one block per BAT entry the BAT region has room for (payload and
 * sector bitmap blocks each have an entry; bitmap blocks, 1 MiB, are never larger than a payload
 * block). The region table cannot change during replay (descriptors below 1 MiB are refused, and
 * it must lie inside the file already) and
 * the block size is fixed for the life of a file; when the metadata cannot be read before replay,
 * the largest block size is assumed. Never less than the file already is. */
static int vhdx_log_limit(struct block_device *bs, struct vhdx_state *s, uint64_t fsize,
			  uint64_t *limit)
{
	int ret = vhdx_regions_read(bs, s, fsize);

	if (ret < 0)
		return ret;
	uint64_t block = vhdx_metadata_read(bs, s) == 0 ? s->block_size : VHDX_BLOCK_MAX;
	uint64_t end = s->log_offset + s->log_length;
	if (s->bat_offset + s->bat_length > end)
		end = s->bat_offset + s->bat_length;
	if (s->meta_offset + s->meta_length > end)
		end = s->meta_offset + s->meta_length;
	end = (end + VHDX_MIB - 1) / VHDX_MIB * VHDX_MIB;
	/* Everything so far lies inside the file, bat_length < 4 GiB, block <= 256 MiB: no
	 * overflow. */
	end += s->bat_length / 8 * block;
	*limit = end > fsize ? end : fsize;
	return 0;
}

int vhdx_log_replay(struct block_device *bs, struct vhdx_state *s, uint64_t fsize)
{
	size_t max = s->log_length / VHDX_LOG_SECTOR, n = 0;
	struct vhdx_log_entry *ents = calloc(max, sizeof(*ents));
	uint8_t **bufs = calloc(max, sizeof(*bufs));
	size_t *chain = calloc(max, sizeof(*chain));
	uint64_t budget = 4 * s->log_length, last = 0;
	int ret = 0;

	if (vhdx_guid_is_zero(s->header + VHDX_H_LOG_GUID))
		goto out; /* the log is empty */
	if (!ents || !bufs || !chain) {
		ret = error_set(-ENOMEM, "%s: out of memory", bs->filename);
		goto out;
	}
	for (uint64_t pos = 0; pos < s->log_length; pos += VHDX_LOG_SECTOR) {
		ret = vhdx_log_entry_load(bs, s, pos, &bufs[n], &ents[n], &budget);
		if (ret < 0)
			goto out;
		if (ret == 1) {
			if (ents[n].seq > s->log_seq)
				s->log_seq = ents[n].seq;
			n++;
		}
	}
	ret = 0;
	if (n == 0 && !(bs->flags & BLOCK_OPEN_RDWR))
		goto out; /* nothing to replay: a read-only open leaves the GUID alone */
	if (!(bs->flags & BLOCK_OPEN_RDWR)) {
		ret = error_set(-EPERM,
				"%s: the VHDX log must be replayed, which needs a read-write "
				"open (e.g. 'img check -r all')",
				bs->filename);
		goto out;
	}
	uint64_t limit = 0;
	ret = n ? vhdx_log_limit(bs, s, fsize, &limit) : 0;
	if (ret == 0 && n)
		ret = vhdx_log_apply_active(bs, s, ents, bufs, n, chain, limit, &last);
	if (ret == 1) {
		ret = 0;
		if (last > fsize)
			ret = host_file_truncate(&bs->file, last);
		if (ret == 0)
			ret = host_file_flush(&bs->file);
		if (ret < 0)
			ret = error_set(ret, "%s: VHDX log replay failed: %s", bs->filename,
					strerror(-ret));
	}
	if (ret == 0) {
		memset(s->header + VHDX_H_LOG_GUID, 0, 16);
		ret = vhdx_header_update(bs, s);
	}
out:
	for (size_t i = 0; i < n; i++)
		free(bufs[i]);
	free(bufs);
	free(ents);
	free(chain);
	return ret;
}

int vhdx_session_begin(struct block_device *bs, struct vhdx_state *s)
{
	if (vhdx_guid_random(s->header + VHDX_H_FILE_GUID) ||
	    vhdx_guid_random(s->header + VHDX_H_DATA_GUID) ||
	    vhdx_guid_random(s->header + VHDX_H_LOG_GUID))
		return error_set(-EIO, "%s: no random bytes for the VHDX GUIDs", bs->filename);
	int ret = vhdx_header_update(bs, s);
	if (ret == 0)
		__atomic_store_n(&s->session_open, true, __ATOMIC_RELEASE);
	return ret;
}

void vhdx_log_entry_build(uint8_t e[VHDX_LOG_ENTRY_SIZE], const uint8_t log_guid[16], uint64_t seq,
			  uint64_t file_size, uint64_t file_offset,
			  const uint8_t data[VHDX_LOG_SECTOR])
{
	memset(e, 0, VHDX_LOG_ENTRY_SIZE);
	memcpy(e, "loge", 4);
	put_le32(e + 8, VHDX_LOG_ENTRY_SIZE);
	put_le32(e + 12, 0); /* tail: this entry is the whole sequence */
	put_le64(e + 16, seq);
	put_le32(e + 24, 1);
	memcpy(e + 32, log_guid, 16);
	put_le64(e + 48, file_size);
	put_le64(e + 56, file_size);
	uint8_t *d = e + VHDX_LOG_HDR;
	memcpy(d, "desc", 4);
	memcpy(d + 4, data + VHDX_LOG_SECTOR - 4, 4);
	memcpy(d + 8, data, 8);
	put_le64(d + 16, file_offset);
	put_le64(d + 24, seq);
	uint8_t *sec = e + VHDX_LOG_SECTOR;
	memcpy(sec, "data", 4);
	put_le32(sec + 4, (uint32_t)(seq >> 32));
	memcpy(sec + 8, data + 8, VHDX_LOG_SECTOR - 12);
	put_le32(sec + 4092, (uint32_t)seq);
	put_le32(e + 4, vhdx_crc32c(e, VHDX_LOG_ENTRY_SIZE));
}

int vhdx_log_write_sector(struct block_device *bs, struct vhdx_state *s, uint64_t file_offset,
			  const uint8_t data[VHDX_LOG_SECTOR])
{
	uint8_t e[VHDX_LOG_ENTRY_SIZE];
	uint64_t fsize;
	int ret = host_file_size(&bs->file, &fsize);

	if (ret < 0)
		return error_set(ret, "%s: cannot get size: %s", bs->filename, strerror(-ret));
	vhdx_log_entry_build(e, s->header + VHDX_H_LOG_GUID, ++s->log_seq, fsize, file_offset,
			     data);
	ret = host_file_pwrite(&bs->file, s->log_offset, e, sizeof(e));
	if (ret == 0)
		ret = host_file_flush(&bs->file);
	if (ret == 0)
		ret = host_file_pwrite(&bs->file, file_offset, data, VHDX_LOG_SECTOR);
	if (ret == 0)
		ret = host_file_flush(&bs->file);
	if (ret == 0) {
		/* Applied and durable: the entry need not be replayed (a lost invalidation
		 * only means a harmless second replay). */
		memset(e, 0, VHDX_LOG_SECTOR);
		ret = host_file_pwrite(&bs->file, s->log_offset, e, VHDX_LOG_SECTOR);
	}
	return ret < 0 ? error_set(ret, "%s: VHDX metadata write through the log failed: %s",
				   bs->filename, strerror(-ret))
		       : 0;
}
