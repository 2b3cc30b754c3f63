/* Submission and completion queues (NVMe 1.4, 4.1 and 4.6): creation and deletion, fetching
 * commands at the tail doorbell, posting completions with the phase tag, and the interrupts.
 *
 * A queue lives in guest RAM the host gave (physically contiguous, checked whole at creation
 * through the guest-memory accessor).  A completion that finds its CQ full waits on the CQ's
 * overflow list until the host moves the head; an SQ stops fetching once it has as many commands
 * in flight as entries, so neither list can grow without bound.  Doorbell writes naming a queue
 * that does not exist, or a value outside the queue, are ignored and reported through an
 * asynchronous event (4.1: Invalid Doorbell Register / Write Value). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/nvme/nvme_internal.h"
#include "devices/nvme/nvme_spec.h"
#include "memory/guest_memory.h"
#include "lib/endian.h"

bool nvme_running(const struct nvme_ctrl *c)
{
	return (c->csts & NVME_CSTS_RDY) && !(c->csts & NVME_CSTS_CFS) &&
	       !(c->csts & NVME_CSTS_SHST_MASK);
}

struct nvme_req *nvme_req_get(struct nvme_ctrl *c, struct nvme_sq *sq)
{
	struct nvme_req *r = c->free_list;
	if (r)
		c->free_list = r->next;
	else if (!(r = malloc(sizeof(*r))))
		return NULL;
	r->c = c;
	r->sq = sq;
	r->next = NULL;
	r->status = NVME_SC_SUCCESS;
	r->result = 0;
	r->ns = NULL;
	r->step = r->nsteps = 0;
	r->buf = NULL;
	r->generation = c->generation;
	return r;
}

void nvme_req_put(struct nvme_req *r)
{
	struct nvme_ctrl *c = r->c;
	free(r->buf);
	r->buf = NULL;
	r->next = c->free_list;
	c->free_list = r;
}

/* --- interrupts ------------------------------------------------------------------------- */

static bool msix_enabled(const struct nvme_ctrl *c)
{
	return __atomic_load_n(&c->pci.cfg[c->pci.msix_cap + 3], __ATOMIC_RELAXED) & 0x80;
}

/* INTx (and MSI-X off): the line is up while an interrupt-enabled CQ holds unconsumed entries
 * and the host has not masked vector 0 (INTMS). */
void nvme_irq_update(struct nvme_ctrl *c)
{
	bool level = false;
	if (!msix_enabled(c) && !(c->intms & 1))
		for (unsigned q = 0; q <= NVME_MAX_QID && !level; q++)
			level = c->cq[q] && c->cq[q]->ien && c->cq[q]->head != c->cq[q]->tail;
	if (level != c->intx) {
		c->intx = level;
		if (level)
			pci_irq_assert(&c->pci);
		else
			pci_irq_deassert(&c->pci);
	}
}

void nvme_cq_signal(struct nvme_ctrl *c, struct nvme_cq *cq)
{
	if (!cq->ien)
		return;
	if (msix_enabled(c))
		pci_msi_notify(&c->pci, cq->vector);
	else
		nvme_irq_update(c);
}

/* A completion was posted on cq: its interrupt, unless coalescing holds it back (MSI-X only:
 * the INTx line stays up while entries wait anyway). */
static void cq_notify(struct nvme_ctrl *c, struct nvme_cq *cq)
{
	if (cq->ien && msix_enabled(c) && nvme_coalesce_hold(c, cq))
		return;
	nvme_cq_signal(c, cq);
}

/* --- completions ------------------------------------------------------------------------ */

static bool cq_full(const struct nvme_cq *cq)
{
	return (cq->tail + 1) % cq->size == cq->head;
}

static void cq_post(struct nvme_cq *cq, const struct nvme_req *r, uint16_t sqhd)
{
	uint8_t *e = cq->ring + (uint64_t)cq->tail * NVME_CQE_SIZE;
	uint16_t status = r->status;
	if (status != NVME_SC_SUCCESS)
		status |= NVME_STATUS_DNR; /* retrying the same command would fail the same way */
	put_le32(e, r->result);
	put_le32(e + 4, 0);
	put_le16(e + 8, sqhd);
	put_le16(e + 10, r->sq->id);
	/* The phase tag goes last: the host polls it. */
	uint32_t dw3 = nvme_cid(r) | (uint32_t)(status << 1 | cq->phase) << 16;
	__atomic_store_n((uint32_t *)(e + 12), htole32(dw3), __ATOMIC_RELEASE);
	if (++cq->tail == cq->size) {
		cq->tail = 0;
		cq->phase = !cq->phase;
	}
}

static void sq_finish_delete(struct nvme_ctrl *c, struct nvme_sq *sq);

void nvme_complete(struct nvme_req *r)
{
	struct nvme_ctrl *c = r->c;
	struct nvme_sq *sq = r->sq;
	struct nvme_cq *cq = c->cq[sq->cqid];
	if (r->status != NVME_SC_SUCCESS)
		nvme_error_log(c, r);
	if (cq->overflow || cq_full(cq)) {
		if (cq->overflow_tail)
			cq->overflow_tail->next = r;
		else
			cq->overflow = r;
		cq->overflow_tail = r;
		r->next = NULL;
		return;
	}
	cq_post(cq, r, (uint16_t)sq->head);
	nvme_req_put(r);
	cq_notify(c, cq);
	if (--sq->busy == 0 && sq->deleting)
		sq_finish_delete(c, sq);
	else if (sq->stalled && !sq->running)
		nvme_sq_run(c, sq); /* it had stopped fetching at its limit */
}

/* The host consumed entries: post what waited for room. */
static void cq_drain_overflow(struct nvme_ctrl *c, struct nvme_cq *cq)
{
	while (cq->overflow && !cq_full(cq)) {
		struct nvme_req *r = cq->overflow;
		cq->overflow = r->next;
		if (!cq->overflow)
			cq->overflow_tail = NULL;
		struct nvme_sq *sq = r->sq;
		cq_post(cq, r, (uint16_t)sq->head);
		nvme_req_put(r);
		cq_notify(c, cq);
		if (--sq->busy == 0 && sq->deleting)
			sq_finish_delete(c, sq);
		else if (sq->stalled && !sq->running)
			nvme_sq_run(c, sq);
	}
}

/* --- fetching --------------------------------------------------------------------------- */

static void start(struct nvme_ctrl *c, struct nvme_sq *sq, const uint8_t *sqe)
{
	struct nvme_req *r = nvme_req_get(c, sq);
	if (!r)
		return; /* out of host memory: the command is lost, the host's timeout resets us */
	for (unsigned i = 0; i < 16; i++)
		r->dw[i] = get_le32(sqe + 4 * i);
	sq->busy++;
	bool done = sq->id == 0 ? nvme_admin(r) : nvme_io(r);
	if (done)
		nvme_complete(r);
}

/* Not re-entered: a completion inside the loop that frees room just lets the loop go on. */
void nvme_sq_run(struct nvme_ctrl *c, struct nvme_sq *sq)
{
	if (sq->running)
		return;
	sq->running = true;
	sq->stalled = false;
	/* At most one queue's worth per call; the guest can only add by ringing again. */
	for (uint32_t n = 0; n < sq->size && sq->head != sq->tail; n++) {
		if (!nvme_running(c) || sq->deleting)
			break;
		if (sq->busy >= sq->size - 1) {
			sq->stalled = true; /* a completion restarts it */
			break;
		}
		uint8_t sqe[NVME_SQE_SIZE];
		memcpy(sqe, sq->ring + (uint64_t)sq->head * NVME_SQE_SIZE, sizeof(sqe));
		sq->head = (sq->head + 1) % sq->size;
		start(c, sq, sqe);
	}
	sq->running = false;
}

/* Shadow doorbells (Doorbell Buffer Config, NVMe 1.3): for I/O queues the host writes each new
 * tail/head to memory and rings the register only when it passes the event index we publish.  So
 * the value is taken from the shadow buffer, and after the work the event index is set to it;
 * re-reading the shadow then catches a value written while the host still saw the old index. */
static uint32_t *dbbuf_slot(uint64_t base_host, unsigned idx)
{
	return (uint32_t *)(uintptr_t)(base_host + 4ULL * idx);
}

static bool dbbuf_on(const struct nvme_ctrl *c, unsigned qid)
{
	return qid && c->dbbuf_db_host;
}

static uint32_t shadow_read(const struct nvme_ctrl *c, unsigned idx)
{
	return le32toh(__atomic_load_n(dbbuf_slot(c->dbbuf_db_host, idx), __ATOMIC_ACQUIRE));
}

static void eventidx_write(const struct nvme_ctrl *c, unsigned idx, uint32_t v)
{
	__atomic_store_n(dbbuf_slot(c->dbbuf_ei_host, idx), htole32(v), __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static bool sq_tail_set(struct nvme_ctrl *c, struct nvme_sq *sq, uint32_t tail)
{
	if (tail >= sq->size) {
		nvme_event(c, NVME_AER_TYPE_ERROR, NVME_AER_INFO_INVALID_DB_VALUE, NVME_LOG_ERROR);
		return false;
	}
	sq->tail = tail;
	return true;
}

void nvme_sq_doorbell(struct nvme_ctrl *c, unsigned qid, uint32_t tail)
{
	struct nvme_sq *sq = qid <= NVME_MAX_QID ? c->sq[qid] : NULL;
	if (!sq) {
		nvme_event(c, NVME_AER_TYPE_ERROR, NVME_AER_INFO_INVALID_DB_REG, NVME_LOG_ERROR);
		return;
	}
	if (!dbbuf_on(c, qid)) {
		if (sq_tail_set(c, sq, tail))
			nvme_sq_run(c, sq);
		return;
	}
	/* Bounded: each round the host must have written a new tail meanwhile. */
	for (unsigned round = 0; round < 4 && c->sq[qid] == sq; round++) {
		if (!sq_tail_set(c, sq, shadow_read(c, 2 * qid)))
			return;
		nvme_sq_run(c, sq);
		eventidx_write(c, 2 * qid, sq->tail);
		if (shadow_read(c, 2 * qid) == sq->tail)
			return;
	}
}

static bool cq_head_set(struct nvme_ctrl *c, struct nvme_cq *cq, uint32_t head)
{
	/* The new head must lie in the entries posted and not yet consumed (or equal the tail). */
	uint32_t posted = (cq->tail + cq->size - cq->head) % cq->size;
	uint32_t moved = (head + cq->size - cq->head) % cq->size;
	if (head >= cq->size || moved > posted) {
		nvme_event(c, NVME_AER_TYPE_ERROR, NVME_AER_INFO_INVALID_DB_VALUE, NVME_LOG_ERROR);
		return false;
	}
	cq->head = head;
	if (head == cq->tail)
		cq->coalesced = 0; /* the host has seen them all: no interrupt is owed */
	return true;
}

void nvme_cq_doorbell(struct nvme_ctrl *c, unsigned qid, uint32_t head)
{
	struct nvme_cq *cq = qid <= NVME_MAX_QID ? c->cq[qid] : NULL;
	if (!cq) {
		nvme_event(c, NVME_AER_TYPE_ERROR, NVME_AER_INFO_INVALID_DB_REG, NVME_LOG_ERROR);
		return;
	}
	if (dbbuf_on(c, qid)) {
		head = shadow_read(c, 2 * qid + 1);
		eventidx_write(c, 2 * qid + 1, head);
	}
	if (!cq_head_set(c, cq, head))
		return;
	cq_drain_overflow(c, cq);
	nvme_irq_update(c);
}

/* --- creation and deletion -------------------------------------------------------------- */

static uint8_t *ring_map(struct nvme_ctrl *c, uint64_t base, uint32_t size, unsigned esize)
{
	if (base & (NVME_PAGE - 1))
		return NULL;
	return guest_memory_ptr(c->mem, base, (uint64_t)size * esize);
}

int nvme_cq_create(struct nvme_ctrl *c, uint16_t id, uint64_t base, uint32_t size, bool ien,
		   uint16_t vector)
{
	uint8_t *ring = ring_map(c, base, size, NVME_CQE_SIZE);
	if (!ring)
		return -EFAULT;
	struct nvme_cq *cq = calloc(1, sizeof(*cq));
	if (!cq)
		return -ENOMEM;
	*cq = (struct nvme_cq){
	    .id = id, .vector = vector, .ien = ien, .phase = 1, .size = size, .ring = ring};
	c->cq[id] = cq;
	return 0;
}

int nvme_sq_create(struct nvme_ctrl *c, uint16_t id, uint64_t base, uint32_t size, uint16_t cqid)
{
	uint8_t *ring = ring_map(c, base, size, NVME_SQE_SIZE);
	if (!ring)
		return -EFAULT;
	struct nvme_sq *sq = calloc(1, sizeof(*sq));
	if (!sq)
		return -ENOMEM;
	*sq = (struct nvme_sq){.id = id, .cqid = cqid, .size = size, .ring = ring};
	c->sq[id] = sq;
	c->cq[cqid]->nsq++;
	return 0;
}

/* Requests of the queue that wait in its CQ's overflow list go with it (reset only). */
void nvme_cq_delete(struct nvme_ctrl *c, uint16_t id)
{
	struct nvme_cq *cq = c->cq[id];
	if (!cq)
		return;
	while (cq->overflow) {
		struct nvme_req *r = cq->overflow;
		cq->overflow = r->next;
		nvme_req_put(r);
	}
	c->cq[id] = NULL;
	free(cq);
	nvme_irq_update(c);
}

static void sq_free(struct nvme_ctrl *c, struct nvme_sq *sq)
{
	if (c->cq[sq->cqid])
		c->cq[sq->cqid]->nsq--;
	c->sq[sq->id] = NULL;
	free(sq);
}

/* The last command of a queue being deleted completed: the deletion completes too. */
static void sq_finish_delete(struct nvme_ctrl *c, struct nvme_sq *sq)
{
	struct nvme_req *del = sq->deleting;
	sq_free(c, sq);
	nvme_complete(del);
}

/* Delete I/O SQ: completes (through sq->deleting) once the commands it holds have completed. */
void nvme_sq_delete(struct nvme_ctrl *c, uint16_t id)
{
	struct nvme_sq *sq = c->sq[id];
	if (sq && !sq->busy)
		sq_free(c, sq);
}
