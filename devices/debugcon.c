/* Debug console lines (debugcon.h). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "devices/debugcon.h"

struct debugcon {
	pthread_mutex_t lock;
	debugcon_line_fn fn;
	void *opaque;
	char line[DEBUGCON_LINE_MAX + 1];
	unsigned len;
};

int debugcon_create(debugcon_line_fn fn, void *opaque, struct debugcon **out)
{
	struct debugcon *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	pthread_mutex_init(&d->lock, NULL);
	d->fn = fn;
	d->opaque = opaque;
	*out = d;
	return 0;
}

void debugcon_destroy(struct debugcon *d)
{
	if (!d)
		return;
	pthread_mutex_destroy(&d->lock);
	free(d);
}

/* Called with the lock held: the callback must not come back into the port. */
static void flush_line(struct debugcon *d)
{
	d->line[d->len] = 0;
	if (d->fn)
		d->fn(d->opaque, d->line);
	d->len = 0;
}

void debugcon_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct debugcon *d = opaque;
	(void)offset;
	if (!is_write) {
		memset(data, 0, len);
		data[0] = DEBUGCON_READBACK;
		return;
	}
	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < len; i++) {
		char c = (char)data[i];
		if (c == '\n') {
			flush_line(d);
			continue;
		}
		if (c < 0x20 || c > 0x7E) /* \r, escapes and binary: not for a log line */
			continue;
		d->line[d->len++] = c;
		if (d->len == DEBUGCON_LINE_MAX)
			flush_line(d);
	}
	pthread_mutex_unlock(&d->lock);
}
