/* SCSI IO requests and task management.
 *
 * A SCSI IO request names a target, a LUN, a CDB and a data buffer described by its SGL: simple
 * elements (32- or 64-bit addresses) in the request frame, continued through chain elements into
 * chain buffers (MPI 1.5 "SGL").  The walk stops at the data length; every element must lie in its
 * frame or chain buffer, chains are bounded in depth and elements in number (a chain that points
 * back to itself ends there), and every segment goes through the one scatter-gather walker
 * (memory/sg_list.h), so the guest can only name its RAM.
 *
 * The SCSI target layer runs the command.  A command that moved all its data with GOOD status is
 * answered with a context reply; anything else (CHECK CONDITION with autosense written to the
 * request's sense buffer, a short transfer, a bad target, an SGL error, a task aborted) with a
 * SCSI IO reply frame.  Block requests cannot be recalled, so task management (abort, LUN,
 * target and bus reset) marks the requests it ends and replies when the last of them came back,
 * after their TERMINATED replies, as a chip would.
 */
#include <errno.h>
#include <string.h>

#include "devices/disk.h"
#include "devices/lsi/mpt.h"
#include "memory/guest_memory.h"
#include "lib/endian.h"
#include "lib/log.h"

#define TM_RSP_FAILED 0x05

struct mpt_target *mpt_target(struct mpt *m, unsigned bus, unsigned t)
{
	if (bus != 0 || t >= m->p->max_targets || !m->targets[t].present)
		return NULL;
	return &m->targets[t];
}

static void req_free(struct mpt *m, struct mpt_req *r)
{
	r->in_use = false;
	r->next_free = m->free_reqs;
	m->free_reqs = r;
}

/* A SCSI IO reply frame for request frame f. */
static void io_reply_via(struct mpt *m, const uint8_t *f, uint16_t status, uint8_t scsi_status,
			 uint8_t state, uint32_t xfer, uint32_t sense_count, bool db)
{
	uint8_t r[MPI_SCSI_IO_REPLY_LEN];
	/* A boot that stalls in the firmware shows here which command failed and how. */
	log_debug(NULL,
		  "%s: SCSI IO target %u CDB %02x %02x%02x%02x%02x, %u bytes: IOCStatus %#06x, "
		  "SCSI status %#04x, %u moved",
		  m->p->name, f[MPI_SCSI_IO_TARGET], f[MPI_SCSI_IO_CDB], f[MPI_SCSI_IO_CDB + 2],
		  f[MPI_SCSI_IO_CDB + 3], f[MPI_SCSI_IO_CDB + 4], f[MPI_SCSI_IO_CDB + 5],
		  get_le32(f + MPI_SCSI_IO_DATA_LENGTH), status, scsi_status, xfer);
	mpt_reply_header(r, f, sizeof(r));
	r[0] = f[MPI_SCSI_IO_TARGET];
	r[1] = f[MPI_SCSI_IO_BUS];
	r[4] = f[MPI_SCSI_IO_CDB_LENGTH];
	r[5] = f[MPI_SCSI_IO_SENSE_LENGTH];
	r[MPI_MSG_FLAGS] = f[MPI_MSG_FLAGS];
	r[12] = scsi_status;
	r[13] = state;
	put_le16(r + MPI_REPLY_STATUS, status);
	put_le32(r + 20, xfer);
	put_le32(r + 24, sense_count);
	put_le16(r + 32, 0xFFFF); /* TaskTag: unknown */
	mpt_reply(m, r, sizeof(r), db);
}

static void io_reply(struct mpt *m, const uint8_t *f, uint16_t status, uint8_t scsi_status,
		     uint8_t state, uint32_t xfer, uint32_t sense_count)
{
	io_reply_via(m, f, status, scsi_status, state, xfer, sense_count, false);
}

static void tm_progress(struct mpt *m);

/* Report request r (finished) to the guest and free it. */
/* Trace a finished request with a hash (FNV-1a) of its data buffer, to compare what the guest
 * got with the image (`trace=lsi`). */
static void trace_done(const struct mpt *m, const struct mpt_req *r)
{
	const uint8_t *f = r->frame;
	uint64_t h = 14695981039346656037ull;
	for (unsigned i = 0; i < r->sg.n; i++) {
		const uint8_t *p = r->sg.iov[i].iov_base;
		for (size_t j = 0; j < r->sg.iov[i].iov_len; j++)
			h = (h ^ p[j]) * 1099511628211ull;
	}
	TRACE(LSI,
	      "%s: done context %#x CDB %02x lba %u count %u, %u bytes: status %#x, %zu moved, "
	      "hash %016llx",
	      m->p->name, get_le32(f + MPI_MSG_CONTEXT), f[MPI_SCSI_IO_CDB],
	      get_be32(f + MPI_SCSI_IO_CDB + 2), (unsigned)get_be16(f + MPI_SCSI_IO_CDB + 7),
	      get_le32(f + MPI_SCSI_IO_DATA_LENGTH), r->sreq.status, (size_t)r->sreq.xfer,
	      (unsigned long long)h);
}

static void complete(struct mpt *m, struct mpt_req *r)
{
	const uint8_t *f = r->frame;
	const struct scsi_req *s = &r->sreq;
	uint32_t data_len = get_le32(f + MPI_SCSI_IO_DATA_LENGTH);
	uint32_t context = get_le32(f + MPI_MSG_CONTEXT);

	if (trace_mask & (1ull << TRACE_LSI))
		trace_done(m, r);
	if (r->aborted) {
		io_reply(m, f, MPI_STATUS_SCSI_TASK_TERMINATED, 0,
			 MPI_SCSI_STATE_TERMINATED | MPI_SCSI_STATE_NO_SCSI_STATUS, 0, 0);
	} else if (s->host == SCSI_HOST_OVERRUN) {
		io_reply(m, f, MPI_STATUS_SCSI_DATA_OVERRUN, 0, MPI_SCSI_STATE_NO_SCSI_STATUS, 0,
			 0);
	} else if (s->status != SCSI_STATUS_GOOD) {
		unsigned n = s->sense_len < f[MPI_SCSI_IO_SENSE_LENGTH]
				 ? s->sense_len
				 : f[MPI_SCSI_IO_SENSE_LENGTH];
		uint64_t gpa = m->sense_high | get_le32(f + MPI_SCSI_IO_SENSE_ADDR);
		uint8_t state = MPI_SCSI_STATE_AUTOSENSE_VALID;
		if (n && guest_memory_write(m->mem, gpa, s->sense, n) < 0)
			state = 0x02; /* AUTOSENSE_FAILED: the sense buffer is not RAM */
		io_reply(m, f, MPI_STATUS_SCSI_DATA_UNDERRUN, s->status, state, (uint32_t)s->xfer,
			 n);
	} else if (s->xfer < data_len) {
		io_reply(m, f, MPI_STATUS_SCSI_DATA_UNDERRUN, s->status, 0, (uint32_t)s->xfer, 0);
	} else {
		mpt_post_context(m, context);
	}
	req_free(m, r);
}

/* The block layer finished a step of r: runs on the completion thread. */
static void io_callback(struct scsi_req *s, int ret)
{
	struct mpt_req *r = s->opaque;
	struct mpt *m = r->mpt;
	pthread_mutex_lock(&m->lock);
	if (scsi_req_resume(s, ret)) {
		m->inflight--;
		if (r->generation == m->generation) {
			bool aborted = r->aborted;
			complete(m, r);
			if (aborted)
				tm_progress(m);
		} else {
			req_free(m, r); /* a reset forgot it: guest memory is not ours any more */
		}
		if (!m->inflight)
			pthread_cond_broadcast(&m->drained);
	}
	pthread_mutex_unlock(&m->lock);
}

/* Walk the SGL of request frame f (at gpa) into r->sg, up to `want` bytes: MPI_STATUS_*. */
static uint16_t sgl_walk(struct mpt *m, struct mpt_req *r, uint64_t gpa, const uint8_t *f,
			 uint32_t want)
{
	uint64_t pos = gpa + MPI_SCSI_IO_SGL, end = gpa + MPT_REQUEST_FRAME;
	unsigned co = f[MPI_MSG_CHAIN_OFFSET] * 4u;
	uint64_t chain = co ? gpa + co : 0;
	unsigned depth = 0, elements = 0;
	uint32_t got = 0;

	if (co && (co < MPI_SCSI_IO_SGL || co + 8 > MPT_REQUEST_FRAME))
		return MPI_STATUS_INVALID_SGL;
	while (got < want) {
		uint8_t e[12];
		if (++elements > MPT_MAX_SGES || pos + 8 > end ||
		    guest_memory_read(m->mem, pos, e, 4) < 0)
			return MPI_STATUS_INVALID_SGL;
		uint32_t fl = get_le32(e);
		unsigned size = (fl & MPI_SGE_64BIT) ? 12 : 8;
		if (pos + size > end || guest_memory_read(m->mem, pos + 4, e + 4, size - 4) < 0)
			return MPI_STATUS_INVALID_SGL;
		uint64_t addr = size == 12 ? get_le64(e + 4) : get_le32(e + 4);
		if (chain && pos == chain) { /* into the next chain buffer */
			uint32_t len = fl & MPI_SGE_CHAIN_LENGTH_MASK;
			unsigned next = ((fl >> MPI_SGE_CHAIN_OFFSET_SHIFT) & 0xFF) * 4u;
			if ((fl & MPI_SGE_TYPE_MASK) != MPI_SGE_TYPE_CHAIN ||
			    ++depth > MPT_MAX_CHAIN_DEPTH || len < 8 || addr + len < addr ||
			    (next && next + 8 > len))
				return MPI_STATUS_INVALID_SGL;
			pos = addr;
			end = addr + len;
			chain = next ? addr + next : 0;
			continue;
		}
		if ((fl & MPI_SGE_TYPE_MASK) != MPI_SGE_TYPE_SIMPLE)
			return MPI_STATUS_INVALID_SGL;
		uint32_t len = fl & MPI_SGE_LENGTH_MASK;
		if (len > want - got)
			len = want - got; /* elements past the data length are ignored */
		if (len && sg_list_add(&r->sg, addr, len) < 0)
			return MPI_STATUS_INVALID_SGL;
		got += len;
		pos += size;
		if (fl & MPI_SGE_END_OF_LIST)
			break;
		if (fl & MPI_SGE_LAST_ELEMENT) { /* the end of this buffer: a chain, or the end */
			if (!chain)
				break;
			pos = chain;
		}
	}
	return got < want ? MPI_STATUS_INVALID_SGL : MPI_STATUS_SUCCESS;
}

static bool lun_zero(const uint8_t *lun)
{
	for (unsigned i = 0; i < 8; i++)
		if (lun[i])
			return false;
	return true;
}

void mpt_scsi_io(struct mpt *m, const uint8_t *msg, uint64_t frame_gpa, bool db)
{
	uint32_t control = get_le32(msg + MPI_SCSI_IO_CONTROL);
	uint32_t data_len = get_le32(msg + MPI_SCSI_IO_DATA_LENGTH);
	uint8_t cdb_len = msg[MPI_SCSI_IO_CDB_LENGTH];
	uint32_t dir_bits = control & MPI_SCSIIO_CONTROL_DIR_MASK;
	const uint8_t *lun = msg + MPI_SCSI_IO_LUN;
	uint16_t status = MPI_STATUS_SUCCESS;

	if (db) { /* SCSI IO is never a handshake message */
		io_reply_via(m, msg, MPI_STATUS_INVALID_FUNCTION, 0, MPI_SCSI_STATE_NO_SCSI_STATUS,
			     0, 0, true);
		return;
	}
	struct mpt_target *t = mpt_target(m, msg[MPI_SCSI_IO_BUS], msg[MPI_SCSI_IO_TARGET]);
	if (msg[MPI_SCSI_IO_BUS] != 0)
		status = MPI_STATUS_SCSI_INVALID_BUS;
	else if (msg[MPI_SCSI_IO_TARGET] >= m->p->max_targets)
		status = MPI_STATUS_SCSI_INVALID_TARGETID;
	else if (!t)
		status = MPI_STATUS_SCSI_DEVICE_NOT_THERE;
	else if (cdb_len == 0 || cdb_len > SCSI_CDB_MAX || data_len > MPT_MAX_TRANSFER ||
		 dir_bits == MPI_SCSIIO_CONTROL_DIR_MASK || (data_len && !dir_bits))
		status = MPI_STATUS_INVALID_FIELD;
	else if (!m->free_reqs)
		status = MPI_STATUS_INSUFFICIENT_RESOURCES; /* more than GlobalCredits in flight */
	if (status) {
		io_reply(m, msg, status, 0, MPI_SCSI_STATE_NO_SCSI_STATUS, 0, 0);
		return;
	}

	struct mpt_req *r = m->free_reqs;
	m->free_reqs = r->next_free;
	r->in_use = true;
	r->aborted = false;
	r->generation = m->generation;
	memcpy(r->frame, msg, sizeof(r->frame));
	sg_list_init(&r->sg, m->mem, r->sg_iov, MPT_MAX_SEGMENTS, MPT_MAX_TRANSFER);
	status = sgl_walk(m, r, frame_gpa, msg, data_len);
	TRACE(LSI,
	      "%s: SCSI IO frame %#llx context %#x target %u CDB %02x lba %u count %u, %u bytes, "
	      "control %#x, SGE %#x %#x: %#x",
	      m->p->name, (unsigned long long)frame_gpa, get_le32(msg + MPI_MSG_CONTEXT),
	      msg[MPI_SCSI_IO_TARGET], msg[MPI_SCSI_IO_CDB], get_be32(msg + MPI_SCSI_IO_CDB + 2),
	      (unsigned)get_be16(msg + MPI_SCSI_IO_CDB + 7), data_len, control,
	      get_le32(msg + MPI_SCSI_IO_SGL), get_le32(msg + MPI_SCSI_IO_SGL + 4), status);
	if (status) {
		req_free(m, r);
		io_reply(m, msg, status, 0, MPI_SCSI_STATE_NO_SCSI_STATUS, 0, 0);
		return;
	}
	struct scsi_req *s = &r->sreq;
	memset(s->cdb, 0, sizeof(s->cdb));
	memcpy(s->cdb, msg + MPI_SCSI_IO_CDB, cdb_len);
	s->cdb_len = cdb_len;
	s->data = &r->sg;
	s->dir = dir_bits == MPI_SCSIIO_CONTROL_WRITE  ? SCSI_DIR_TO_DEVICE
		 : dir_bits == MPI_SCSIIO_CONTROL_READ ? SCSI_DIR_FROM_DEVICE
						       : SCSI_DIR_NONE;
	s->io_callback = io_callback;
	s->opaque = r;
	s->iov = r->io_iov;
	s->iov_max = MPT_MAX_SEGMENTS;
	if (!lun_zero(lun)) {
		scsi_req_no_lun(s);
		complete(m, r);
	} else if (scsi_req_start(&t->lun, s)) {
		complete(m, r);
	} else {
		m->inflight++;
	}
}

/* ---- task management ---------------------------------------------------------------------- */

/* Does task management on (target, all_targets) cover request r? */
static bool covers(const struct mpt_req *r, unsigned target, bool all_targets)
{
	return r->in_use && (all_targets || r->frame[MPI_SCSI_IO_TARGET] == target);
}

static void tm_progress(struct mpt *m)
{
	if (!m->tm_pending || --m->tm_waiting)
		return;
	m->tm_pending = false;
	mpt_reply(m, m->tm_reply, sizeof(m->tm_reply), false);
}

void mpt_task_mgmt(struct mpt *m, const uint8_t *msg, bool db)
{
	uint8_t *r = m->tm_reply;
	uint8_t type = msg[MPI_TM_TASK_TYPE];
	unsigned target = msg[0], bus = msg[1];
	uint32_t task = get_le32(msg + MPI_TM_TASK_CONTEXT);
	unsigned count = 0;
	bool all = type == MPI_TM_RESET_BUS;
	(void)db; /* the reply always comes through the reply FIFO */

	if (m->tm_pending) { /* one at a time, as the drivers send them */
		uint8_t busy[MPI_TM_REPLY_LEN];
		mpt_reply_header(busy, msg, sizeof(busy));
		busy[4] = TM_RSP_FAILED;
		busy[5] = type;
		mpt_reply(m, busy, sizeof(busy), false);
		return;
	}
	mpt_reply_header(r, msg, MPI_TM_REPLY_LEN);
	r[0] = (uint8_t)target;
	r[1] = (uint8_t)bus;
	r[5] = type;
	switch (type) {
	case MPI_TM_ABORT_TASK:
	case MPI_TM_QUERY_TASK:
	case MPI_TM_ABORT_TASK_SET:
	case MPI_TM_CLEAR_TASK_SET:
	case MPI_TM_LOGICAL_UNIT_RESET:
	case MPI_TM_TARGET_RESET:
		if (!mpt_target(m, bus, target)) {
			put_le16(r + MPI_REPLY_STATUS, bus ? MPI_STATUS_SCSI_INVALID_BUS
							   : MPI_STATUS_SCSI_DEVICE_NOT_THERE);
			goto reply;
		}
		if (type != MPI_TM_TARGET_RESET && !lun_zero(msg + 12)) {
			r[4] = MPI_TM_RSP_INVALID_LUN;
			goto reply;
		}
		break;
	case MPI_TM_RESET_BUS:
		break;
	default:
		r[4] = MPI_TM_RSP_NOT_SUPPORTED;
		goto reply;
	}
	for (unsigned i = 0; i < MPT_MAX_REQUESTS; i++) {
		struct mpt_req *q = &m->reqs[i];
		if (!covers(q, target, all) || q->generation != m->generation || q->aborted)
			continue;
		bool one = type == MPI_TM_ABORT_TASK || type == MPI_TM_QUERY_TASK;
		if (one && get_le32(q->frame + MPI_MSG_CONTEXT) != task)
			continue;
		if (type == MPI_TM_QUERY_TASK) {
			r[4] = MPI_TM_RSP_SUCCEEDED; /* the task is in the task set */
			goto reply;
		}
		q->aborted = true;
		count++;
	}
	put_le32(r + 20, count); /* TerminationCount */
	if (count) {		 /* reply once the last of them came back */
		m->tm_pending = true;
		m->tm_waiting = count;
		return;
	}
reply:
	mpt_reply(m, r, MPI_TM_REPLY_LEN, false);
}

void mpt_abandon_requests(struct mpt *m)
{
	m->generation++;
	m->tm_pending = false;
}
