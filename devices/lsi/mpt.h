/* The LSI Logic Fusion-MPT host bus adapter: one message-passing (MPI 1.5) core with two
 * personalities, the LSI53C1030 (Ultra320 SCSI, Linux mptspi, VirtualBox's "LsiLogic") and the
 * SAS1068 (Linux mptsas, VirtualBox's "LsiLogicSas"), behind the SCSI target layer
 * (devices/scsi).
 *
 * The guest talks to it through fixed messages: small ones (IOC facts and init, port facts and
 * enable, task management) word by word through the doorbell handshake; the rest as 128-byte
 * request frames in its memory whose address it writes to the request FIFO.  Replies are either
 * the request's context written to the reply FIFO ("context reply", for a SCSI IO that went
 * well) or a reply frame written into a buffer the guest gave through the reply free FIFO
 * ("address reply").  Interrupts: MSI when the guest enables it (Linux only with
 * mptbase.mpt_msi_enable_spi/sas=1), else INTx.
 *
 * Files: mpt.c (the PCI function, registers, doorbell, FIFOs, resets), mpt_msg.c (the IOC and
 * port messages, events), mpt_config.c (configuration pages), mpt_scsi_io.c (SCSI IO with its
 * SGL walk, task management), mpt_storage.c (bus=scsi and bus=sas).
 *
 * Every guest value is checked: a handshake longer than a message, a reply frame or request
 * frame outside RAM, SGL chains that are too deep or loop, unknown functions or config pages, a
 * reset with requests in flight (their completions then leave guest memory alone).
 */
#ifndef MINIVMM_DEVICES_LSI_MPT_H
#define MINIVMM_DEVICES_LSI_MPT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/lsi/mpi.h"
#include "devices/pci.h"
#include "devices/scsi/scsi.h"
#include "memory/sg_list.h"

struct disk;
struct guest_memory;

#define MPT_REQUEST_FRAME 128  /* bytes per request frame (IOC facts RequestFrameSize * 4) */
#define MPT_HS_MAX_DWORDS 32   /* the largest message the handshake takes */
#define MPT_HS_REPLY_WORDS 64  /* 16-bit words of the largest handshake reply */
#define MPT_MAX_REQUESTS 128   /* SCSI IO in flight (IOC facts GlobalCredits) */
#define MPT_FIFO_DEPTH 512     /* reply free and reply post FIFOs */
#define MPT_MAX_CHAIN_DEPTH 32 /* chain elements per request (IOC facts MaxChainDepth) */
#define MPT_MAX_SGES 1024      /* simple elements per request, a bound for the walk */
#define MPT_MAX_SEGMENTS 512   /* iovec entries per request after merging */
#define MPT_MAX_TRANSFER (16u << 20)
#define MPT_MAX_TARGETS 16

enum mpt_kind { MPT_SPI_53C1030 = 0, MPT_SAS_1068 };

struct mpt_personality {
	enum mpt_kind kind;
	const char *name;
	uint16_t device_id, subsystem_id;
	uint8_t revision;
	uint16_t product_id; /* IOC facts */
	unsigned max_targets;
	unsigned initiator_id; /* port facts PortSCSIID */
	uint8_t port_type;
};
extern const struct mpt_personality mpt_53c1030, mpt_sas1068;

struct mpt;

struct mpt_req {
	struct mpt *mpt;
	bool in_use;
	unsigned generation; /* the controller's at submission: a reset since makes it stale */
	uint8_t frame[MPI_SCSI_IO_SGL]; /* the request, up to its SGL */
	bool aborted;			/* task management ended it: reply TERMINATED */
	struct scsi_req sreq;
	struct sg_list sg;
	struct iovec sg_iov[MPT_MAX_SEGMENTS];
	struct iovec io_iov[MPT_MAX_SEGMENTS];
	struct mpt_req *next_free;
};

struct mpt_target {
	bool present;
	struct scsi_lun lun;
};

enum mpt_doorbell { MPT_DB_IDLE = 0, MPT_DB_RECEIVING, MPT_DB_REPLYING };

struct mpt {
	pthread_mutex_t lock;
	pthread_cond_t drained;
	struct pci_device pci;
	const struct guest_memory *mem;
	const struct mpt_personality *p;
	struct mpt_target targets[MPT_MAX_TARGETS];

	/* IOC */
	uint32_t state; /* MPI_IOC_STATE_* (| fault code) */
	uint8_t who_init;
	bool doorbell_irq; /* MPI_HIS_DOORBELL */
	uint32_t int_mask;
	bool irq_level;
	uint32_t diag;
	unsigned wseq; /* keys of the diagnostic write sequence seen so far */
	unsigned faults_reported;

	/* doorbell handshake */
	enum mpt_doorbell db;
	uint32_t db_msg[MPT_HS_MAX_DWORDS];
	unsigned db_count, db_idx;
	uint16_t db_reply[MPT_HS_REPLY_WORDS];
	unsigned db_reply_len, db_reply_idx;
	bool db_overrun; /* the guest announced a longer message than we take */

	/* set by IOC INIT */
	uint16_t reply_frame_size; /* bytes */
	uint8_t max_devices, max_buses;
	uint64_t mfa_high, sense_high;
	bool events_on;

	/* FIFOs */
	uint32_t reply_free[MPT_FIFO_DEPTH];
	unsigned free_head, free_count;
	uint32_t reply_post[MPT_FIFO_DEPTH];
	unsigned post_head, post_count;

	/* requests */
	struct mpt_req *reqs; /* MPT_MAX_REQUESTS */
	struct mpt_req *free_reqs;
	unsigned inflight, generation;
	/* task management waiting for the requests it ended */
	bool tm_pending;
	unsigned tm_waiting;
	uint8_t tm_reply[MPI_TM_REPLY_LEN];
};

/* mpt.c */
int mpt_create(struct pci_bus *bus, int slot, const struct guest_memory *mem,
	       const struct mpt_personality *p, struct mpt **out);
/* Put disk d on target id `target` (before the guest runs). */
int mpt_attach(struct mpt *m, unsigned target, struct disk *d);
void mpt_destroy(struct mpt *m);
/* Machine reset (nothing in flight): registers, FIFOs and units back to power-on. */
void mpt_power_on(struct mpt *m);
/* Register access as the guest does it (BAR0 and BAR1), for the device tests. */
uint32_t mpt_reg_read(struct mpt *m, unsigned offset);
void mpt_reg_write(struct mpt *m, unsigned offset, uint32_t value);

/* Lock held: */
/* Message unit reset: waits for the requests in flight, then back to READY. */
void mpt_reset_ioc(struct mpt *m);
void mpt_update_irq(struct mpt *m);
void mpt_fault(struct mpt *m, uint16_t code);
/* Deliver a reply: through the doorbell when the message came that way, else in a reply frame
 * from the free FIFO, posted to the reply FIFO.  len bytes (a multiple of 4, MsgLength set). */
void mpt_reply(struct mpt *m, uint8_t *reply, unsigned len, bool via_doorbell);
void mpt_post_context(struct mpt *m, uint32_t context);
/* Start a reply with the default header (function, flags, context copied from msg). */
void mpt_reply_header(uint8_t *reply, const uint8_t *msg, unsigned len);

/* mpt_msg.c: a message that came through the doorbell (msg has MPT_HS_MAX_DWORDS * 4 bytes) or
 * the request FIFO (frame_gpa: its address; msg its first MPT_REQUEST_FRAME bytes). */
void mpt_message(struct mpt *m, const uint8_t *msg, bool via_doorbell, uint64_t frame_gpa);

/* mpt_config.c */
void mpt_config(struct mpt *m, const uint8_t *msg, bool via_doorbell);

/* mpt_scsi_io.c */
void mpt_scsi_io(struct mpt *m, const uint8_t *msg, uint64_t frame_gpa, bool via_doorbell);
void mpt_task_mgmt(struct mpt *m, const uint8_t *msg, bool via_doorbell);
/* Forget every request in flight (their completions will find a new generation) and any task
 * management waiting for them. */
void mpt_abandon_requests(struct mpt *m);
/* The unit at target t, NULL when none. */
struct mpt_target *mpt_target(struct mpt *m, unsigned bus, unsigned t);

#endif
