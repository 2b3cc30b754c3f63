/* The VM's interrupt routing table and its irqfds/ioeventfds on KVM (struct irq_ops, see
 * devices/irq_ops.h).  The table keeps the in-kernel irqchip's routes for GSIs 0-23 (what KVM
 * sets up by default) and gives each MSI/MSI-X vector in use a GSI of its own from 24 up. */
#ifndef MINIVMM_DEVICES_KVM_IRQ_H
#define MINIVMM_DEVICES_KVM_IRQ_H

#include "devices/irq_ops.h"

struct kvm_irq;

/* vm_fd has its in-kernel irqchip already (KVM_CREATE_IRQCHIP). */
int kvm_irq_create(int vm_fd, struct kvm_irq **out);
/* Detaches every irqfd and ioeventfd the module still holds. */
void kvm_irq_destroy(struct kvm_irq *k);
/* The ops table, with k as opaque. */
struct irq_ops kvm_irq_ops(struct kvm_irq *k);

#endif
