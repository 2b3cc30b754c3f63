/* Parallels bundles: a .hdd directory holding DiskDescriptor.xml and the image file(s).
 *
 * The descriptor lists one <Storage> with one <Image> per snapshot layer; the layer in use is the
 * one whose <GUID> is <Snapshots><TopGUID> (or the only image when there is no TopGUID).
 * <Type>Compressed</Type> is the expanding Parallels format, Plain a raw file. Split disks
 * (several <Storage> elements) are refused. The descriptor is untrusted: it is bounded in size,
 * and the file name must be a plain name inside the bundle.
 *
 * This only resolves the path; the block core must call it for a directory (host_file_open()
 * refuses directories), see the lead's integration note.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/formats/parallels/parallels.h"

#define PRL_DESC_MAX (1u << 20)

/* The text of the first <tag>...</tag> in [p, end), trimmed, into out (at most n bytes). */
static const char *prl_xml_get(const char *p, const char *end, const char *tag, char *out, size_t n)
{
	char open[64], close[64];
	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	const char *a = memmem(p, end - p, open, strlen(open));
	if (!a)
		return NULL;
	a += strlen(open);
	const char *b = memmem(a, end - a, close, strlen(close));
	if (!b)
		return NULL;
	while (a < b && strchr(" \t\r\n", *a))
		a++;
	while (b > a && strchr(" \t\r\n", b[-1]))
		b--;
	if ((size_t)(b - a) >= n)
		return NULL;
	memcpy(out, a, b - a);
	out[b - a] = 0;
	return b;
}

static int prl_bundle_read(const char *dir, char **text, size_t *len)
{
	char path[4096];
	if ((size_t)snprintf(path, sizeof(path), "%s/DiskDescriptor.xml", dir) >= sizeof(path))
		return error_set(-ENAMETOOLONG, "%s: path too long", dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return error_set(-errno, "%s: not a Parallels bundle (no DiskDescriptor.xml: %s)",
				 dir, strerror(errno));
	*text = malloc(PRL_DESC_MAX + 1);
	if (!*text) {
		close(fd);
		return error_set(-ENOMEM, "%s: out of memory", dir);
	}
	ssize_t n = read(fd, *text, PRL_DESC_MAX + 1);
	int err = errno;
	close(fd);
	if (n < 0) {
		free(*text);
		return error_set(-err, "%s: cannot read DiskDescriptor.xml: %s", dir,
				 strerror(err));
	}
	if ((size_t)n > PRL_DESC_MAX) {
		free(*text);
		return error_set(-EFBIG, "%s: DiskDescriptor.xml larger than 1 MiB", dir);
	}
	(*text)[n] = 0;
	*len = (size_t)n;
	return 0;
}

int prl_bundle_image(const char *dir, char **path, const char **fmt)
{
	char *text = NULL, top[128] = "", guid[128], type[64], file[256];
	size_t len = 0;
	int ret = prl_bundle_read(dir, &text, &len);

	if (ret < 0)
		return ret;
	const char *end = text + len, *p = memmem(text, len, "<StorageData>", 13);
	const char *snaps = memmem(text, len, "<Snapshots>", 11);
	if (snaps)
		prl_xml_get(snaps, end, "TopGUID", top, sizeof(top));
	const char *st = p ? memmem(p, end - p, "<Storage>", 9) : NULL;
	if (!st) {
		ret = error_set(-EINVAL, "%s: DiskDescriptor.xml has no <Storage>", dir);
		goto out;
	}
	const char *st_end = memmem(st, end - st, "</Storage>", 10);
	if (!st_end || memmem(st_end, end - st_end, "<Storage>", 9)) {
		ret = error_set(st_end ? -ENOTSUP : -EINVAL, "%s: DiskDescriptor.xml: %s", dir,
				st_end ? "split disks (several <Storage>) are not supported"
				       : "unterminated <Storage>");
		goto out;
	}
	file[0] = 0;
	for (const char *im = st; (im = memmem(im, st_end - im, "<Image>", 7)); im += 7) {
		const char *im_end = memmem(im, st_end - im, "</Image>", 8);
		if (!im_end)
			break;
		if (!prl_xml_get(im, im_end, "GUID", guid, sizeof(guid)) ||
		    !prl_xml_get(im, im_end, "File", file, sizeof(file)) ||
		    !prl_xml_get(im, im_end, "Type", type, sizeof(type))) {
			ret = error_set(-EINVAL, "%s: DiskDescriptor.xml: incomplete <Image>", dir);
			goto out;
		}
		if (!top[0] || !strcasecmp(guid, top))
			break;
		file[0] = 0;
	}
	if (!file[0]) {
		ret = error_set(-EINVAL, "%s: DiskDescriptor.xml: no image%s%s", dir,
				top[0] ? " with the top GUID " : "", top);
		goto out;
	}
	if (strchr(file, '/') || !strcmp(file, ".") || !strcmp(file, "..")) {
		ret =
		    error_set(-EINVAL, "%s: DiskDescriptor.xml: image file '%s' outside the bundle",
			      dir, file);
		goto out;
	}
	if (!strcmp(type, "Compressed"))
		*fmt = "parallels";
	else if (!strcmp(type, "Plain"))
		*fmt = "raw";
	else {
		ret = error_set(-ENOTSUP, "%s: DiskDescriptor.xml: unknown image type '%s'", dir,
				type);
		goto out;
	}
	if (asprintf(path, "%s/%s", dir, file) < 0)
		ret = error_set(-ENOMEM, "%s: out of memory", dir);
out:
	free(text);
	return ret;
}
