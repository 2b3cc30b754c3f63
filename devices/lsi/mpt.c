/* The Fusion-MPT PCI function and its system interface (see mpt.h): the doorbell with its
 * handshake, the diagnostic register and its write sequence, the interrupt status and mask, the
 * request FIFO and the reply free/post FIFOs, and the resets (message unit, diagnostic adapter
 * reset, machine reset).
 *
 * BARs as on the real chips and QEMU's mptsas1068: BAR0 256 bytes of I/O ports, BAR1 16 KiB of
 * memory (the same registers; Linux uses this one), BAR2 64 KiB of diagnostic memory (reads 0).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/disk.h"
#include "devices/lsi/mpt.h"
#include "memory/guest_memory.h"
#include "lib/endian.h"
#include "lib/log.h"

#define MPT_VENDOR 0x1000 /* LSI Logic */
#define PCI_CLASS_SCSI 0x010000
#define MPT_IO_SIZE 256
#define MPT_MMIO_SIZE 0x4000
#define MPT_DIAG_SIZE 0x10000

/* Diagnostic write sequence keys (MPI 1.5 "WriteSequence"). */
static const uint8_t wseq_keys[] = {0x04, 0x0B, 0x02, 0x07, 0x0D};

const struct mpt_personality mpt_53c1030 = {
    .kind = MPT_SPI_53C1030,
    .name = "LSI53C1030",
    .device_id = 0x0030,
    .subsystem_id = 0x8000,
    .revision = 0x08,
    .product_id = 0x0510 | 0x0001, /* 1030 family, initiator SCSI */
    .max_targets = 16,
    .initiator_id = 7,
    .port_type = MPI_PORTTYPE_SCSI,
};

const struct mpt_personality mpt_sas1068 = {
    .kind = MPT_SAS_1068,
    .name = "SAS1068",
    .device_id = 0x0054,
    .subsystem_id = 0x8000,
    .revision = 0x01,
    .product_id = 0x2200 | 0x0010 | 0x0001, /* 1068 SAS family, SAS type, initiator SCSI */
    .max_targets = 8,
    .initiator_id = 8,
    .port_type = MPI_PORTTYPE_SAS,
};

/* ---- interrupts and faults ---------------------------------------------------------------- */

static uint32_t int_status(const struct mpt *m)
{
	return (m->doorbell_irq ? MPI_HIS_DOORBELL : 0) | (m->post_count ? MPI_HIS_REPLY : 0);
}

void mpt_update_irq(struct mpt *m)
{
	bool level = (int_status(m) & ~m->int_mask & MPI_HIM_MASK) != 0;
	bool rose = level && !m->irq_level;
	m->irq_level = level;
	if (pci_msi_enabled(&m->pci)) {
		/* MSI is an edge: one message when the level rises (the driver empties the reply
		 * FIFO in its handler, so replies that come meanwhile need none). */
		if (m->pci.intx_level)
			pci_irq_deassert(&m->pci);
		if (rose && pci_msi_notify(&m->pci, 0) == 0)
			return;
		if (!level || pci_msi_enabled(&m->pci))
			return;
	}
	if (level == m->pci.intx_level)
		return;
	if (level)
		pci_irq_assert(&m->pci);
	else
		pci_irq_deassert(&m->pci);
}

void mpt_fault(struct mpt *m, uint16_t code)
{
	if ((m->state & MPI_IOC_STATE_MASK) != MPI_IOC_STATE_FAULT) {
		if (m->faults_reported < 4) { /* a guest looping on faults must not flood stderr */
			m->faults_reported++;
			log_error(NULL, "%s: IOC fault %#06x (the guest's error)", m->p->name,
				  code);
		}
		m->state = MPI_IOC_STATE_FAULT | code;
	}
}

/* ---- replies ------------------------------------------------------------------------------ */

void mpt_reply_header(uint8_t *reply, const uint8_t *msg, unsigned len)
{
	memset(reply, 0, len);
	reply[MPI_MSG_LENGTH] = (uint8_t)(len / 4);
	reply[MPI_MSG_FUNCTION] = msg[MPI_MSG_FUNCTION];
	memcpy(reply + MPI_MSG_CONTEXT, msg + MPI_MSG_CONTEXT, 4);
}

static bool post_push(struct mpt *m, uint32_t v)
{
	if (m->post_count == MPT_FIFO_DEPTH) {
		mpt_fault(m, MPI_STATUS_INSUFFICIENT_RESOURCES);
		return false;
	}
	m->reply_post[(m->post_head + m->post_count++) % MPT_FIFO_DEPTH] = v;
	return true;
}

void mpt_post_context(struct mpt *m, uint32_t context)
{
	/* Bit 31 would make it an address reply: a context must not have it (the driver's
	 * contexts never do); a hostile one only confuses its own driver. */
	post_push(m, context & ~MPI_ADDRESS_REPLY);
	mpt_update_irq(m);
}

void mpt_reply(struct mpt *m, uint8_t *reply, unsigned len, bool via_doorbell)
{
	if (via_doorbell && m->db == MPT_DB_RECEIVING) {
		unsigned words = len / 2;
		if (words > MPT_HS_REPLY_WORDS)
			words = MPT_HS_REPLY_WORDS;
		for (unsigned i = 0; i < words; i++)
			m->db_reply[i] = get_le16(reply + 2 * i);
		m->db_reply_len = words;
		m->db_reply_idx = 0;
		m->db = MPT_DB_REPLYING;
		m->doorbell_irq = true;
		mpt_update_irq(m);
		return;
	}
	if (!m->free_count || m->post_count == MPT_FIFO_DEPTH) {
		mpt_fault(m, MPI_STATUS_INSUFFICIENT_RESOURCES);
		return;
	}
	uint32_t lo = m->reply_free[m->free_head];
	m->free_head = (m->free_head + 1) % MPT_FIFO_DEPTH;
	m->free_count--;
	unsigned n = len < m->reply_frame_size ? len : m->reply_frame_size;
	if (guest_memory_write(m->mem, m->mfa_high | lo, reply, n) < 0) {
		mpt_fault(m, MPI_STATUS_INVALID_FIELD); /* a reply frame outside RAM */
		return;
	}
	post_push(m, MPI_ADDRESS_REPLY | (lo >> 1));
	mpt_update_irq(m);
}

/* ---- doorbell ----------------------------------------------------------------------------- */

static uint32_t doorbell_read(struct mpt *m)
{
	uint32_t v = m->state | (uint32_t)m->who_init << MPI_DOORBELL_WHO_INIT_SHIFT;
	switch (m->db) {
	case MPT_DB_IDLE:
		break;
	case MPT_DB_RECEIVING:
		v |= MPI_DOORBELL_ACTIVE;
		break;
	case MPT_DB_REPLYING:
		v = (v & 0xFFFF0000u) | MPI_DOORBELL_ACTIVE;
		if (m->db_reply_idx < m->db_reply_len)
			v |= m->db_reply[m->db_reply_idx++];
		break;
	}
	return v;
}

static void handshake_done(struct mpt *m)
{
	uint8_t msg[MPT_HS_MAX_DWORDS * 4];
	for (unsigned i = 0; i < MPT_HS_MAX_DWORDS; i++)
		put_le32(msg + 4 * i, i < m->db_count ? m->db_msg[i] : 0);
	if (m->db_overrun) { /* more dwords announced than any message has */
		mpt_fault(m, MPI_STATUS_INVALID_FIELD);
		m->db = MPT_DB_IDLE;
	} else {
		mpt_message(m, msg, true, 0);
	}
	/* A message answered through the reply FIFO (task management) ends the handshake here,
	 * as does one that faulted the IOC; the driver waits for the doorbell interrupt. */
	if (m->db == MPT_DB_RECEIVING)
		m->db = MPT_DB_IDLE;
	m->doorbell_irq = true;
	mpt_update_irq(m);
}

static void doorbell_write(struct mpt *m, uint32_t v)
{
	if (m->db == MPT_DB_RECEIVING) {
		if (m->db_idx < MPT_HS_MAX_DWORDS)
			m->db_msg[m->db_idx] = v;
		if (++m->db_idx == m->db_count)
			handshake_done(m);
		return;
	}
	if (m->db == MPT_DB_REPLYING)
		return; /* the guest must read the reply first */
	switch (v >> MPI_DOORBELL_FUNCTION_SHIFT) {
	case MPI_FN_IOC_MESSAGE_UNIT_RESET:
		mpt_reset_ioc(m);
		break;
	case MPI_FN_IO_UNIT_RESET:
		break;
	case MPI_FN_HANDSHAKE: {
		unsigned n = (v >> MPI_DOORBELL_DWORDS_SHIFT) & 0xFF;
		m->db_count = n;
		m->db_idx = 0;
		m->db_overrun = n > MPT_HS_MAX_DWORDS;
		m->doorbell_irq = true;
		if (n == 0) {
			m->db = MPT_DB_IDLE; /* nothing to receive: refuse the empty message */
			mpt_fault(m, MPI_STATUS_INVALID_FIELD);
		} else {
			m->db = MPT_DB_RECEIVING;
		}
		mpt_update_irq(m);
		break;
	}
	default:
		break;
	}
}

static void int_status_write(struct mpt *m)
{
	switch (m->db) {
	case MPT_DB_IDLE:
	case MPT_DB_RECEIVING:
		m->doorbell_irq = false;
		break;
	case MPT_DB_REPLYING:
		/* Words keep coming while the reply lasts; after the last one the driver waits for
		 * one more doorbell interrupt, then acknowledges it. */
		if (m->db_reply_idx >= m->db_reply_len)
			m->db = MPT_DB_IDLE;
		break;
	}
	mpt_update_irq(m);
}

/* ---- resets ------------------------------------------------------------------------------- */

/* Wait until the block layer returned every request (a reset must not leave data landing in
 * guest memory afterwards); the completions run on another thread and take the lock. */
static void drain(struct mpt *m)
{
	/* werror=stop: a parked write fails now, or the wait below never ends. */
	for (unsigned t = 0; t < MPT_MAX_TARGETS; t++)
		if (m->targets[t].present)
			disk_release_stopped(m->targets[t].lun.disk);
	while (m->inflight)
		pthread_cond_wait(&m->drained, &m->lock);
}

/* Message unit reset: the IOC forgets the host's queues and goes back to READY. */
void mpt_reset_ioc(struct mpt *m)
{
	mpt_abandon_requests(m);
	drain(m);
	m->state = MPI_IOC_STATE_READY;
	m->db = MPT_DB_IDLE;
	m->doorbell_irq = false;
	m->free_head = m->free_count = 0;
	m->post_head = m->post_count = 0;
	m->events_on = false;
	for (unsigned t = 0; t < MPT_MAX_TARGETS; t++)
		if (m->targets[t].present)
			scsi_lun_reset(&m->targets[t].lun);
	mpt_update_irq(m);
}

static void hard_reset(struct mpt *m)
{
	mpt_reset_ioc(m);
	m->int_mask = MPI_HIM_MASK;
	m->who_init = 0;
	m->mfa_high = m->sense_high = 0;
	m->reply_frame_size = 0;
	m->max_devices = (uint8_t)m->p->max_targets;
	m->max_buses = 1;
	m->diag = 0;
	m->wseq = 0;
	mpt_update_irq(m);
}

static void write_sequence(struct mpt *m, uint32_t v)
{
	if (m->diag & MPI_DIAG_DRWE || m->wseq >= sizeof(wseq_keys) ||
	    (v & 0xF) != wseq_keys[m->wseq]) {
		m->diag &= ~MPI_DIAG_DRWE; /* any other write locks the register again */
		m->wseq = (v & 0xF) == wseq_keys[0] ? 1 : 0;
		return;
	}
	if (++m->wseq == sizeof(wseq_keys))
		m->diag |= MPI_DIAG_DRWE;
}

static void diagnostic_write(struct mpt *m, uint32_t v)
{
	if (!(m->diag & MPI_DIAG_DRWE))
		return;
	if (v & MPI_DIAG_RESET_ADAPTER) {
		hard_reset(m);
		m->diag = MPI_DIAG_DRWE | MPI_DIAG_RESET_HISTORY;
		return;
	}
	if (!(v & MPI_DIAG_RESET_HISTORY))
		m->diag &= ~MPI_DIAG_RESET_HISTORY;
}

/* ---- register file ------------------------------------------------------------------------ */

uint32_t mpt_reg_read(struct mpt *m, unsigned offset)
{
	switch (offset) {
	case MPI_REG_DOORBELL:
		return doorbell_read(m);
	case MPI_REG_DIAGNOSTIC:
		return m->diag;
	case MPI_REG_INT_STATUS:
		return int_status(m);
	case MPI_REG_INT_MASK:
		return m->int_mask;
	case MPI_REG_REPLY_FIFO: {
		if (!m->post_count)
			return 0xFFFFFFFFu;
		uint32_t v = m->reply_post[m->post_head];
		m->post_head = (m->post_head + 1) % MPT_FIFO_DEPTH;
		m->post_count--;
		TRACE(LSI, "%s: reply FIFO %#x (%u left)", m->p->name, v, m->post_count);
		mpt_update_irq(m);
		return v;
	}
	default:
		return 0;
	}
}

static void request_fifo_write(struct mpt *m, uint32_t v)
{
	if ((m->state & MPI_IOC_STATE_MASK) != MPI_IOC_STATE_OPERATIONAL) {
		mpt_fault(m, MPI_STATUS_INVALID_STATE);
		return;
	}
	uint64_t gpa = m->mfa_high | (v & ~3u); /* the low bits size the frame, for the chip */
	uint8_t frame[MPT_REQUEST_FRAME];
	if (guest_memory_read(m->mem, gpa, frame, sizeof(frame)) < 0) {
		mpt_fault(m, MPI_STATUS_INVALID_FIELD);
		return;
	}
	mpt_message(m, frame, false, gpa);
}

void mpt_reg_write(struct mpt *m, unsigned offset, uint32_t v)
{
	switch (offset) {
	case MPI_REG_DOORBELL:
		doorbell_write(m, v);
		break;
	case MPI_REG_WRITE_SEQUENCE:
		write_sequence(m, v);
		break;
	case MPI_REG_DIAGNOSTIC:
		diagnostic_write(m, v);
		break;
	case MPI_REG_INT_STATUS:
		int_status_write(m);
		break;
	case MPI_REG_INT_MASK:
		m->int_mask = v & MPI_HIM_MASK;
		mpt_update_irq(m);
		break;
	case MPI_REG_REQUEST_FIFO:
	case MPI_REG_HI_PRI_REQUEST_FIFO:
		request_fifo_write(m, v);
		break;
	case MPI_REG_REPLY_FIFO: /* writes hand the IOC a free reply frame */
		if (m->free_count == MPT_FIFO_DEPTH) {
			mpt_fault(m, MPI_STATUS_INSUFFICIENT_RESOURCES);
			break;
		}
		m->reply_free[(m->free_head + m->free_count++) % MPT_FIFO_DEPTH] = v;
		break;
	default:
		break;
	}
}

static void bar_access(struct pci_device *dev, unsigned bar, uint64_t offset, uint8_t *data,
		       unsigned len, bool is_write)
{
	struct mpt *m = dev->opaque;
	if ((bar != 0 && bar != 1) || len != 4 || (offset & 3)) {
		/* the diagnostic window and odd-sized accesses: reads 0, writes ignored */
		if (!is_write)
			memset(data, bar == 2 ? 0 : 0xFF, len);
		return;
	}
	pthread_mutex_lock(&m->lock);
	if (is_write)
		mpt_reg_write(m, (unsigned)offset, get_le32(data));
	else
		put_le32(data, mpt_reg_read(m, (unsigned)offset));
	pthread_mutex_unlock(&m->lock);
}

static const struct pci_device_ops mpt_pci_ops = {
    .bar_access = bar_access,
};

/* ---- lifecycle ---------------------------------------------------------------------------- */

int mpt_create(struct pci_bus *bus, int slot, const struct guest_memory *mem,
	       const struct mpt_personality *p, struct mpt **out)
{
	struct mpt *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->reqs = calloc(MPT_MAX_REQUESTS, sizeof(*m->reqs));
	if (!m->reqs) {
		free(m);
		return -ENOMEM;
	}
	m->mem = mem;
	m->p = p;
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->drained, NULL);
	for (unsigned i = MPT_MAX_REQUESTS; i-- > 0;) {
		m->reqs[i].mpt = m;
		m->reqs[i].next_free = m->free_reqs;
		m->free_reqs = &m->reqs[i];
	}
	hard_reset(m);

	struct pci_device *d = &m->pci;
	d->vendor_id = MPT_VENDOR;
	d->device_id = p->device_id;
	d->subsystem_vendor_id = MPT_VENDOR;
	d->subsystem_id = p->subsystem_id;
	d->class_code = PCI_CLASS_SCSI;
	d->revision = p->revision;
	d->irq_pin = 1;
	d->bars[0].type = PCI_BAR_IO;
	d->bars[0].size = MPT_IO_SIZE;
	d->bars[1].type = PCI_BAR_MEM32;
	d->bars[1].size = MPT_MMIO_SIZE;
	d->bars[2].type = PCI_BAR_MEM32;
	d->bars[2].size = MPT_DIAG_SIZE;
	d->ops = &mpt_pci_ops;
	d->opaque = m;
	int r = pci_msi_init(d, 0); /* one vector, as the SAS1068 and 53C1030 have */
	if (r == 0)
		r = pci_device_register(bus, d, slot);
	if (r < 0) {
		mpt_destroy(m);
		return r;
	}
	*out = m;
	return 0;
}

int mpt_attach(struct mpt *m, unsigned target, struct disk *d)
{
	if (target >= m->p->max_targets || target == m->p->initiator_id ||
	    m->targets[target].present)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	m->targets[target].present = true;
	scsi_lun_init(&m->targets[target].lun, d, d->media == DISK_MEDIA_CDROM);
	/* SeaBIOS names a SCSI disk channel@0/disk@TARGET,LUN under the HBA. */
	snprintf(d->fw_path, sizeof(d->fw_path), "/pci@i0cf8/scsi@%x/channel@0/disk@%x,0",
		 m->pci.slot, target);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

void mpt_power_on(struct mpt *m)
{
	pthread_mutex_lock(&m->lock);
	hard_reset(m);
	pthread_mutex_unlock(&m->lock);
}

void mpt_destroy(struct mpt *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	mpt_abandon_requests(m);
	drain(m);
	pthread_mutex_unlock(&m->lock);
	if (m->pci.bus)
		pci_device_unregister(&m->pci);
	pthread_cond_destroy(&m->drained);
	pthread_mutex_destroy(&m->lock);
	free(m->reqs);
	free(m);
}
