/* Minimal i8042 (see i8042.h).  vCPUs reach it one at a time in practice (legacy probing and
 * reboot), and every field is a byte, so it needs no lock: a race can only garble a probe reply. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/device.h"
#include "devices/i8042.h"
#include "devices/io_bus.h"
#include "memory/layout.h"
#include "lib/error.h"

#define STATUS_OBF 0x01
#define STATUS_SYS 0x04
#define STATUS_CMD 0x08
#define STATUS_UNLOCKED 0x10 /* keyboard not inhibited by the keylock */
#define CMD_READ_CTR 0x20
#define CMD_WRITE_CTR 0x60
#define CMD_SELF_TEST 0xAA
#define CMD_WRITE_OUTPUT 0xD1
#define CMD_PULSE_RESET 0xFE

void i8042_init(struct i8042 *kbd, void (*reset)(void *opaque), void *opaque)
{
	memset(kbd, 0, sizeof(*kbd));
	kbd->reset = reset;
	kbd->opaque = opaque;
	i8042_power_on(kbd);
}

void i8042_power_on(struct i8042 *kbd)
{
	kbd->pending_cmd = 0;
	kbd->ctr = 0x30; /* both ports disabled, no interrupts */
	kbd->out = -1;
}

/* Both ports are one byte wide: any other width reads all ones and writes nothing. */
static bool i8042_byte_access(uint8_t *data, unsigned len, bool is_write)
{
	if (len == 1)
		return true;
	if (!is_write)
		memset(data, 0xFF, len);
	return false;
}

void i8042_data_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct i8042 *kbd = opaque;
	(void)offset;
	if (!i8042_byte_access(data, len, is_write))
		return;
	if (!is_write) {
		data[0] = kbd->out < 0 ? 0 : kbd->out;
		kbd->out = -1;
		return;
	}
	uint8_t cmd = kbd->pending_cmd;
	kbd->pending_cmd = 0;
	if (cmd == CMD_WRITE_CTR)
		kbd->ctr = data[0];
	else if (cmd == CMD_WRITE_OUTPUT && !(data[0] & 1) && kbd->reset)
		kbd->reset(kbd->opaque); /* output port bit 0 low holds the CPU in reset */
}

void i8042_cmd_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct i8042 *kbd = opaque;
	(void)offset;
	if (!i8042_byte_access(data, len, is_write))
		return;
	if (!is_write) {
		data[0] = STATUS_SYS | STATUS_UNLOCKED | (kbd->out >= 0 ? STATUS_OBF : 0) |
			  (kbd->pending_cmd ? STATUS_CMD : 0);
		return;
	}
	switch (data[0]) {
	case CMD_READ_CTR:
		kbd->out = kbd->ctr;
		break;
	case CMD_SELF_TEST:
		kbd->out = 0x55;
		break;
	case CMD_WRITE_CTR:
	case CMD_WRITE_OUTPUT:
		kbd->pending_cmd = data[0];
		break;
	case CMD_PULSE_RESET:
		if (kbd->reset)
			kbd->reset(kbd->opaque);
		break;
	default:
		break;
	}
}

/* ---- the machine's i8042 ---- */

struct i8042_device {
	struct i8042 kbd;
	const struct device_env *env;
};

static void i8042_pulse_reset(void *opaque)
{
	const struct device_env *env = opaque;
	env->request(env->opaque, DEVICE_REQUEST_RESET);
}

static int i8042_device_create(struct device_env *env, void **state)
{
	struct i8042_device *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->env = env;
	i8042_init(&d->kbd, i8042_pulse_reset, env);
	int r = io_bus_register(env->pio, LAYOUT_PORT_I8042, 1, i8042_data_io, &d->kbd);
	if (r == 0) {
		r = io_bus_register(env->pio, LAYOUT_PORT_I8042 + 4, 1, i8042_cmd_io, &d->kbd);
		if (r < 0)
			io_bus_unregister(env->pio, LAYOUT_PORT_I8042, &d->kbd);
	}
	if (r < 0) {
		error_set(r, "i8042: ports 0x%x/0x%x: %s", LAYOUT_PORT_I8042, LAYOUT_PORT_I8042 + 4,
			  strerror(-r));
		free(d);
		return r;
	}
	*state = d;
	return 0;
}

static void i8042_device_reset(void *state)
{
	struct i8042_device *d = state;
	i8042_power_on(&d->kbd);
}

static void i8042_device_destroy(void *state)
{
	struct i8042_device *d = state;
	io_bus_unregister(d->env->pio, LAYOUT_PORT_I8042, &d->kbd);
	io_bus_unregister(d->env->pio, LAYOUT_PORT_I8042 + 4, &d->kbd);
	free(d);
}

static const struct device_ops i8042_device = {
    .name = "i8042",
    .create = i8042_device_create,
    .reset = i8042_device_reset,
    .destroy = i8042_device_destroy,
};
DEVICE(i8042_device, DEVICE_LEVEL_PLATFORM);
