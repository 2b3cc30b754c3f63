/* Byte sizes for the image tool (see size.h).  Written by hand rather than with strtoull so that
 * signs, leading blanks, hex and overflow are all refused instead of silently accepted. */
#include <errno.h>
#include <stdio.h>

#include "tools/size.h"

#define SIZE_MAX_VALUE ((uint64_t)INT64_MAX)

static int size_shift(char c)
{
	switch (c) {
	case 'b':
	case 'B':
		return 0;
	case 'k':
	case 'K':
		return 10;
	case 'm':
	case 'M':
		return 20;
	case 'g':
	case 'G':
		return 30;
	case 't':
	case 'T':
		return 40;
	case 'p':
	case 'P':
		return 50;
	case 'e':
	case 'E':
		return 60;
	default:
		return -1;
	}
}

int size_parse(const char *text, uint64_t *out)
{
	const char *p = text;
	uint64_t whole = 0, frac = 0, frac_div = 1;
	int digits = 0, shift = 0;

	if (!text)
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++, digits++) {
		if (whole > (SIZE_MAX_VALUE - (uint64_t)(*p - '0')) / 10)
			return -ERANGE;
		whole = whole * 10 + (uint64_t)(*p - '0');
	}
	if (*p == '.') {
		p++;
		int fdigits = 0;
		for (; *p >= '0' && *p <= '9'; p++, fdigits++) {
			/* Beyond 18 decimals the fraction cannot change a byte count that fits in
			 * 63 bits. */
			if (fdigits < 18) {
				frac = frac * 10 + (uint64_t)(*p - '0');
				frac_div *= 10;
			}
		}
		if (fdigits == 0)
			return -EINVAL;
		digits += fdigits;
	}
	if (digits == 0)
		return -EINVAL;
	if (*p) {
		shift = size_shift(*p);
		if (shift < 0 || p[1])
			return -EINVAL;
	}
	if (whole > SIZE_MAX_VALUE >> shift)
		return -ERANGE;
	uint64_t value = whole << shift;
	if (frac) {
		/* A fraction only makes sense with a unit: "1.5" bytes is not a size. */
		if (shift == 0)
			return -EINVAL;
		/* frac / frac_div < 1, so the product is below 2^shift; split to avoid overflow. */
		__uint128_t part = ((__uint128_t)frac << shift) / frac_div;
		if (value > SIZE_MAX_VALUE - (uint64_t)part)
			return -ERANGE;
		value += (uint64_t)part;
	}
	*out = value;
	return 0;
}

char *size_format(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	/* qemu-img moves to the next unit once the value reaches 1000/1024 of it ("0.977 KiB"). */
	double x = (double)bytes * 1.024;
	int i = 0;
	while (i < 6 && x >= (double)(1ULL << (10 * (i + 1))))
		i++;
	snprintf(buf, len, "%0.3g %s", (double)bytes / (double)(1ULL << (10 * i)), units[i]);
	return buf;
}
