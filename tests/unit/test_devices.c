/* Device models driven through their registers, no KVM: io_bus dispatch, the 16550A UART, the
 * CMOS RTC, the i8042 and the CPUID fix-ups. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cpu/cpuid.h"
#include "devices/i8042.h"
#include "devices/io_bus.h"
#include "devices/rtc.h"
#include "devices/serial.h"
#include "memory/layout.h"

/* --- io_bus --- */

static unsigned hits;
static uint64_t last_off;

static void h(void *o, uint64_t off, uint8_t *d, unsigned len, bool w)
{
	(void)o;
	hits++;
	last_off = off;
	if (!w)
		memset(d, 0x5A, len);
}

static void test_io_bus(void **state)
{
	(void)state;
	struct io_bus b;
	int tag1, tag2;
	uint8_t d[8];
	assert_int_equal(io_bus_init(&b), 0);
	assert_int_equal(io_bus_register(&b, 0x100, 8, h, &tag1), 0);
	assert_int_equal(io_bus_register(&b, 0x108, 8, h, &tag2), 0);
	assert_int_equal(io_bus_register(&b, 0x104, 8, h, &tag2), -EBUSY);
	assert_int_equal(io_bus_register(&b, 0xFC, 8, h, &tag2), -EBUSY);
	assert_int_equal(io_bus_register(&b, 0x10, 0, h, &tag2), -EINVAL);
	assert_int_equal(io_bus_register(&b, UINT64_MAX, 2, h, &tag2), -EINVAL);
	assert_true(io_bus_access(&b, 0x10A, d, 2, false));
	assert_int_equal(last_off, 2);
	assert_int_equal(d[0], 0x5A);
	/* straddling two regions or past the end: nobody, reads all-ones */
	assert_false(io_bus_access(&b, 0x107, d, 2, false));
	assert_int_equal(d[0], 0xFF);
	assert_int_equal(d[1], 0xFF);
	assert_false(io_bus_access(&b, 0x200, d, 4, false));
	assert_false(io_bus_access(&b, UINT64_MAX, d, 4, false));
	assert_false(io_bus_access(&b, 0x100, d, 0, false));
	assert_int_equal(io_bus_unregister(&b, 0x108, &tag1), -ENOENT); /* not its owner */
	assert_int_equal(io_bus_unregister(&b, 0x108, &tag2), 0);
	assert_false(io_bus_access(&b, 0x10A, d, 1, true));
	/* many regions keep sorted order */
	for (int i = 0; i < 100; i++)
		assert_int_equal(io_bus_register(&b, 0x10000 + (99 - i) * 0x10, 0x10, h, &tag1), 0);
	hits = 0;
	for (int i = 0; i < 100; i++)
		assert_true(io_bus_access(&b, 0x10000 + i * 0x10 + 3, d, 1, false));
	assert_int_equal(hits, 100);
	io_bus_destroy(&b);
}

/* --- serial --- */

static bool irq;
static unsigned irq_edges;

static void set_irq(void *o, bool level)
{
	(void)o;
	if (level && !irq)
		irq_edges++;
	irq = level;
}

static uint8_t uart_in(struct serial *s, unsigned reg)
{
	uint8_t v;
	serial_io(s, reg, &v, 1, false);
	return v;
}

static void uart_out(struct serial *s, unsigned reg, uint8_t v)
{
	serial_io(s, reg, &v, 1, true);
}

static void test_serial(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	struct serial_ops ops = {.set_irq = set_irq};
	struct serial *s;
	irq = false;
	irq_edges = 0;
	assert_int_equal(serial_create(p[1], &ops, &s), 0);
	assert_int_equal(uart_in(s, 2), 0x01);	      /* IIR: nothing pending, no FIFO */
	assert_int_equal(uart_in(s, 5) & 0x60, 0x60); /* THR empty */
	/* output */
	uart_out(s, 0, 'h');
	uart_out(s, 0, 'i');
	char buf[4] = {0};
	assert_int_equal(read(p[0], buf, 2), 2);
	assert_string_equal(buf, "hi");
	/* divisor latch */
	uart_out(s, 3, 0x80);
	uart_out(s, 0, 0x01);
	uart_out(s, 1, 0x00);
	assert_int_equal(uart_in(s, 0), 0x01);
	uart_out(s, 3, 0x03);
	assert_int_equal(uart_in(s, 3), 0x03);
	/* scratch */
	uart_out(s, 7, 0xA5);
	assert_int_equal(uart_in(s, 7), 0xA5);
	/* input is held until the guest enables the receive interrupt */
	assert_int_equal(serial_rx_room(s), 0);
	assert_int_equal(serial_receive(s, (const uint8_t *)"x", 1), 0);
	uart_out(s, 2, 0xC7); /* FIFO on, clear, trigger 14 */
	uart_out(s, 1, 0x01); /* RDI */
	assert_int_equal(serial_rx_room(s), 16);
	assert_int_equal(serial_receive(s, (const uint8_t *)"0123456789abcdefXYZ", 19), 16);
	assert_true(irq);
	assert_int_equal(uart_in(s, 2), 0xC4); /* data available at the trigger level */
	assert_int_equal(uart_in(s, 5) & 1, 1);
	assert_int_equal(uart_in(s, 0), '0');
	assert_int_equal(uart_in(s, 0), '1');
	assert_int_equal(uart_in(s, 2), 0xC4); /* 14 left: still at the trigger level */
	assert_int_equal(uart_in(s, 0), '2');
	assert_int_equal(uart_in(s, 2), 0xCC); /* below the trigger: character timeout */
	for (int i = 3; i < 16; i++)
		assert_int_equal(uart_in(s, 0), "0123456789abcdef"[i]);
	assert_int_equal(uart_in(s, 5) & 1, 0);
	assert_false(irq);
	assert_int_equal(uart_in(s, 2), 0xC1);
	/* the room eventfd fired when the FIFO drained */
	uint64_t ev;
	assert_int_equal(read(serial_room_fd(s), &ev, 8), 8);
	/* THRE interrupt: raised when enabled, cleared by reading IIR, raised again by a write */
	unsigned before = irq_edges;
	uart_out(s, 1, 0x03);
	assert_true(irq);
	assert_int_equal(irq_edges, before + 1);
	assert_int_equal(uart_in(s, 2), 0xC2);
	assert_false(irq);
	uart_out(s, 0, '!');
	assert_true(irq);
	assert_int_equal(read(p[0], buf, 1), 1);
	uart_out(s, 1, 0x00);
	assert_false(irq);
	/* loopback: THR comes back in RBR, MSR mirrors MCR */
	uart_out(s, 4, 0x10 | 0x0A);
	assert_int_equal(uart_in(s, 6) & 0xF0, 0x90);
	uart_out(s, 0, 'L');
	assert_int_equal(uart_in(s, 5) & 1, 1);
	assert_int_equal(uart_in(s, 0), 'L');
	uart_out(s, 4, 0x00);
	assert_int_equal(uart_in(s, 6) & 0xB0, 0xB0);
	/* odd sizes and offsets are ignored */
	uint8_t w[2] = {1, 2};
	serial_io(s, 0, w, 2, false);
	assert_int_equal(w[0], 0xFF);
	serial_io(s, 9, w, 1, false);
	assert_int_equal(w[0], 0xFF);
	serial_destroy(s);
	close(p[0]);
	close(p[1]);
}

/* --- RTC --- */

static time_t fixed_now(void)
{
	return 1795512295; /* 2026-11-24 09:24:55 UTC, a Tuesday */
}

static uint8_t cmos(struct rtc *r, uint8_t reg)
{
	uint8_t v = reg;
	rtc_io(r, 0, &v, 1, true);
	rtc_io(r, 1, &v, 1, false);
	return v;
}

static void cmos_write(struct rtc *r, uint8_t reg, uint8_t val)
{
	rtc_io(r, 0, &reg, 1, true);
	rtc_io(r, 1, &val, 1, true);
}

static void test_rtc(void **state)
{
	(void)state;
	struct rtc *r;
	assert_int_equal(rtc_create(5 * GiB, &r), 0);
	rtc_set_time_source(r, fixed_now);
	assert_int_equal(cmos(r, 0x0B) & 0x06, 0x02); /* BCD, 24 h */
	assert_int_equal(cmos(r, 0x00), 0x55);
	assert_int_equal(cmos(r, 0x02), 0x24);
	assert_int_equal(cmos(r, 0x04), 0x09);
	assert_int_equal(cmos(r, 0x06), 0x03);
	assert_int_equal(cmos(r, 0x07), 0x24);
	assert_int_equal(cmos(r, 0x08), 0x11);
	assert_int_equal(cmos(r, 0x09), 0x26);
	assert_int_equal(cmos(r, 0x32), 0x20);
	assert_int_equal(cmos(r, 0x0D), 0x80);
	assert_int_equal(cmos(r, 0x0A) & 0x80, 0); /* never mid-update */
	cmos_write(r, 0x0B, 0x06);		   /* binary, 24 h */
	assert_int_equal(cmos(r, 0x00), 55);
	assert_int_equal(cmos(r, 0x09), 26);
	cmos_write(r, 0x0B, 0x04); /* binary, 12 h */
	assert_int_equal(cmos(r, 0x04), 9);
	cmos_write(r, 0x0D, 0x00); /* read-only */
	assert_int_equal(cmos(r, 0x0D), 0x80);
	/* memory sizes: 3 GiB low (in 64 KiB above 16 MiB), 2 GiB high */
	unsigned above16 = cmos(r, 0x34) | cmos(r, 0x35) << 8;
	assert_int_equal(above16, (3 * GiB - 16 * MiB) / (64 * KiB));
	unsigned high = cmos(r, 0x5B) | cmos(r, 0x5C) << 8 | cmos(r, 0x5D) << 16;
	assert_int_equal(high, 2 * GiB / (64 * KiB));
	/* NVRAM */
	cmos_write(r, 0x40, 0x77);
	assert_int_equal(cmos(r, 0x40), 0x77);
	cmos_write(r, 0xC0, 0x11); /* NMI bit in the index is masked off */
	assert_int_equal(cmos(r, 0x40), 0x11);
	rtc_destroy(r);
}

/* --- i8042 --- */

static unsigned resets;

static void on_reset(void *o)
{
	(void)o;
	resets++;
}

static void test_i8042(void **state)
{
	(void)state;
	struct i8042 k;
	uint8_t v;
	i8042_init(&k, on_reset, NULL);
	i8042_cmd_io(&k, 0, &v, 1, false);
	assert_int_equal(v & 0x01, 0); /* output buffer empty */
	assert_int_equal(v & 0x02, 0); /* ready for input */
	v = 0xAA;
	i8042_cmd_io(&k, 0, &v, 1, true);
	i8042_cmd_io(&k, 0, &v, 1, false);
	assert_int_equal(v & 1, 1);
	i8042_data_io(&k, 0, &v, 1, false);
	assert_int_equal(v, 0x55);
	v = 0xFE;
	i8042_cmd_io(&k, 0, &v, 1, true);
	assert_int_equal(resets, 1);
	v = 0xD1;
	i8042_cmd_io(&k, 0, &v, 1, true);
	v = 0xFE; /* output port with bit 0 low: reset */
	i8042_data_io(&k, 0, &v, 1, true);
	assert_int_equal(resets, 2);
	/* Other widths: reads give all ones, writes (even a reset command) do nothing. */
	uint8_t w[2] = {0xFE, 0xFE};
	i8042_cmd_io(&k, 0, w, 2, true);
	assert_int_equal(resets, 2);
	i8042_data_io(&k, 0, w, 2, true);
	memset(w, 0, sizeof(w));
	i8042_cmd_io(&k, 0, w, 2, false);
	assert_int_equal(w[0] & w[1], 0xFF);
	memset(w, 0, sizeof(w));
	i8042_data_io(&k, 0, w, 2, false);
	assert_int_equal(w[0] & w[1], 0xFF);
	assert_int_equal(resets, 2);
}

/* --- CPUID --- */

static void test_cpuid(void **state)
{
	(void)state;
	struct {
		struct kvm_cpuid2 h;
		struct kvm_cpuid_entry2 e[8];
	} c;
	memset(&c, 0, sizeof(c));
	c.h.nent = 8;
	c.e[0] = (struct kvm_cpuid_entry2){.function = 1, .ebx = 0xFF00ABCD, .ecx = 0};
	c.e[1] = (struct kvm_cpuid_entry2){.function = 0xB, .index = 0};
	c.e[2] = (struct kvm_cpuid_entry2){.function = 0xB, .index = 1};
	c.e[3] = (struct kvm_cpuid_entry2){.function = 0x40000000};
	c.e[4] = (struct kvm_cpuid_entry2){
	    .function = 0xD, .index = 0, .eax = 0x207, .ebx = 0x240, .ecx = 0xA88};
	c.e[5] = (struct kvm_cpuid_entry2){.function = 0xD, .index = 2, .eax = 0x100, .ebx = 0x240};
	c.e[6] = (struct kvm_cpuid_entry2){.function = 0xD, .index = 9, .eax = 8, .ebx = 0xA80};
	c.e[7] = (struct kvm_cpuid_entry2){.function = 4, .index = 0, .eax = 0x121};
	cpuid_fixup(&c.h, 5, 6);
	assert_int_equal(c.e[0].ebx >> 24, 5);
	assert_int_equal((c.e[0].ebx >> 16) & 0xFF, 6);
	assert_int_equal(c.e[0].ebx & 0xFFFF, 0xABCD);
	assert_true(c.e[0].ecx & (1u << 31));
	assert_true(c.e[0].edx & (1u << 28));
	assert_int_equal(c.e[1].edx, 5);
	assert_int_equal(c.e[1].ecx >> 8 & 0xFF, 1); /* SMT level */
	assert_int_equal(c.e[2].eax, 3);	     /* 3 bits for 6 cores */
	assert_int_equal(c.e[2].ebx, 6);
	assert_int_equal(c.e[2].ecx >> 8 & 0xFF, 2); /* core level */
	assert_memory_equal(&c.e[3].ebx, "KVMKVMKVM\0\0\0", 12);
	assert_int_equal(c.e[7].eax >> 26, 5);
	/* no AVX and no PKU advertised: their XSAVE components go */
	assert_int_equal(c.e[4].eax, 0x3);
	assert_int_equal(c.e[4].ecx, 576);
	assert_int_equal(c.e[5].eax, 0);
	assert_int_equal(c.e[6].eax, 0);
	/* with AVX they stay */
	c.e[4].eax = 0x207;
	c.e[5].eax = 0x100;
	c.e[5].ebx = 0x240;
	c.e[0].ecx = 1u << 28;
	cpuid_fixup(&c.h, 0, 1);
	assert_int_equal(c.e[4].eax, 0x7);
	assert_int_equal(c.e[4].ecx, 0x340);
	assert_false(c.e[0].edx & (1u << 28)); /* one CPU: no HTT */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_io_bus), cmocka_unit_test(test_serial),
	    cmocka_unit_test(test_rtc),	   cmocka_unit_test(test_i8042),
	    cmocka_unit_test(test_cpuid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
