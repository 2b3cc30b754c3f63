/* The MC146818 CMOS RTC driven by random accesses to its index and data ports (any index, the
 * NMI mask bit, writes to the time, alarm, status and CMOS bytes, register B's modes), with the
 * host clock read at times the input picks (any time_t, the end of a leap year, before 1970) and
 * a machine reset now and then.  A fresh RTC per input. */
#include <stdint.h>
#include <stdlib.h>

#include "devices/rtc.h"
#include "tests/fuzz/fuzz_input.h"

static time_t fake_now;

static time_t now(void)
{
	return fake_now;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = {data, size};
	struct rtc *rtc;

	if (rtc_create((uint64_t)take_u32(&in) << take_u8(&in) % 24, &rtc) < 0)
		return 0; /* a RAM size the machine refuses */
	fake_now = (time_t)take_u64(&in);
	rtc_set_time_source(rtc, now);
	rtc_set_smp_count(rtc, take_u16(&in));
	while (fuzz_left(&in)) {
		uint8_t op = take_u8(&in);
		uint8_t v = take_u8(&in);
		switch (op & 3) {
		case 0:
		case 1: { /* index or data, read or write, any width */
			uint8_t d[4] = {v, v, v, v};
			rtc_io(rtc, op & 1, d, 1u << ((op >> 2) % 3), op & 0x80);
			break;
		}
		case 2: /* the host clock moves, anywhere */
			fake_now =
			    op & 0x40 ? (time_t)((uint64_t)fake_now + v) : (time_t)take_u64(&in);
			break;
		default:
			rtc_reset(rtc);
			break;
		}
	}
	rtc_destroy(rtc);
	return 0;
}
