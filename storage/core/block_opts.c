/* key=value option lists for `img create -o` / `img amend -o`.
 *
 * The syntax is qemu-img's: options separated by ',', a literal ',' inside a value written ',,'.
 * Each option remembers whether a driver asked for it, so the core can refuse options that no
 * driver understood instead of silently ignoring a typo.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "storage/core/block.h"

static int block_opts_append(struct block_opts *opts, char *key, char *value)
{
	struct block_opt *v = realloc(opts->v, sizeof(*v) * (opts->n + 1));

	if (!v)
		return -ENOMEM;
	opts->v = v;
	v[opts->n].key = key;
	v[opts->n].value = value;
	v[opts->n].used = false;
	opts->n++;
	return 0;
}

int block_opts_parse(struct block_opts *opts, const char *text)
{
	const char *p = text;

	if (!text)
		return 0;
	while (*p) {
		/* One item: copy it, turning ",," into ",". */
		char *item = malloc(strlen(p) + 1), *q = item;
		if (!item)
			return error_set(-ENOMEM, "out of memory");
		while (*p) {
			if (*p == ',') {
				if (p[1] != ',')
					break;
				p++;
			}
			*q++ = *p++;
		}
		*q = 0;
		if (*p == ',')
			p++;
		char *eq = strchr(item, '=');
		if (eq)
			*eq = 0;
		if (!item[0]) {
			free(item);
			return error_set(-EINVAL, "option list '%s': empty option name", text);
		}
		char *key = strdup(item), *value = strdup(eq ? eq + 1 : "on");
		free(item);
		if (!key || !value || block_opts_append(opts, key, value) < 0) {
			free(key);
			free(value);
			return error_set(-ENOMEM, "out of memory");
		}
	}
	return 0;
}

const char *block_opts_get(struct block_opts *opts, const char *key)
{
	const char *value = NULL;

	if (!opts)
		return NULL;
	/* The last occurrence wins; all of them count as used. */
	for (size_t i = 0; i < opts->n; i++) {
		if (strcmp(opts->v[i].key, key) == 0) {
			opts->v[i].used = true;
			value = opts->v[i].value;
		}
	}
	return value;
}

void block_opts_free(struct block_opts *opts)
{
	for (size_t i = 0; i < opts->n; i++) {
		free(opts->v[i].key);
		free(opts->v[i].value);
	}
	free(opts->v);
	opts->v = NULL;
	opts->n = 0;
}

const char *block_opts_unused(const struct block_opts *opts)
{
	for (size_t i = 0; opts && i < opts->n; i++)
		if (!opts->v[i].used)
			return opts->v[i].key;
	return NULL;
}

/* ---- Typed values, shared by every driver's create options ---- */

int block_opts_get_bool(struct block_opts *opts, const char *file, const char *key, bool *out)
{
	const char *v = block_opts_get(opts, key);

	if (!v)
		return 0;
	if (!strcasecmp(v, "on") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") ||
	    !strcmp(v, "1"))
		*out = true;
	else if (!strcasecmp(v, "off") || !strcasecmp(v, "false") || !strcasecmp(v, "no") ||
		 !strcmp(v, "0"))
		*out = false;
	else
		return error_set(-EINVAL, "%s: %s=%s: expected on or off", file, key, v);
	return 0;
}

/* "65536", "64K", "1M", "2GiB", "1tb": decimal only (a leading 0 is not octal, 0x not hex), and
 * never wrapped by the suffix. */
int block_opts_get_size(struct block_opts *opts, const char *file, const char *key, uint64_t *out)
{
	const char *v = block_opts_get(opts, key), *units = "kmgt", *u;
	unsigned long long n;
	unsigned shift = 0;
	char *end;

	if (!v)
		return 0;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || end == v || *v < '0' || *v > '9')
		goto bad;
	if (*end && (u = strchr(units, *end | 0x20))) {
		shift = 10 * (unsigned)(u - units + 1);
		end++;
	}
	if (*end == 'i' || *end == 'B' || *end == 'b')
		end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
	if (*end || n > (UINT64_MAX >> shift))
		goto bad;
	*out = (uint64_t)n << shift;
	return 0;
bad:
	return error_set(-EINVAL, "%s: %s=%s: not a size", file, key, v);
}

int block_opts_get_prealloc(struct block_opts *opts, const char *file, enum block_prealloc *out)
{
	static const char *const names[] = {
	    [BLOCK_PREALLOC_OFF] = "off",
	    [BLOCK_PREALLOC_METADATA] = "metadata",
	    [BLOCK_PREALLOC_FALLOC] = "falloc",
	    [BLOCK_PREALLOC_FULL] = "full",
	};
	const char *v = block_opts_get(opts, "preallocation");

	if (!v)
		return 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(v, names[i])) {
			*out = (enum block_prealloc)i;
			return 0;
		}
	}
	return error_set(-EINVAL, "%s: preallocation=%s: expected off, metadata, falloc or full",
			 file, v);
}
