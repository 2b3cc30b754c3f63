/* The parent of a differencing VDI.
 *
 * VirtualBox links a differencing image to its parent by UUID only (uuidLinkage = the parent's
 * create UUID) and finds the file through its media registry. minivmm needs a file name, so:
 *  - images minivmm creates record it in szComment as "minivmm-backing:FMT:NAME" (VirtualBox keeps
 *    the comment but never interprets it);
 *  - for images VirtualBox wrote, the parent is looked up by UUID among the *.vdi files in the
 *    image's directory and in the directory above it (VirtualBox's <VM>/Snapshots/ layout).
 * Either way the parent's create UUID must equal uuidLinkage when the parent is a VDI, and a parent
 * outside the image's directory (the one above included) needs the user's leave
 * (storage/core/block_path.h).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "storage/core/block_path.h"
#include "lib/endian.h"
#include "storage/formats/vdi/vdi.h"

char *vdi_path_beside(const char *image, const char *name)
{
	const char *slash = strrchr(image, '/');
	char *out;

	if (name[0] == '/' || !slash)
		return strdup(name);
	if (asprintf(&out, "%.*s/%s", (int)(slash - image), image, name) < 0)
		return NULL;
	return out;
}

/* Reads the create and modify UUIDs (disk order) of the VDI at path; -EINVAL if it is no VDI. */
int vdi_parent_read_uuids(const char *path, uint8_t create[16], uint8_t modify[16])
{
	struct host_file f;
	uint8_t h[VDI_OFF_UUID_LINK];
	uint64_t size;
	int ret = host_file_open(&f, path, 0);

	if (ret < 0)
		return ret;
	ret = host_file_size(&f, &size);
	if (ret == 0 && size < sizeof(h))
		ret = -EINVAL;
	if (ret == 0)
		ret = host_file_pread(&f, 0, h, sizeof(h));
	host_file_close(&f);
	if (ret < 0)
		return ret;
	if (get_le32(h + VDI_OFF_SIGNATURE) != VDI_SIGNATURE ||
	    get_le32(h + VDI_OFF_VERSION) != VDI_VERSION_1_1)
		return -EINVAL;
	memcpy(create, h + VDI_OFF_UUID_CREATE, 16);
	if (modify)
		memcpy(modify, h + VDI_OFF_UUID_MODIFY, 16);
	return 0;
}

static bool has_vdi_suffix(const char *name)
{
	size_t n = strlen(name);

	return n > 4 && strcasecmp(name + n - 4, ".vdi") == 0;
}

/* Looks for the VDI whose create UUID is link in dir; returns its name joined to prefix. */
static char *vdi_search_dir(struct block_device *bs, const char *dir, const char *prefix,
			    const uint8_t *link)
{
	struct stat self, st;
	DIR *d = opendir(dir);
	struct dirent *de;
	char *found = NULL;

	if (!d)
		return NULL;
	if (fstat(bs->file.fd, &self) < 0)
		self.st_ino = 0;
	while (!found && (de = readdir(d))) {
		uint8_t create[16];
		char *path;

		if (!has_vdi_suffix(de->d_name))
			continue;
		if (asprintf(&path, "%s/%s", dir, de->d_name) < 0)
			break;
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
		    !(st.st_ino == self.st_ino && st.st_dev == self.st_dev) &&
		    vdi_parent_read_uuids(path, create, NULL) == 0 && memcmp(create, link, 16) == 0)
			if (asprintf(&found, "%s%s", prefix, de->d_name) < 0)
				found = NULL;
		free(path);
	}
	closedir(d);
	return found;
}

static int vdi_parent_search(struct block_device *bs)
{
	struct vdi_state *s = bs->state;
	const uint8_t *link = s->head + VDI_OFF_UUID_LINK;
	char *dir = vdi_path_beside(bs->filename, ".");
	char *up = vdi_path_beside(bs->filename, "..");
	char uuid[37];

	if (dir && up) {
		bs->backing_name = vdi_search_dir(bs, dir, "", link);
		if (!bs->backing_name)
			bs->backing_name = vdi_search_dir(bs, up, "../", link);
	}
	free(dir);
	free(up);
	if (bs->backing_name) {
		bs->backing_fmt = strdup("vdi");
		return bs->backing_fmt ? 0 : error_set(-ENOMEM, "%s: out of memory", bs->filename);
	}
	vdi_uuid_format(uuid, link);
	return error_set(-ENOENT,
			 "%s: parent of this differencing VDI (UUID %s) not found among the "
			 "*.vdi files of its directory and the one above",
			 bs->filename, uuid);
}

/* Checks that a VDI parent really is the image this one was made from. */
static int vdi_parent_verify(struct block_device *bs)
{
	struct vdi_state *s = bs->state;
	uint8_t create[16];
	char *path = vdi_path_beside(bs->filename, bs->backing_name);
	char want[37], got[37];
	int ret;

	if (!path)
		return error_set(-ENOMEM, "%s: out of memory", bs->filename);
	/* Not even its header is read unless the image may name it (storage/core/block_path.h). */
	ret = block_path_check(bs->filename, "backing file", bs->backing_name, path);
	if (ret < 0) {
		free(path);
		return ret;
	}
	ret = vdi_parent_read_uuids(path, create, NULL);
	if (ret < 0) { /* missing or not a VDI: the core reports a missing file when opening it */
		free(path);
		return 0;
	}
	if (memcmp(create, s->head + VDI_OFF_UUID_LINK, 16) != 0) {
		vdi_uuid_format(want, s->head + VDI_OFF_UUID_LINK);
		vdi_uuid_format(got, create);
		ret = error_set(-EINVAL,
				"%s: parent %s has UUID %s, but this differencing image links to "
				"%s",
				bs->filename, path, got, want);
	}
	free(path);
	return ret;
}

/* Fills bs->backing_name/backing_fmt for a differencing image (open). */
int vdi_parent_open_name(struct block_device *bs)
{
	struct vdi_state *s = bs->state;
	char comment[VDI_COMMENT_SIZE + 1];
	size_t plen = strlen(VDI_BACKING_PREFIX);

	if (s->type != VDI_TYPE_DIFF)
		return 0;
	memcpy(comment, s->head + VDI_OFF_COMMENT, VDI_COMMENT_SIZE);
	comment[VDI_COMMENT_SIZE] = '\0';
	if (strncmp(comment, VDI_BACKING_PREFIX, plen) == 0) {
		char *fmt = comment + plen;
		char *name = strchr(fmt, ':');

		if (!name || !name[1])
			return error_set(-EINVAL, "%s: malformed parent name in the VDI comment",
					 bs->filename);
		*name++ = '\0';
		bs->backing_name = strdup(name);
		bs->backing_fmt = fmt[0] ? strdup(fmt) : NULL;
		if (!bs->backing_name || (fmt[0] && !bs->backing_fmt))
			return error_set(-ENOMEM, "%s: out of memory", bs->filename);
	} else if (bs->flags & BLOCK_OPEN_NO_BACKING) {
		return 0;
	} else {
		int ret = vdi_parent_search(bs);

		if (ret < 0)
			return ret;
	}
	if (bs->flags & BLOCK_OPEN_NO_BACKING)
		return 0;
	return vdi_parent_verify(bs);
}
