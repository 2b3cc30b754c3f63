/* 16550A UART (COM1).  Output goes to a file descriptor (or nowhere); input is pushed by the VM's
 * main loop with serial_receive().  The interrupt output follows the IIR state through ops->set_irq
 * (raised and lowered, so an edge-triggered ISA IRQ sees each new condition).
 *
 * Input is held back (serial_rx_room() is 0) until the guest first enables the receive interrupt:
 * a guest that has not opened the port yet would only lose the bytes when it resets the FIFO, so
 * commands piped into minivmm wait for the guest's shell instead of vanishing.
 */
#ifndef MINIVMM_DEVICES_SERIAL_H
#define MINIVMM_DEVICES_SERIAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct serial_ops {
	void (*set_irq)(void *opaque, bool level);
	void *opaque;
};

struct serial;

/* out_fd < 0: output is discarded. The fd stays the caller's. */
int serial_create(int out_fd, const struct serial_ops *ops, struct serial **out);
void serial_destroy(struct serial *s);
/* Back to the power-on registers (FIFOs empty, input held back until the guest opens the port
 * again); the output fd stays.  As a machine device ("serial", devices/device.h) COM1 at 0x3F8,
 * IRQ 4, writing to env->console_fd. */
void serial_reset(struct serial *s);
/* io_bus handler for the 8 registers (offset 0..7). */
void serial_io(void *s, uint64_t offset, uint8_t *data, unsigned len, bool is_write);
/* Free receive slots; 0 while the FIFO is full or the guest has not enabled receiving. */
size_t serial_rx_room(struct serial *s);
/* Queue up to len bytes of input; returns how many were taken. */
size_t serial_receive(struct serial *s, const uint8_t *buf, size_t len);
/* An eventfd that becomes readable when receive room may have appeared. */
int serial_room_fd(struct serial *s);

#endif
