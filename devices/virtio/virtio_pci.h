/* The virtio 1.x PCI transport, modern only (virtio 1.2, 4.1), shared by every virtio device.
 *
 * BAR0 (64-bit memory, 16 KiB) holds the common configuration (0x0000), the ISR (0x0400), the
 * device configuration (0x0800), the notify area (0x1000, 4 bytes per queue) and the MSI-X table
 * (0x2000) and PBA (0x3000), announced by vendor capabilities.  MSI-X has one vector per queue plus
 * one for configuration changes; without MSI-X the device raises INTx (through a resample irqfd
 * when the bus has irq ops and an event loop is given, else through the PCI bus).
 *
 * Doorbells: with irq ops and an event loop, each queue's notify address is an ioeventfd (moved
 * with the BAR) whose eventfd is a source on the loop; otherwise a notify write is handled on the
 * vCPU thread that made it.  Either way the device's queue_notify runs with the transport lock.
 *
 * Feature negotiation: VIRTIO_F_VERSION_1 is required (FEATURES_OK stays clear without it or
 * with a feature that was not offered).  Writing 0 to device_status resets the device: the
 * device's reset hook waits for its requests in flight before the rings are forgotten.  A
 * malformed ring sets DEVICE_NEEDS_RESET (virtio_pci_needs_reset) and the queues stop.
 */
#ifndef MINIVMM_DEVICES_VIRTIO_VIRTIO_PCI_H
#define MINIVMM_DEVICES_VIRTIO_VIRTIO_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "devices/virtio/virtqueue.h"

struct pci_bus;
struct pci_device;
struct guest_memory;
struct event_loop;
struct virtio_pci;

#define VIRTIO_PCI_MAX_QUEUES 64
#define VIRTIO_PCI_BAR_SIZE 0x4000
#define VIRTIO_PCI_COMMON_OFF 0x0000
#define VIRTIO_PCI_COMMON_LEN 0x40
#define VIRTIO_PCI_ISR_OFF 0x0400
#define VIRTIO_PCI_DEVICE_OFF 0x0800
#define VIRTIO_PCI_DEVICE_LEN 0x400
#define VIRTIO_PCI_NOTIFY_OFF 0x1000
#define VIRTIO_PCI_NOTIFY_MULT 4
#define VIRTIO_PCI_MSIX_TABLE_OFF 0x2000
#define VIRTIO_PCI_MSIX_PBA_OFF 0x3000

/* What a virtio device type (blk, ...) gives the transport.  Hooks run with the transport lock. */
struct virtio_dev_ops {
	/* Device configuration bytes [off, off+len) into data (off+len <= config_len). */
	void (*config_read)(void *dev, unsigned off, uint8_t *data, unsigned len);
	/* Queue q (enabled, driver ready) has new chains. */
	void (*queue_notify)(void *dev, unsigned q);
	/* The driver reset the device: wait for the requests in flight (virtio_pci_wait) and forget
	 * them; after this no request may touch guest memory. */
	void (*reset)(void *dev);
	/* (optional) The driver wrote device configuration bytes [off, off+len) (off+len <=
	 * config_len); without it such writes are ignored. */
	void (*config_write)(void *dev, unsigned off, const uint8_t *data, unsigned len);
};

struct virtio_pci_config {
	uint16_t device_id; /* virtio id (VIRTIO_ID_*) */
	uint32_t class_code;
	uint64_t features; /* device-specific features offered */
	unsigned config_len;
	unsigned nqueues; /* 1..VIRTIO_PCI_MAX_QUEUES */
	uint16_t queue_max;
	const struct virtio_dev_ops *ops;
	void *dev;
	const struct guest_memory *mem;
	struct event_loop *loop; /* NULL: no ioeventfds, INTx through the bus */
	unsigned slot;		 /* 0: the first free slot (a hot-plugged function gets its own) */
};

int virtio_pci_create(struct pci_bus *bus, const struct virtio_pci_config *cfg,
		      struct virtio_pci **out);
/* Unregisters from the bus; the device must have no request in flight. */
void virtio_pci_destroy(struct virtio_pci *vp);
/* A machine reset (in-process reboot): as if the driver wrote 0 to device_status (waits for the
 * requests in flight).  Takes the transport lock. */
void virtio_pci_reset(struct virtio_pci *vp);

/* The transport lock, for the device's completions (taken around virtio_pci_* calls below). */
void virtio_pci_lock(struct virtio_pci *vp);
void virtio_pci_unlock(struct virtio_pci *vp);
/* Wait on the device's condition with the transport lock (from the reset hook). */
void virtio_pci_wait(struct virtio_pci *vp, pthread_cond_t *cond);
/* The same with a CLOCK_MONOTONIC deadline (a control verb waiting for the guest): ETIMEDOUT. */
int virtio_pci_wait_until(struct virtio_pci *vp, pthread_cond_t *cond,
			  const struct timespec *deadline);

/* Lock held for all of these. */
struct virtqueue *virtio_pci_queue(struct virtio_pci *vp, unsigned q);
/* Queues may be worked on: DRIVER_OK and no DEVICE_NEEDS_RESET. */
bool virtio_pci_running(const struct virtio_pci *vp);
uint64_t virtio_pci_features(const struct virtio_pci *vp); /* negotiated */
/* After vq_push on queue q: interrupt the driver if it wants one. */
void virtio_pci_queue_done(struct virtio_pci *vp, unsigned q);
/* Queue q still has work after a batch: come back to it through the event loop, after the other
 * sources had their turn (a guest must not keep the loop to itself).  False when the doorbells are
 * not on a loop: the caller just goes on. */
bool virtio_pci_defer_notify(struct virtio_pci *vp, unsigned q);
/* The driver broke the rules (a malformed ring): DEVICE_NEEDS_RESET, and tell the driver. */
void virtio_pci_needs_reset(struct virtio_pci *vp, const char *why);
struct pci_device *virtio_pci_dev(struct virtio_pci *vp);
/* The device changed its configuration (a balloon target, virtio-net's link status):
 * config_generation moves and the driver gets a configuration interrupt once it is running. */
void virtio_pci_config_changed(struct virtio_pci *vp);

#endif
