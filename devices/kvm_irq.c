/* KVM_SET_GSI_ROUTING, KVM_IRQFD and KVM_IOEVENTFD behind struct irq_ops (see kvm_irq.h).
 *
 * KVM_SET_GSI_ROUTING replaces the whole table, so the module keeps it: the irqchip entries KVM
 * installs by default (GSI 0-15 on both PICs and the IOAPIC, 16-23 on the IOAPIC) and one MSI
 * entry per route.  Each change commits the table again (a guest reprograms vectors rarely). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "devices/kvm_irq.h"
#include "memory/layout.h"

#define KVM_IRQ_FIRST_MSI_GSI LAYOUT_IOAPIC_PINS
#define KVM_IRQ_MAX_MSI 1024 /* routes; KVM allows 4096 entries on x86 */
#define KVM_IRQ_MAX_INTX 64
#define KVM_IRQ_CHIP_ENTRIES (16 * 2 + (LAYOUT_IOAPIC_PINS - 16))

struct msi_route {
	bool used;
	int fd; /* irqfd */
	uint64_t address;
	uint32_t data;
};

struct intx_route {
	bool used;
	unsigned gsi;
	int fd, resample_fd;
};

struct kvm_irq {
	int vm_fd;
	pthread_mutex_t lock;
	struct msi_route msi[KVM_IRQ_MAX_MSI];
	struct intx_route intx[KVM_IRQ_MAX_INTX];
	struct kvm_irq_routing *table; /* room for every entry */
	bool routing_broken;	       /* a route failed once: MSIs go by KVM_SIGNAL_MSI for good */
};

static struct kvm_irq_routing_entry chip_entry(unsigned gsi, unsigned chip, unsigned pin)
{
	return (struct kvm_irq_routing_entry){.gsi = gsi,
					      .type = KVM_IRQ_ROUTING_IRQCHIP,
					      .u.irqchip = {.irqchip = chip, .pin = pin}};
}

/* Lock held. */
static int commit(struct kvm_irq *k)
{
	struct kvm_irq_routing *t = k->table;
	unsigned n = 0;
	for (unsigned gsi = 0; gsi < LAYOUT_IOAPIC_PINS; gsi++) {
		t->entries[n++] = chip_entry(gsi, KVM_IRQCHIP_IOAPIC, gsi);
		if (gsi < 16)
			t->entries[n++] = chip_entry(
			    gsi, gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE, gsi % 8);
	}
	for (unsigned i = 0; i < KVM_IRQ_MAX_MSI; i++) {
		if (!k->msi[i].used)
			continue;
		t->entries[n++] = (struct kvm_irq_routing_entry){
		    .gsi = KVM_IRQ_FIRST_MSI_GSI + i,
		    .type = KVM_IRQ_ROUTING_MSI,
		    .u.msi = {.address_lo = (uint32_t)k->msi[i].address,
			      .address_hi = (uint32_t)(k->msi[i].address >> 32),
			      .data = k->msi[i].data}};
	}
	t->nr = n;
	t->flags = 0;
	return ioctl(k->vm_fd, KVM_SET_GSI_ROUTING, t) < 0 ? -errno : 0;
}

static int irqfd(struct kvm_irq *k, int fd, unsigned gsi, int resample_fd, bool deassign)
{
	struct kvm_irqfd f = {.fd = (uint32_t)fd, .gsi = gsi};
	if (deassign)
		f.flags = KVM_IRQFD_FLAG_DEASSIGN;
	else if (resample_fd >= 0) {
		f.flags = KVM_IRQFD_FLAG_RESAMPLE;
		f.resamplefd = (uint32_t)resample_fd;
	}
	return ioctl(k->vm_fd, KVM_IRQFD, &f) < 0 ? -errno : 0;
}

static int msi_add(void *opaque, uint64_t address, uint32_t data)
{
	struct kvm_irq *k = opaque;
	int r = -ENOSPC;
	pthread_mutex_lock(&k->lock);
	if (k->routing_broken) {
		pthread_mutex_unlock(&k->lock);
		return -ENOSYS;
	}
	for (unsigned i = 0; i < KVM_IRQ_MAX_MSI; i++) {
		struct msi_route *m = &k->msi[i];
		if (m->used)
			continue;
		m->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (m->fd < 0) {
			r = -errno;
			break;
		}
		*m =
		    (struct msi_route){.used = true, .fd = m->fd, .address = address, .data = data};
		unsigned gsi = KVM_IRQ_FIRST_MSI_GSI + i;
		if ((r = commit(k)) < 0 || (r = irqfd(k, m->fd, gsi, -1, false)) < 0) {
			close(m->fd);
			m->used = false;
			commit(k);
			k->routing_broken = true; /* no retry on every interrupt */
			break;
		}
		r = (int)gsi;
		break;
	}
	pthread_mutex_unlock(&k->lock);
	return r;
}

static struct msi_route *msi_find(struct kvm_irq *k, int gsi)
{
	unsigned i = (unsigned)gsi - KVM_IRQ_FIRST_MSI_GSI;
	if (gsi < KVM_IRQ_FIRST_MSI_GSI || i >= KVM_IRQ_MAX_MSI || !k->msi[i].used)
		return NULL;
	return &k->msi[i];
}

static int msi_set(void *opaque, int gsi, uint64_t address, uint32_t data)
{
	struct kvm_irq *k = opaque;
	int r = -ENOENT;
	pthread_mutex_lock(&k->lock);
	struct msi_route *m = msi_find(k, gsi);
	if (m) {
		m->address = address;
		m->data = data;
		r = commit(k);
	}
	pthread_mutex_unlock(&k->lock);
	return r;
}

static int signal_fd(int fd)
{
	uint64_t one = 1;
	return write(fd, &one, sizeof(one)) == sizeof(one) ? 0 : -errno;
}

static int msi_fire(void *opaque, int gsi)
{
	struct kvm_irq *k = opaque;
	pthread_mutex_lock(&k->lock);
	struct msi_route *m = msi_find(k, gsi);
	int r = m ? signal_fd(m->fd) : -ENOENT;
	pthread_mutex_unlock(&k->lock);
	return r;
}

static void msi_del(void *opaque, int gsi)
{
	struct kvm_irq *k = opaque;
	pthread_mutex_lock(&k->lock);
	struct msi_route *m = msi_find(k, gsi);
	if (m) {
		irqfd(k, m->fd, (unsigned)gsi, -1, true);
		close(m->fd);
		m->used = false;
		commit(k);
	}
	pthread_mutex_unlock(&k->lock);
}

static int intx_add(void *opaque, unsigned gsi, int *resample_fd)
{
	struct kvm_irq *k = opaque;
	if (gsi >= LAYOUT_IOAPIC_PINS)
		return -EINVAL;
	int r = -ENOSPC;
	pthread_mutex_lock(&k->lock);
	for (unsigned i = 0; i < KVM_IRQ_MAX_INTX; i++) {
		struct intx_route *x = &k->intx[i];
		if (x->used)
			continue;
		int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		int rfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fd < 0 || rfd < 0 || (r = irqfd(k, fd, gsi, rfd, false)) < 0) {
			if (fd < 0 || rfd < 0)
				r = -errno;
			if (fd >= 0)
				close(fd);
			if (rfd >= 0)
				close(rfd);
			break;
		}
		*x = (struct intx_route){.used = true, .gsi = gsi, .fd = fd, .resample_fd = rfd};
		*resample_fd = rfd;
		r = (int)i;
		break;
	}
	pthread_mutex_unlock(&k->lock);
	return r;
}

static int intx_fire(void *opaque, int handle)
{
	struct kvm_irq *k = opaque;
	if (handle < 0 || handle >= KVM_IRQ_MAX_INTX)
		return -EINVAL;
	pthread_mutex_lock(&k->lock);
	int r = k->intx[handle].used ? signal_fd(k->intx[handle].fd) : -ENOENT;
	pthread_mutex_unlock(&k->lock);
	return r;
}

static void intx_release(struct kvm_irq *k, struct intx_route *x)
{
	irqfd(k, x->fd, x->gsi, -1, true);
	close(x->fd);
	close(x->resample_fd);
	x->used = false;
}

static void intx_del(void *opaque, int handle)
{
	struct kvm_irq *k = opaque;
	if (handle < 0 || handle >= KVM_IRQ_MAX_INTX)
		return;
	pthread_mutex_lock(&k->lock);
	if (k->intx[handle].used)
		intx_release(k, &k->intx[handle]);
	pthread_mutex_unlock(&k->lock);
}

static int ioeventfd(struct kvm_irq *k, uint64_t address, unsigned len, bool match, uint64_t data,
		     int fd, bool deassign)
{
	struct kvm_ioeventfd e = {.datamatch = match ? data : 0,
				  .addr = address,
				  .len = len,
				  .fd = fd,
				  .flags = (match ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0) |
					   (deassign ? KVM_IOEVENTFD_FLAG_DEASSIGN : 0)};
	return ioctl(k->vm_fd, KVM_IOEVENTFD, &e) < 0 ? -errno : 0;
}

static int ioeventfd_add(void *opaque, uint64_t address, unsigned len, bool match, uint64_t data,
			 int fd)
{
	return ioeventfd(opaque, address, len, match, data, fd, false);
}

static void ioeventfd_del(void *opaque, uint64_t address, unsigned len, bool match, uint64_t data,
			  int fd)
{
	ioeventfd(opaque, address, len, match, data, fd, true);
}

int kvm_irq_create(int vm_fd, struct kvm_irq **out)
{
	struct kvm_irq *k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->table = calloc(1, sizeof(*k->table) + (KVM_IRQ_CHIP_ENTRIES + KVM_IRQ_MAX_MSI) *
						     sizeof(k->table->entries[0]));
	if (!k->table) {
		free(k);
		return -ENOMEM;
	}
	k->vm_fd = vm_fd;
	pthread_mutex_init(&k->lock, NULL);
	*out = k;
	return 0;
}

void kvm_irq_destroy(struct kvm_irq *k)
{
	if (!k)
		return;
	for (unsigned i = 0; i < KVM_IRQ_MAX_MSI; i++)
		if (k->msi[i].used) {
			irqfd(k, k->msi[i].fd, KVM_IRQ_FIRST_MSI_GSI + i, -1, true);
			close(k->msi[i].fd);
		}
	for (unsigned i = 0; i < KVM_IRQ_MAX_INTX; i++)
		if (k->intx[i].used)
			intx_release(k, &k->intx[i]);
	pthread_mutex_destroy(&k->lock);
	free(k->table);
	free(k);
}

struct irq_ops kvm_irq_ops(struct kvm_irq *k)
{
	return (struct irq_ops){
	    .msi_route_add = msi_add,
	    .msi_route_set = msi_set,
	    .msi_route_fire = msi_fire,
	    .msi_route_del = msi_del,
	    .intx_add = intx_add,
	    .intx_fire = intx_fire,
	    .intx_del = intx_del,
	    .ioeventfd_add = ioeventfd_add,
	    .ioeventfd_del = ioeventfd_del,
	    .opaque = k,
	};
}
