/* Debug console lines (debugcon.h). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/debugcon.h"
#include "devices/device.h"
#include "devices/io_bus.h"
#include "lib/log.h"
#include "devices/machine_config.h"
#include "lib/error.h"

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

/* ---- the machine's debug console: only when firmware boots (no --kernel) ---- */

struct debugcon_device {
	struct debugcon *d;
	struct device_env *env;
};

/* The firmware's log: kept at debug level; SeaBIOS's boot failure ends the VM (exit 1) instead
 * of its reboot loop. */
static void firmware_log_line(void *opaque, const char *line)
{
	struct debugcon_device *dev = opaque;
	log_debug("firmware", "%s", line);
	if (strstr(line, "No bootable device"))
		dev->env->request(dev->env->opaque, DEVICE_REQUEST_NO_BOOT);
}

static int debugcon_device_create(struct device_env *env, void **state)
{
	*state = NULL;
	if (!env->machine || env->machine->kernel_boot)
		return 0; /* direct boot: no firmware to log */
	struct debugcon_device *dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->env = env;
	int r = debugcon_create(firmware_log_line, dev, &dev->d);
	if (r == 0) {
		r = io_bus_register(env->pio, DEBUGCON_PORT, 1, debugcon_io, dev->d);
		if (r < 0) {
			error_set(r, "debugcon: port 0x%x: %s", DEBUGCON_PORT, strerror(-r));
			debugcon_destroy(dev->d);
		}
	}
	if (r < 0) {
		free(dev);
		return r;
	}
	*state = dev;
	return 0;
}

/* A half line from before the reset is dropped: the next boot's log starts clean. */
static void debugcon_device_reset(void *state)
{
	struct debugcon_device *dev = state;
	if (!dev)
		return;
	pthread_mutex_lock(&dev->d->lock);
	dev->d->len = 0;
	pthread_mutex_unlock(&dev->d->lock);
}

static void debugcon_device_destroy(void *state)
{
	struct debugcon_device *dev = state;
	if (!dev)
		return;
	io_bus_unregister(dev->env->pio, DEBUGCON_PORT, dev->d);
	debugcon_destroy(dev->d);
	free(dev);
}

static const struct device_ops debugcon_device = {
    .name = "debugcon",
    .create = debugcon_device_create,
    .reset = debugcon_device_reset,
    .destroy = debugcon_device_destroy,
};
DEVICE(debugcon_device, DEVICE_LEVEL_PLATFORM);
