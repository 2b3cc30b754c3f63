/* The VMDK text descriptor: `key = "value"` lines, extent lines and comments.
 *
 * Lines are found by key, so unknown keys (VMware's many ddb.* entries) survive a rewrite
 * untouched.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/formats/vmdk/vmdk.h"
#include "lib/uuid.h"

/* [*ks, *ke) is the key of the line at p and [*vs, *ve) its value (quotes stripped); false when the
 * line is no key=value line. *next is the start of the following line. */
static bool vmdk_desc_line(const char *p, const char **ks, const char **ke, const char **vs,
			   const char **ve, const char **next)
{
	const char *end = strchr(p, '\n');
	const char *q;

	if (!end)
		end = p + strlen(p);
	*next = *end ? end + 1 : end;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p == end || *p == '#')
		return false;
	q = memchr(p, '=', (size_t)(end - p));
	if (!q)
		return false;
	*ks = p;
	*ke = q;
	while (*ke > *ks && ((*ke)[-1] == ' ' || (*ke)[-1] == '\t'))
		(*ke)--;
	q++;
	while (q < end && (*q == ' ' || *q == '\t'))
		q++;
	const char *v_end = end;
	while (v_end > q && (v_end[-1] == ' ' || v_end[-1] == '\t' || v_end[-1] == '\r'))
		v_end--;
	if (v_end - q >= 2 && *q == '"' && v_end[-1] == '"') {
		q++;
		v_end--;
	}
	*vs = q;
	*ve = v_end;
	return *ke > *ks;
}

int vmdk_desc_get(const char *desc, const char *key, char *out, size_t outlen)
{
	const char *p = desc, *ks, *ke, *vs, *ve, *next;
	size_t klen = strlen(key);

	for (; *p; p = next) {
		if (!vmdk_desc_line(p, &ks, &ke, &vs, &ve, &next))
			continue;
		if ((size_t)(ke - ks) != klen || strncmp(ks, key, klen) != 0)
			continue;
		size_t n = (size_t)(ve - vs);
		if (n >= outlen)
			return -ENAMETOOLONG;
		memcpy(out, vs, n);
		out[n] = 0;
		return 0;
	}
	return -ENOENT;
}

char *vmdk_desc_set(const char *desc, const char *key, const char *value, bool quote)
{
	const char *p = desc, *ks, *ke, *vs, *ve, *next;
	size_t klen = strlen(key), total = strlen(desc) + klen + strlen(value) + 16;
	char *out = malloc(total);
	const char *q = quote ? "\"" : "";

	if (!out)
		return NULL;
	for (; *p; p = next) {
		if (!vmdk_desc_line(p, &ks, &ke, &vs, &ve, &next))
			continue;
		if ((size_t)(ke - ks) == klen && strncmp(ks, key, klen) == 0) {
			const char *eol = strchr(p, '\n');
			snprintf(out, total, "%.*s%s=%s%s%s%s", (int)(p - desc), desc, key, q,
				 value, q, eol ? eol : "");
			return out;
		}
	}
	/* A new header key goes after createType (where VMware keeps parentFileNameHint). */
	const char *ct = strncmp(key, "ddb.", 4) ? strstr(desc, "createType") : NULL;
	const char *eol = ct ? strchr(ct, '\n') : NULL;
	if (eol) {
		snprintf(out, total, "%.*s%s=%s%s%s\n%s", (int)(eol + 1 - desc), desc, key, q,
			 value, q, eol + 1);
		return out;
	}
	size_t len = strlen(desc);
	snprintf(out, total, "%s%s%s=%s%s%s\n", desc, len && desc[len - 1] != '\n' ? "\n" : "", key,
		 q, value, q);
	return out;
}

char *vmdk_desc_del(const char *desc, const char *key)
{
	const char *p = desc, *ks, *ke, *vs, *ve, *next;
	size_t klen = strlen(key);

	for (; *p; p = next) {
		if (!vmdk_desc_line(p, &ks, &ke, &vs, &ve, &next))
			continue;
		if ((size_t)(ke - ks) == klen && strncmp(ks, key, klen) == 0) {
			char *out = malloc(strlen(desc) + 1);
			if (!out)
				return NULL;
			memcpy(out, desc, (size_t)(p - desc));
			strcpy(out + (p - desc), next);
			return out;
		}
	}
	return strdup(desc);
}

static int vmdk_desc_hex(struct block_device *bs, const char *desc, const char *key, uint32_t *out)
{
	char buf[32], *end;
	int ret = vmdk_desc_get(desc, key, buf, sizeof(buf));

	if (ret == -ENOENT) {
		*out = 0xffffffffu;
		return 0;
	}
	unsigned long v = ret < 0 ? 0 : strtoul(buf, &end, 16);
	if (ret < 0 || !buf[0] || *end || v > 0xffffffffu)
		return error_set(-EINVAL, "%s: descriptor: bad %s value", bs->filename, key);
	*out = (uint32_t)v;
	return 0;
}

int vmdk_desc_parse(struct block_device *bs, struct vmdk_state *s)
{
	char buf[4096];
	int ret;

	for (const char *p = s->desc; *p; p++)
		if (*p != '\n' && *p != '\r' && *p != '\t' && (unsigned char)*p < 0x20)
			return error_set(-EINVAL, "%s: descriptor holds binary data", bs->filename);
	ret = vmdk_desc_get(s->desc, "version", buf, sizeof(buf));
	if (ret == 0 && strcmp(buf, "1") && strcmp(buf, "2") && strcmp(buf, "3"))
		return error_set(-ENOTSUP, "%s: descriptor version %s not supported", bs->filename,
				 buf);
	ret = vmdk_desc_hex(bs, s->desc, "CID", &s->cid);
	if (ret == 0)
		ret = vmdk_desc_hex(bs, s->desc, "parentCID", &s->parent_cid);
	if (ret < 0)
		return ret;
	ret = vmdk_desc_get(s->desc, "createType", s->create_type, sizeof(s->create_type));
	if (ret < 0 && !s->embedded)
		return error_set(-EINVAL, "%s: descriptor has no createType", bs->filename);
	ret = vmdk_desc_get(s->desc, "parentFileNameHint", buf, sizeof(buf));
	if (ret == -ENAMETOOLONG)
		return error_set(-EINVAL, "%s: parentFileNameHint too long", bs->filename);
	if (ret == 0) {
		if (!buf[0])
			return error_set(-EINVAL, "%s: empty parentFileNameHint", bs->filename);
		bs->backing_name = strdup(buf);
		bs->backing_fmt = NULL; /* any format: QEMU allows non-VMDK parents too */
		if (!bs->backing_name)
			return error_set(-ENOMEM, "%s: out of memory", bs->filename);
	}
	return 0;
}

/* Replace the descriptor on disk: in place in a sparse extent (it must fit the reserved sectors),
 * or the whole text file. */
int vmdk_desc_write(struct block_device *bs, struct vmdk_state *s, const char *text)
{
	size_t len = strlen(text);
	int ret;

	if (s->embedded) {
		if (len > s->desc_size)
			return error_set(-ENOSPC,
					 "%s: descriptor of %zu bytes does not fit its %llu-byte "
					 "area",
					 bs->filename, len, (unsigned long long)s->desc_size);
		char *buf = calloc(1, s->desc_size);
		if (!buf)
			return error_set(-ENOMEM, "%s: out of memory", bs->filename);
		memcpy(buf, text, len);
		ret = host_file_pwrite(&bs->file, s->desc_offset, buf, s->desc_size);
		free(buf);
	} else {
		ret = host_file_pwrite(&bs->file, 0, text, len);
		if (ret == 0)
			ret = host_file_truncate(&bs->file, len);
	}
	if (ret < 0)
		return error_set(ret, "%s: cannot write the descriptor: %s", bs->filename,
				 strerror(-ret));
	return 0;
}

/* keys[i] set to values[i] (deleted when values[i] is NULL), then written out as one update. */
int vmdk_desc_update(struct block_device *bs, const char *const *keys, const char *const *values,
		     const bool *quote, int n)
{
	struct vmdk_state *s = bs->state;
	char *d = strdup(s->desc);
	int ret;

	for (int i = 0; i < n && d; i++) {
		char *nd = values[i] ? vmdk_desc_set(d, keys[i], values[i], quote[i])
				     : vmdk_desc_del(d, keys[i]);
		free(d);
		d = nd;
	}
	if (!d)
		return error_set(-ENOMEM, "%s: out of memory", bs->filename);
	ret = vmdk_desc_write(bs, s, d);
	if (ret < 0) {
		free(d);
		return ret;
	}
	free(s->desc);
	s->desc = d;
	return 0;
}

/* VMware gives a disk a new content ID when it is first modified, so that children made against
 * the old content (their parentCID) can tell; done once per open, before the first write. */
int vmdk_cid_refresh(struct block_device *bs)
{
	struct vmdk_state *s = bs->state;
	int ret = 0;

	if (__atomic_load_n(&s->cid_updated, __ATOMIC_ACQUIRE))
		return 0;
	pthread_mutex_lock(&s->desc_lock);
	if (!s->cid_updated) {
		uint32_t cid;
		char text[16];
		do {
			if (random_fill(&cid, sizeof(cid)) < 0)
				cid = (uint32_t)time(NULL) ^ s->cid;
		} while (cid >= 0xfffffffeu || cid == s->cid);
		snprintf(text, sizeof(text), "%08x", cid);
		const char *k[] = {"CID"}, *v[] = {text};
		const bool q[] = {false};
		ret = vmdk_desc_update(bs, k, v, q, 1);
		if (ret == 0) {
			s->cid = cid;
			__atomic_store_n(&s->cid_updated, true, __ATOMIC_RELEASE);
		}
	}
	pthread_mutex_unlock(&s->desc_lock);
	return ret;
}
