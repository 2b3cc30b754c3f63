/* MC146818 CMOS RTC (see rtc.h). */
#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "devices/device.h"
#include "devices/io_bus.h"
#include "devices/rtc.h"
#include "devices/machine_config.h"
#include "memory/guest_memory.h"
#include "memory/layout.h"
#include "lib/error.h"

enum {
	REG_SEC = 0x00,
	REG_MIN = 0x02,
	REG_HOUR = 0x04,
	REG_WDAY = 0x06,
	REG_MDAY = 0x07,
	REG_MON = 0x08,
	REG_YEAR = 0x09,
	REG_A = 0x0A,
	REG_B = 0x0B,
	REG_C = 0x0C,
	REG_D = 0x0D,
	REG_CENTURY = 0x32,
};

#define B_24H 0x02
#define B_BINARY 0x04
#define D_VRT 0x80

struct rtc {
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t cmos[128];
	time_t (*now)(void);
	struct io_bus *pio; /* as the machine's RTC */
};

static void control_registers_power_on(struct rtc *rtc)
{
	rtc->index = 0;
	rtc->cmos[REG_A] = 0x26; /* 32.768 kHz time base, 1024 Hz rate */
	rtc->cmos[REG_B] = B_24H;
	rtc->cmos[REG_C] = 0;
	rtc->cmos[REG_D] = D_VRT;
}

static time_t host_now(void)
{
	return time(NULL);
}

static uint8_t encode(const struct rtc *rtc, unsigned v)
{
	if (rtc->cmos[REG_B] & B_BINARY)
		return v;
	return (v / 10) << 4 | v % 10;
}

static uint8_t clock_read(const struct rtc *rtc, unsigned reg)
{
	time_t t = rtc->now();
	struct tm tm;
	gmtime_r(&t, &tm);
	switch (reg) {
	case REG_SEC:
		return encode(rtc, tm.tm_sec > 59 ? 59 : tm.tm_sec);
	case REG_MIN:
		return encode(rtc, tm.tm_min);
	case REG_HOUR:
		if (rtc->cmos[REG_B] & B_24H)
			return encode(rtc, tm.tm_hour);
		/* 12-hour form: 12, 1..11, with bit 7 for PM */
		return encode(rtc, tm.tm_hour % 12 ? tm.tm_hour % 12 : 12) |
		       (tm.tm_hour >= 12 ? 0x80 : 0);
	case REG_WDAY:
		return encode(rtc, tm.tm_wday + 1);
	case REG_MDAY:
		return encode(rtc, tm.tm_mday);
	case REG_MON:
		return encode(rtc, tm.tm_mon + 1);
	case REG_YEAR:
		return encode(rtc, tm.tm_year % 100);
	default: /* REG_CENTURY */
		return encode(rtc, (tm.tm_year + 1900) / 100);
	}
}

static bool is_clock(unsigned reg)
{
	return (reg <= REG_YEAR && reg != 1 && reg != 3 && reg != 5) || reg == REG_CENTURY;
}

void rtc_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct rtc *rtc = opaque;
	if (len != 1) {
		if (!is_write)
			memset(data, 0xFF, len);
		return;
	}
	pthread_mutex_lock(&rtc->lock);
	if (offset == 0) {
		if (is_write)
			rtc->index = data[0] & 0x7F;
		else
			data[0] = 0xFF; /* the index port is write-only */
	} else if (is_write) {
		switch (rtc->index) {
		case REG_A:
			rtc->cmos[REG_A] = data[0] & 0x7F; /* UIP is read-only */
			break;
		case REG_B:
			rtc->cmos[REG_B] = data[0];
			break;
		case REG_C:
		case REG_D:
			break; /* read-only */
		default:
			if (!is_clock(rtc->index))
				rtc->cmos[rtc->index] = data[0];
			break;
		}
	} else if (is_clock(rtc->index)) {
		data[0] = clock_read(rtc, rtc->index);
	} else {
		data[0] = rtc->cmos[rtc->index];
		if (rtc->index == REG_C)
			rtc->cmos[REG_C] = 0; /* reading C acknowledges interrupts */
	}
	pthread_mutex_unlock(&rtc->lock);
}

static void put16(uint8_t *p, uint64_t v)
{
	if (v > 0xFFFF)
		v = 0xFFFF;
	p[0] = v;
	p[1] = v >> 8;
}

int rtc_create(uint64_t ram, struct rtc **out)
{
	struct rtc *rtc = calloc(1, sizeof(*rtc));
	if (!rtc)
		return -ENOMEM;
	pthread_mutex_init(&rtc->lock, NULL);
	rtc->now = host_now;
	control_registers_power_on(rtc);
	uint64_t low = ram < LAYOUT_LOW_RAM_END ? ram : LAYOUT_LOW_RAM_END;
	uint64_t high = ram - low;
	put16(&rtc->cmos[0x15], 640);			  /* base memory, KiB */
	uint64_t ext = low > MiB ? (low - MiB) / KiB : 0; /* KiB above 1 MiB */
	put16(&rtc->cmos[0x17], ext);
	put16(&rtc->cmos[0x30], ext);
	uint64_t above16 = low > 16 * MiB ? (low - 16 * MiB) / (64 * KiB) : 0;
	put16(&rtc->cmos[0x34], above16);
	uint64_t above4g = high / (64 * KiB);
	rtc->cmos[0x5B] = above4g;
	rtc->cmos[0x5C] = above4g >> 8;
	rtc->cmos[0x5D] = above4g >> 16;
	*out = rtc;
	return 0;
}

void rtc_set_smp_count(struct rtc *rtc, unsigned ncpus)
{
	pthread_mutex_lock(&rtc->lock);
	rtc->cmos[0x5F] = ncpus ? ncpus - 1 : 0;
	pthread_mutex_unlock(&rtc->lock);
}

void rtc_set_time_source(struct rtc *rtc, time_t (*now)(void))
{
	rtc->now = now ? now : host_now;
}

void rtc_destroy(struct rtc *rtc)
{
	if (!rtc)
		return;
	pthread_mutex_destroy(&rtc->lock);
	free(rtc);
}

void rtc_reset(struct rtc *rtc)
{
	pthread_mutex_lock(&rtc->lock);
	control_registers_power_on(rtc);
	pthread_mutex_unlock(&rtc->lock);
}

/* ---- the machine's RTC ---- */

static int rtc_device_create(struct device_env *env, void **state)
{
	struct rtc *rtc;
	int r = rtc_create(env->mem->size, &rtc);
	if (r < 0)
		return r;
	rtc->pio = env->pio;
	if (env->machine) /* CMOS 0x5F: firmware's count of the CPUs to wake */
		rtc_set_smp_count(rtc, __builtin_popcountll(env->machine->boot_cpus));
	r = io_bus_register(env->pio, LAYOUT_PORT_RTC, 2, rtc_io, rtc);
	if (r < 0) {
		error_set(r, "rtc: ports 0x%x-0x%x: %s", LAYOUT_PORT_RTC, LAYOUT_PORT_RTC + 1,
			  strerror(-r));
		rtc_destroy(rtc);
		return r;
	}
	*state = rtc;
	return 0;
}

static void rtc_device_reset(void *state)
{
	rtc_reset(state);
}

static void rtc_device_destroy(void *state)
{
	struct rtc *rtc = state;
	io_bus_unregister(rtc->pio, LAYOUT_PORT_RTC, rtc);
	rtc_destroy(rtc);
}

static const struct device_ops rtc_device = {
    .name = "rtc",
    .create = rtc_device_create,
    .reset = rtc_device_reset,
    .destroy = rtc_device_destroy,
};
DEVICE(rtc_device, DEVICE_LEVEL_PLATFORM);
