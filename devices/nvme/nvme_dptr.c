/* Data pointers: PRP entries and lists, and SGLs (NVMe 1.4, 4.3 and 4.4), turned into a checked
 * scatter-gather list (memory/sg_list.h).  Every address goes through the one guest-memory
 * accessor, so a PRP or descriptor that points outside RAM or into MMIO fails the command with
 * Data Transfer Error; offsets and descriptor types the specification forbids get their own
 * status codes.  Walks are bounded by the transfer length (at most MDTS) and by a cap on SGL
 * descriptors, so a list that loops back on itself cannot keep the controller busy. */
#include <errno.h>

#include "devices/nvme/nvme_internal.h"
#include "devices/nvme/nvme_spec.h"
#include "memory/guest_memory.h"
#include "lib/endian.h"

#define SGL_MAX_DESCRIPTORS 1024 /* per command, segments included */

static uint16_t add(struct nvme_req *r, uint64_t gpa, uint64_t len)
{
	int e = sg_list_add(&r->sg, gpa, len);
	if (e == -ENOSPC)
		return NVME_SC_SGL_INVALID_COUNT;
	return e < 0 ? NVME_SC_DATA_XFER_ERROR : 0;
}

static uint16_t map_prp(struct nvme_req *r, uint64_t len)
{
	const uint64_t mask = NVME_PAGE - 1;
	uint64_t prp1 = nvme_dw64(r, 6), prp2 = nvme_dw64(r, 8);
	if (prp1 & 3)
		return NVME_SC_PRP_INVALID_OFFSET;
	uint64_t chunk = NVME_PAGE - (prp1 & mask);
	if (chunk > len)
		chunk = len;
	uint16_t s = add(r, prp1, chunk);
	if (s || !(len -= chunk))
		return s;
	if (len <= NVME_PAGE) { /* PRP2 is the second page */
		if (prp2 & mask)
			return NVME_SC_PRP_INVALID_OFFSET;
		return add(r, prp2, len);
	}
	/* PRP2 is a list; the last entry of a full list page points to the next list. */
	uint64_t list = prp2;
	if (list & 3)
		return NVME_SC_PRP_INVALID_OFFSET;
	while (len) {
		unsigned n = (unsigned)((NVME_PAGE - (list & mask)) / 8);
		for (unsigned i = 0; i < n && len; i++) {
			uint8_t raw[8];
			if (guest_memory_read(r->c->mem, list + 8ULL * i, raw, 8) < 0)
				return NVME_SC_DATA_XFER_ERROR;
			uint64_t e = get_le64(raw);
			if (e & mask)
				return NVME_SC_PRP_INVALID_OFFSET;
			if (i == n - 1 && len > NVME_PAGE) {
				list = e; /* page aligned: the next list holds 512 entries */
				break;
			}
			chunk = len < NVME_PAGE ? len : NVME_PAGE;
			if ((s = add(r, e, chunk)))
				return s;
			len -= chunk;
		}
	}
	return 0;
}

/* One SGL descriptor: address, length, type (high nibble of byte 15) and sub type. */
struct sgl_desc {
	uint64_t addr;
	uint32_t len;
	unsigned type, subtype;
};

static struct sgl_desc sgl_decode(const uint8_t *d)
{
	return (struct sgl_desc){.addr = get_le64(d),
				 .len = get_le32(d + 8),
				 .type = d[15] >> 4,
				 .subtype = d[15] & 0xF};
}

/* A data block descriptor: take what the transfer still needs of it. */
static uint16_t sgl_data(struct nvme_req *r, const struct sgl_desc *d, uint64_t *left)
{
	if (d->type != NVME_SGL_DATA_BLOCK || d->subtype)
		return NVME_SC_SGL_INVALID_TYPE;
	uint64_t take = d->len < *left ? d->len : *left;
	uint16_t s = add(r, d->addr, take);
	if (!s)
		*left -= take;
	return s;
}

static uint16_t map_sgl(struct nvme_req *r, uint64_t len)
{
	uint8_t raw[NVME_SGL_DESC_SIZE];
	for (unsigned i = 0; i < NVME_SGL_DESC_SIZE / 4; i++)
		put_le32(raw + 4 * i, r->dw[6 + i]);
	struct sgl_desc d = sgl_decode(raw);
	uint64_t left = len;
	unsigned budget = SGL_MAX_DESCRIPTORS;
	while (d.type == NVME_SGL_SEGMENT || d.type == NVME_SGL_LAST_SEGMENT) {
		if (d.subtype || !d.len || d.len % NVME_SGL_DESC_SIZE)
			return d.subtype ? NVME_SC_SGL_INVALID_TYPE : NVME_SC_SGL_INVALID_LAST;
		unsigned n = d.len / NVME_SGL_DESC_SIZE;
		bool last = d.type == NVME_SGL_LAST_SEGMENT;
		uint64_t at = d.addr;
		if (at & 3)
			return NVME_SC_SGL_INVALID_OFFSET;
		if (n > budget)
			return NVME_SC_SGL_INVALID_COUNT;
		budget -= n;
		for (unsigned i = 0; i < n; i++) {
			if (guest_memory_read(r->c->mem, at + 16ULL * i, raw, sizeof(raw)) < 0)
				return NVME_SC_DATA_XFER_ERROR;
			d = sgl_decode(raw);
			if (d.type == NVME_SGL_SEGMENT || d.type == NVME_SGL_LAST_SEGMENT) {
				/* Only the last descriptor of a (non-last) segment may chain. */
				if (last || i != n - 1)
					return NVME_SC_SGL_INVALID_LAST;
				break;
			}
			uint16_t s = sgl_data(r, &d, &left);
			if (s)
				return s;
			if (i == n - 1)
				d.type = ~0u; /* the list ended */
		}
		if (d.type != NVME_SGL_SEGMENT && d.type != NVME_SGL_LAST_SEGMENT)
			return left ? NVME_SC_SGL_INVALID_DATA_LEN : 0;
	}
	uint16_t s = sgl_data(r, &d, &left);
	if (s)
		return s;
	return left ? NVME_SC_SGL_INVALID_DATA_LEN : 0;
}

uint16_t nvme_map_data(struct nvme_req *r, uint64_t len)
{
	sg_list_init(&r->sg, r->c->mem, r->iov, NVME_MAX_SEGS, len);
	if (!len)
		return 0;
	switch ((r->dw[0] >> 14) & 3) {
	case 0:
		return map_prp(r, len);
	case 1:
	case 2: /* SGL; the metadata pointer form matters only with metadata, which we lack */
		return map_sgl(r, len);
	default:
		return NVME_SC_INVALID_FIELD;
	}
}
