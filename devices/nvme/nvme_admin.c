/* Admin commands (NVMe 1.4, 5): Identify (CNS 0-3), Create/Delete I/O SQ and CQ, Get Log Page
 * (error information, SMART / health, firmware slot), Set/Get Features, Asynchronous Event
 * Request, Abort and Doorbell Buffer Config.  Every field the host gives is checked and a bad one
 * gets the status the specification names for it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "devices/disk.h"
#include "devices/nvme/nvme_internal.h"
#include "devices/nvme/nvme_spec.h"
#include "lib/log.h"
#include "memory/guest_memory.h"
#include "lib/endian.h"

#define IDENTIFY_LEN 4096
#define TEMP_KELVIN 323 /* the composite temperature we report: 50 degrees C */
#define WCTEMP 343
#define CCTEMP 373

/* --- asynchronous events ---------------------------------------------------------------- */

static bool type_enabled(const struct nvme_ctrl *c, unsigned type)
{
	/* Error events cannot be turned off; SMART ones follow the Async Event Config feature. */
	return type == NVME_AER_TYPE_ERROR || (type == NVME_AER_TYPE_SMART && (c->feat_aec & 0xFF));
}

/* Hand queued events to outstanding requests, one per type until its log page is read. */
void nvme_aer_flush(struct nvme_ctrl *c)
{
	for (unsigned i = 0; i < c->nevents && c->naer;) {
		unsigned type = c->events[i] & 7;
		if (c->masked_types & 1u << type) {
			i++;
			continue;
		}
		struct nvme_req *r = c->aer[--c->naer];
		r->result = c->events[i];
		memmove(&c->events[i], &c->events[i + 1],
			(c->nevents - i - 1) * sizeof(c->events[0]));
		c->nevents--;
		c->masked_types |= 1u << type;
		r->sq->busy++; /* counted again for its completion (see NVME_ADM_ASYNC_EVENT) */
		nvme_complete(r);
	}
}

void nvme_event(struct nvme_ctrl *c, unsigned type, unsigned info, unsigned log)
{
	if (!type_enabled(c, type) || !nvme_running(c))
		return;
	uint32_t ev = type | info << 8 | log << 16;
	for (unsigned i = 0; i < c->nevents; i++)
		if (c->events[i] == ev)
			return; /* already waiting to be reported */
	if (c->nevents == sizeof(c->events) / sizeof(c->events[0]))
		return;
	c->events[c->nevents++] = ev;
	nvme_aer_flush(c);
}

void nvme_error_log(struct nvme_ctrl *c, const struct nvme_req *r)
{
	memmove(c->errors[1], c->errors[0], sizeof(c->errors[0]) * (NVME_ERROR_LOG - 1));
	uint8_t *e = c->errors[0];
	memset(e, 0, NVME_ERROR_ENTRY_SIZE);
	put_le64(e, ++c->error_count);
	put_le16(e + 8, r->sq->id);
	put_le16(e + 10, nvme_cid(r));
	put_le16(e + 12, (uint16_t)(r->status << 1));
	put_le16(e + 14, 0xFFFF); /* parameter error location: not given */
	put_le64(e + 16, nvme_dw64(r, 10));
	put_le32(e + 24, r->dw[1]);
}

/* --- data in and out -------------------------------------------------------------------- */

/* Copy len bytes of buf to the command's data pointer. */
static uint16_t send(struct nvme_req *r, const void *buf, uint64_t len)
{
	uint16_t s = nvme_map_data(r, len);
	if (s)
		return s;
	sg_list_from_buf(&r->sg, 0, buf, len);
	return 0;
}

/* --- identify --------------------------------------------------------------------------- */

static void put_string(uint8_t *dst, size_t len, const char *s)
{
	disk_pad_string((char *)dst, len, s);
}

static void identify_ctrl(struct nvme_ctrl *c, uint8_t *b)
{
	put_le16(b + 0, c->pci.vendor_id);
	put_le16(b + 2, c->pci.subsystem_vendor_id);
	put_string(b + 4, 20, c->serial);
	put_string(b + 24, 40, "minivmm NVMe Ctrl");
	put_string(b + 64, 8, c->nns ? c->ns[0].disk->firmware : "1.0");
	b[72] = 6;			      /* RAB: recommended arbitration burst */
	b[77] = NVME_MDTS;		      /* MDTS */
	put_le16(b + 78, (uint16_t)c->index); /* CNTLID */
	put_le32(b + 80, NVME_VERSION);
	b[111] = 1;		    /* CNTRLTYPE: I/O controller */
	put_le16(b + 256, 1u << 8); /* OACS: Doorbell Buffer Config */
	b[258] = 3;		    /* ACL: four Aborts */
	b[259] = NVME_AERL;
	b[260] = 0x03;		     /* FRMW: one slot, read-only */
	b[261] = 0x04;		     /* LPA: extended Get Log Page (offsets) */
	b[262] = NVME_ERROR_LOG - 1; /* ELPE */
	put_le16(b + 266, WCTEMP);   /* WCTEMP */
	put_le16(b + 268, CCTEMP);   /* CCTEMP */
	b[512] = 0x66;		     /* SQES: 64 bytes */
	b[513] = 0x44;		     /* CQES: 16 bytes */
	put_le32(b + 516, c->nns);   /* NN */
	put_le16(b + 520, 0x0D);     /* ONCS: Compare, Dataset Management, Write Zeroes */
	b[525] = 0x07;		     /* VWC present; Flush with NSID FFFFFFFFh supported */
	put_le32(b + 536, 0x1);	     /* SGLS: SGLs supported, no alignment requirement */
	snprintf((char *)b + 768, 256, "%s", c->subnqn);
	put_le16(b + 2048, 2500); /* power state 0: 25 W */
}

static void identify_ns(const struct nvme_ns *ns, uint8_t *b)
{
	uint64_t blocks = ns->disk->sectors;
	put_le64(b + 0, blocks);	     /* NSZE */
	put_le64(b + 8, blocks);	     /* NCAP */
	put_le64(b + 16, blocks);	     /* NUSE */
	b[25] = 0;			     /* NLBAF: one format */
	b[26] = 0;			     /* FLBAS: format 0 */
	b[99] = ns->disk->read_only ? 1 : 0; /* NSATTR: write protected */
	memcpy(b + 104, ns->disk->uuid, 16); /* NGUID */
	put_le32(b + 128, 9u << 16);	     /* LBAF0: 512-byte blocks, no metadata */
}

static uint16_t identify(struct nvme_req *r)
{
	struct nvme_ctrl *c = r->c;
	uint32_t nsid = r->dw[1];
	uint8_t b[IDENTIFY_LEN];
	memset(b, 0, sizeof(b));
	switch (r->dw[10] & 0xFF) {
	case NVME_CNS_CTRL:
		identify_ctrl(c, b);
		break;
	case NVME_CNS_NS:
		if (nsid == 0 || nsid > c->nns)
			return NVME_SC_INVALID_NS;
		identify_ns(&c->ns[nsid - 1], b);
		break;
	case NVME_CNS_NS_ACTIVE_LIST: {
		if (nsid >= 0xFFFFFFFE)
			return NVME_SC_INVALID_NS;
		unsigned k = 0;
		for (unsigned i = 0; i < c->nns; i++)
			if (c->ns[i].nsid > nsid)
				put_le32(b + 4 * k++, c->ns[i].nsid);
		break;
	}
	case NVME_CNS_NS_DESC_LIST:
		if (nsid == 0 || nsid > c->nns)
			return NVME_SC_INVALID_NS;
		b[0] = 3; /* NIDT: UUID */
		b[1] = 16;
		memcpy(b + 4, c->ns[nsid - 1].disk->uuid, 16);
		b[20] = 2; /* NIDT: NGUID, as in Identify Namespace */
		b[21] = 16;
		memcpy(b + 24, c->ns[nsid - 1].disk->uuid, 16);
		break;
	case NVME_CNS_CS_CTRL:
		/* NVMe 2.0's I/O command set specific controller data, which Linux asks of any
		 * controller since 1.1: for the NVM set, all zero (no extra size limits). */
		if (r->dw[11] >> 24 != 0)
			return NVME_SC_INVALID_FIELD;
		break;
	default:
		return NVME_SC_INVALID_FIELD;
	}
	return send(r, b, sizeof(b));
}

/* --- queues ----------------------------------------------------------------------------- */

static uint16_t create_cq(struct nvme_req *r)
{
	struct nvme_ctrl *c = r->c;
	uint16_t qid = (uint16_t)r->dw[10];
	uint32_t size = (r->dw[10] >> 16) + 1;
	bool pc = r->dw[11] & 1, ien = r->dw[11] >> 1 & 1;
	uint16_t iv = (uint16_t)(r->dw[11] >> 16);
	if (qid == 0 || qid > c->ncqa + 1 || qid > NVME_MAX_QID || c->cq[qid])
		return NVME_SC_QID_INVALID;
	if (size < 2 || size > NVME_MQES + 1)
		return NVME_SC_QUEUE_SIZE;
	if (!pc) /* CAP.CQR: queues must be physically contiguous */
		return NVME_SC_INVALID_FIELD;
	if (iv >= NVME_MSIX_VECTORS)
		return NVME_SC_INVALID_VECTOR;
	if (NVME_CC_IOCQES(c->cc) != 4)
		return NVME_SC_INVALID_FIELD;
	uint64_t base = nvme_dw64(r, 6);
	if (base & (NVME_PAGE - 1))
		return NVME_SC_PRP_INVALID_OFFSET;
	int e = nvme_cq_create(c, qid, base, size, ien, iv);
	return e == -EFAULT ? NVME_SC_DATA_XFER_ERROR : e < 0 ? NVME_SC_INTERNAL : 0;
}

static uint16_t create_sq(struct nvme_req *r)
{
	struct nvme_ctrl *c = r->c;
	uint16_t qid = (uint16_t)r->dw[10];
	uint32_t size = (r->dw[10] >> 16) + 1;
	bool pc = r->dw[11] & 1;
	uint16_t cqid = (uint16_t)(r->dw[11] >> 16);
	if (qid == 0 || qid > c->nsqa + 1 || qid > NVME_MAX_QID || c->sq[qid])
		return NVME_SC_QID_INVALID;
	if (cqid == 0 || cqid > NVME_MAX_QID || !c->cq[cqid])
		return NVME_SC_CQ_INVALID;
	if (size < 2 || size > NVME_MQES + 1)
		return NVME_SC_QUEUE_SIZE;
	if (!pc)
		return NVME_SC_INVALID_FIELD;
	if (NVME_CC_IOSQES(c->cc) != 6)
		return NVME_SC_INVALID_FIELD;
	uint64_t base = nvme_dw64(r, 6);
	if (base & (NVME_PAGE - 1))
		return NVME_SC_PRP_INVALID_OFFSET;
	int e = nvme_sq_create(c, qid, base, size, cqid);
	return e == -EFAULT ? NVME_SC_DATA_XFER_ERROR : e < 0 ? NVME_SC_INTERNAL : 0;
}

/* Returns false when the deletion waits for the queue's commands in flight. */
static bool delete_sq(struct nvme_req *r)
{
	struct nvme_ctrl *c = r->c;
	uint16_t qid = (uint16_t)r->dw[10];
	struct nvme_sq *sq = qid && qid <= NVME_MAX_QID ? c->sq[qid] : NULL;
	if (!sq || sq->deleting) {
		r->status = NVME_SC_QID_INVALID;
		return true;
	}
	if (sq->busy) {
		sq->deleting = r;
		return false;
	}
	nvme_sq_delete(c, qid);
	return true;
}

static uint16_t delete_cq(struct nvme_req *r)
{
	struct nvme_ctrl *c = r->c;
	uint16_t qid = (uint16_t)r->dw[10];
	struct nvme_cq *cq = qid && qid <= NVME_MAX_QID ? c->cq[qid] : NULL;
	if (!cq)
		return NVME_SC_QID_INVALID;
	if (cq->nsq)
		return NVME_SC_INVALID_QUEUE_DELETION;
	nvme_cq_delete(c, qid);
	return 0;
}

/* --- log pages -------------------------------------------------------------------------- */

static void put_le128(uint8_t *p, uint64_t v)
{
	put_le64(p, v);
	put_le64(p + 8, 0);
}

static unsigned smart_warning(const struct nvme_ctrl *c)
{
	unsigned w = 0;
	if (TEMP_KELVIN > c->feat_temp[0] || TEMP_KELVIN < c->feat_temp[1])
		w |= 0x02; /* temperature beyond a threshold */
	return w;
}

static void log_smart(struct nvme_ctrl *c, uint8_t *b)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	uint64_t hours = ((uint64_t)now.tv_sec * 1000000000ULL + now.tv_nsec - c->power_on_ns) /
			 3600000000000ULL;
	b[0] = (uint8_t)smart_warning(c);
	put_le16(b + 1, TEMP_KELVIN);
	b[3] = 100; /* available spare */
	b[4] = 10;  /* available spare threshold */
	put_le128(b + 32, (c->units_read + 999) / 1000);
	put_le128(b + 48, (c->units_written + 999) / 1000);
	put_le128(b + 64, c->host_reads);
	put_le128(b + 80, c->host_writes);
	put_le128(b + 112, 1); /* power cycles */
	put_le128(b + 128, hours);
	put_le128(b + 176, c->error_count);
}

static uint16_t get_log_page(struct nvme_req *r)
{
	struct nvme_ctrl *c = r->c;
	unsigned lid = r->dw[10] & 0xFF;
	bool rae = r->dw[10] >> 15 & 1;
	uint64_t len = ((uint64_t)(r->dw[11] & 0xFFFF) << 16 | r->dw[10] >> 16) * 4 + 4;
	uint64_t off = nvme_dw64(r, 12);
	uint8_t b[NVME_ERROR_LOG * NVME_ERROR_ENTRY_SIZE];
	size_t size;
	unsigned type;
	memset(b, 0, sizeof(b));
	switch (lid) {
	case NVME_LOG_ERROR:
		memcpy(b, c->errors, sizeof(c->errors));
		size = sizeof(c->errors);
		type = NVME_AER_TYPE_ERROR;
		break;
	case NVME_LOG_SMART:
		log_smart(c, b);
		size = 512;
		type = NVME_AER_TYPE_SMART;
		break;
	case NVME_LOG_FW_SLOT:
		b[0] = 1; /* AFI: slot 1 active */
		put_string(b + 8, 8, c->nns ? c->ns[0].disk->firmware : "1.0");
		size = 512;
		type = 8;
		break;
	default:
		return NVME_SC_INVALID_LOG_PAGE;
	}
	if (off & 3 || off >= size)
		return NVME_SC_INVALID_FIELD;
	/* Past the end of the log the host's buffer is left as it was. */
	uint16_t s = send(r, b + off, len < size - off ? len : size - off);
	if (!s && !rae && type < 8) {
		c->masked_types &= ~(1u << type);
		nvme_aer_flush(c);
	}
	return s;
}

/* --- features --------------------------------------------------------------------------- */

static uint16_t temp_index(uint32_t dw11, unsigned *i)
{
	unsigned tmpsel = dw11 >> 16 & 0xF, thsel = dw11 >> 20 & 3;
	if (tmpsel != 0 || thsel > 1)
		return NVME_SC_INVALID_FIELD;
	*i = thsel;
	return 0;
}

static uint16_t set_features(struct nvme_req *r)
{
	struct nvme_ctrl *c = r->c;
	uint32_t v = r->dw[11];
	unsigned i;
	if (r->dw[10] >> 31)
		return NVME_SC_FEATURE_NOT_SAVEABLE;
	switch (r->dw[10] & 0xFF) {
	case NVME_FEAT_ARBITRATION:
		c->feat_arb = v;
		break;
	case NVME_FEAT_POWER_MGMT:
		if (v & 0x1F) /* only power state 0 exists */
			return NVME_SC_INVALID_FIELD;
		c->feat_pm = v & 0xFF;
		break;
	case NVME_FEAT_TEMP_THRESH: {
		uint16_t s = temp_index(v, &i);
		if (s)
			return s;
		unsigned before = smart_warning(c);
		c->feat_temp[i] = v & 0xFFFF;
		if ((smart_warning(c) & ~before) && (c->feat_aec & 0x02))
			nvme_event(c, NVME_AER_TYPE_SMART, 0x01, NVME_LOG_SMART);
		break;
	}
	case NVME_FEAT_ERR_RECOVERY:
		if (v & 1u << 16) /* DULBE: no deallocated-block errors */
			return NVME_SC_INVALID_FIELD;
		c->feat_err = v & 0xFFFF;
		break;
	case NVME_FEAT_VOLATILE_WC:
		c->vwc = v & 1;
		break;
	case NVME_FEAT_NUM_QUEUES: {
		uint32_t nsqr = v & 0xFFFF, ncqr = v >> 16;
		if (nsqr == 0xFFFF || ncqr == 0xFFFF)
			return NVME_SC_INVALID_FIELD;
		for (unsigned q = 1; q <= NVME_MAX_QID; q++)
			if (c->sq[q] || c->cq[q]) /* fixed once I/O queues exist */
				return NVME_SC_CMD_SEQ_ERROR;
		c->nsqa = nsqr < c->io_queues - 1 ? nsqr : c->io_queues - 1;
		c->ncqa = ncqr < c->io_queues - 1 ? ncqr : c->io_queues - 1;
		r->result = c->nsqa | c->ncqa << 16;
		break;
	}
	case NVME_FEAT_IRQ_COALESCE:
		c->feat_coalesce = v & 0xFFFF;
		break;
	case NVME_FEAT_IRQ_CONFIG:
		if ((v & 0xFFFF) >= NVME_MSIX_VECTORS)
			return NVME_SC_INVALID_FIELD;
		c->ivc_cd[v & 0xFFFF] = v >> 16 & 1;
		break;
	case NVME_FEAT_WRITE_ATOMIC:
		c->feat_atomic = v & 1;
		break;
	case NVME_FEAT_ASYNC_EVENT:
		c->feat_aec = v & 0xFF; /* SMART warnings only: no notices are offered */
		break;
	default:
		return NVME_SC_INVALID_FIELD;
	}
	return 0;
}

static uint16_t get_features(struct nvme_req *r)
{
	struct nvme_ctrl *c = r->c;
	unsigned fid = r->dw[10] & 0xFF, sel = r->dw[10] >> 8 & 7;
	uint32_t v11 = r->dw[11];
	unsigned i;
	bool dflt = sel == 1 || sel == 2; /* nothing is saveable: saved = default */
	if (sel > 3)
		return NVME_SC_INVALID_FIELD;
	switch (fid) {
	case NVME_FEAT_ARBITRATION:
		r->result = dflt ? 0 : c->feat_arb;
		break;
	case NVME_FEAT_POWER_MGMT:
		r->result = dflt ? 0 : c->feat_pm;
		break;
	case NVME_FEAT_TEMP_THRESH: {
		uint16_t s = temp_index(v11, &i);
		if (s)
			return s;
		r->result = dflt ? (i ? 0 : WCTEMP) : c->feat_temp[i];
		break;
	}
	case NVME_FEAT_ERR_RECOVERY:
		r->result = dflt ? 0 : c->feat_err;
		break;
	case NVME_FEAT_VOLATILE_WC:
		r->result = dflt ? 1 : c->vwc;
		break;
	case NVME_FEAT_NUM_QUEUES: {
		uint32_t sq = dflt || c->nsqa == ~0u ? c->io_queues - 1 : c->nsqa;
		uint32_t cq = dflt || c->ncqa == ~0u ? c->io_queues - 1 : c->ncqa;
		r->result = sq | cq << 16;
		break;
	}
	case NVME_FEAT_IRQ_COALESCE:
		r->result = dflt ? 0 : c->feat_coalesce;
		break;
	case NVME_FEAT_IRQ_CONFIG:
		if ((v11 & 0xFFFF) >= NVME_MSIX_VECTORS)
			return NVME_SC_INVALID_FIELD;
		r->result = (v11 & 0xFFFF) | (dflt ? 0 : (uint32_t)c->ivc_cd[v11 & 0xFFFF] << 16);
		break;
	case NVME_FEAT_WRITE_ATOMIC:
		r->result = dflt ? 0 : c->feat_atomic;
		break;
	case NVME_FEAT_ASYNC_EVENT:
		r->result = dflt ? 0 : c->feat_aec;
		break;
	default:
		return NVME_SC_INVALID_FIELD;
	}
	if (sel == 3)
		r->result = 0x4; /* capabilities: changeable, not saveable, not per namespace */
	return 0;
}

/* --- the rest --------------------------------------------------------------------------- */

static uint16_t dbbuf_config(struct nvme_req *r)
{
	struct nvme_ctrl *c = r->c;
	uint64_t db = nvme_dw64(r, 6), ei = nvme_dw64(r, 8);
	uint64_t len = 8ULL * (NVME_MAX_QID + 1);
	if ((db | ei) & (NVME_PAGE - 1) || !db || !ei)
		return NVME_SC_INVALID_FIELD;
	uint8_t *dbh = guest_memory_ptr(c->mem, db, len), *eih = guest_memory_ptr(c->mem, ei, len);
	if (!dbh || !eih)
		return NVME_SC_DATA_XFER_ERROR;
	c->dbbuf_db = db;
	c->dbbuf_ei = ei;
	c->dbbuf_db_host = (uint64_t)(uintptr_t)dbh;
	c->dbbuf_ei_host = (uint64_t)(uintptr_t)eih;
	/* Queues that exist already go on with their current values. */
	for (unsigned q = 1; q <= NVME_MAX_QID; q++) {
		if (c->sq[q]) {
			put_le32(dbh + 8 * q, c->sq[q]->tail);
			put_le32(eih + 8 * q, c->sq[q]->tail);
		}
		if (c->cq[q]) {
			put_le32(dbh + 8 * q + 4, c->cq[q]->head);
			put_le32(eih + 8 * q + 4, c->cq[q]->head);
		}
	}
	log_info("nvme", "nvme%u: shadow doorbells on%s", c->index,
		 c->irq ? ": I/O doorbells are ioeventfds" : "");
	nvme_doorbell_fds_enable(c, true);
	return 0;
}

bool nvme_admin(struct nvme_req *r)
{
	struct nvme_ctrl *c = r->c;
	switch (nvme_opcode(r)) {
	case NVME_ADM_IDENTIFY:
		r->status = identify(r);
		break;
	case NVME_ADM_CREATE_CQ:
		r->status = create_cq(r);
		break;
	case NVME_ADM_CREATE_SQ:
		r->status = create_sq(r);
		break;
	case NVME_ADM_DELETE_SQ:
		return delete_sq(r);
	case NVME_ADM_DELETE_CQ:
		r->status = delete_cq(r);
		break;
	case NVME_ADM_GET_LOG_PAGE:
		r->status = get_log_page(r);
		break;
	case NVME_ADM_SET_FEATURES:
		r->status = set_features(r);
		break;
	case NVME_ADM_GET_FEATURES:
		r->status = get_features(r);
		break;
	case NVME_ADM_ABORT:
		/* Commands run to completion quickly: report "not aborted" (dword 0 bit 0). */
		r->result = 1;
		break;
	case NVME_ADM_ASYNC_EVENT:
		if (c->naer > NVME_AERL) {
			r->status = NVME_SC_AER_LIMIT;
			break;
		}
		/* Parked outside the queue's count of commands in flight, so that outstanding
		 * AERs never hold up the admin queue however small it is. */
		r->sq->busy--;
		c->aer[c->naer++] = r;
		nvme_aer_flush(c);
		return false; /* completes when an event comes (or never) */
	case NVME_ADM_DBBUF_CONFIG:
		r->status = dbbuf_config(r);
		break;
	default:
		r->status = NVME_SC_INVALID_OPCODE;
		break;
	}
	return true;
}
