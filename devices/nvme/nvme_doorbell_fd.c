/* I/O queue doorbells as ioeventfds, while shadow doorbells are on.
 *
 * A doorbell written through KVM_IOEVENTFD reaches us without its value, so it can stand in for
 * the register only when the value is in memory too: with Doorbell Buffer Config the host writes
 * each new tail/head to the shadow buffer first (nvme_queue.c reads it from there).  Then the
 * vCPU's doorbell write is handled in the kernel and the controller fetches the commands on the
 * event loop.  The ioeventfds follow BAR0 when the guest moves it; a lock of their own (taken
 * under the PCI bus lock or the controller lock, and taking neither) keeps the registration and
 * the BAR address consistent.
 */
#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/nvme/nvme_internal.h"
#include "lib/event_loop.h"

static uint64_t doorbell_addr(uint64_t bar, unsigned idx)
{
	return bar + NVME_REG_DOORBELL + 4ULL * idx;
}

/* ioev_lock held: register or drop every doorbell fd at `bar`. */
static void ioev_apply(struct nvme_ctrl *c, uint64_t bar, bool add)
{
	const struct irq_ops *irq = c->irq;
	for (unsigned i = 0; i < c->ndbfd; i++) {
		struct nvme_dbfd *d = &c->dbfd[i];
		if (d->fd < 0)
			continue;
		if (add)
			irq->ioeventfd_add(irq->opaque, doorbell_addr(bar, d->idx), 4, false, 0,
					   d->fd);
		else
			irq->ioeventfd_del(irq->opaque, doorbell_addr(bar, d->idx), 4, false, 0,
					   d->fd);
	}
}

/* The registration wanted now: shadow doorbells on and BAR0 mapped. */
static void ioev_sync(struct nvme_ctrl *c)
{
	bool want = c->ioev_wanted && c->ioev_bar;
	if (want == c->ioev_active && (!want || c->ioev_at == c->ioev_bar))
		return;
	if (c->ioev_active)
		ioev_apply(c, c->ioev_at, false);
	if (want)
		ioev_apply(c, c->ioev_bar, true);
	c->ioev_active = want;
	c->ioev_at = want ? c->ioev_bar : 0;
}

void nvme_doorbell_fds_enable(struct nvme_ctrl *c, bool on)
{
	if (!c->irq)
		return;
	pthread_mutex_lock(&c->ioev_lock);
	c->ioev_wanted = on;
	ioev_sync(c);
	pthread_mutex_unlock(&c->ioev_lock);
}

void nvme_doorbell_fds_bar(struct nvme_ctrl *c, uint64_t addr, bool mapped)
{
	if (!c->irq)
		return;
	pthread_mutex_lock(&c->ioev_lock);
	c->ioev_bar = mapped ? addr : 0;
	ioev_sync(c);
	pthread_mutex_unlock(&c->ioev_lock);
}

/* On the loop: the guest rang doorbell d->idx; the value is in the shadow buffer. */
static void doorbell_event(void *opaque, uint32_t events)
{
	struct nvme_dbfd *d = opaque;
	struct nvme_ctrl *c = d->c;
	uint64_t v;
	(void)events;
	if (read(d->fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: a spurious wake-up */
	}
	pthread_mutex_lock(&c->lock);
	if (nvme_running(c) && c->dbbuf_db_host) { /* else a late ring from before a reset */
		if (d->idx & 1)
			nvme_cq_doorbell(c, d->idx / 2, 0);
		else
			nvme_sq_doorbell(c, d->idx / 2, 0);
	}
	pthread_mutex_unlock(&c->lock);
}

int nvme_doorbell_fds_create(struct nvme_ctrl *c, const struct irq_ops *irq)
{
	pthread_mutex_init(&c->ioev_lock, NULL);
	if (!irq || !irq->ioeventfd_add || !c->loop)
		return 0; /* MMIO exits only */
	c->irq = irq;
	for (unsigned q = 1; q <= c->io_queues; q++)
		for (unsigned cq = 0; cq < 2; cq++) {
			struct nvme_dbfd *d = &c->dbfd[c->ndbfd++];
			*d = (struct nvme_dbfd){.c = c, .idx = 2 * q + cq, .fd = -1};
			d->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
			if (d->fd < 0)
				continue;
			if (event_loop_add_fd(c->loop, d->fd, EPOLLIN, doorbell_event, d, &d->src) <
			    0) {
				close(d->fd);
				d->fd = -1;
			}
		}
	return 0;
}

void nvme_doorbell_fds_destroy(struct nvme_ctrl *c)
{
	nvme_doorbell_fds_enable(c, false);
	for (unsigned i = 0; i < c->ndbfd; i++) {
		event_source_remove(c->dbfd[i].src);
		if (c->dbfd[i].fd >= 0)
			close(c->dbfd[i].fd);
	}
	c->ndbfd = 0;
	pthread_mutex_destroy(&c->ioev_lock);
}
