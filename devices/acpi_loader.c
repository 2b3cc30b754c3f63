/* The ACPI table-loader files (acpi_loader.h).
 *
 * acpi_build_linked() lays the tables out at guest address 0 with the RSDP first; the RSDP goes
 * into its own file and everything from TABLES_START on into the tables file, so every pointer
 * value (an offset from 0) minus TABLES_START is its target's offset in the tables file.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/acpi_loader.h"
#include "lib/endian.h"
#include "memory/layout.h"

#define RSDP_LEN 36
#define TABLES_START 64 /* the FACS follows the RSDP at the first 64-byte boundary */
#define TABLES_ALIGN 64 /* keeps the FACS 64-byte aligned wherever the tables land */
#define RSDP_ALIGN 16	/* the OS scans the F segment on 16-byte boundaries */

struct script {
	uint8_t *buf;
	size_t len, cap;
};

static uint8_t *entry(struct script *s, uint32_t command)
{
	if (s->len == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16 * ACPI_LOADER_ENTRY_LEN;
		uint8_t *n = realloc(s->buf, cap);
		if (!n)
			return NULL;
		s->buf = n;
		s->cap = cap;
	}
	uint8_t *e = s->buf + s->len;
	memset(e, 0, ACPI_LOADER_ENTRY_LEN);
	put_le32(e, command);
	s->len += ACPI_LOADER_ENTRY_LEN;
	return e;
}

static void name(uint8_t *dst, const char *file)
{
	memcpy(dst, file, strlen(file)); /* the rest stays NUL */
}

static int allocate(struct script *s, const char *file, uint32_t align, uint8_t zone)
{
	uint8_t *e = entry(s, ACPI_LOADER_ALLOCATE);
	if (!e)
		return -ENOMEM;
	name(e + 4, file);
	put_le32(e + ACPI_LOADER_ALLOC_ALIGN, align);
	e[ACPI_LOADER_ALLOC_ZONE] = zone;
	return 0;
}

static int add_pointer(struct script *s, const char *dest, uint32_t offset, uint8_t size)
{
	uint8_t *e = entry(s, ACPI_LOADER_ADD_POINTER);
	if (!e)
		return -ENOMEM;
	name(e + 4, dest);
	name(e + ACPI_LOADER_PTR_SRC, ACPI_LOADER_FILE_TABLES); /* every pointer targets a table */
	put_le32(e + ACPI_LOADER_PTR_OFFSET, offset);
	e[ACPI_LOADER_PTR_SIZE] = size;
	return 0;
}

static int add_checksum(struct script *s, const char *file, uint32_t field, uint32_t start,
			uint32_t len)
{
	uint8_t *e = entry(s, ACPI_LOADER_ADD_CHECKSUM);
	if (!e)
		return -ENOMEM;
	name(e + 4, file);
	put_le32(e + ACPI_LOADER_CKSUM_OFFSET, field);
	put_le32(e + ACPI_LOADER_CKSUM_START, start);
	put_le32(e + ACPI_LOADER_CKSUM_LENGTH, len);
	return 0;
}

static uint64_t get_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = v >> (8 * i);
}

/* File and offset inside it of blob offset `off`. */
static const char *where(uint32_t off, uint32_t *in_file)
{
	if (off < TABLES_START) {
		*in_file = off;
		return ACPI_LOADER_FILE_RSDP;
	}
	*in_file = off - TABLES_START;
	return ACPI_LOADER_FILE_TABLES;
}

static int write_script(uint8_t *blob, const struct acpi_links *k, struct script *s)
{
	int r = allocate(s, ACPI_LOADER_FILE_TABLES, TABLES_ALIGN, ACPI_LOADER_ZONE_HIGH);
	if (r == 0)
		r = allocate(s, ACPI_LOADER_FILE_RSDP, RSDP_ALIGN, ACPI_LOADER_ZONE_FSEG);
	for (unsigned i = 0; r == 0 && i < k->npointers; i++) {
		uint32_t at;
		const char *file = where(k->pointers[i].offset, &at);
		uint8_t *field = blob + k->pointers[i].offset;
		uint64_t target = get_le(field, k->pointers[i].size);
		if (target < TABLES_START)
			return -EINVAL; /* nothing points at the RSDP */
		put_le(field, target - TABLES_START, k->pointers[i].size);
		r = add_pointer(s, file, at, k->pointers[i].size);
	}
	/* Checksums last, in the order recorded (the RSDP's 20-byte one before its full one). */
	for (unsigned i = 0; r == 0 && i < k->nchecksums; i++) {
		uint32_t start, field;
		if (k->checksums[i].start != 0 && k->checksums[i].start < TABLES_START)
			return -EINVAL; /* a table between the RSDP and TABLES_START */
		const char *file = where(k->checksums[i].start, &start);
		where(k->checksums[i].field, &field);
		blob[k->checksums[i].field] = 0; /* the loader computes it from scratch */
		r = add_checksum(s, file, field, start, k->checksums[i].length);
	}
	return r;
}

int acpi_loader_build(const struct acpi_config *cfg, struct acpi_loader_files *out)
{
	memset(out, 0, sizeof(*out));
	struct acpi_links *links = calloc(1, sizeof(*links));
	uint8_t *blob = calloc(1, LAYOUT_ACPI_SIZE);
	struct script s = {0};
	int r = -ENOMEM;
	if (!links || !blob)
		goto out;
	uint64_t rsdp;
	long used = acpi_build_linked(cfg, blob, LAYOUT_ACPI_SIZE, 0, &rsdp, links);
	if (used < 0) {
		r = (int)used;
		goto out;
	}
	if (rsdp != 0 || used <= TABLES_START) {
		r = -EINVAL;
		goto out;
	}
	r = write_script(blob, links, &s);
	if (r < 0)
		goto out;
	out->rsdp_len = RSDP_LEN;
	out->tables_len = used - TABLES_START;
	out->rsdp = malloc(out->rsdp_len);
	out->tables = malloc(out->tables_len);
	if (!out->rsdp || !out->tables) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(out->rsdp, blob, out->rsdp_len);
	memcpy(out->tables, blob + TABLES_START, out->tables_len);
	out->script = s.buf;
	out->script_len = s.len;
	s.buf = NULL;
	r = 0;
out:
	free(s.buf);
	free(blob);
	free(links);
	if (r < 0)
		acpi_loader_free(out);
	return r;
}

void acpi_loader_free(struct acpi_loader_files *f)
{
	free(f->tables);
	free(f->rsdp);
	free(f->script);
	memset(f, 0, sizeof(*f));
}
