/* Split and packed virtqueues (virtio 1.2, 2.7 and 2.8) with every guest value checked.
 *
 * The driver owns the descriptor table and the available ring and may rewrite them at any time:
 * each descriptor is copied once and then checked, so what is checked is what is used.  A chain
 * is refused (-errno, the device then sets DEVICE_NEEDS_RESET) when it loops or is longer than its
 * table, when an index is out of range, when a device-readable buffer follows a device-writable
 * one, when an indirect table is nested, empty, not a multiple of 16 bytes or longer than
 * VQ_INDIRECT_MAX entries, when a buffer is outside RAM or in an MMIO hole (through
 * memory/sg_list), when the chain has more than VQ_ELEM_SEGS pieces or VQ_ELEM_MAX_BYTES bytes, or
 * (split) when the avail index moved by more than the queue size.  A queue whose size is zero,
 * above VQ_MAX_SIZE or (split) not a power of two, or whose rings are misaligned or not in RAM, is
 * refused when enabled.
 *
 * Packed rings (VIRTIO_F_RING_PACKED, virtqueue_packed.c): desc_gpa is the descriptor ring,
 * avail_gpa the driver's event suppression structure, used_gpa the device's; a chain is the run of
 * descriptors from the next available one while NEXT is set, at most the ring size.
 *
 * Not thread-safe: the device serialises calls (virtio_pci holds its lock around them).
 */
#ifndef MINIVMM_DEVICES_VIRTIO_VIRTQUEUE_H
#define MINIVMM_DEVICES_VIRTIO_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "memory/sg_list.h"

#define VQ_MAX_SIZE 256
#define VQ_INDIRECT_MAX 1024
#define VQ_ELEM_SEGS 258		 /* pieces (after merging adjacent ones) of one chain */
#define VQ_ELEM_MAX_BYTES (257ULL << 20) /* 256 segments of 1 MiB, plus headers */

#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_DESC_F_INDIRECT 4
#define VRING_AVAIL_F_NO_INTERRUPT 1

struct guest_memory;

struct virtqueue {
	/* set by the transport from the common configuration */
	uint16_t size;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint16_t msix_vector;
	bool enabled;
	/* from the negotiated features */
	bool event_idx, indirect, packed;

	/* ring state, valid while enabled */
	const struct guest_memory *mem;
	uint8_t *desc, *avail, *used; /* host pointers, checked when enabled */
	uint16_t last_avail;	      /* next available entry to take */
	uint16_t used_idx;	      /* our copy of used->idx */
	uint16_t signalled_used;      /* used_idx when we last decided about an interrupt */
	bool signalled_valid;
	/* packed: last_avail and used_idx are ring positions (0..size-1), with wrap counters */
	bool avail_wrap, used_wrap;
};

/* One chain taken from the ring: device-readable pieces in out, device-writable ones in in. */
struct vq_elem {
	uint16_t head;	/* split: the head descriptor; packed: the buffer id */
	uint16_t ndesc; /* packed: ring entries the chain took */
	struct sg_list out, in;
	struct iovec iov[VQ_ELEM_SEGS];
};

/* Check the configured size and ring addresses, map the rings and start at index 0.  -EINVAL
 * (bad size or alignment) or -EFAULT (a ring not in RAM). */
int vq_enable(struct virtqueue *vq, const struct guest_memory *mem);
/* Forget the rings and return the queue to its reset values (size max_size, no vector). */
void vq_reset(struct virtqueue *vq, uint16_t max_size);

/* Take the next available chain: 1 when elem was filled, 0 when the ring is empty, -errno when
 * the ring or the chain is malformed (see above). */
int vq_pop(struct virtqueue *vq, struct vq_elem *elem);
/* Return a chain (head and ndesc as vq_pop gave them): `len` bytes were written into its
 * device-writable part. */
void vq_push(struct virtqueue *vq, uint16_t head, uint16_t ndesc, uint32_t len);
/* After pushes: does the driver want an interrupt now (VRING_AVAIL_F_NO_INTERRUPT or, with
 * VIRTIO_F_RING_EVENT_IDX, used_event)? */
bool vq_should_notify(struct virtqueue *vq);
/* Before going idle: publish where we stopped (avail_event with EVENT_IDX) and say whether
 * the driver added chains meanwhile (then keep popping: no kick will come for them). */
bool vq_more_after_idle(struct virtqueue *vq);

/* For virtqueue_packed.c: start an element, add one buffer (-EINVAL for a readable buffer after
 * a writable one; sg_list_add's errors). */
void vq_elem_start(struct vq_elem *e, const struct guest_memory *mem, uint16_t head);
int vq_elem_add(struct vq_elem *e, uint64_t addr, uint32_t len, bool writable);
/* For both layouts: map the descriptor table (size entries) and the driver (avail) and device
 * (used) areas of the given lengths, and start at index 0; -EFAULT when one is not all RAM. */
int vq_map(struct virtqueue *vq, const struct guest_memory *mem, uint64_t avail_len,
	   uint64_t used_len);
/* For both layouts: the used positions (old, now] not yet decided on for an interrupt, now
 * recorded as decided; false when no decision was made before (the first one interrupts). */
bool vq_signal_window(struct virtqueue *vq, uint16_t *old, uint16_t *now);

#endif
