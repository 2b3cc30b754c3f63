/* Packed virtqueues (virtio 1.2, 2.8): what virtqueue.c dispatches to when vq->packed. */
#ifndef MINIVMM_DEVICES_VIRTIO_VIRTQUEUE_PACKED_H
#define MINIVMM_DEVICES_VIRTIO_VIRTQUEUE_PACKED_H

#include "devices/virtio/virtqueue.h"

#define VRING_PACKED_DESC_F_AVAIL (1u << 7)
#define VRING_PACKED_DESC_F_USED (1u << 15)
#define VRING_PACKED_EVENT_ENABLE 0
#define VRING_PACKED_EVENT_DISABLE 1
#define VRING_PACKED_EVENT_DESC 2

int vq_packed_enable(struct virtqueue *vq, const struct guest_memory *mem);
int vq_packed_pop(struct virtqueue *vq, struct vq_elem *elem);
void vq_packed_push(struct virtqueue *vq, uint16_t id, uint16_t ndesc, uint32_t len);
bool vq_packed_should_notify(struct virtqueue *vq);
bool vq_packed_more(struct virtqueue *vq);

#endif
