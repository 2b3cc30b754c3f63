/* Split virtqueues (see virtqueue.h).  Layout (2.7): descriptor table of 16-byte entries
 * {addr le64, len le32, flags le16, next le16}; available ring {flags, idx, ring[size],
 * used_event}; used ring {flags, idx, {id le32, len le32}[size], avail_event}. */
#include <errno.h>
#include <string.h>

#include "devices/virtio/virtqueue.h"
#include "devices/virtio/virtqueue_packed.h"
#include "memory/guest_memory.h"
#include "lib/endian.h"

#define DESC_SIZE 16

static uint64_t avail_bytes(uint16_t size)
{
	return 6 + 2ULL * size;
}

static uint64_t used_bytes(uint16_t size)
{
	return 6 + 8ULL * size;
}

void vq_reset(struct virtqueue *vq, uint16_t max_size)
{
	*vq = (struct virtqueue){.size = max_size, .msix_vector = 0xFFFF};
}

int vq_map(struct virtqueue *vq, const struct guest_memory *mem, uint64_t avail_len,
	   uint64_t used_len)
{
	uint8_t *d = guest_memory_ptr(mem, vq->desc_gpa, (uint64_t)DESC_SIZE * vq->size);
	uint8_t *a = guest_memory_ptr(mem, vq->avail_gpa, avail_len);
	uint8_t *u = guest_memory_ptr(mem, vq->used_gpa, used_len);
	if (!d || !a || !u)
		return -EFAULT;
	vq->mem = mem;
	vq->desc = d;
	vq->avail = a;
	vq->used = u;
	vq->last_avail = vq->used_idx = vq->signalled_used = 0;
	vq->signalled_valid = false;
	vq->enabled = true;
	return 0;
}

bool vq_signal_window(struct virtqueue *vq, uint16_t *old, uint16_t *now)
{
	bool valid = vq->signalled_valid;
	*old = vq->signalled_used;
	*now = vq->used_idx;
	vq->signalled_used = *now;
	vq->signalled_valid = true;
	return valid;
}

int vq_enable(struct virtqueue *vq, const struct guest_memory *mem)
{
	uint16_t n = vq->size;
	if (vq->packed)
		return vq_packed_enable(vq, mem);
	if (n == 0 || n > VQ_MAX_SIZE || (n & (n - 1)))
		return -EINVAL;
	if ((vq->desc_gpa % 16) || (vq->avail_gpa % 2) || (vq->used_gpa % 4))
		return -EINVAL;
	return vq_map(vq, mem, avail_bytes(n), used_bytes(n));
}

/* The ring indices are 2-byte aligned (checked in vq_enable): read and write them whole. */
static uint16_t load16(const uint8_t *p)
{
	return __atomic_load_n((const uint16_t *)p, __ATOMIC_ACQUIRE);
}

static void store16(uint8_t *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)p, v, __ATOMIC_RELEASE);
}

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

static struct desc desc_read(const uint8_t *table, unsigned i)
{
	uint8_t raw[DESC_SIZE];
	memcpy(raw, table + (size_t)i * DESC_SIZE, DESC_SIZE); /* one snapshot, then checked */
	return (struct desc){.addr = get_le64(raw),
			     .len = get_le32(raw + 8),
			     .flags = get_le16(raw + 12),
			     .next = get_le16(raw + 14)};
}

void vq_elem_start(struct vq_elem *e, const struct guest_memory *mem, uint16_t head)
{
	sg_list_init(&e->out, mem, e->iov, VQ_ELEM_SEGS, VQ_ELEM_MAX_BYTES);
	e->in = (struct sg_list){.mem = mem};
	e->head = head;
	e->ndesc = 0;
}

int vq_elem_add(struct vq_elem *e, uint64_t addr, uint32_t len, bool writable)
{
	if (writable) {
		if (!e->in.iov) /* the first writable buffer: the rest of iov is for them */
			sg_list_init(&e->in, e->out.mem, e->iov + e->out.n, VQ_ELEM_SEGS - e->out.n,
				     VQ_ELEM_MAX_BYTES - e->out.bytes);
		return sg_list_add(&e->in, addr, len);
	}
	if (e->in.iov) /* readable buffers all come before writable ones */
		return -EINVAL;
	return sg_list_add(&e->out, addr, len);
}

/* Walk the chain that starts at descriptor `head`. */
static int walk(struct virtqueue *vq, uint16_t head, struct vq_elem *e)
{
	const uint8_t *table = vq->desc;
	unsigned tsize = vq->size, i = head, seen = 0;
	bool indirect = false;
	vq_elem_start(e, vq->mem, head);
	for (;;) {
		if (i >= tsize || ++seen > tsize) /* out of range, or a loop */
			return -ELOOP;
		struct desc d = desc_read(table, i);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			/* 2.7.5.3: no nesting, not with NEXT, a whole number of entries */
			if (!vq->indirect || indirect || (d.flags & VRING_DESC_F_NEXT) ||
			    d.len == 0 || d.len % DESC_SIZE || d.len / DESC_SIZE > VQ_INDIRECT_MAX)
				return -EINVAL;
			if (!(table = guest_memory_ptr(vq->mem, d.addr, d.len)))
				return -EFAULT;
			tsize = d.len / DESC_SIZE;
			indirect = true;
			i = 0;
			seen = 0;
			continue;
		}
		int r = vq_elem_add(e, d.addr, d.len, d.flags & VRING_DESC_F_WRITE);
		if (r < 0)
			return r;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		i = d.next;
	}
}

int vq_pop(struct virtqueue *vq, struct vq_elem *elem)
{
	if (!vq->enabled)
		return 0;
	if (vq->packed)
		return vq_packed_pop(vq, elem);
	uint16_t avail_idx = load16(vq->avail + 2);
	uint16_t pending = (uint16_t)(avail_idx - vq->last_avail);
	if (pending == 0)
		return 0;
	if (pending > vq->size) /* 2.7.13.3: the driver never has more than size chains out */
		return -EOVERFLOW;
	uint16_t head = load16(vq->avail + 4 + 2 * (vq->last_avail % vq->size));
	int r = walk(vq, head, elem);
	if (r < 0)
		return r;
	vq->last_avail++;
	return 1;
}

void vq_push(struct virtqueue *vq, uint16_t head, uint16_t ndesc, uint32_t len)
{
	if (vq->packed) {
		vq_packed_push(vq, head, ndesc, len);
		return;
	}
	uint8_t *slot = vq->used + 4 + 8 * (size_t)(vq->used_idx % vq->size);
	put_le32(slot, head);
	put_le32(slot + 4, len);
	vq->used_idx++;
	store16(vq->used + 2, vq->used_idx); /* release: the entry is visible first */
}

bool vq_should_notify(struct virtqueue *vq)
{
	if (vq->packed)
		return vq_packed_should_notify(vq);
	__atomic_thread_fence(
	    __ATOMIC_SEQ_CST); /* used idx written before the driver's flag read */
	if (!vq->event_idx)
		return !(load16(vq->avail) & VRING_AVAIL_F_NO_INTERRUPT);
	uint16_t event = load16(vq->avail + 4 + 2 * (size_t)vq->size);
	uint16_t old, now;
	bool valid = vq_signal_window(vq, &old, &now);
	/* 2.7.10.2: interrupt when used_event lies in (old, now] */
	return !valid || (uint16_t)(now - event - 1) < (uint16_t)(now - old);
}

bool vq_more_after_idle(struct virtqueue *vq)
{
	if (!vq->enabled)
		return false;
	if (vq->packed)
		return vq_packed_more(vq);
	if (vq->event_idx)
		store16(vq->used + 4 + 8 * (size_t)vq->size, vq->last_avail);
	__atomic_thread_fence(__ATOMIC_SEQ_CST); /* avail_event written before avail idx read */
	return load16(vq->avail + 2) != vq->last_avail;
}
