/* Minimal i8042 keyboard controller at 0x60/0x64: enough for a guest to probe it and to reset the
 * machine with command 0xFE (pulse the reset line).  No keyboard or mouse behind it. */
#ifndef MINIVMM_DEVICES_I8042_H
#define MINIVMM_DEVICES_I8042_H

#include <stdbool.h>
#include <stdint.h>

struct i8042 {
	void (*reset)(void *opaque); /* the guest asked for a system reset */
	void *opaque;
	uint8_t pending_cmd; /* a command waiting for its data byte on 0x60 */
	uint8_t ctr;	     /* controller configuration byte */
	int out;	     /* byte to return on 0x60, -1 when the output buffer is empty */
};

void i8042_init(struct i8042 *kbd, void (*reset)(void *opaque), void *opaque);
/* Back to the power-on state (the reset callback stays).  As a machine device: "i8042", whose
 * state starts with its struct i8042 (devices/device.h). */
void i8042_power_on(struct i8042 *kbd);
/* io_bus handler for one port: register it twice, at 0x60 and 0x64, with the base in offset 0. */
void i8042_data_io(void *kbd, uint64_t offset, uint8_t *data, unsigned len, bool is_write);
void i8042_cmd_io(void *kbd, uint64_t offset, uint8_t *data, unsigned len, bool is_write);

#endif
