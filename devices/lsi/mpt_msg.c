/* MPI messages other than SCSI IO and config: the dispatch, IOC FACTS, IOC INIT, PORT FACTS,
 * PORT ENABLE, EVENT NOTIFICATION and EVENT ACK.  Functions the IOC does not offer (firmware
 * upload/download, RAID, toolbox, ...) get a reply with INVALID_FUNCTION rather than a fault, so a
 * driver that probes for them carries on. */
#include <string.h>

#include "devices/lsi/mpt.h"
#include "lib/endian.h"

#define MPI_VERSION 0x0105
#define MPI_HEADER_VERSION 0x0E00

static void ioc_facts(struct mpt *m, const uint8_t *msg, bool db)
{
	uint8_t r[MPI_IOC_FACTS_REPLY_LEN];
	mpt_reply_header(r, msg, sizeof(r));
	put_le16(r + 0, MPI_VERSION);
	put_le16(r + 4, MPI_HEADER_VERSION);
	r[20] = MPT_MAX_CHAIN_DEPTH;			   /* MaxChainDepth */
	r[21] = m->who_init;				   /* WhoInit */
	r[22] = MPT_REQUEST_FRAME / 4;			   /* BlockSize (dwords) */
	put_le16(r + 24, MPT_FIFO_DEPTH / 2);		   /* ReplyQueueDepth */
	put_le16(r + 26, MPT_REQUEST_FRAME / 4);	   /* RequestFrameSize (dwords) */
	put_le16(r + 30, m->p->product_id);		   /* ProductID */
	put_le32(r + 32, (uint32_t)(m->mfa_high >> 32));   /* CurrentHostMfaHighAddr */
	put_le16(r + 36, MPT_MAX_REQUESTS);		   /* GlobalCredits */
	r[38] = 1;					   /* NumberOfPorts */
	r[39] = m->events_on;				   /* EventState */
	put_le32(r + 40, (uint32_t)(m->sense_high >> 32)); /* CurrentSenseBufferHighAddr */
	put_le16(r + 44, m->reply_frame_size);		   /* CurReplyFrameSize */
	r[46] = m->max_devices;
	r[47] = m->max_buses;
	r[56] = 0; /* FWVersion 1.32.0.0 */
	r[57] = 0;
	r[58] = 0x32;
	r[59] = 0x01;
	mpt_reply(m, r, sizeof(r), db);
}

static void ioc_init(struct mpt *m, const uint8_t *msg, bool db)
{
	uint8_t r[MPI_REPLY_HEADER];
	uint16_t frame = get_le16(msg + 12);
	mpt_reply_header(r, msg, sizeof(r));
	/* Any non-zero multiple of 4: a reply longer than the frame is cut to it, as the chip and
	 * QEMU do.  SeaBIOS gives 4 bytes: it only looks at the address posted for an error. */
	if (frame == 0 || frame % 4) {
		put_le16(r + MPI_REPLY_STATUS, MPI_STATUS_INVALID_FIELD);
		mpt_reply(m, r, sizeof(r), db);
		return;
	}
	m->who_init = msg[0];
	m->max_devices = msg[5] ? msg[5] : (uint8_t)m->p->max_targets;
	m->max_buses = msg[6] ? msg[6] : 1;
	m->reply_frame_size = frame;
	m->mfa_high = (uint64_t)get_le32(msg + 16) << 32;
	m->sense_high = (uint64_t)get_le32(msg + 20) << 32;
	if ((m->state & MPI_IOC_STATE_MASK) == MPI_IOC_STATE_READY)
		m->state = MPI_IOC_STATE_OPERATIONAL;
	r[0] = m->who_init;
	r[5] = m->max_devices;
	r[6] = m->max_buses;
	mpt_reply(m, r, sizeof(r), db);
}

static void port_facts(struct mpt *m, const uint8_t *msg, bool db)
{
	uint8_t r[MPI_PORT_FACTS_REPLY_LEN];
	mpt_reply_header(r, msg, sizeof(r));
	r[6] = msg[6]; /* PortNumber */
	if (msg[6] == 0) {
		r[21] = m->p->port_type;
		put_le16(r + 22, (uint16_t)m->p->max_targets); /* MaxDevices */
		put_le16(r + 24, (uint16_t)m->p->initiator_id);
		put_le16(r + 26, MPI_PORT_PROTOCOL_INITIATOR | MPI_PORT_PROTOCOL_LOGBUSADDR);
		put_le16(r + 28, MPT_MAX_REQUESTS); /* MaxPostedCmdBuffers */
	} else {
		put_le16(r + MPI_REPLY_STATUS, MPI_STATUS_INVALID_FIELD); /* one port only */
	}
	mpt_reply(m, r, sizeof(r), db);
}

static void event_notification(struct mpt *m, const uint8_t *msg, bool db)
{
	uint8_t r[MPI_EVENT_REPLY_LEN];
	m->events_on = msg[0] & 1;
	/* The IOC answers with an EVENT_CHANGE event; events arrive through the reply FIFO, so the
	 * request stays with the IOC (continuation). No other event is ever raised: targets are
	 * fixed for the life of the VM. */
	mpt_reply_header(r, msg, sizeof(r));
	put_le16(r + 0, 1); /* EventDataLength (dwords) */
	r[MPI_MSG_FLAGS] = MPI_MSGFLAGS_CONTINUATION;
	put_le32(r + 20, MPI_EVENT_EVENT_CHANGE);
	put_le32(r + 28, m->events_on);
	mpt_reply(m, r, sizeof(r), db);
}

static void simple_reply(struct mpt *m, const uint8_t *msg, bool db, uint16_t status)
{
	uint8_t r[MPI_REPLY_HEADER];
	mpt_reply_header(r, msg, sizeof(r));
	memcpy(r + 4, msg + 4, 3); /* function-specific bytes (PortNumber, ...) */
	put_le16(r + MPI_REPLY_STATUS, status);
	mpt_reply(m, r, sizeof(r), db);
}

void mpt_message(struct mpt *m, const uint8_t *msg, bool db, uint64_t frame_gpa)
{
	uint8_t fn = msg[MPI_MSG_FUNCTION];
	bool operational = (m->state & MPI_IOC_STATE_MASK) == MPI_IOC_STATE_OPERATIONAL;
	switch (fn) { /* what a READY IOC answers (Linux asks PORT FACTS before IOC INIT) */
	case MPI_FN_IOC_FACTS:
		ioc_facts(m, msg, db);
		return;
	case MPI_FN_IOC_INIT:
		ioc_init(m, msg, db);
		return;
	case MPI_FN_PORT_FACTS:
		port_facts(m, msg, db);
		return;
	case MPI_FN_CONFIG:
		mpt_config(m, msg, db);
		return;
	default:
		break;
	}
	if (!operational) { /* everything else needs IOC INIT first */
		simple_reply(m, msg, db, MPI_STATUS_INVALID_STATE);
		return;
	}
	switch (fn) {
	case MPI_FN_PORT_ENABLE:
		simple_reply(m, msg, db,
			     msg[6] == 0 ? MPI_STATUS_SUCCESS : MPI_STATUS_INVALID_FIELD);
		return;
	case MPI_FN_EVENT_NOTIFICATION:
		event_notification(m, msg, db);
		return;
	case MPI_FN_EVENT_ACK:
		simple_reply(m, msg, db, MPI_STATUS_SUCCESS);
		return;
	case MPI_FN_SCSI_IO:
		mpt_scsi_io(m, msg, frame_gpa, db);
		return;
	case MPI_FN_TASK_MGMT:
		mpt_task_mgmt(m, msg, db);
		return;
	default:
		simple_reply(m, msg, db, MPI_STATUS_INVALID_FUNCTION);
		return;
	}
}
