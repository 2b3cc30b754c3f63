/* An NVM Express 1.4 controller on PCI (class 01:08:02, Linux `nvme`), one namespace per disk.
 *
 * BAR0 (64-bit memory, 16 KiB): the controller registers, the doorbells from 0x1000 (stride 4),
 * the MSI-X table (0x2000) and PBA (0x3000).  MSI-X has a vector for the admin queue and one per
 * I/O queue; with MSI-X off the controller raises INTx while a completion queue that has
 * interrupts enabled holds entries the host has not consumed.
 *
 * Every command runs through the disk's asynchronous block layer; completions may come on any
 * thread (the controller lock serialises them with the vCPUs' register accesses).  A controller
 * reset (CC.EN 1 -> 0) and the machine reset wait for the requests in flight, so nothing writes
 * guest memory after the reset.
 */
#ifndef MINIVMM_DEVICES_NVME_NVME_H
#define MINIVMM_DEVICES_NVME_NVME_H

#include <stdint.h>

struct pci_bus;
struct disk;
struct guest_memory;
struct event_loop;
struct nvme_ctrl;

#define NVME_MAX_NAMESPACES 32
#define NVME_MAX_IO_QUEUES 64

struct nvme_env {
	struct pci_bus *pci;
	const struct guest_memory *mem;
	struct event_loop *loop; /* may be NULL */
	unsigned io_queues;	 /* I/O queue pairs offered: 1..NVME_MAX_IO_QUEUES */
	unsigned index;		 /* controller number (nvme0, nvme1, ...): serial and NQN */
};

/* A controller with disks[0..n) as namespaces 1..n (1 <= n <= NVME_MAX_NAMESPACES). */
int nvme_create(const struct nvme_env *env, struct disk **disks, unsigned n,
		struct nvme_ctrl **out);
/* Waits for the requests in flight (their completions must still be able to run). */
void nvme_destroy(struct nvme_ctrl *c);
/* Machine reset: the controller as after power-on (waits for the requests in flight). */
void nvme_reset(struct nvme_ctrl *c);
/* For tests: requests submitted to the block layer whose completions have not run. */
unsigned nvme_inflight(struct nvme_ctrl *c);

#endif
