/* Resource template descriptors for _CRS (ACPI 6.4 section 6.4): small and large resource data. */
#include <errno.h>

#include "devices/aml.h"

enum {
	RES_IRQ = 0x22, /* small item 0x04, length 2 (0x23: length 3) */
	RES_IO = 0x47,	/* small item 0x08, length 7 */
	RES_END = 0x79, /* small item 0x0F, length 1 */
	RES_MEM32_FIXED = 0x86,
	RES_DWORD_ADDR = 0x87,
	RES_WORD_ADDR = 0x88,
	RES_EXT_IRQ = 0x89,
	RES_QWORD_ADDR = 0x8A,
};

enum { ADDR_MEMORY = 0, ADDR_IO = 1, ADDR_BUS = 2 };

static void res_fail(struct aml *r)
{
	if (!r->err)
		r->err = -EINVAL;
}

static void res_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = v >> (8 * i);
}

void aml_res_io(struct aml *r, uint16_t min, uint16_t max, uint8_t align, uint8_t len)
{
	if (max < min) {
		res_fail(r);
		return;
	}
	uint8_t d[8] = {RES_IO, 0x01 /* 16-bit decode */};
	res_le(d + 2, min, 2);
	res_le(d + 4, max, 2);
	d[6] = align;
	d[7] = len;
	aml_bytes(r, d, sizeof(d));
}

void aml_res_irq_noflags(struct aml *r, unsigned irq)
{
	if (irq > 15) {
		res_fail(r);
		return;
	}
	uint8_t d[3] = {RES_IRQ, (1u << irq) & 0xFF, (1u << irq) >> 8};
	aml_bytes(r, d, sizeof(d));
}

void aml_res_irq(struct aml *r, unsigned irq, bool edge, bool active_low, bool shared)
{
	if (irq > 15) {
		res_fail(r);
		return;
	}
	uint8_t d[4] = {RES_IRQ + 1, (1u << irq) & 0xFF, (1u << irq) >> 8,
			(edge ? 0x01 : 0) | (active_low ? 0x08 : 0) | (shared ? 0x10 : 0)};
	aml_bytes(r, d, sizeof(d));
}

void aml_res_interrupt(struct aml *r, enum aml_res_usage use, bool edge, bool active_low,
		       bool shared, uint32_t gsi)
{
	uint8_t d[9] = {RES_EXT_IRQ, 6, 0,
			(use == AML_RES_CONSUMER ? 0x01 : 0) | (edge ? 0x02 : 0) |
			    (active_low ? 0x04 : 0) | (shared ? 0x08 : 0),
			1};
	res_le(d + 5, gsi, 4);
	aml_bytes(r, d, sizeof(d));
}

void aml_res_memory32_fixed(struct aml *r, bool rw, uint32_t base, uint32_t len)
{
	if (len && base + (uint64_t)len - 1 > UINT32_MAX) {
		res_fail(r);
		return;
	}
	uint8_t d[12] = {RES_MEM32_FIXED, 9, 0, rw ? 1 : 0};
	res_le(d + 4, base, 4);
	res_le(d + 8, len, 4);
	aml_bytes(r, d, sizeof(d));
}

/* Word, DWord and QWord address-space descriptors share one shape; `w` is the field width. */
static void res_address(struct aml *r, uint8_t tag, unsigned w, uint8_t type,
			enum aml_res_usage use, uint8_t type_flags, uint64_t min, uint64_t max)
{
	uint64_t lim = w == 8 ? UINT64_MAX : (1ULL << (8 * w)) - 1;
	/* _LEN = max - min + 1 must fit the field too. */
	if (max < min || max > lim || max - min == lim) {
		res_fail(r);
		return;
	}
	uint8_t d[3 + 3 + 5 * 8] = {tag};
	unsigned body = 3 + 5 * w;
	res_le(d + 1, body, 2);
	d[3] = type;
	/* Fixed min and max (the window is exactly this), positive decode. */
	d[4] = 0x0C | (use == AML_RES_CONSUMER ? 0x01 : 0);
	d[5] = type_flags;
	res_le(d + 6, 0, w);			 /* granularity */
	res_le(d + 6 + w, min, w);		 /* range minimum */
	res_le(d + 6 + 2 * w, max, w);		 /* range maximum */
	res_le(d + 6 + 3 * w, 0, w);		 /* translation offset */
	res_le(d + 6 + 4 * w, max - min + 1, w); /* length */
	aml_bytes(r, d, 3 + body);
}

static uint8_t mem_flags(bool cacheable, bool rw)
{
	return (cacheable ? 0x02 : 0) | (rw ? 0x01 : 0);
}

void aml_res_dword_memory(struct aml *r, enum aml_res_usage use, bool cacheable, bool rw,
			  uint32_t min, uint32_t max)
{
	res_address(r, RES_DWORD_ADDR, 4, ADDR_MEMORY, use, mem_flags(cacheable, rw), min, max);
}

void aml_res_qword_memory(struct aml *r, enum aml_res_usage use, bool cacheable, bool rw,
			  uint64_t min, uint64_t max)
{
	res_address(r, RES_QWORD_ADDR, 8, ADDR_MEMORY, use, mem_flags(cacheable, rw), min, max);
}

void aml_res_word_bus_number(struct aml *r, enum aml_res_usage use, uint16_t min, uint16_t max)
{
	res_address(r, RES_WORD_ADDR, 2, ADDR_BUS, use, 0, min, max);
}

void aml_res_word_io(struct aml *r, enum aml_res_usage use, uint16_t min, uint16_t max)
{
	res_address(r, RES_WORD_ADDR, 2, ADDR_IO, use, 0x03 /* entire range */, min, max);
}

void aml_res_dword_io(struct aml *r, enum aml_res_usage use, uint32_t min, uint32_t max)
{
	res_address(r, RES_DWORD_ADDR, 4, ADDR_IO, use, 0x03, min, max);
}

void aml_resource_template(struct aml *a, const struct aml *r)
{
	/* EndTag with checksum 0, which means "treat the template as correctly summed". */
	static const uint8_t end[2] = {RES_END, 0x00};
	struct aml tmp;

	if (r->err) {
		if (!a->err)
			a->err = r->err;
		return;
	}
	aml_init(&tmp);
	aml_bytes(&tmp, r->buf, r->len);
	aml_bytes(&tmp, end, sizeof(end));
	if (tmp.err && !a->err)
		a->err = tmp.err;
	else
		aml_buffer(a, tmp.buf, tmp.len);
	aml_free(&tmp);
}
