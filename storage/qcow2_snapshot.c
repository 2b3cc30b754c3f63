/* qcow2: the internal snapshot table (read, list, write) and snapshot create/apply/delete.
 *
 * Each snapshot owns a copy of the L1 table; taking one adds a reference to every L2 table and
 * data cluster reachable from the active L1, so later writes copy on write.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/qcow2.h"

#define SNAP_MAX_EXTRA 1024
#define SNAP_MAX_TABLE (64u << 20)

void qcow2_snapshots_free(struct qcow2_state *s)
{
	for (uint32_t i = 0; s->snapshots && i < s->nb_snapshots; i++) {
		free(s->snapshots[i].id);
		free(s->snapshots[i].name);
	}
	free(s->snapshots);
	s->snapshots = NULL;
}

int qcow2_snapshots_read(struct block_device *bs, struct qcow2_state *s)
{
	uint64_t file_size, pos = s->snapshots_offset;
	int ret;

	if (!s->nb_snapshots)
		return 0;
	ret = host_file_size(&bs->file, &file_size);
	if (ret < 0)
		return ret;
	s->snapshots = calloc(s->nb_snapshots, sizeof(*s->snapshots));
	if (!s->snapshots)
		return -ENOMEM;
	for (uint32_t i = 0; i < s->nb_snapshots; i++) {
		struct qcow2_snapshot *sn = &s->snapshots[i];
		uint8_t h[40], extra[SNAP_MAX_EXTRA];

		if (pos + 40 > file_size || pos - s->snapshots_offset > SNAP_MAX_TABLE)
			return block_error(-EINVAL, "%s: snapshot table entry %u beyond end of file",
					   bs->filename, i);
		ret = host_file_pread(&bs->file, pos, h, sizeof(h));
		if (ret < 0)
			return block_error(ret, "%s: cannot read the snapshot table", bs->filename);
		sn->l1_table_offset = qcow2_be64(h);
		sn->l1_size = qcow2_be32(h + 8);
		uint16_t id_len = qcow2_be16(h + 12), name_len = qcow2_be16(h + 14);
		sn->date_sec = qcow2_be32(h + 16);
		sn->date_nsec = qcow2_be32(h + 20);
		sn->vm_clock_nsec = qcow2_be64(h + 24);
		sn->vm_state_size = qcow2_be32(h + 32);
		sn->extra_size = qcow2_be32(h + 36);
		if (sn->extra_size > SNAP_MAX_EXTRA)
			return block_error(-EINVAL, "%s: snapshot %u: extra data too large (%u)",
					   bs->filename, i, sn->extra_size);
		pos += 40;
		uint64_t var = (uint64_t)sn->extra_size + id_len + name_len;
		if (pos + var > file_size)
			return block_error(-EINVAL, "%s: snapshot %u beyond end of file", bs->filename,
					   i);
		memset(extra, 0, sizeof(extra));
		ret = host_file_pread(&bs->file, pos, extra, sn->extra_size);
		if (ret < 0)
			return ret;
		if (sn->extra_size >= 8)
			sn->vm_state_size = qcow2_be64(extra);
		if (sn->extra_size >= 16) {
			sn->disk_size = qcow2_be64(extra + 8);
			sn->has_disk_size = true;
		}
		if (sn->extra_size >= 24) {
			sn->icount = qcow2_be64(extra + 16);
			sn->has_icount = true;
		}
		pos += sn->extra_size;
		sn->id = calloc(1, (size_t)id_len + 1);
		sn->name = calloc(1, (size_t)name_len + 1);
		if (!sn->id || !sn->name)
			return -ENOMEM;
		ret = host_file_pread(&bs->file, pos, sn->id, id_len);
		if (ret == 0)
			ret = host_file_pread(&bs->file, pos + id_len, sn->name, name_len);
		if (ret < 0)
			return ret;
		pos += id_len + name_len;
		pos = (pos + 7) & ~7ull;
		if ((sn->l1_table_offset & (s->cluster_size - 1)) ||
		    (uint64_t)sn->l1_size * 8 > QCOW2_MAX_L1_BYTES ||
		    sn->l1_table_offset + (uint64_t)sn->l1_size * 8 > file_size)
			return block_error(-EINVAL, "%s: snapshot %u: invalid L1 table", bs->filename,
					   i);
	}
	return 0;
}

int qcow2_snapshot_list(struct block_device *bs, struct block_snapshot **list, int *count)
{
	struct qcow2_state *s = qcow2_state(bs);
	struct block_snapshot *l;

	*list = NULL;
	*count = 0;
	if (!s->nb_snapshots)
		return 0;
	l = calloc(s->nb_snapshots, sizeof(*l));
	if (!l)
		return -ENOMEM;
	pthread_mutex_lock(&s->lock);
	for (uint32_t i = 0; i < s->nb_snapshots; i++) {
		const struct qcow2_snapshot *sn = &s->snapshots[i];
		snprintf(l[i].id, sizeof(l[i].id), "%s", sn->id);
		snprintf(l[i].name, sizeof(l[i].name), "%s", sn->name);
		l[i].vm_state_size = sn->vm_state_size;
		l[i].date_sec = sn->date_sec;
		l[i].date_nsec = sn->date_nsec;
		l[i].vm_clock_nsec = sn->vm_clock_nsec;
		l[i].disk_size = sn->has_disk_size ? sn->disk_size : bs->size;
	}
	*count = (int)s->nb_snapshots;
	pthread_mutex_unlock(&s->lock);
	*list = l;
	return 0;
}
