/* Reading a libFuzzer input as a stream of little values: each take_* consumes bytes and returns
 * 0 once the input is used up, so a harness loops `while (fuzz_left(in))`. */
#ifndef MINIVMM_TESTS_FUZZ_INPUT_H
#define MINIVMM_TESTS_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct fuzz_input {
	const uint8_t *p;
	size_t n;
};

static inline size_t fuzz_left(const struct fuzz_input *in)
{
	return in->n;
}

static inline uint64_t fuzz_take(struct fuzz_input *in, unsigned bytes)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < bytes && in->n; i++, in->p++, in->n--)
		v |= (uint64_t)*in->p << (8 * i);
	return v;
}

static inline uint8_t take_u8(struct fuzz_input *in)
{
	return (uint8_t)fuzz_take(in, 1);
}

static inline uint16_t take_u16(struct fuzz_input *in)
{
	return (uint16_t)fuzz_take(in, 2);
}

static inline uint32_t take_u32(struct fuzz_input *in)
{
	return (uint32_t)fuzz_take(in, 4);
}

static inline uint64_t take_u64(struct fuzz_input *in)
{
	return fuzz_take(in, 8);
}

/* Copy up to len bytes into buf (the rest zeroed); returns how many came from the input. */
static inline size_t take_bytes(struct fuzz_input *in, void *buf, size_t len)
{
	size_t n = len < in->n ? len : in->n;
	memcpy(buf, in->p, n);
	memset((uint8_t *)buf + n, 0, len - n);
	in->p += n;
	in->n -= n;
	return n;
}

#endif
