/* Between the files of the NVMe controller (devices/nvme/): its state, the request, and the
 * functions each part offers the others.  Everything here runs with the controller lock held. */
#ifndef MINIVMM_DEVICES_NVME_NVME_INTERNAL_H
#define MINIVMM_DEVICES_NVME_NVME_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "devices/nvme/nvme.h"
#include "devices/nvme/nvme_spec.h"
#include "devices/pci.h"
#include "memory/sg_list.h"
#include "storage/core/block_aio.h"

#define NVME_MAX_QID NVME_MAX_IO_QUEUES /* queue ids 0 (admin) .. 64 */
#define NVME_MSIX_VECTORS (NVME_MAX_IO_QUEUES + 1)
#define NVME_MQES 1023 /* CAP.MQES: at most 1024 entries per I/O queue */
#define NVME_MDTS 7    /* 2^7 pages: 512 KiB per command */
#define NVME_MAX_XFER (NVME_PAGE << NVME_MDTS)
#define NVME_MAX_SEGS 260   /* PRPs of a maximal transfer, or an SGL's data blocks */
#define NVME_AERL 3	    /* four Asynchronous Event Requests outstanding */
#define NVME_ERROR_LOG 16   /* error log entries kept */
#define NVME_DSM_RANGES 256 /* Dataset Management ranges per command */
#define NVME_BAR_SIZE 0x4000
#define NVME_MSIX_TABLE_OFF 0x2000
#define NVME_MSIX_PBA_OFF 0x3000

struct nvme_ctrl;
struct nvme_sq;
struct event_source;

/* One I/O doorbell as an ioeventfd (nvme_doorbell_fd.c). */
struct nvme_dbfd {
	struct nvme_ctrl *c;
	unsigned idx; /* doorbell index: 2 * qid (SQ tail) or 2 * qid + 1 (CQ head) */
	int fd;
	struct event_source *src;
};

struct nvme_ns {
	struct disk *disk;
	uint32_t nsid;
};

/* One command from fetch to completion. */
struct nvme_req {
	struct nvme_ctrl *c;
	struct nvme_sq *sq;
	struct nvme_req *next; /* free list, CQ overflow list */
	uint32_t dw[16];       /* the submission queue entry */
	uint16_t status;       /* NVME_SC_* with its type */
	uint32_t result;       /* completion dword 0 */
	unsigned generation;   /* the controller's at submission: a reset since makes it stale */
	struct nvme_ns *ns;
	/* multi-step commands (FUA write then flush, DSM ranges, broadcast flush, compare) */
	unsigned step, nsteps;
	uint8_t *buf; /* DSM ranges or compare data (malloc'ed) */
	struct block_aio_req aio;
	struct iovec bounce; /* Compare: the blocks read, in buf */
	struct sg_list sg;
	struct iovec iov[NVME_MAX_SEGS];
};

struct nvme_cq {
	uint16_t id, vector;
	bool ien, phase;
	uint32_t size, head, tail;
	uint8_t *ring; /* host pointer to size * 16 bytes of guest RAM */
	unsigned nsq;  /* submission queues posting here */
	struct nvme_req *overflow, *overflow_tail; /* completions waiting for room */
	unsigned coalesced;    /* completions posted whose interrupt is held back */
	uint64_t coalesce_due; /* CLOCK_MONOTONIC ns: when the held interrupt must fire */
};

struct nvme_sq {
	uint16_t id, cqid;
	uint32_t size, head, tail;
	uint8_t *ring;
	unsigned busy;		   /* fetched, not yet completed */
	bool running, stalled;	   /* in nvme_sq_run; stopped at its limit of commands */
	struct nvme_req *deleting; /* the Delete I/O SQ waiting for `busy` to reach 0 */
};

struct nvme_ctrl {
	struct pci_device pci;
	pthread_mutex_t lock;
	pthread_cond_t drained;
	const struct guest_memory *mem;
	struct event_loop *loop;
	unsigned index, io_queues;
	struct nvme_ns ns[NVME_MAX_NAMESPACES];
	unsigned nns;
	char serial[21], subnqn[64];

	/* registers */
	uint32_t cc, csts, aqa, intms;
	uint64_t asq, acq;
	bool intx;

	struct nvme_sq *sq[NVME_MAX_QID + 1];
	struct nvme_cq *cq[NVME_MAX_QID + 1];
	unsigned generation, inflight; /* inflight: requests in the block layer */
	struct nvme_req *free_list;

	/* features */
	uint32_t nsqa, ncqa; /* allocated I/O queues, 0-based; ~0: not set yet */
	uint32_t feat_arb, feat_pm, feat_temp[2], feat_err, feat_coalesce, feat_atomic, feat_aec;
	bool vwc;			     /* volatile write cache enabled */
	uint8_t ivc_cd[NVME_MSIX_VECTORS];   /* interrupt vector configuration: coalescing off */
	struct event_source *coalesce_timer; /* NULL without an event loop */
	bool coalesce_armed;

	/* asynchronous events */
	struct nvme_req *aer[NVME_AERL + 1];
	unsigned naer;
	uint32_t events[8]; /* queued event dwords not yet reported */
	unsigned nevents;
	uint8_t masked_types; /* event types reported but not cleared by reading their log */

	/* logs */
	uint8_t errors[NVME_ERROR_LOG][NVME_ERROR_ENTRY_SIZE]; /* newest first */
	uint64_t error_count;
	uint64_t units_read, units_written, host_reads, host_writes; /* 512-byte units */
	uint64_t power_on_ns;

	/* shadow doorbells (Doorbell Buffer Config) */
	uint64_t dbbuf_db, dbbuf_ei;	       /* guest addresses; 0: off */
	uint64_t dbbuf_db_host, dbbuf_ei_host; /* their host addresses (checked RAM) */

	/* I/O doorbells as ioeventfds (under ioev_lock, a leaf lock) */
	const struct irq_ops *irq; /* NULL: MMIO exits only */
	pthread_mutex_t ioev_lock;
	struct nvme_dbfd dbfd[2 * NVME_MAX_IO_QUEUES];
	unsigned ndbfd;
	bool ioev_wanted, ioev_active;
	uint64_t ioev_bar, ioev_at; /* where BAR0 is, where the fds are registered */
};

/* nvme_queue.c */
struct nvme_req *nvme_req_get(struct nvme_ctrl *c, struct nvme_sq *sq);
void nvme_req_put(struct nvme_req *r);
/* Post r's completion on its SQ's CQ (or queue it while the CQ is full) and free r. */
void nvme_complete(struct nvme_req *r);
/* Fetch and start the commands between the SQ's head and tail. */
void nvme_sq_run(struct nvme_ctrl *c, struct nvme_sq *sq);
void nvme_sq_doorbell(struct nvme_ctrl *c, unsigned qid, uint32_t tail);
void nvme_cq_doorbell(struct nvme_ctrl *c, unsigned qid, uint32_t head);
int nvme_cq_create(struct nvme_ctrl *c, uint16_t id, uint64_t base, uint32_t size, bool ien,
		   uint16_t vector);
int nvme_sq_create(struct nvme_ctrl *c, uint16_t id, uint64_t base, uint32_t size, uint16_t cqid);
void nvme_cq_delete(struct nvme_ctrl *c, uint16_t id);
void nvme_sq_delete(struct nvme_ctrl *c, uint16_t id);
void nvme_irq_update(struct nvme_ctrl *c);
/* Interrupt for cq now (MSI-X: its vector; INTx: the line follows the queues). */
void nvme_cq_signal(struct nvme_ctrl *c, struct nvme_cq *cq);

/* nvme_coalesce.c: interrupt coalescing (Set Features 08h/09h).  hold: true when cq's interrupt
 * for the completion just posted is held back (it comes with a later one, or from the timer). */
int nvme_coalesce_init(struct nvme_ctrl *c);
void nvme_coalesce_fini(struct nvme_ctrl *c);
bool nvme_coalesce_hold(struct nvme_ctrl *c, struct nvme_cq *cq);
bool nvme_running(const struct nvme_ctrl *c);

/* nvme_admin.c: start an admin command; returns true when r is complete (status set). */
bool nvme_admin(struct nvme_req *r);
void nvme_event(struct nvme_ctrl *c, unsigned type, unsigned info, unsigned log);
void nvme_error_log(struct nvme_ctrl *c, const struct nvme_req *r);
void nvme_aer_flush(struct nvme_ctrl *c);

/* nvme_io.c: start an NVM command; returns true when r is complete (status set). */
bool nvme_io(struct nvme_req *r);

/* nvme_doorbell_fd.c: I/O doorbells as ioeventfds while shadow doorbells are on. */
int nvme_doorbell_fds_create(struct nvme_ctrl *c, const struct irq_ops *irq);
void nvme_doorbell_fds_destroy(struct nvme_ctrl *c);
void nvme_doorbell_fds_enable(struct nvme_ctrl *c, bool on);
void nvme_doorbell_fds_bar(struct nvme_ctrl *c, uint64_t addr, bool mapped); /* bus lock held */

/* nvme_dptr.c: map r's data pointer (PRP or SGL, per PSDT) for `len` bytes into r->sg;
 * returns 0 or a status. */
uint16_t nvme_map_data(struct nvme_req *r, uint64_t len);

/* Command fields. */
static inline unsigned nvme_opcode(const struct nvme_req *r)
{
	return r->dw[0] & 0xFF;
}
static inline uint16_t nvme_cid(const struct nvme_req *r)
{
	return (uint16_t)(r->dw[0] >> 16);
}
static inline uint64_t nvme_dw64(const struct nvme_req *r, unsigned i)
{
	return r->dw[i] | (uint64_t)r->dw[i + 1] << 32;
}

#endif
