/* Packed virtqueues (see virtqueue.h).  One ring of 16-byte descriptors {addr le64, len le32,
 * id le16, flags le16}: the driver makes a descriptor available by setting AVAIL to its wrap
 * counter and USED to the opposite; the device returns a buffer by writing a descriptor (id, len)
 * at its own next position with AVAIL and USED both equal to its wrap counter.  The flags of a
 * chain's first descriptor are written last by the driver and read first here (acquire), the
 * other fields after.  Event suppression structures {off_wrap le16, flags le16}: the driver's at
 * avail_gpa (may it be interrupted), the device's at used_gpa (may the driver kick; left enabled).
 */
#include <errno.h>
#include <string.h>

#include "devices/virtio/virtqueue.h"
#include "devices/virtio/virtqueue_packed.h"
#include "memory/guest_memory.h"
#include "lib/endian.h"

#define DESC_SIZE 16

int vq_packed_enable(struct virtqueue *vq, const struct guest_memory *mem)
{
	uint16_t n = vq->size;
	if (n == 0 || n > VQ_MAX_SIZE)
		return -EINVAL;
	if ((vq->desc_gpa % 16) || (vq->avail_gpa % 4) || (vq->used_gpa % 4))
		return -EINVAL;
	int r = vq_map(vq, mem, 4, 4); /* the driver and device event areas */
	if (r < 0)
		return r;
	vq->avail_wrap = vq->used_wrap = true; /* 2.8.1: both counters start at 1 */
	put_le32(vq->used, 0);		       /* notifications enabled */
	return 0;
}

static uint16_t flags_at(const struct virtqueue *vq, uint16_t pos)
{
	return __atomic_load_n((const uint16_t *)(vq->desc + (size_t)pos * DESC_SIZE + 14),
			       __ATOMIC_ACQUIRE);
}

static bool is_avail(uint16_t flags, bool wrap)
{
	return !!(flags & VRING_PACKED_DESC_F_AVAIL) == wrap &&
	       !!(flags & VRING_PACKED_DESC_F_USED) != wrap;
}

struct pdesc {
	uint64_t addr;
	uint32_t len;
	uint16_t id, flags;
};

static struct pdesc pdesc_read(const uint8_t *p, uint16_t flags)
{
	uint8_t raw[DESC_SIZE];
	memcpy(raw, p, 14); /* flags were read first (acquire) and are passed in */
	return (struct pdesc){.addr = get_le64(raw),
			      .len = get_le32(raw + 8),
			      .id = get_le16(raw + 12),
			      .flags = flags};
}

/* An indirect table: `len` bytes of descriptors used in order, NEXT ignored (2.8.19). */
static int walk_indirect(struct virtqueue *vq, const struct pdesc *d, struct vq_elem *e)
{
	if (!vq->indirect || d->len == 0 || d->len % DESC_SIZE ||
	    d->len / DESC_SIZE > VQ_INDIRECT_MAX)
		return -EINVAL;
	const uint8_t *table = guest_memory_ptr(vq->mem, d->addr, d->len);
	if (!table)
		return -EFAULT;
	for (unsigned i = 0; i < d->len / DESC_SIZE; i++) {
		uint8_t raw[DESC_SIZE];
		memcpy(raw, table + (size_t)i * DESC_SIZE, DESC_SIZE);
		uint16_t flags = get_le16(raw + 14);
		if (flags & VRING_DESC_F_INDIRECT)
			return -EINVAL; /* no nesting */
		int r =
		    vq_elem_add(e, get_le64(raw), get_le32(raw + 8), flags & VRING_DESC_F_WRITE);
		if (r < 0)
			return r;
	}
	return 0;
}

int vq_packed_pop(struct virtqueue *vq, struct vq_elem *e)
{
	uint16_t pos = vq->last_avail;
	bool wrap = vq->avail_wrap;
	uint16_t flags = flags_at(vq, pos);
	if (!is_avail(flags, wrap))
		return 0;
	vq_elem_start(e, vq->mem, 0);
	for (uint16_t n = 1;; n++) {
		struct pdesc d = pdesc_read(vq->desc + (size_t)pos * DESC_SIZE, flags);
		int r;
		if (d.flags & VRING_DESC_F_INDIRECT)
			r = (d.flags & VRING_DESC_F_NEXT) || n > 1 ? -EINVAL
								   : walk_indirect(vq, &d, e);
		else
			r = vq_elem_add(e, d.addr, d.len, d.flags & VRING_DESC_F_WRITE);
		if (r < 0)
			return r;
		if (++pos == vq->size) {
			pos = 0;
			wrap = !wrap;
		}
		if (!(d.flags & VRING_DESC_F_NEXT)) {
			e->head = d.id; /* the buffer id is the last descriptor's */
			e->ndesc = n;
			break;
		}
		if (n == vq->size) /* a chain can never be longer than the ring */
			return -ELOOP;
		flags = flags_at(vq, pos);
		if (!is_avail(flags, wrap))
			return -EINVAL; /* NEXT into a descriptor the driver has not made available
					 */
	}
	vq->last_avail = pos;
	vq->avail_wrap = wrap;
	return 1;
}

void vq_packed_push(struct virtqueue *vq, uint16_t id, uint16_t ndesc, uint32_t len)
{
	uint8_t *d = vq->desc + (size_t)vq->used_idx * DESC_SIZE;
	uint16_t flags = vq->used_wrap ? VRING_PACKED_DESC_F_AVAIL | VRING_PACKED_DESC_F_USED : 0;
	put_le32(d + 8, len);
	put_le16(d + 12, id);
	__atomic_store_n((uint16_t *)(d + 14), flags, __ATOMIC_RELEASE); /* flags last */
	/* Skip the ring entries the chain took (the driver reuses them from here). */
	unsigned next = vq->used_idx + (ndesc ? ndesc : 1);
	if (next >= vq->size) {
		next -= vq->size;
		vq->used_wrap = !vq->used_wrap;
	}
	vq->used_idx = (uint16_t)next;
}

bool vq_packed_should_notify(struct virtqueue *vq)
{
	__atomic_thread_fence(
	    __ATOMIC_SEQ_CST); /* used descriptors before the driver's event read */
	uint32_t ev = __atomic_load_n((const uint32_t *)vq->avail, __ATOMIC_ACQUIRE);
	uint16_t off_wrap = (uint16_t)ev, flags = (uint16_t)(ev >> 16);
	uint16_t old, now;
	bool valid = vq_signal_window(vq, &old, &now);
	if (flags == VRING_PACKED_EVENT_DISABLE)
		return false;
	if (flags != VRING_PACKED_EVENT_DESC || !vq->event_idx || !valid)
		return true;
	/* 2.8.10: interrupt when the used position crossed the driver's event offset; an offset on
	 * the other side of a wrap counts from one ring earlier. */
	int off = off_wrap & 0x7FFF;
	if ((off_wrap >> 15) != vq->used_wrap)
		off -= vq->size;
	return (uint16_t)(now - (uint16_t)off - 1) < (uint16_t)(now - old);
}

bool vq_packed_more(struct virtqueue *vq)
{
	/* With EVENT_IDX, ask for a kick only when the driver makes our next position available
	 * (the packed form of split's avail_event). */
	if (vq->event_idx) {
		uint32_t off_wrap = vq->last_avail | (vq->avail_wrap ? 1u << 15 : 0);
		__atomic_store_n((uint32_t *)vq->used, off_wrap | VRING_PACKED_EVENT_DESC << 16,
				 __ATOMIC_RELEASE);
	}
	__atomic_thread_fence(__ATOMIC_SEQ_CST); /* event written before the ring is looked at */
	return is_avail(flags_at(vq, vq->last_avail), vq->avail_wrap);
}
