/* SMBIOS 2.8 structures and entry point (smbios.h; DMTF DSP0134 3.x, whose 2.8 layouts these are).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/smbios.h"
#include "lib/endian.h"
#include "memory/layout.h"

#define VENDOR "minivmm"
#define BIOS_DATE "01/01/2026"

/* Structure lengths (formatted area) for SMBIOS 2.8. */
#define T0_LEN 0x18
#define T1_LEN 0x1B
#define T3_LEN 0x16
#define T4_LEN 0x2A
#define T16_LEN 0x17
#define T17_LEN 0x28
#define T19_LEN 0x1F
#define T32_LEN 0x0B
#define T127_LEN 0x04

struct table {
	uint8_t *buf;
	size_t len, cap;
	unsigned count;
	size_t max_struct;
	int err;
};

/* Append a structure: its formatted area (type, length, handle, then `body`) and its strings
 * (NULL-terminated list; empty strings are not allowed by the spec, so callers pass none). */
static void add(struct table *t, uint8_t type, uint8_t len, uint16_t handle, const uint8_t *body,
		const char *const *strings)
{
	size_t need = len + 2;
	for (const char *const *s = strings; s && *s; s++)
		need += strlen(*s) + 1;
	if (t->err)
		return;
	if (t->len + need > t->cap) {
		size_t cap = (t->cap + need) * 2;
		uint8_t *n = realloc(t->buf, cap);
		if (!n) {
			t->err = -ENOMEM;
			return;
		}
		t->buf = n;
		t->cap = cap;
	}
	uint8_t *p = t->buf + t->len;
	memcpy(p, body, len);
	p[0] = type;
	p[1] = len;
	put_le16(p + 2, handle);
	size_t at = len;
	bool any = false;
	for (const char *const *s = strings; s && *s; s++) {
		size_t n = strlen(*s) + 1;
		memcpy(p + at, *s, n);
		at += n;
		any = true;
	}
	if (!any)
		p[at++] = 0; /* no strings: the set still ends with two NULs */
	p[at++] = 0;
	t->len += at;
	t->count++;
	if (at > t->max_struct)
		t->max_struct = at;
}

static void type0(struct table *t, const char *version)
{
	uint8_t b[T0_LEN] = {0};
	b[4] = 1; /* vendor */
	b[5] = 2; /* version */
	put_le16(b + 6, 0xE800);
	b[8] = 3;		  /* release date */
	b[10] = 0x08;		  /* characteristics: "not supported" (none claimed) */
	b[0x13] = 0x04 | 0x10;	  /* targeted content distribution, a virtual machine */
	b[0x16] = b[0x17] = 0xFF; /* no embedded controller */
	const char *s[] = {VENDOR, version, BIOS_DATE, NULL};
	add(t, 0, T0_LEN, 0x0000, b, s);
}

static void type1(struct table *t, const struct smbios_config *c)
{
	uint8_t b[T1_LEN] = {0};
	b[4] = 1; /* manufacturer */
	b[5] = 2; /* product */
	b[6] = 3; /* version */
	/* SMBIOS stores the first three UUID fields little-endian (DSP0134 7.2.1). */
	const uint8_t *u = c->uuid;
	uint8_t *d = b + 8;
	d[0] = u[3], d[1] = u[2], d[2] = u[1], d[3] = u[0];
	d[4] = u[5], d[5] = u[4];
	d[6] = u[7], d[7] = u[6];
	memcpy(d + 8, u + 8, 8);
	b[0x18] = 0x06; /* woken by the power switch */
	b[0x1A] = 4;	/* family */
	const char *s[] = {VENDOR, "minivmm virtual machine", c->version, "Virtual Machine", NULL};
	add(t, 1, T1_LEN, 0x0100, b, s);
}

static void type3(struct table *t)
{
	uint8_t b[T3_LEN] = {0};
	b[4] = 1;		  /* manufacturer */
	b[5] = 0x01;		  /* type: other */
	b[9] = b[10] = b[11] = 3; /* boot-up, power supply and thermal state: safe */
	b[12] = 0x02;		  /* security: unknown */
	const char *s[] = {VENDOR, NULL};
	add(t, 3, T3_LEN, 0x0300, b, s);
}

static void type4(struct table *t, unsigned i, int present)
{
	uint8_t b[T4_LEN] = {0};
	char socket[16];
	snprintf(socket, sizeof(socket), "CPU %u", i);
	b[4] = 1;		  /* socket designation */
	b[5] = 0x03;		  /* central processor */
	b[6] = 0x01;		  /* family: other (see family 2) */
	b[7] = 2;		  /* manufacturer */
	put_le16(b + 0x14, 2000); /* max speed, MHz (nominal: the host's is what counts) */
	put_le16(b + 0x16, 2000);
	b[0x18] = present ? 0x41 : 0x00; /* socket populated, CPU enabled / empty socket */
	b[0x19] = 0x01;			 /* upgrade: other */
	put_le16(b + 0x1A, 0xFFFF);	 /* no cache information */
	put_le16(b + 0x1C, 0xFFFF);
	put_le16(b + 0x1E, 0xFFFF);
	b[0x23] = b[0x24] = b[0x25] = 1; /* one core, enabled, one thread */
	put_le16(b + 0x26, 0x0004);	 /* 64-bit capable */
	put_le16(b + 0x28, 0x0001);	 /* family 2: other */
	const char *s[] = {socket, VENDOR, NULL};
	add(t, 4, T4_LEN, 0x0400 + i, b, s);
}

static void type16(struct table *t, uint64_t ram)
{
	uint8_t b[T16_LEN] = {0};
	b[4] = 0x01; /* location: other */
	b[5] = 0x03; /* use: system memory */
	b[6] = 0x06; /* error correction: multi-bit ECC (RAM cannot flip) */
	uint64_t kib = ram / KiB;
	if (kib < 0x80000000ULL) {
		put_le32(b + 7, kib);
	} else {
		put_le32(b + 7, 0x80000000u); /* see the extended field */
		put_le64(b + 0x0F, ram);
	}
	put_le16(b + 0x0B, 0xFFFE); /* no error information */
	put_le16(b + 0x0D, 1);	    /* one device */
	add(t, 16, T16_LEN, 0x1000, b, NULL);
}

static void type17(struct table *t, uint64_t ram)
{
	uint8_t b[T17_LEN] = {0};
	put_le16(b + 4, 0x1000);
	put_le16(b + 6, 0xFFFE);
	put_le16(b + 8, 0xFFFF); /* widths unknown */
	put_le16(b + 0x0A, 0xFFFF);
	uint64_t mib = ram / MiB;
	if (mib < 0x7FFF) {
		put_le16(b + 0x0C, mib);
	} else {
		put_le16(b + 0x0C, 0x7FFF);
		put_le32(b + 0x1C, mib);
	}
	b[0x0E] = 0x09;		    /* DIMM */
	b[0x10] = 1;		    /* device locator */
	b[0x12] = 0x07;		    /* RAM */
	put_le16(b + 0x13, 0x0002); /* type detail: other */
	b[0x17] = 2;		    /* manufacturer */
	const char *s[] = {"DIMM 0", VENDOR, NULL};
	add(t, 17, T17_LEN, 0x1100, b, s);
}

static void type19(struct table *t, unsigned i, uint64_t start, uint64_t size)
{
	uint8_t b[T19_LEN] = {0};
	uint64_t end = start + size - 1;
	if (end / KiB < 0xFFFFFFFFULL) {
		put_le32(b + 4, start / KiB);
		put_le32(b + 8, end / KiB);
	} else {
		put_le32(b + 4, 0xFFFFFFFFu); /* see the extended fields */
		put_le32(b + 8, 0xFFFFFFFFu);
		put_le64(b + 0x0F, start);
		put_le64(b + 0x17, end);
	}
	put_le16(b + 0x0C, 0x1000);
	b[0x0E] = 1; /* partition width */
	add(t, 19, T19_LEN, 0x1300 + i, b, NULL);
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s += *p++;
	return s;
}

int smbios_build(const struct smbios_config *c, uint8_t **tables, size_t *len,
		 uint8_t anchor[SMBIOS_ANCHOR_LEN])
{
	if (!c->ncpus || c->ncpus > c->ncpus_possible || c->ncpus_possible > LAYOUT_MAX_VCPUS ||
	    !c->low_ram || !c->version || !*c->version)
		return -EINVAL;
	struct table t = {0};
	type0(&t, c->version);
	type1(&t, c);
	type3(&t);
	for (unsigned i = 0; i < c->ncpus_possible; i++)
		type4(&t, i, i < c->ncpus);
	type16(&t, c->low_ram + c->high_ram);
	type17(&t, c->low_ram + c->high_ram);
	type19(&t, 0, 0, c->low_ram);
	if (c->high_ram)
		type19(&t, 1, LAYOUT_HIGH_RAM_START, c->high_ram);
	uint8_t b32[T32_LEN] = {0}; /* no errors detected */
	add(&t, 32, T32_LEN, 0x2000, b32, NULL);
	uint8_t end[T127_LEN] = {0};
	add(&t, 127, T127_LEN, 0x7F00, end, NULL);
	if (!t.err && t.len > 0xFFFF)
		t.err = -EINVAL; /* the 2.x entry point has a 16-bit length */
	if (t.err) {
		free(t.buf);
		return t.err;
	}
	uint8_t *a = anchor;
	memset(a, 0, SMBIOS_ANCHOR_LEN);
	memcpy(a, "_SM_", 4);
	a[5] = SMBIOS_ANCHOR_LEN;
	a[6] = 2;
	a[7] = 8;
	put_le16(a + 8, t.max_struct);
	memcpy(a + 0x10, "_DMI_", 5);
	put_le16(a + 0x16, t.len);
	put_le32(a + 0x18, 0); /* table address: the firmware's to fill */
	put_le16(a + 0x1C, t.count);
	a[0x1E] = 0x28; /* BCD revision 2.8 */
	a[0x15] = -sum(a + 0x10, 0x0F);
	a[4] = -sum(a, SMBIOS_ANCHOR_LEN);
	*tables = t.buf;
	*len = t.len;
	return 0;
}
