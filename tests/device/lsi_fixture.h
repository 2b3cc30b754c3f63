/* Test bench for the LSI Logic Fusion-MPT HBA without a CPU: a real PCI bus with fake interrupt
 * wiring, a guest RAM buffer, register accesses through BAR1 on the MMIO bus, and the driver's
 * side of MPI done the way Linux mptbase does it (doorbell handshake word by word, request
 * frames and reply frames in guest memory, the reply FIFO).  Block completions run on the test
 * thread (lf_complete) or on a helper thread while the controller waits for them. */
#ifndef MINIVMM_TESTS_LSI_FIXTURE_H
#define MINIVMM_TESTS_LSI_FIXTURE_H

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/disk.h"
#include "devices/io_bus.h"
#include "devices/lsi/mpi.h"
#include "devices/lsi/mpt.h"
#include "devices/pci.h"
#include "memory/guest_memory.h"
#include "storage/core/block_aio.h"
#include "lib/endian.h"
#include "tests/lib/testdisk.h"

#define LF_RAM (16 << 20)
#define LF_DISK_SIZE (4 << 20)
#define LF_REPLY_FRAMES 0x10000ull /* 64 reply frames of 64 bytes */
#define LF_REPLY_SIZE 64
#define LF_NREPLY 64
#define LF_FRAME 0x20000ull /* request frames: LF_FRAME + i * 128 */
#define LF_SENSE 0x30000ull
#define LF_CHAIN 0x40000ull
#define LF_DATA 0x100000ull
#define LF_SLOT 6

struct lf {
	struct io_bus pio, mmio;
	struct pci_bus *bus;
	struct guest_memory mem;
	struct mpt *m;
	struct disk *disk[MPT_MAX_TARGETS];
	uint64_t bar1;
	bool intx;
	int msis; /* MSI messages sent */
	uint32_t next_context;
	char dir[64];
	pthread_t completer;
	volatile bool completer_stop;
};

static inline int lf_set_irq(void *opaque, unsigned gsi, bool level)
{
	(void)gsi;
	((struct lf *)opaque)->intx = level;
	return 0;
}
static inline int lf_signal_msi(void *opaque, uint64_t a, uint32_t d)
{
	(void)a, (void)d;
	__atomic_add_fetch(&((struct lf *)opaque)->msis, 1, __ATOMIC_SEQ_CST);
	return 0;
}
static inline void lf_reset(void *opaque)
{
	(void)opaque;
}

static inline uint8_t *lf_ram(struct lf *f, uint64_t gpa)
{
	return guest_memory_ptr(&f->mem, gpa, 1);
}

static inline uint32_t lf_r(struct lf *f, unsigned off)
{
	uint8_t d[4];
	if (!io_bus_access(&f->mmio, f->bar1 + off, d, 4, false))
		return 0xDEADBEEF;
	return get_le32(d);
}

static inline void lf_w(struct lf *f, unsigned off, uint32_t v)
{
	uint8_t d[4];
	put_le32(d, v);
	io_bus_access(&f->mmio, f->bar1 + off, d, 4, true);
}

static inline int lf_init(struct lf *f, const struct mpt_personality *p)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/var/tmp/minivmm-test-lsi-XXXXXX");
	if (!mkdtemp(f->dir) || io_bus_init(&f->pio) || io_bus_init(&f->mmio))
		return -1;
	struct pci_bus_ops ops = {
	    .set_irq = lf_set_irq, .signal_msi = lf_signal_msi, .reset = lf_reset, .opaque = f};
	if (pci_bus_create(&f->pio, &f->mmio, &ops, &f->bus) < 0 ||
	    guest_memory_create(&f->mem, LF_RAM) < 0 ||
	    mpt_create(f->bus, LF_SLOT, &f->mem, p, &f->m) < 0)
		return -1;
	unsigned devfn = LF_SLOT << 3;
	pci_config_write(f->bus, devfn, PCI_COMMAND, 2,
			 PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	f->bar1 = pci_config_read(f->bus, devfn, PCI_BAR0 + 4, 4) & ~0xFULL;
	f->next_context = 0x100;
	return 0;
}

/* A raw image whose byte i is (i * 13 + i / 512) & 0xFF, on target t. */
static inline uint8_t lf_pattern(uint64_t i)
{
	return (uint8_t)((i * 13 + i / 512) & 0xFF);
}

static inline int lf_attach(struct lf *f, unsigned t, const char *opts)
{
	char path[128], arg[256];
	snprintf(path, sizeof(path), "%s/disk%u.img", f->dir, t);
	FILE *fp = fopen(path, "w");
	if (!fp)
		return -1;
	for (uint64_t i = 0; i < LF_DISK_SIZE; i++)
		fputc(lf_pattern(i), fp);
	fclose(fp);
	snprintf(arg, sizeof(arg), "%s%s", path, opts ? opts : ",format=raw");
	f->disk[t] = test_disk_open(arg, DISK_MEDIA_HDD);
	if (!f->disk[t])
		return -1;
	return mpt_attach(f->m, t, f->disk[t]);
}

static inline void lf_free(struct lf *f)
{
	mpt_destroy(f->m);
	for (unsigned t = 0; t < MPT_MAX_TARGETS; t++)
		if (f->disk[t]) {
			char path[128];
			snprintf(path, sizeof(path), "%s/disk%u.img", f->dir, t);
			disk_close(f->disk[t]);
			unlink(path);
		}
	rmdir(f->dir);
	pci_bus_destroy(f->bus);
	guest_memory_destroy(&f->mem);
	io_bus_destroy(&f->pio);
	io_bus_destroy(&f->mmio);
}

/* Run block completions until none is pending. */
static inline void lf_complete(struct lf *f)
{
	for (unsigned t = 0; t < MPT_MAX_TARGETS; t++)
		if (f->disk[t] && f->disk[t]->aio)
			for (int i = 0; i < 10000 && block_aio_pending(f->disk[t]->aio); i++)
				block_aio_poll(f->disk[t]->aio, 1000);
}

static inline void *lf_completer_main(void *arg)
{
	struct lf *f = arg;
	while (!f->completer_stop)
		for (unsigned t = 0; t < MPT_MAX_TARGETS; t++)
			if (f->disk[t] && f->disk[t]->aio)
				block_aio_poll(f->disk[t]->aio, 1);
	return NULL;
}

static inline void lf_completer_start(struct lf *f)
{
	f->completer_stop = false;
	pthread_create(&f->completer, NULL, lf_completer_main, f);
}

static inline void lf_completer_stop(struct lf *f)
{
	f->completer_stop = true;
	pthread_join(f->completer, NULL);
}

/* The doorbell handshake as mptbase does it: returns the reply's 16-bit words (0 on a protocol
 * error: no interrupt where one is due, or the doorbell not active). */
static inline unsigned lf_handshake(struct lf *f, const void *msg, unsigned bytes, uint16_t *reply,
				    unsigned max_words)
{
	const uint8_t *b = msg;
	lf_w(f, MPI_REG_INT_STATUS, 0);
	lf_w(f, MPI_REG_DOORBELL, MPI_FN_HANDSHAKE << 24 | (bytes / 4) << 16);
	if (!(lf_r(f, MPI_REG_INT_STATUS) & MPI_HIS_DOORBELL) ||
	    !(lf_r(f, MPI_REG_DOORBELL) & MPI_DOORBELL_ACTIVE))
		return 0;
	lf_w(f, MPI_REG_INT_STATUS, 0);
	for (unsigned i = 0; i < bytes / 4; i++)
		lf_w(f, MPI_REG_DOORBELL, get_le32(b + 4 * i));
	unsigned n = 0, len = 2;
	while (n < len) {
		if (!(lf_r(f, MPI_REG_INT_STATUS) & MPI_HIS_DOORBELL))
			return 0;
		uint16_t w = (uint16_t)lf_r(f, MPI_REG_DOORBELL);
		if (n < max_words)
			reply[n] = w;
		if (n == 1)
			len = 2u * (w & 0xFF); /* MsgLength, in dwords */
		n++;
		lf_w(f, MPI_REG_INT_STATUS, 0);
	}
	if (!(lf_r(f, MPI_REG_INT_STATUS) & MPI_HIS_DOORBELL))
		return 0;
	lf_w(f, MPI_REG_INT_STATUS, 0);
	return n;
}

static inline uint16_t lf_reply_status(const uint16_t *reply)
{
	return reply[7];
}

/* Bring-up in mptbase's order: IOC FACTS, PORT FACTS (the IOC still READY), IOC INIT, reply
 * frames posted, PORT ENABLE, EVENT NOTIFICATION (all but the frames through the handshake), reply
 * interrupts unmasked: 0 when all went well. */
static inline int lf_bring_up(struct lf *f)
{
	uint8_t msg[48] = {0};
	uint16_t reply[64];
	msg[3] = MPI_FN_IOC_FACTS;
	if (lf_handshake(f, msg, 12, reply, 64) != 40 || lf_reply_status(reply))
		return -1;
	msg[3] = MPI_FN_PORT_FACTS;
	if (lf_handshake(f, msg, 12, reply, 64) != 20 || lf_reply_status(reply) ||
	    !(reply[13] & MPI_PORT_PROTOCOL_INITIATOR))
		return -1;
	memset(msg, 0, sizeof(msg));
	msg[0] = 4; /* host driver */
	msg[3] = MPI_FN_IOC_INIT;
	put_le16(msg + 12, LF_REPLY_SIZE);
	if (lf_handshake(f, msg, 44, reply, 64) != 10 || lf_reply_status(reply))
		return -1;
	if ((lf_r(f, MPI_REG_DOORBELL) & MPI_IOC_STATE_MASK) != MPI_IOC_STATE_OPERATIONAL)
		return -1;
	for (unsigned i = 0; i < LF_NREPLY; i++)
		lf_w(f, MPI_REG_REPLY_FIFO, (uint32_t)(LF_REPLY_FRAMES + i * LF_REPLY_SIZE));
	memset(msg, 0, sizeof(msg));
	msg[3] = MPI_FN_PORT_ENABLE;
	if (lf_handshake(f, msg, 12, reply, 64) != 10 || lf_reply_status(reply))
		return -1;
	msg[0] = 1;
	msg[3] = MPI_FN_EVENT_NOTIFICATION;
	if (lf_handshake(f, msg, 12, reply, 64) != 16 || lf_reply_status(reply))
		return -1;
	lf_w(f, MPI_REG_INT_MASK, MPI_HIS_DOORBELL); /* reply interrupts on, as mptbase */
	return 0;
}

/* Build a SCSI IO request in frame `slot`; returns its guest address.  The SGL (if len) is one
 * simple 64-bit element over LF_DATA. */
static inline uint64_t lf_scsi_io(struct lf *f, unsigned slot, unsigned target, const uint8_t *cdb,
				  unsigned cdb_len, uint32_t dir, uint32_t len, uint32_t *context)
{
	uint64_t gpa = LF_FRAME + slot * MPT_REQUEST_FRAME;
	uint8_t *fr = lf_ram(f, gpa);
	memset(fr, 0, MPT_REQUEST_FRAME);
	fr[0] = (uint8_t)target;
	fr[3] = MPI_FN_SCSI_IO;
	fr[4] = (uint8_t)cdb_len;
	fr[5] = 32;
	*context = f->next_context++;
	put_le32(fr + 8, *context);
	put_le32(fr + 20, dir);
	memcpy(fr + 24, cdb, cdb_len);
	put_le32(fr + 40, len);
	put_le32(fr + 44, (uint32_t)(LF_SENSE + slot * 32));
	put_le32(fr + 48, MPI_SGE_TYPE_SIMPLE | MPI_SGE_64BIT | MPI_SGE_LAST_ELEMENT |
			      MPI_SGE_END_OF_BUFFER | MPI_SGE_END_OF_LIST | len);
	put_le64(fr + 52, LF_DATA);
	return gpa;
}

/* The next reply (0xFFFFFFFF: none). */
static inline uint32_t lf_pop(struct lf *f)
{
	return lf_r(f, MPI_REG_REPLY_FIFO);
}

/* The reply frame an address reply points to; the frame goes back to the free FIFO. */
static inline uint8_t *lf_reply_frame(struct lf *f, uint32_t v)
{
	uint32_t addr = v << 1;
	lf_w(f, MPI_REG_REPLY_FIFO, addr);
	return lf_ram(f, addr);
}

#endif
