/* qcow2 external data files (incompatible feature bit 2, header extension "DATA").
 *
 * Guest clusters live in the data file at their own guest offset and are not refcounted; the L2
 * entry of a data cluster holds that offset with the COPIED flag (which also tells cluster 0 from
 * an unallocated one). With data_file_raw (autoclear bit 1) the data file is also a raw image of
 * the disk: every cluster is mapped and zeroes are written as zeroes. Compressed clusters and
 * internal snapshots do not exist in such images (as in qemu).
 *
 * The name comes from the image, so it is resolved by block_image_path_allowed(): inside the
 * image's own directory, never a device node.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "storage/core/block_path.h"
#include "storage/core/disk_lock.h"
#include "storage/formats/qcow2/qcow2.h"

int qcow2_data_file_open(struct block_device *bs, struct qcow2_state *s)
{
	int ret;

	s->data_file.fd = -1;
	if (!(s->incompat & QCOW2_INCOMPAT_DATA_FILE)) {
		/* The raw bit means nothing without a data file: ignore it (it is autoclear). */
		s->autoclear &= ~QCOW2_AUTOCLEAR_DATA_FILE_RAW;
		return 0;
	}
	if (!s->data_file_name)
		return error_set(-EINVAL,
				 "%s: has an external data file but does not name it (no data "
				 "file name header extension)",
				 bs->filename);
	s->has_data_file = true;
	s->data_file_raw = !!(s->autoclear & QCOW2_AUTOCLEAR_DATA_FILE_RAW);
	ret = block_image_path_allowed(bs->filename, s->data_file_name, false, &s->data_file_path);
	if (ret < 0)
		return ret;
	ret = host_file_open(&s->data_file, s->data_file_path, block_host_file_flags(bs->flags));
	if (ret < 0) {
		s->data_file.fd = -1;
		return error_set(ret, "%s: cannot open its data file %s: %s", bs->filename,
				 s->data_file_path, strerror(-ret));
	}
	struct stat self, data;
	/* Checked again on what was opened: the path may have changed since it was resolved. */
	if (fstat(s->data_file.fd, &data) < 0 || !S_ISREG(data.st_mode))
		return error_set(-EPERM, "%s: refusing its data file %s: not a regular file",
				 bs->filename, s->data_file_path);
	if (fstat(bs->file.fd, &self) == 0 && self.st_dev == data.st_dev &&
	    self.st_ino == data.st_ino)
		/* Guest writes would land on the image's own metadata. */
		return error_set(-EINVAL, "%s: its data file %s is the image itself", bs->filename,
				 s->data_file_name);
	if (bs->flags & BLOCK_OPEN_LOCK) {
		/* Locked as the image itself is: a VM writing it keeps others out. */
		struct block_device view = {.filename = s->data_file_path, .file = s->data_file};
		ret = disk_lock_file(&view, bs->flags & BLOCK_OPEN_RDWR);
		if (ret < 0 && ret != -ENOLCK)
			return ret;
	}
	s->l2_cache.data_sync = &s->data_file;
	return 0;
}

void qcow2_data_file_close(struct qcow2_state *s)
{
	if (s->data_file.fd >= 0)
		host_file_close(&s->data_file);
	s->data_file.fd = -1;
	free(s->data_file_name);
	free(s->data_file_path);
	s->data_file_name = s->data_file_path = NULL;
}

int qcow2_data_file_refuse(struct block_device *bs, const char *what)
{
	if (!qcow2_state(bs)->has_data_file)
		return 0;
	return error_set(-ENOTSUP, "%s: %s: not supported with an external data file", bs->filename,
			 what);
}
