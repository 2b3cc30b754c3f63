/* key=value option lists for `img create -o` / `img amend -o`.
 *
 * The syntax is qemu-img's: options separated by ',', a literal ',' inside a value written ',,'.
 * Each option remembers whether a driver asked for it, so the core can refuse options that no
 * driver understood instead of silently ignoring a typo.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage/block.h"

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
			return block_error(-ENOMEM, "out of memory");
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
			return block_error(-EINVAL, "option list '%s': empty option name", text);
		}
		char *key = strdup(item), *value = strdup(eq ? eq + 1 : "on");
		free(item);
		if (!key || !value || block_opts_append(opts, key, value) < 0) {
			free(key);
			free(value);
			return block_error(-ENOMEM, "out of memory");
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
