/* The split virtqueue and the scatter-gather walker against a hostile driver, without a CPU:
 * rings in a guest RAM buffer written by the test, every malformed value answered with a clean
 * error (never a crash, an overflow or an endless walk; run under ASan/UBSan). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "devices/virtio/virtqueue.h"
#include "devices/virtio/virtqueue_packed.h"
#include "memory/guest_memory.h"
#include "memory/sg_list.h"
#include "lib/endian.h"
#include "memory/layout.h"

#define RAM (16 * MiB)
#define QSIZE 8
#define DESC 0x1000ULL
#define AVAIL 0x2000ULL
#define USED 0x3000ULL
#define INDIRECT 0x4000ULL
#define DATA 0x100000ULL

struct rig {
	struct guest_memory mem;
	struct virtqueue vq;
	struct vq_elem elem;
	uint16_t avail_idx;
};

static int setup(void **state)
{
	struct rig *r = calloc(1, sizeof(*r));
	assert_non_null(r);
	assert_int_equal(guest_memory_create(&r->mem, RAM), 0);
	vq_reset(&r->vq, QSIZE);
	r->vq.desc_gpa = DESC;
	r->vq.avail_gpa = AVAIL;
	r->vq.used_gpa = USED;
	r->vq.indirect = true;
	assert_int_equal(vq_enable(&r->vq, &r->mem), 0);
	*state = r;
	return 0;
}

static int teardown(void **state)
{
	struct rig *r = *state;
	guest_memory_destroy(&r->mem);
	free(r);
	return 0;
}

static uint8_t *ram(struct rig *r, uint64_t gpa)
{
	return guest_memory_ptr(&r->mem, gpa, 1);
}

static void desc_at(struct rig *r, uint64_t table, unsigned i, uint64_t addr, uint32_t len,
		    uint16_t flags, uint16_t next)
{
	uint8_t *d = ram(r, table + 16ULL * i);
	put_le64(d, addr);
	put_le32(d + 8, len);
	put_le16(d + 12, flags);
	put_le16(d + 14, next);
}

static void desc(struct rig *r, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		 uint16_t next)
{
	desc_at(r, DESC, i, addr, len, flags, next);
}

/* Make chain `head` available. */
static void offer(struct rig *r, uint16_t head)
{
	put_le16(ram(r, AVAIL + 4 + 2 * (r->avail_idx % QSIZE)), head);
	r->avail_idx++;
	put_le16(ram(r, AVAIL + 2), r->avail_idx);
}

static void good_chain_is_taken(void **state)
{
	struct rig *r = *state;
	desc(r, 0, DATA, 16, VRING_DESC_F_NEXT, 1);
	desc(r, 1, DATA + 0x1000, 4096, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	desc(r, 2, DATA + 0x2000, 1, VRING_DESC_F_WRITE, 0);
	offer(r, 0);
	assert_int_equal(vq_pop(&r->vq, &r->elem), 1);
	assert_int_equal(r->elem.head, 0);
	assert_int_equal(r->elem.out.bytes, 16);
	assert_int_equal(r->elem.in.bytes, 4097);
	assert_int_equal(r->elem.in.n, 1); /* adjacent buffers merge */
	assert_int_equal(vq_pop(&r->vq, &r->elem), 0);
	vq_push(&r->vq, 0, 1, 4097);
	assert_int_equal(get_le16(ram(r, USED + 2)), 1);
	assert_int_equal(get_le32(ram(r, USED + 4)), 0);
	assert_int_equal(get_le32(ram(r, USED + 8)), 4097);
}

static void descriptor_loop_refused(void **state)
{
	struct rig *r = *state;
	desc(r, 0, DATA, 16, VRING_DESC_F_NEXT, 1);
	desc(r, 1, DATA, 16, VRING_DESC_F_NEXT, 0);
	offer(r, 0);
	assert_int_equal(vq_pop(&r->vq, &r->elem), -ELOOP);
}

static void self_loop_refused(void **state)
{
	struct rig *r = *state;
	desc(r, 3, DATA, 1, VRING_DESC_F_NEXT, 3);
	offer(r, 3);
	assert_int_equal(vq_pop(&r->vq, &r->elem), -ELOOP);
}

static void chain_longer_than_queue_refused(void **state)
{
	struct rig *r = *state;
	for (unsigned i = 0; i < QSIZE; i++) /* every entry chained, the last back to the first */
		desc(r, i, DATA + i, 1, VRING_DESC_F_NEXT, (i + 1) % QSIZE);
	offer(r, 0);
	assert_int_equal(vq_pop(&r->vq, &r->elem), -ELOOP);
}

static void head_and_next_out_of_range_refused(void **state)
{
	struct rig *r = *state;
	offer(r, QSIZE); /* a head past the table */
	assert_int_equal(vq_pop(&r->vq, &r->elem), -ELOOP);
	struct rig *r2 = r;
	vq_reset(&r2->vq, QSIZE);
	r2->vq.desc_gpa = DESC, r2->vq.avail_gpa = AVAIL, r2->vq.used_gpa = USED;
	assert_int_equal(vq_enable(&r2->vq, &r2->mem), 0);
	r2->avail_idx = 0;
	desc(r2, 0, DATA, 1, VRING_DESC_F_NEXT, 0xFFFF);
	offer(r2, 0);
	assert_int_equal(vq_pop(&r2->vq, &r2->elem), -ELOOP);
}

static void buffers_outside_ram_refused(void **state)
{
	struct rig *r = *state;
	desc(r, 0, RAM - 8, 16, 0, 0); /* runs off the end of RAM */
	offer(r, 0);
	assert_int_equal(vq_pop(&r->vq, &r->elem), -EFAULT);
}

static void length_that_wraps_refused(void **state)
{
	struct rig *r = *state;
	desc(r, 0, UINT64_MAX - 3, 16, 0, 0); /* addr + len overflows 64 bits */
	offer(r, 0);
	assert_int_equal(vq_pop(&r->vq, &r->elem), -EFAULT);
}

static void mmio_hole_refused(void **state)
{
	struct rig *r = *state;
	desc(r, 0, LAYOUT_IOAPIC_BASE, 16, 0, 0);
	offer(r, 0);
	assert_int_equal(vq_pop(&r->vq, &r->elem), -EFAULT);
}

static void readable_after_writable_refused(void **state)
{
	struct rig *r = *state;
	desc(r, 0, DATA, 1, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
	desc(r, 1, DATA + 0x100, 16, 0, 0);
	offer(r, 0);
	assert_int_equal(vq_pop(&r->vq, &r->elem), -EINVAL);
}

static void avail_idx_jump_refused(void **state)
{
	struct rig *r = *state;
	put_le16(ram(r, AVAIL + 2), QSIZE + 1); /* more chains than the queue holds */
	assert_int_equal(vq_pop(&r->vq, &r->elem), -EOVERFLOW);
}

static void indirect_table_taken(void **state)
{
	struct rig *r = *state;
	desc_at(r, INDIRECT, 0, DATA, 16, VRING_DESC_F_NEXT, 1);
	desc_at(r, INDIRECT, 1, DATA + 0x1000, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	desc_at(r, INDIRECT, 2, DATA + 0x3000, 1, VRING_DESC_F_WRITE, 0);
	desc(r, 5, INDIRECT, 3 * 16, VRING_DESC_F_INDIRECT, 0);
	offer(r, 5);
	assert_int_equal(vq_pop(&r->vq, &r->elem), 1);
	assert_int_equal(r->elem.head, 5);
	assert_int_equal(r->elem.out.bytes, 16);
	assert_int_equal(r->elem.in.bytes, 513);
	assert_int_equal(r->elem.in.n, 2);
}

static void bad_indirect_tables_refused(void **state)
{
	struct rig *r = *state;
	struct {
		uint32_t len;
		uint16_t flags;
		uint64_t addr;
	} bad[] = {
	    {20, VRING_DESC_F_INDIRECT, INDIRECT}, /* not a multiple of 16 */
	    {0, VRING_DESC_F_INDIRECT, INDIRECT},  /* empty */
	    {16 * (VQ_INDIRECT_MAX + 1), VRING_DESC_F_INDIRECT, INDIRECT}, /* too long */
	    {32, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, INDIRECT},	   /* with NEXT */
	    {32, VRING_DESC_F_INDIRECT, RAM - 16},			   /* off the end of RAM */
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		desc(r, 0, bad[i].addr, bad[i].len, bad[i].flags, 1);
		desc_at(r, INDIRECT, 0, DATA, 1, 0, 0);
		offer(r, 0);
		assert_true(vq_pop(&r->vq, &r->elem) < 0);
		r->vq.last_avail++; /* skip it, as a reset would */
	}
}

static void nested_indirect_refused(void **state)
{
	struct rig *r = *state;
	desc_at(r, INDIRECT, 0, INDIRECT + 0x100, 32, VRING_DESC_F_INDIRECT, 0);
	desc(r, 0, INDIRECT, 16, VRING_DESC_F_INDIRECT, 0);
	offer(r, 0);
	assert_int_equal(vq_pop(&r->vq, &r->elem), -EINVAL);
}

static void indirect_loop_refused(void **state)
{
	struct rig *r = *state;
	desc_at(r, INDIRECT, 0, DATA, 1, VRING_DESC_F_NEXT, 1);
	desc_at(r, INDIRECT, 1, DATA, 1, VRING_DESC_F_NEXT, 0);
	desc(r, 0, INDIRECT, 32, VRING_DESC_F_INDIRECT, 0);
	offer(r, 0);
	assert_int_equal(vq_pop(&r->vq, &r->elem), -ELOOP);
}

static void indirect_without_feature_refused(void **state)
{
	struct rig *r = *state;
	r->vq.indirect = false;
	desc_at(r, INDIRECT, 0, DATA, 1, 0, 0);
	desc(r, 0, INDIRECT, 16, VRING_DESC_F_INDIRECT, 0);
	offer(r, 0);
	assert_int_equal(vq_pop(&r->vq, &r->elem), -EINVAL);
}

static void too_many_segments_refused(void **state)
{
	struct rig *r = *state;
	/* An indirect table of VQ_INDIRECT_MAX one-byte buffers, none adjacent. */
	for (unsigned i = 0; i < VQ_INDIRECT_MAX; i++)
		desc_at(r, 0x200000, i, DATA + 2ULL * i, 1,
			i + 1 < VQ_INDIRECT_MAX ? VRING_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	desc(r, 0, 0x200000, 16 * VQ_INDIRECT_MAX, VRING_DESC_F_INDIRECT, 0);
	offer(r, 0);
	assert_int_equal(vq_pop(&r->vq, &r->elem), -ENOSPC);
}

static void total_length_capped(void **state)
{
	struct rig *r = *state;
	struct guest_memory big;
	/* Contiguous buffers that merge, summing past the cap, in a RAM big enough to hold them
	 * (lazily backed: never touched). */
	assert_int_equal(guest_memory_create(&big, VQ_ELEM_MAX_BYTES + 4 * MiB), 0);
	memcpy(guest_memory_ptr(&big, 0, 16 * MiB), guest_memory_ptr(&r->mem, 0, 16 * MiB),
	       16 * MiB);
	struct virtqueue vq;
	vq_reset(&vq, QSIZE);
	vq.desc_gpa = DESC, vq.avail_gpa = AVAIL, vq.used_gpa = USED;
	assert_int_equal(vq_enable(&vq, &big), 0);
	uint8_t *d = guest_memory_ptr(&big, DESC, 16 * 2);
	put_le64(d, 0);
	put_le32(d + 8, (uint32_t)(VQ_ELEM_MAX_BYTES / 2 + 1));
	put_le16(d + 12, VRING_DESC_F_NEXT);
	put_le16(d + 14, 1);
	put_le64(d + 16, VQ_ELEM_MAX_BYTES / 2 + 1);
	put_le32(d + 24, (uint32_t)(VQ_ELEM_MAX_BYTES / 2));
	put_le16(d + 28, 0);
	put_le16(guest_memory_ptr(&big, AVAIL + 4, 2), 0);
	put_le16(guest_memory_ptr(&big, AVAIL + 2, 2), 1);
	assert_int_equal(vq_pop(&vq, &r->elem), -E2BIG);
	guest_memory_destroy(&big);
}

static void bad_queue_configs_refused(void **state)
{
	struct rig *r = *state;
	struct virtqueue vq;
	uint16_t sizes[] = {0, 3, 6, VQ_MAX_SIZE * 2, 0xFFFF};
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		vq_reset(&vq, sizes[i]);
		vq.desc_gpa = DESC, vq.avail_gpa = AVAIL, vq.used_gpa = USED;
		assert_int_equal(vq_enable(&vq, &r->mem), -EINVAL);
		assert_false(vq.enabled);
	}
	vq_reset(&vq, QSIZE);
	vq.desc_gpa = DESC + 8, vq.avail_gpa = AVAIL, vq.used_gpa = USED; /* misaligned */
	assert_int_equal(vq_enable(&vq, &r->mem), -EINVAL);
	vq.desc_gpa = DESC, vq.used_gpa = RAM - 8; /* used ring off the end of RAM */
	assert_int_equal(vq_enable(&vq, &r->mem), -EFAULT);
	vq.used_gpa = LAYOUT_LOW_RAM_END; /* in the MMIO hole */
	assert_int_equal(vq_enable(&vq, &r->mem), -EFAULT);
}

static void event_idx_suppresses(void **state)
{
	struct rig *r = *state;
	r->vq.event_idx = true;
	uint8_t *used_event = ram(r, AVAIL + 4 + 2 * QSIZE);
	desc(r, 0, DATA, 1, VRING_DESC_F_WRITE, 0);
	put_le16(used_event, 1); /* interrupt once the second chain is used */
	vq_push(&r->vq, 0, 1, 1);
	assert_true(vq_should_notify(&r->vq)); /* first decision always notifies */
	vq_push(&r->vq, 0, 1, 1);
	assert_true(vq_should_notify(&r->vq)); /* used idx went 1 -> 2, past used_event 1 */
	vq_push(&r->vq, 0, 1, 1);
	assert_false(vq_should_notify(&r->vq)); /* 2 -> 3: used_event not crossed */
	/* avail_event tells the driver where the device stopped. */
	offer(r, 0);
	assert_int_equal(vq_pop(&r->vq, &r->elem), 1);
	assert_false(vq_more_after_idle(&r->vq));
	assert_int_equal(get_le16(ram(r, USED + 4 + 8 * QSIZE)), 1);
	offer(r, 0);
	assert_true(vq_more_after_idle(&r->vq));
}

static void no_interrupt_flag_honoured(void **state)
{
	struct rig *r = *state;
	put_le16(ram(r, AVAIL), VRING_AVAIL_F_NO_INTERRUPT);
	vq_push(&r->vq, 0, 1, 0);
	assert_false(vq_should_notify(&r->vq));
	put_le16(ram(r, AVAIL), 0);
	vq_push(&r->vq, 0, 1, 0);
	assert_true(vq_should_notify(&r->vq));
}

/* --- the scatter-gather walker ---------------------------------------------------------- */

static void sg_checks_and_caps(void **state)
{
	struct rig *r = *state;
	struct iovec iov[4];
	struct sg_list sg;
	sg_list_init(&sg, &r->mem, iov, 4, 8192);
	assert_int_equal(sg_list_add(&sg, DATA, 4096), 0);
	assert_int_equal(sg_list_add(&sg, DATA + 4096, 2048), 0); /* merged */
	assert_int_equal(sg.n, 1);
	assert_int_equal(sg_list_add(&sg, DATA, 4096), -E2BIG); /* past max_bytes */
	assert_int_equal(sg_list_add(&sg, UINT64_MAX, 2), -EFAULT);
	assert_int_equal(sg_list_add(&sg, RAM, 1), -EFAULT);
	assert_int_equal(sg_list_add(&sg, LAYOUT_PCI_MMIO32_START, 1), -EFAULT);
	assert_int_equal(sg.bytes, 6144);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(sg_list_add(&sg, DATA + 0x10000 * (i + 1), 1), 0);
	assert_int_equal(sg_list_add(&sg, DATA + 0x50000, 1), -ENOSPC); /* past max_segs */
	assert_int_equal(sg.n, 4);
	assert_int_equal(sg.bytes, 6147);
	assert_int_equal(sg_list_add(&sg, DATA, 0), 0);

	/* Copies and slices across entries. */
	uint8_t buf[8];
	memset(ram(r, DATA + 6140), 0xAB, 4);
	*ram(r, DATA + 0x10000) = 0xCD;
	assert_int_equal(sg_list_to_buf(&sg, 6140, buf, 8), 7);
	assert_int_equal(buf[3], 0xAB);
	assert_int_equal(buf[4], 0xCD);
	struct iovec out[2];
	assert_int_equal(sg_list_slice(&sg, 6000, 145, out, 2), 2);
	assert_int_equal(out[0].iov_len, 144);
	assert_int_equal(out[1].iov_len, 1);
	assert_int_equal(sg_list_slice(&sg, 6000, 147, out, 2), -ENOSPC);
	assert_int_equal(sg_list_slice(&sg, 6000, 1000, out, 2), -ERANGE);
	assert_int_equal(sg_list_slice(&sg, UINT64_MAX, 2, out, 2), -ERANGE);
	assert_ptr_equal(sg_list_byte(&sg, 6144), ram(r, DATA + 0x10000));
	assert_null(sg_list_byte(&sg, 6147));
}

static void sg_high_ram_and_hole(void **state)
{
	(void)state;
	struct guest_memory mem;
	/* 3 GiB + 16 MiB: the hole [3 GiB, 4 GiB) lies between the two RAM blocks. */
	assert_int_equal(guest_memory_create(&mem, LAYOUT_LOW_RAM_END + 16 * MiB), 0);
	struct iovec iov[4];
	struct sg_list sg;
	sg_list_init(&sg, &mem, iov, 4, UINT64_MAX);
	assert_int_equal(sg_list_add(&sg, LAYOUT_LOW_RAM_END - 4096, 8192),
			 -EFAULT); /* into hole */
	assert_int_equal(sg_list_add(&sg, LAYOUT_LOW_RAM_END + 4096, 1), -EFAULT);
	assert_int_equal(sg_list_add(&sg, LAYOUT_HIGH_RAM_START - 1, 2), -EFAULT);
	assert_int_equal(sg_list_add(&sg, LAYOUT_HIGH_RAM_START, 4096), 0);
	assert_int_equal(sg_list_add(&sg, LAYOUT_HIGH_RAM_START + 16 * MiB - 1, 2), -EFAULT);
	assert_int_equal(sg.bytes, 4096);
	guest_memory_destroy(&mem);
}

/* --- packed rings ------------------------------------------------------------------------ */

#define PDRV 0x2000ULL /* driver event suppression */
#define PDEV 0x3000ULL /* device event suppression */

static int setup_packed(void **state)
{
	struct rig *r = calloc(1, sizeof(*r));
	assert_non_null(r);
	assert_int_equal(guest_memory_create(&r->mem, RAM), 0);
	vq_reset(&r->vq, QSIZE);
	r->vq.desc_gpa = DESC;
	r->vq.avail_gpa = PDRV;
	r->vq.used_gpa = PDEV;
	r->vq.indirect = true;
	r->vq.packed = true;
	r->vq.event_idx = true;
	assert_int_equal(vq_enable(&r->vq, &r->mem), 0);
	*state = r;
	return 0;
}

/* Packed descriptor at ring position i, made available for driver wrap counter `wrap`. */
static void pdesc(struct rig *r, unsigned i, uint64_t addr, uint32_t len, uint16_t id,
		  uint16_t flags, bool wrap)
{
	uint8_t *d = ram(r, DESC + 16ULL * i);
	put_le64(d, addr);
	put_le32(d + 8, len);
	put_le16(d + 12, id);
	put_le16(d + 14, flags | (wrap ? VRING_PACKED_DESC_F_AVAIL : VRING_PACKED_DESC_F_USED));
}

static void packed_chain_taken_and_returned(void **state)
{
	struct rig *r = *state;
	pdesc(r, 0, DATA, 16, 0, VRING_DESC_F_NEXT, true);
	pdesc(r, 1, DATA + 0x1000, 512, 0, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, true);
	pdesc(r, 2, DATA + 0x2000, 1, 7, VRING_DESC_F_WRITE, true);
	assert_int_equal(vq_pop(&r->vq, &r->elem), 1);
	assert_int_equal(r->elem.head, 7); /* the last descriptor's id */
	assert_int_equal(r->elem.ndesc, 3);
	assert_int_equal(r->elem.out.bytes, 16);
	assert_int_equal(r->elem.in.bytes, 513);
	assert_int_equal(vq_pop(&r->vq, &r->elem), 0);
	assert_false(vq_more_after_idle(&r->vq));
	vq_push(&r->vq, 7, 3, 513);
	uint8_t *u = ram(r, DESC);
	assert_int_equal(get_le16(u + 12), 7);
	assert_int_equal(get_le32(u + 8), 513);
	assert_int_equal(get_le16(u + 14), VRING_PACKED_DESC_F_AVAIL | VRING_PACKED_DESC_F_USED);
	assert_int_equal(r->vq.used_idx, 3);
}

static void packed_wraps_around(void **state)
{
	struct rig *r = *state;
	/* Six one-descriptor buffers, then a two-descriptor chain across the end of the ring. */
	for (unsigned i = 0; i < QSIZE - 1; i++) {
		pdesc(r, i, DATA, 1, (uint16_t)i, VRING_DESC_F_WRITE, true);
		assert_int_equal(vq_pop(&r->vq, &r->elem), 1);
		vq_push(&r->vq, (uint16_t)i, 1, 1);
	}
	pdesc(r, QSIZE - 1, DATA, 16, 0, VRING_DESC_F_NEXT, true);
	pdesc(r, 0, DATA + 0x100, 1, 42, VRING_DESC_F_WRITE, false); /* next lap: wrap 0 */
	assert_int_equal(vq_pop(&r->vq, &r->elem), 1);
	assert_int_equal(r->elem.head, 42);
	assert_int_equal(r->vq.last_avail, 1);
	assert_false(r->vq.avail_wrap);
	vq_push(&r->vq, 42, 2, 1);
	assert_int_equal(r->vq.used_idx, 1);
	assert_false(r->vq.used_wrap);
	/* The used descriptor went where the chain started, with the old wrap counter. */
	assert_int_equal(get_le16(ram(r, DESC + 16 * (QSIZE - 1) + 14)),
			 VRING_PACKED_DESC_F_AVAIL | VRING_PACKED_DESC_F_USED);
	/* A descriptor left from the first lap is not available in the second. */
	assert_int_equal(vq_pop(&r->vq, &r->elem), 0);
}

static void packed_hostile_chains_refused(void **state)
{
	struct rig *r = *state;
	/* Every descriptor available with NEXT: longer than the ring. */
	for (unsigned i = 0; i < QSIZE; i++)
		pdesc(r, i, DATA, 1, 0, VRING_DESC_F_NEXT, true);
	assert_int_equal(vq_pop(&r->vq, &r->elem), -ELOOP);
	/* NEXT into a descriptor that is not available. */
	pdesc(r, 0, DATA, 16, 0, VRING_DESC_F_NEXT, true);
	pdesc(r, 1, DATA, 1, 0, VRING_DESC_F_WRITE, false);
	assert_int_equal(vq_pop(&r->vq, &r->elem), -EINVAL);
	/* Outside RAM, and in the MMIO hole. */
	pdesc(r, 0, RAM - 4, 16, 0, 0, true);
	assert_int_equal(vq_pop(&r->vq, &r->elem), -EFAULT);
	pdesc(r, 0, LAYOUT_IOAPIC_BASE, 16, 0, 0, true);
	assert_int_equal(vq_pop(&r->vq, &r->elem), -EFAULT);
	/* Readable after writable. */
	pdesc(r, 0, DATA, 1, 0, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, true);
	pdesc(r, 1, DATA, 16, 0, 0, true);
	assert_int_equal(vq_pop(&r->vq, &r->elem), -EINVAL);
	/* Indirect: nested, with NEXT, odd size, too long, off the end of RAM. */
	uint8_t *t = ram(r, INDIRECT);
	put_le64(t, DATA);
	put_le32(t + 8, 1);
	put_le16(t + 14, VRING_DESC_F_INDIRECT);
	pdesc(r, 0, INDIRECT, 16, 0, VRING_DESC_F_INDIRECT, true);
	assert_int_equal(vq_pop(&r->vq, &r->elem), -EINVAL);
	pdesc(r, 0, INDIRECT, 16, 0, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, true);
	assert_int_equal(vq_pop(&r->vq, &r->elem), -EINVAL);
	pdesc(r, 0, INDIRECT, 24, 0, VRING_DESC_F_INDIRECT, true);
	assert_int_equal(vq_pop(&r->vq, &r->elem), -EINVAL);
	pdesc(r, 0, INDIRECT, 16 * (VQ_INDIRECT_MAX + 1), 0, VRING_DESC_F_INDIRECT, true);
	assert_int_equal(vq_pop(&r->vq, &r->elem), -EINVAL);
	pdesc(r, 0, RAM - 16, 32, 0, VRING_DESC_F_INDIRECT, true);
	assert_int_equal(vq_pop(&r->vq, &r->elem), -EFAULT);
	/* A good indirect table. */
	put_le16(t + 14, 0);
	put_le64(t + 16, DATA + 0x1000);
	put_le32(t + 24, 1);
	put_le16(t + 30, VRING_DESC_F_WRITE);
	pdesc(r, 0, INDIRECT, 32, 5, VRING_DESC_F_INDIRECT, true);
	assert_int_equal(vq_pop(&r->vq, &r->elem), 1);
	assert_int_equal(r->elem.head, 5);
	assert_int_equal(r->elem.ndesc, 1);
	assert_int_equal(r->elem.in.bytes, 1);
}

static void packed_event_suppression(void **state)
{
	struct rig *r = *state;
	uint8_t *drv = ram(r, PDRV);
	put_le16(drv + 2, VRING_PACKED_EVENT_DISABLE);
	vq_push(&r->vq, 0, 1, 0);
	assert_false(vq_should_notify(&r->vq));
	put_le16(drv + 2, VRING_PACKED_EVENT_ENABLE);
	vq_push(&r->vq, 0, 1, 0);
	assert_true(vq_should_notify(&r->vq));
	/* DESC: interrupt once position 4 (wrap 1) is used. used_idx is 2 now. */
	put_le16(drv, 4 | 1u << 15);
	put_le16(drv + 2, VRING_PACKED_EVENT_DESC);
	vq_push(&r->vq, 0, 1, 0); /* 2 -> 3 */
	assert_false(vq_should_notify(&r->vq));
	vq_push(&r->vq, 0, 2, 0); /* 3 -> 5: position 4 written */
	assert_true(vq_should_notify(&r->vq));
	/* Kicks: enabled at first; once idle, asked for at the next position only. */
	assert_int_equal(get_le32(ram(r, PDEV)), 0);
	pdesc(r, 0, DATA, 1, 3, VRING_DESC_F_WRITE, true);
	assert_int_equal(vq_pop(&r->vq, &r->elem), 1);
	assert_false(vq_more_after_idle(&r->vq));
	assert_int_equal(get_le16(ram(r, PDEV)), 1 | 1u << 15);
	assert_int_equal(get_le16(ram(r, PDEV + 2)), VRING_PACKED_EVENT_DESC);
	pdesc(r, 1, DATA, 1, 4, VRING_DESC_F_WRITE, true);
	assert_true(vq_more_after_idle(&r->vq));
}

static void packed_bad_queue_configs_refused(void **state)
{
	struct rig *r = *state;
	struct virtqueue vq;
	vq_reset(&vq, 0);
	vq.packed = true;
	vq.desc_gpa = DESC, vq.avail_gpa = PDRV, vq.used_gpa = PDEV;
	assert_int_equal(vq_enable(&vq, &r->mem), -EINVAL);
	vq.size = VQ_MAX_SIZE + 1;
	assert_int_equal(vq_enable(&vq, &r->mem), -EINVAL);
	vq.size = 6; /* packed rings need not be powers of two */
	assert_int_equal(vq_enable(&vq, &r->mem), 0);
	vq.enabled = false;
	vq.avail_gpa = PDRV + 2; /* misaligned event structure */
	assert_int_equal(vq_enable(&vq, &r->mem), -EINVAL);
	vq.avail_gpa = RAM - 2;
	assert_int_equal(vq_enable(&vq, &r->mem), -EINVAL);
	vq.avail_gpa = LAYOUT_LOW_RAM_END;
	assert_int_equal(vq_enable(&vq, &r->mem), -EFAULT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	    T(good_chain_is_taken),
	    T(descriptor_loop_refused),
	    T(self_loop_refused),
	    T(chain_longer_than_queue_refused),
	    T(head_and_next_out_of_range_refused),
	    T(buffers_outside_ram_refused),
	    T(length_that_wraps_refused),
	    T(mmio_hole_refused),
	    T(readable_after_writable_refused),
	    T(avail_idx_jump_refused),
	    T(indirect_table_taken),
	    T(bad_indirect_tables_refused),
	    T(nested_indirect_refused),
	    T(indirect_loop_refused),
	    T(indirect_without_feature_refused),
	    T(too_many_segments_refused),
	    T(total_length_capped),
	    T(bad_queue_configs_refused),
	    T(event_idx_suppresses),
	    T(no_interrupt_flag_honoured),
	    T(sg_checks_and_caps),
	    T(sg_high_ram_and_hole),
#undef T
#define P(f) cmocka_unit_test_setup_teardown(f, setup_packed, teardown)
	    P(packed_chain_taken_and_returned),
	    P(packed_wraps_around),
	    P(packed_hostile_chains_refused),
	    P(packed_event_suppression),
	    P(packed_bad_queue_configs_refused),
#undef P
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
