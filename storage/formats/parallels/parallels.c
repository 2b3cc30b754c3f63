/* The "parallels" driver: Parallels (and Virtuozzo) expanding disk images.
 *
 * Opening checks the header and every BAT entry (inside the file, after the BAT, no two clusters
 * overlapping) before the first I/O. A read-write open sets the in-use flag on disk and close
 * clears it, as Parallels and QEMU do; an image left in use (a crash) opens read-only or for
 * `check -r`, which clears the flag, like QEMU. The bundle form (a .hdd directory with
 * DiskDescriptor.xml) is not handled here: open the image file inside it.
 */
#include <endian.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "lib/endian.h"
#include "storage/formats/parallels/parallels.h"

static int prl_probe(const uint8_t *head, size_t len, const char *filename)
{
	(void)filename;
	if (len < PRL_HEADER_SIZE || get_le32(head + PRL_H_VERSION) != 2)
		return 0;
	return !memcmp(head, PRL_MAGIC, 16) || !memcmp(head, PRL_MAGIC_EXT, 16) ? 100 : 0;
}

static int prl_cmp64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Every allocated cluster inside the file, after the BAT, clear of every other cluster. */
static int prl_check_bat(struct block_device *bs, struct prl_state *s, uint64_t fsize)
{
	uint64_t unit = (uint64_t)s->off_multiplier * PRL_SECTOR;
	uint64_t *starts = malloc(sizeof(*starts) * (s->bat_entries ? s->bat_entries : 1));
	size_t n = 0;
	int ret = 0;

	if (!starts)
		return error_set(-ENOMEM, "%s: out of memory", bs->filename);
	s->data_end = s->data_start;
	for (uint32_t i = 0; i < s->bat_entries; i++) {
		if (!s->bat[i])
			continue;
		uint64_t off = s->bat[i] * unit;
		if (off < s->data_start) {
			ret = error_set(-EINVAL,
					"%s: BAT entry %u: cluster at offset %llu overlaps the "
					"header or the BAT",
					bs->filename, i, (unsigned long long)off);
			goto out;
		}
		if (off + s->cluster_size > fsize) {
			ret = error_set(-EINVAL,
					"%s: BAT entry %u: cluster at offset %llu beyond the end "
					"of the file (%llu bytes)",
					bs->filename, i, (unsigned long long)off,
					(unsigned long long)fsize);
			goto out;
		}
		starts[n++] = off;
		if (off + s->cluster_size > s->data_end)
			s->data_end = off + s->cluster_size;
	}
	qsort(starts, n, sizeof(*starts), prl_cmp64);
	for (size_t i = 1; i < n; i++) {
		if (starts[i - 1] + s->cluster_size > starts[i]) {
			ret =
			    error_set(-EINVAL, "%s: BAT: clusters at offsets %llu and %llu overlap",
				      bs->filename, (unsigned long long)starts[i - 1],
				      (unsigned long long)starts[i]);
			goto out;
		}
	}
	/* New clusters must be expressible in BAT units. */
	s->data_end = (s->data_end + unit - 1) / unit * unit;
out:
	free(starts);
	return ret;
}

static int prl_write_header(struct block_device *bs, struct prl_state *s)
{
	int ret = host_file_pwrite(&bs->file, 0, s->header, PRL_HEADER_SIZE);
	if (ret == 0)
		ret = host_file_flush(&bs->file);
	return ret < 0 ? error_set(ret, "%s: cannot write the Parallels header: %s", bs->filename,
				   strerror(-ret))
		       : 0;
}

static void prl_close(struct block_device *bs)
{
	struct prl_state *s = bs->state;

	if (!s)
		return;
	if ((bs->flags & BLOCK_OPEN_RDWR) && get_le32(s->header + PRL_H_INUSE) == PRL_INUSE) {
		put_le32(s->header + PRL_H_INUSE, 0);
		prl_write_header(bs, s);
	}
	pthread_mutex_destroy(&s->lock);
	free(s->bat);
	free(s);
	bs->state = NULL;
}

static int prl_parse_header(struct block_device *bs, struct prl_state *s, uint64_t fsize)
{
	const uint8_t *h = s->header;
	bool ext = !memcmp(h, PRL_MAGIC_EXT, 16);
	uint32_t tracks = get_le32(h + PRL_H_TRACKS);
	uint64_t sectors = get_le64(h + PRL_H_SECTORS);

	if (!ext && memcmp(h, PRL_MAGIC, 16))
		return error_set(-EINVAL, "%s: not a Parallels image (bad magic)", bs->filename);
	if (get_le32(h + PRL_H_VERSION) != 2)
		return error_set(-ENOTSUP, "%s: Parallels version %u not supported (only 2)",
				 bs->filename, get_le32(h + PRL_H_VERSION));
	if (tracks == 0 || tracks > PRL_CLUSTER_MAX / PRL_SECTOR)
		return error_set(-EINVAL, "%s: invalid cluster size of %u sectors", bs->filename,
				 tracks);
	s->cluster_size = tracks * PRL_SECTOR;
	s->off_multiplier = ext ? tracks : 1;
	s->bat_entries = get_le32(h + PRL_H_BAT_ENTRIES);
	if (s->bat_entries > PRL_MAX_ENTRIES)
		return error_set(-EINVAL, "%s: BAT of %u entries is absurd (at most %u)",
				 bs->filename, s->bat_entries, PRL_MAX_ENTRIES);
	if (!ext)
		sectors &= 0xffffffffu; /* the old format has a 32-bit size */
	if (sectors > (uint64_t)s->bat_entries * tracks)
		return error_set(-EINVAL,
				 "%s: disk of %llu sectors larger than the BAT covers (%u "
				 "clusters of %u bytes)",
				 bs->filename, (unsigned long long)sectors, s->bat_entries,
				 s->cluster_size);
	bs->size = sectors * PRL_SECTOR;
	uint64_t bat_end = PRL_HEADER_SIZE + (uint64_t)s->bat_entries * 4;
	uint32_t data_off = get_le32(h + PRL_H_DATA_OFF);
	s->data_start = data_off ? (uint64_t)data_off * PRL_SECTOR
				 : (bat_end + PRL_SECTOR - 1) / PRL_SECTOR * PRL_SECTOR;
	if (s->data_start < bat_end)
		return error_set(-EINVAL, "%s: data offset %llu inside the BAT (ends at %llu)",
				 bs->filename, (unsigned long long)s->data_start,
				 (unsigned long long)bat_end);
	if (bat_end > fsize)
		return error_set(-EINVAL, "%s: BAT (%u entries) beyond the end of the file",
				 bs->filename, s->bat_entries);
	return 0;
}

static int prl_open(struct block_device *bs)
{
	struct prl_state *s = calloc(1, sizeof(*s));
	uint64_t fsize;
	int ret;

	if (!s)
		return error_set(-ENOMEM, "%s: out of memory", bs->filename);
	pthread_mutex_init(&s->lock, NULL);
	bs->state = s;
	ret = host_file_size(&bs->file, &fsize);
	if (ret < 0) {
		error_set(ret, "%s: cannot get size: %s", bs->filename, strerror(-ret));
		goto fail;
	}
	if (fsize < PRL_HEADER_SIZE) {
		ret = error_set(-EINVAL, "%s: file too small for a Parallels header", bs->filename);
		goto fail;
	}
	ret = host_file_pread(&bs->file, 0, s->header, PRL_HEADER_SIZE);
	if (ret < 0) {
		error_set(ret, "%s: cannot read the header: %s", bs->filename, strerror(-ret));
		goto fail;
	}
	ret = prl_parse_header(bs, s, fsize);
	if (ret < 0)
		goto fail;
	s->bat = malloc((size_t)s->bat_entries * 4 + 4);
	if (!s->bat) {
		ret = error_set(-ENOMEM, "%s: out of memory for the BAT", bs->filename);
		goto fail;
	}
	ret = host_file_pread(&bs->file, PRL_HEADER_SIZE, s->bat, (size_t)s->bat_entries * 4);
	if (ret < 0) {
		error_set(ret, "%s: cannot read the BAT: %s", bs->filename, strerror(-ret));
		goto fail;
	}
	for (uint32_t i = 0; i < s->bat_entries; i++)
		s->bat[i] = le32toh(s->bat[i]);
	ret = prl_check_bat(bs, s, fsize);
	if (ret < 0)
		goto fail;
	if (bs->flags & BLOCK_OPEN_RDWR) {
		if (get_le32(s->header + PRL_H_INUSE) && !(bs->flags & BLOCK_OPEN_CHECK)) {
			ret = error_set(-EBUSY,
					"%s: Parallels image was not closed cleanly (in-use flag "
					"set); repair it with 'img check -r all'",
					bs->filename);
			goto fail;
		}
		if (!(bs->flags & BLOCK_OPEN_CHECK)) {
			put_le32(s->header + PRL_H_INUSE, PRL_INUSE);
			ret = prl_write_header(bs, s);
			if (ret < 0)
				goto fail;
		}
	}
	return 0;
fail:
	bs->flags &= ~BLOCK_OPEN_RDWR; /* nothing to undo on disk */
	prl_close(bs);
	return ret;
}

int prl_check(struct block_device *bs, struct block_check_result *res, int fix)
{
	struct prl_state *s = bs->state;
	uint64_t fsize;
	int ret;

	memset(res, 0, sizeof(*res));
	ret = host_file_size(&bs->file, &fsize);
	if (ret < 0)
		return error_set(ret, "%s: cannot get size: %s", bs->filename, strerror(-ret));
	for (uint32_t i = 0; i < s->bat_entries; i++)
		res->allocated_clusters += s->bat[i] != 0;
	res->total_clusters = s->bat_entries;
	res->image_end_offset = s->data_end;
	if (get_le32(s->header + PRL_H_INUSE)) {
		res->corruptions++;
		if (fix & BLOCK_CHECK_FIX_ERRORS) {
			put_le32(s->header + PRL_H_INUSE, 0);
			ret = prl_write_header(bs, s);
			if (ret < 0)
				return ret;
			res->corruptions_fixed++;
			res->corruptions--;
		}
	}
	if (fsize > s->data_end) {
		uint64_t n = (fsize - s->data_end + s->cluster_size - 1) / s->cluster_size;
		res->leaks += n;
		if (fix & BLOCK_CHECK_FIX_LEAKS) {
			ret = host_file_truncate(&bs->file, s->data_end);
			if (ret < 0)
				return error_set(ret, "%s: cannot truncate: %s", bs->filename,
						 strerror(-ret));
			res->leaks_fixed += n;
			res->leaks -= n;
		}
	}
	return 0;
}

static int prl_info(struct block_device *bs, struct json_object *out)
{
	struct prl_state *s = bs->state;
	json_object_object_add(out, "dirty-flag",
			       json_object_new_boolean(get_le32(s->header + PRL_H_INUSE) != 0 &&
						       !(bs->flags & BLOCK_OPEN_RDWR)));
	return 0;
}

static uint32_t prl_cluster_size(struct block_device *bs)
{
	return ((struct prl_state *)bs->state)->cluster_size;
}

static const struct block_driver block_driver_parallels = {
    .name = "parallels",
    .description = "Parallels expanding disk image",
    .probe = prl_probe,
    .probe_bytes = PRL_HEADER_SIZE,
    .open_directory = prl_bundle_image,
    .open = prl_open,
    .close = prl_close,
    .create = prl_create,
    .preadv = prl_preadv,
    .pwritev = prl_pwritev,
    .block_status = prl_block_status,
    .check = prl_check,
    .truncate = prl_truncate,
    .info = prl_info,
    .cluster_size = prl_cluster_size,
};
BLOCK_DRIVER(block_driver_parallels);
