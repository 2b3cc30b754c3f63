/* The POST diagnostic port (0x80): firmware writes progress codes there and Linux uses it as an
 * I/O delay.  Writes are dropped; reads return all ones.  No state, so no reset. */
#include <stdio.h>
#include <string.h>

#include "devices/device.h"
#include "devices/io_bus.h"
#include "memory/layout.h"
#include "lib/error.h"

static void post_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	(void)opaque;
	(void)offset;
	if (!is_write)
		memset(data, 0xFF, len);
}

static int post_create(struct device_env *env, void **state)
{
	int r = io_bus_register(env->pio, LAYOUT_PORT_POST, 1, post_io, env);
	if (r < 0)
		return error_set(r, "POST port 0x%x: %s", LAYOUT_PORT_POST, strerror(-r));
	*state = env;
	return 0;
}

static void post_destroy(void *state)
{
	struct device_env *env = state;
	io_bus_unregister(env->pio, LAYOUT_PORT_POST, env);
}

static const struct device_ops post_device = {
    .name = "post",
    .create = post_create,
    .destroy = post_destroy,
};
DEVICE(post_device, DEVICE_LEVEL_PLATFORM);
