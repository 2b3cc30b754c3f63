/* The 16550A UART driven by random port accesses (any register, DLAB on or off, FIFO control,
 * loopback, scratch) with host input pushed between them, as the VM's loop does when the console
 * has bytes, and a machine reset now and then.  Output goes to /dev/null: the transmit path runs
 * in full.  A fresh UART per input. */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "devices/serial.h"
#include "tests/fuzz/fuzz_input.h"

static int out_fd = -1;
static unsigned irq_changes;

static void set_irq(void *opaque, bool level)
{
	(void)opaque;
	(void)level;
	irq_changes++;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	out_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	return out_fd < 0 ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = {data, size};
	struct serial_ops ops = {.set_irq = set_irq};
	struct serial *s;
	uint8_t buf[64];

	if (serial_create(out_fd, &ops, &s) < 0)
		abort();
	while (fuzz_left(&in)) {
		uint8_t op = take_u8(&in);
		uint8_t v = take_u8(&in);
		switch (op & 3) {
		case 0:
		case 1: /* any register, any width (the bus hands the device 1, 2 or 4 bytes) */
		{
			unsigned len = 1u << ((op >> 2) % 3);
			uint8_t d[4] = {v, v, v, v};
			serial_io(s, (op >> 4) % 8, d, len, op & 0x80);
			break;
		}
		case 2: { /* host input: never more than the room it reports */
			size_t room = serial_rx_room(s);
			size_t n = take_bytes(&in, buf, v % sizeof(buf));
			size_t took = serial_receive(s, buf, n);
			if (took > n || (room < n && took > room))
				abort();
			break;
		}
		default:
			if (v & 1)
				serial_reset(s);
			break;
		}
	}
	serial_destroy(s);
	return 0;
}
