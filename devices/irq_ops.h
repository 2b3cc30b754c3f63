/* What a device may ask of the VM's interrupt and doorbell plumbing: MSI routes with irqfds,
 * INTx through resample irqfds, and ioeventfds for doorbell registers.
 *
 * devices/kvm_irq.c implements it on KVM (KVM_SET_GSI_ROUTING, KVM_IRQFD, KVM_IOEVENTFD); device
 * tests give a fake.  Every function returns -errno on failure, after which the device falls
 * back to the slow path (pci_bus_ops.signal_msi, set_irq, an MMIO exit for the doorbell).
 * Functions are thread-safe.
 */
#ifndef MINIVMM_DEVICES_IRQ_OPS_H
#define MINIVMM_DEVICES_IRQ_OPS_H

#include <stdbool.h>
#include <stdint.h>

struct irq_ops {
	/* A GSI routed to MSI message (address, data), with an irqfd: returns the GSI. */
	int (*msi_route_add)(void *opaque, uint64_t address, uint32_t data);
	/* The guest reprogrammed the vector: point the GSI at the new message. */
	int (*msi_route_set)(void *opaque, int gsi, uint64_t address, uint32_t data);
	/* Deliver the message (signals the GSI's irqfd). */
	int (*msi_route_fire)(void *opaque, int gsi);
	void (*msi_route_del)(void *opaque, int gsi);

	/* INTx on IOAPIC pin `gsi` through an irqfd with a resample fd: intx_fire raises the line,
	 * the guest's EOI lowers it and makes *resample_fd (owned by the module) readable, when the
	 * device raises it again if its interrupt is still pending.  Returns a handle. */
	int (*intx_add)(void *opaque, unsigned gsi, int *resample_fd);
	int (*intx_fire)(void *opaque, int handle);
	void (*intx_del)(void *opaque, int handle);

	/* A guest MMIO write of `len` bytes (equal to `data` when `match`) at `address` signals the
	 * eventfd `fd` (the caller's) in the kernel, without an exit to user space. */
	int (*ioeventfd_add)(void *opaque, uint64_t address, unsigned len, bool match,
			     uint64_t data, int fd);
	void (*ioeventfd_del)(void *opaque, uint64_t address, unsigned len, bool match,
			      uint64_t data, int fd);
	void *opaque;
};

#endif
