/* MC146818 CMOS RTC at ports 0x70/0x71: the host's time (UTC), in BCD or binary and 12 or 24 hour
 * form as register B asks, and the CMOS bytes a BIOS would have left (memory sizes).  Writes to the
 * time registers are accepted but do not move the clock (the guest keeps time with kvm-clock). */
#ifndef MINIVMM_DEVICES_RTC_H
#define MINIVMM_DEVICES_RTC_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct rtc;

int rtc_create(uint64_t ram_bytes, struct rtc **out);
void rtc_destroy(struct rtc *rtc);
/* Registers A-D and the index back to their power-on values; the CMOS bytes (battery-backed)
 * stay, and the clock keeps the host's time.  As a machine device: "rtc" (devices/device.h). */
void rtc_reset(struct rtc *rtc);
/* io_bus handler: offset 0 index (bit 7 = NMI mask), offset 1 data. */
void rtc_io(void *rtc, uint64_t offset, uint8_t *data, unsigned len, bool is_write);
/* CMOS 0x5F: the number of CPUs minus one, where firmware looks for it. */
void rtc_set_smp_count(struct rtc *rtc, unsigned ncpus);
/* For tests: read the clock as if the host time were `now`. */
void rtc_set_time_source(struct rtc *rtc, time_t (*now)(void));

#endif
