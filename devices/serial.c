/* 16550A UART: registers, FIFOs, loopback and the interrupt identification logic. */
#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/device.h"
#include "devices/io_bus.h"
#include "devices/serial.h"
#include "memory/layout.h"
#include "lib/error.h"

#define FIFO_SIZE 16

enum { RBR_THR = 0, IER = 1, IIR_FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

#define IER_RDI 0x01
#define IER_THRI 0x02
#define IER_RLSI 0x04
#define IER_MSI 0x08
#define IIR_NONE 0x01
#define IIR_MSI 0x00
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_RLSI 0x06
#define IIR_TIMEOUT 0x0C
#define IIR_FIFO_ON 0xC0
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define LCR_DLAB 0x80
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

struct serial {
	pthread_mutex_t lock;
	int out_fd;
	int room_fd;
	struct serial_ops ops;
	uint8_t ier, lcr, mcr, lsr_err, scr, fcr, dll, dlm;
	bool thr_pending; /* THRE interrupt pending */
	bool irq_level;
	bool rx_ready; /* the guest has enabled the receive interrupt at least once */
	uint8_t rx[FIFO_SIZE];
	unsigned rx_head, rx_count;
	const struct device_env *env; /* as the machine's COM1 */
};

/* The power-on register values (a BIOS would leave 9600 8N1). */
static void power_on_values(struct serial *s)
{
	s->ier = s->mcr = s->lsr_err = s->scr = s->fcr = 0;
	s->dll = 12;
	s->dlm = 0;
	s->lcr = 0x03;
	s->thr_pending = false;
	s->rx_ready = false;
	s->rx_head = s->rx_count = 0;
}

static const uint8_t rx_trigger[4] = {1, 4, 8, 14};

static unsigned rx_capacity(const struct serial *s)
{
	return (s->fcr & FCR_ENABLE) ? FIFO_SIZE : 1;
}

static uint8_t iir(const struct serial *s)
{
	uint8_t fifo = (s->fcr & FCR_ENABLE) ? IIR_FIFO_ON : 0;
	if ((s->ier & IER_RLSI) && s->lsr_err)
		return fifo | IIR_RLSI;
	if ((s->ier & IER_RDI) && s->rx_count) {
		bool full = !(s->fcr & FCR_ENABLE) || s->rx_count >= rx_trigger[s->fcr >> 6];
		return fifo | (full ? IIR_RDI : IIR_TIMEOUT);
	}
	if ((s->ier & IER_THRI) && s->thr_pending)
		return fifo | IIR_THRI;
	return fifo | IIR_NONE;
}

static void update_irq(struct serial *s)
{
	bool level = !(iir(s) & IIR_NONE);
	if (level != s->irq_level) {
		s->irq_level = level;
		if (s->ops.set_irq)
			s->ops.set_irq(s->ops.opaque, level);
	}
}

static void notify_room(struct serial *s)
{
	uint64_t one = 1;
	if (write(s->room_fd, &one, sizeof(one)) < 0) {
		/* The counter cannot overflow in practice; a lost wake-up only delays input. */
	}
}

static void rx_push(struct serial *s, uint8_t c)
{
	if (s->rx_count >= rx_capacity(s)) {
		s->lsr_err |= LSR_OE;
		return;
	}
	s->rx[(s->rx_head + s->rx_count) % FIFO_SIZE] = c;
	s->rx_count++;
}

static void transmit(struct serial *s, uint8_t c)
{
	if (s->mcr & MCR_LOOP) {
		rx_push(s, c);
	} else if (s->out_fd >= 0) {
		for (;;) {
			ssize_t n = write(s->out_fd, &c, 1);
			if (n >= 0 || errno != EINTR)
				break; /* output errors (closed pipe, full disk) must not stop the
					  guest */
		}
	}
	s->thr_pending = true;
}

static uint8_t msr(const struct serial *s)
{
	if (s->mcr & MCR_LOOP) /* RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD */
		return (s->mcr & 0x02) << 3 | (s->mcr & 0x01) << 5 | (s->mcr & 0x04) << 4 |
		       (s->mcr & 0x08) << 4;
	return 0xB0; /* DCD, DSR, CTS: a connected line */
}

static uint8_t reg_read(struct serial *s, unsigned reg)
{
	switch (reg) {
	case RBR_THR: {
		if (s->lcr & LCR_DLAB)
			return s->dll;
		uint8_t c = 0;
		if (s->rx_count) {
			c = s->rx[s->rx_head];
			s->rx_head = (s->rx_head + 1) % FIFO_SIZE;
			s->rx_count--;
			if (!s->rx_count)
				notify_room(s);
		}
		return c;
	}
	case IER:
		return (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
	case IIR_FCR: {
		uint8_t v = iir(s);
		if ((v & 0x0F) == IIR_THRI)
			s->thr_pending = false; /* reading IIR acknowledges THRE */
		return v;
	}
	case LCR:
		return s->lcr;
	case MCR:
		return s->mcr;
	case LSR: {
		uint8_t v = LSR_THRE | LSR_TEMT | s->lsr_err | (s->rx_count ? LSR_DR : 0);
		s->lsr_err = 0;
		return v;
	}
	case MSR:
		return msr(s);
	default:
		return s->scr;
	}
}

static void reg_write(struct serial *s, unsigned reg, uint8_t v)
{
	switch (reg) {
	case RBR_THR:
		if (s->lcr & LCR_DLAB)
			s->dll = v;
		else
			transmit(s, v);
		break;
	case IER:
		if (s->lcr & LCR_DLAB) {
			s->dlm = v;
			break;
		}
		if ((v & IER_THRI) && !(s->ier & IER_THRI))
			s->thr_pending =
			    true; /* THR is always empty: enabling THRI interrupts now */
		if ((v & IER_RDI) && !s->rx_ready) {
			s->rx_ready = true;
			notify_room(s);
		}
		s->ier = v & 0x0F;
		break;
	case IIR_FCR:
		if ((v & FCR_ENABLE) != (s->fcr & FCR_ENABLE) || (v & FCR_CLEAR_RX)) {
			s->rx_count = 0;
			s->rx_head = 0;
			notify_room(s);
		}
		s->fcr = v & 0xC1;
		break;
	case LCR:
		s->lcr = v;
		break;
	case MCR:
		s->mcr = v & 0x1F;
		break;
	case SCR:
		s->scr = v;
		break;
	default: /* LSR and MSR are read-only */
		break;
	}
}

void serial_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct serial *s = opaque;
	if (len != 1 || offset > 7) {
		if (!is_write)
			memset(data, 0xFF, len);
		return;
	}
	pthread_mutex_lock(&s->lock);
	if (is_write)
		reg_write(s, offset, data[0]);
	else
		data[0] = reg_read(s, offset);
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

size_t serial_rx_room(struct serial *s)
{
	pthread_mutex_lock(&s->lock);
	size_t room = s->rx_ready ? rx_capacity(s) - s->rx_count : 0;
	pthread_mutex_unlock(&s->lock);
	return room;
}

size_t serial_receive(struct serial *s, const uint8_t *buf, size_t len)
{
	size_t n = 0;
	pthread_mutex_lock(&s->lock);
	while (s->rx_ready && n < len && s->rx_count < rx_capacity(s))
		rx_push(s, buf[n++]);
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

int serial_room_fd(struct serial *s)
{
	return s->room_fd;
}

int serial_create(int out_fd, const struct serial_ops *ops, struct serial **out)
{
	struct serial *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->room_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->room_fd < 0) {
		int r = -errno;
		free(s);
		return r;
	}
	pthread_mutex_init(&s->lock, NULL);
	s->out_fd = out_fd;
	if (ops)
		s->ops = *ops;
	power_on_values(s);
	*out = s;
	return 0;
}

void serial_destroy(struct serial *s)
{
	if (!s)
		return;
	close(s->room_fd);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

void serial_reset(struct serial *s)
{
	pthread_mutex_lock(&s->lock);
	power_on_values(s);
	update_irq(s); /* lowers the line if it was up */
	pthread_mutex_unlock(&s->lock);
}

/* ---- COM1 of the machine ---- */

static void com1_irq(void *opaque, bool level)
{
	const struct device_env *env = opaque;
	env->irq->set_irq(env->opaque, LAYOUT_IRQ_COM1, level);
}

static int com1_create(struct device_env *env, void **state)
{
	struct serial_ops ops = {.set_irq = com1_irq, .opaque = env};
	struct serial *s;
	int r = serial_create(env->console_fd, &ops, &s);
	if (r < 0)
		return r;
	s->env = env;
	r = io_bus_register(env->pio, LAYOUT_PORT_COM1, 8, serial_io, s);
	if (r < 0) {
		error_set(r, "serial: ports 0x%x-0x%x: %s", LAYOUT_PORT_COM1, LAYOUT_PORT_COM1 + 7,
			  strerror(-r));
		serial_destroy(s);
		return r;
	}
	*state = s;
	return 0;
}

static void com1_reset(void *state)
{
	serial_reset(state);
}

static void com1_destroy(void *state)
{
	struct serial *s = state;
	io_bus_unregister(s->env->pio, LAYOUT_PORT_COM1, s);
	serial_destroy(s);
}

static const struct device_ops com1_device = {
    .name = "serial",
    .create = com1_create,
    .reset = com1_reset,
    .destroy = com1_destroy,
};
DEVICE(com1_device, DEVICE_LEVEL_PLATFORM);
