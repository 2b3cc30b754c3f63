/* AML byte-code emitter (see aml.h).  Opcodes from ACPI 6.4 section 20.3 (AML grammar). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/aml.h"

enum {
	ZERO_OP = 0x00,
	ONE_OP = 0x01,
	NAME_OP = 0x08,
	BYTE_PREFIX = 0x0A,
	WORD_PREFIX = 0x0B,
	DWORD_PREFIX = 0x0C,
	STRING_PREFIX = 0x0D,
	QWORD_PREFIX = 0x0E,
	SCOPE_OP = 0x10,
	BUFFER_OP = 0x11,
	PACKAGE_OP = 0x12,
	METHOD_OP = 0x14,
	DUAL_NAME_PREFIX = 0x2E,
	MULTI_NAME_PREFIX = 0x2F,
	EXT_PREFIX = 0x5B,
	ROOT_CHAR = '\\',
	PARENT_PREFIX = '^',
	LOCAL0_OP = 0x60,
	ARG0_OP = 0x68,
	STORE_OP = 0x70,
	ADD_OP = 0x72,
	SUBTRACT_OP = 0x74,
	INCREMENT_OP = 0x75,
	SHIFT_LEFT_OP = 0x79,
	AND_OP = 0x7B,
	OR_OP = 0x7D,
	NOTIFY_OP = 0x86,
	LAND_OP = 0x90,
	LOR_OP = 0x91,
	LNOT_OP = 0x92,
	LEQUAL_OP = 0x93,
	LLESS_OP = 0x95,
	IF_OP = 0xA0,
	ELSE_OP = 0xA1,
	WHILE_OP = 0xA2,
	RETURN_OP = 0xA4,
	BREAK_OP = 0xA5,
	ONES_OP = 0xFF,
	/* after EXT_PREFIX */
	MUTEX_OP = 0x01,
	ACQUIRE_OP = 0x23,
	RELEASE_OP = 0x27,
	OP_REGION_OP = 0x80,
	FIELD_OP = 0x81,
	DEVICE_OP = 0x82,
};

#define PKGLEN_MAX 0x0FFFFFFFu /* 28 bits */

void aml_init(struct aml *a)
{
	memset(a, 0, sizeof(*a));
}

void aml_free(struct aml *a)
{
	free(a->buf);
	aml_init(a);
}

static void aml_fail(struct aml *a, int err)
{
	if (!a->err)
		a->err = err;
}

static int aml_reserve(struct aml *a, size_t n)
{
	if (a->err)
		return a->err;
	if (n > SIZE_MAX / 2 - a->len) {
		aml_fail(a, -E2BIG);
		return a->err;
	}
	if (a->len + n <= a->cap)
		return 0;
	size_t cap = a->cap ? a->cap : 256;
	while (cap < a->len + n)
		cap *= 2;
	uint8_t *p = realloc(a->buf, cap);
	if (!p) {
		aml_fail(a, -ENOMEM);
		return a->err;
	}
	a->buf = p;
	a->cap = cap;
	return 0;
}

void aml_bytes(struct aml *a, const void *p, size_t n)
{
	if (n == 0 || aml_reserve(a, n))
		return;
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

static void aml_byte(struct aml *a, uint8_t b)
{
	aml_bytes(a, &b, 1);
}

static void aml_le(struct aml *a, uint64_t v, unsigned n)
{
	uint8_t b[8];
	for (unsigned i = 0; i < n; i++)
		b[i] = v >> (8 * i);
	aml_bytes(a, b, n);
}

static void aml_ext(struct aml *a, uint8_t op)
{
	aml_byte(a, EXT_PREFIX);
	aml_byte(a, op);
}

/* PkgLength encoding of `v`: 1 byte up to 63, else a lead byte (count, low nibble) and 1-3 more. */
static unsigned pkglen_encode(uint32_t v, uint8_t out[4])
{
	unsigned n = v < 0x40 ? 1 : v < 0x1000 ? 2 : v < 0x100000 ? 3 : 4;
	if (n == 1) {
		out[0] = v;
		return 1;
	}
	out[0] = (uint8_t)((n - 1) << 6) | (v & 0x0F);
	for (unsigned i = 1; i < n; i++)
		out[i] = v >> (4 + 8 * (i - 1));
	return n;
}

static void aml_open(struct aml *a)
{
	if (a->err)
		return;
	if (a->depth == AML_MAX_DEPTH) {
		aml_fail(a, -E2BIG);
		return;
	}
	a->open[a->depth++] = a->len;
}

void aml_end(struct aml *a)
{
	if (a->err)
		return;
	if (a->depth == 0) {
		aml_fail(a, -EINVAL);
		return;
	}
	size_t start = a->open[--a->depth];
	size_t body = a->len - start;
	/* The encoded length counts its own bytes, so pick the size that fits body plus itself. */
	unsigned n = 1;
	while (n < 4 && body + n >= (n == 1 ? 0x40u : 1u << (4 + 8 * (n - 1))))
		n++;
	if (body + n > PKGLEN_MAX) {
		aml_fail(a, -E2BIG);
		return;
	}
	uint8_t enc[4];
	unsigned got = pkglen_encode((uint32_t)(body + n), enc);
	if (got != n || aml_reserve(a, n)) {
		aml_fail(a, -EINVAL);
		return;
	}
	memmove(a->buf + start + n, a->buf + start, body);
	memcpy(a->buf + start, enc, n);
	a->len += n;
}

void aml_int(struct aml *a, uint64_t v)
{
	if (v == 0)
		aml_byte(a, ZERO_OP);
	else if (v == 1)
		aml_byte(a, ONE_OP);
	else if (v == UINT64_MAX)
		aml_byte(a, ONES_OP);
	else if (v <= 0xFF) {
		aml_byte(a, BYTE_PREFIX);
		aml_le(a, v, 1);
	} else if (v <= 0xFFFF) {
		aml_byte(a, WORD_PREFIX);
		aml_le(a, v, 2);
	} else if (v <= 0xFFFFFFFF) {
		aml_byte(a, DWORD_PREFIX);
		aml_le(a, v, 4);
	} else {
		aml_byte(a, QWORD_PREFIX);
		aml_le(a, v, 8);
	}
}

void aml_string(struct aml *a, const char *s)
{
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p > 0x7F) {
			aml_fail(a, -EINVAL);
			return;
		}
	aml_byte(a, STRING_PREFIX);
	aml_bytes(a, s, strlen(s) + 1);
}

static bool name_char_ok(char c, bool lead)
{
	return (c >= 'A' && c <= 'Z') || c == '_' || (!lead && c >= '0' && c <= '9');
}

/* Parse one segment of `p` (up to '.' or the end) into seg[4]; returns its length or 0. */
static size_t name_seg_parse(const char *p, uint8_t seg[4])
{
	size_t n = 0;
	while (p[n] && p[n] != '.') {
		if (n == 4 || !name_char_ok(p[n], n == 0))
			return 0;
		seg[n] = p[n];
		n++;
	}
	for (size_t i = n; i < 4; i++)
		seg[i] = '_';
	return n;
}

void aml_name_string(struct aml *a, const char *path)
{
	const char *p = path;
	if (*p == ROOT_CHAR)
		aml_byte(a, *p++);
	else
		while (*p == PARENT_PREFIX)
			aml_byte(a, *p++);
	if (!*p) {
		aml_byte(a, ZERO_OP); /* NullName */
		return;
	}
	uint8_t segs[255][4];
	unsigned count = 0;
	for (;;) {
		size_t n = count < 255 ? name_seg_parse(p, segs[count]) : 0;
		if (!n) {
			aml_fail(a, -EINVAL);
			return;
		}
		count++;
		p += n;
		if (!*p)
			break;
		p++; /* '.' */
	}
	if (count == 2)
		aml_byte(a, DUAL_NAME_PREFIX);
	else if (count > 2) {
		aml_byte(a, MULTI_NAME_PREFIX);
		aml_byte(a, count);
	}
	aml_bytes(a, segs, 4 * count);
}

/* A single NameSeg (field units): exactly one segment, no prefix. */
static void aml_name_seg(struct aml *a, const char *name)
{
	uint8_t seg[4];
	size_t n = name_seg_parse(name, seg);
	if (!n || name[n]) {
		aml_fail(a, -EINVAL);
		return;
	}
	aml_bytes(a, seg, 4);
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void aml_eisaid(struct aml *a, const char *id)
{
	/* Three letters in 5 bits each ('A' = 1), then four hex digits, stored big-endian. */
	if (strlen(id) != 7) {
		aml_fail(a, -EINVAL);
		return;
	}
	uint32_t v = 0;
	for (int i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z') {
			aml_fail(a, -EINVAL);
			return;
		}
		v = (v << 5) | (uint32_t)(id[i] - 0x40);
	}
	for (int i = 3; i < 7; i++) {
		int d = hex_digit(id[i]);
		if (d < 0) {
			aml_fail(a, -EINVAL);
			return;
		}
		v = (v << 4) | (uint32_t)d;
	}
	uint8_t b[5] = {DWORD_PREFIX, v >> 24, v >> 16, v >> 8, v};
	aml_bytes(a, b, sizeof(b));
}

void aml_buffer(struct aml *a, const void *data, size_t n)
{
	aml_byte(a, BUFFER_OP);
	aml_open(a);
	aml_int(a, n);
	aml_bytes(a, data, n);
	aml_end(a);
}

void aml_package(struct aml *a, uint8_t nelems)
{
	aml_byte(a, PACKAGE_OP);
	aml_open(a);
	aml_byte(a, nelems);
}

void aml_local(struct aml *a, unsigned n)
{
	if (n > 7)
		aml_fail(a, -EINVAL);
	else
		aml_byte(a, LOCAL0_OP + n);
}

void aml_arg(struct aml *a, unsigned n)
{
	if (n > 6)
		aml_fail(a, -EINVAL);
	else
		aml_byte(a, ARG0_OP + n);
}

void aml_name(struct aml *a, const char *name)
{
	aml_byte(a, NAME_OP);
	aml_name_string(a, name);
}

void aml_scope(struct aml *a, const char *path)
{
	aml_byte(a, SCOPE_OP);
	aml_open(a);
	aml_name_string(a, path);
}

void aml_device(struct aml *a, const char *path)
{
	aml_ext(a, DEVICE_OP);
	aml_open(a);
	aml_name_string(a, path);
}

void aml_method(struct aml *a, const char *name, unsigned nargs, bool serialized)
{
	if (nargs > 7) {
		aml_fail(a, -EINVAL);
		return;
	}
	aml_byte(a, METHOD_OP);
	aml_open(a);
	aml_name_string(a, name);
	aml_byte(a, nargs | (serialized ? 0x08 : 0)); /* MethodFlags, SyncLevel 0 */
}

void aml_mutex(struct aml *a, const char *name, unsigned sync_level)
{
	if (sync_level > 15) {
		aml_fail(a, -EINVAL);
		return;
	}
	aml_ext(a, MUTEX_OP);
	aml_name_string(a, name);
	aml_byte(a, sync_level);
}

void aml_op_region(struct aml *a, const char *name, enum aml_region_space space)
{
	aml_ext(a, OP_REGION_OP);
	aml_name_string(a, name);
	aml_byte(a, space);
}

void aml_field(struct aml *a, const char *region, enum aml_field_access acc, bool lock,
	       enum aml_field_update update)
{
	if (acc > AML_QWORD_ACC || update > AML_WRITE_AS_ZEROS) {
		aml_fail(a, -EINVAL);
		return;
	}
	aml_ext(a, FIELD_OP);
	aml_open(a);
	aml_name_string(a, region);
	aml_byte(a, acc | (lock ? 0x10 : 0) | update << 5);
}

static void aml_field_bits(struct aml *a, unsigned bits)
{
	uint8_t enc[4];
	if (bits == 0 || bits > PKGLEN_MAX) {
		aml_fail(a, -EINVAL);
		return;
	}
	aml_bytes(a, enc, pkglen_encode(bits, enc));
}

void aml_field_unit(struct aml *a, const char *name, unsigned bits)
{
	aml_name_seg(a, name);
	aml_field_bits(a, bits);
}

void aml_field_skip(struct aml *a, unsigned bits)
{
	aml_byte(a, 0x00); /* ReservedField */
	aml_field_bits(a, bits);
}

void aml_if(struct aml *a)
{
	aml_byte(a, IF_OP);
	aml_open(a);
}

void aml_else(struct aml *a)
{
	aml_byte(a, ELSE_OP);
	aml_open(a);
}

void aml_while(struct aml *a)
{
	aml_byte(a, WHILE_OP);
	aml_open(a);
}

void aml_return(struct aml *a)
{
	aml_byte(a, RETURN_OP);
}

void aml_break(struct aml *a)
{
	aml_byte(a, BREAK_OP);
}

void aml_store(struct aml *a)
{
	aml_byte(a, STORE_OP);
}

void aml_lequal(struct aml *a)
{
	aml_byte(a, LEQUAL_OP);
}

void aml_land(struct aml *a)
{
	aml_byte(a, LAND_OP);
}

void aml_lor(struct aml *a)
{
	aml_byte(a, LOR_OP);
}

void aml_lnot(struct aml *a)
{
	aml_byte(a, LNOT_OP);
}

void aml_lless(struct aml *a)
{
	aml_byte(a, LLESS_OP);
}

void aml_and(struct aml *a)
{
	aml_byte(a, AND_OP);
}

void aml_or(struct aml *a)
{
	aml_byte(a, OR_OP);
}

void aml_shift_left(struct aml *a)
{
	aml_byte(a, SHIFT_LEFT_OP);
}

void aml_add(struct aml *a)
{
	aml_byte(a, ADD_OP);
}

void aml_subtract(struct aml *a)
{
	aml_byte(a, SUBTRACT_OP);
}

void aml_increment(struct aml *a)
{
	aml_byte(a, INCREMENT_OP);
}

void aml_notify(struct aml *a)
{
	aml_byte(a, NOTIFY_OP);
}

void aml_acquire(struct aml *a, const char *mutex, uint16_t timeout_ms)
{
	aml_ext(a, ACQUIRE_OP);
	aml_name_string(a, mutex);
	aml_le(a, timeout_ms, 2);
}

void aml_release(struct aml *a, const char *mutex)
{
	aml_ext(a, RELEASE_OP);
	aml_name_string(a, mutex);
}
