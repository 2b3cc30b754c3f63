/* Between the files of the AHCI controller (ahci.c, ahci_idp.c, ahci_port.c, ahci_cmd.c,
 * ahci_ncq.c, ahci_ncq_send.c, ahci_fis.c, ahci_prdt.c, ahci_storage.c): not for other devices.
 *
 * Locking: one mutex per controller (hba->lock) guards every register and slot; it is also the
 * ATA layer's dev->lock.  MMIO handlers (vCPU threads) and block-layer completion callbacks (the
 * storage I/O thread) take it; interrupts are raised with it held, so the order is always
 * (storage media lock,) hba->lock, then the PCI bus lock.  Nothing that runs under the PCI bus lock
 * (config hooks) takes hba->lock.
 *
 * Commands in flight: an NCQ slot's request is counted by slot->busy and port->inflight until its
 * callback runs; the ATA layer's requests by the disk's block_aio_pending().  A port reset, a stop
 * (PxCMD.ST 1->0) or an HBA reset marks NCQ slots cancelled, resets the ATA device (its generation
 * drops late completions) and waits, releasing the lock, until the block layer has finished every
 * request: once the reset returns, nothing of the old commands can still write into guest RAM or
 * touch a register (CVE-2016-1568, CVE-2021-3735).
 */
#ifndef MINIVMM_DEVICES_AHCI_INTERNAL_H
#define MINIVMM_DEVICES_AHCI_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "devices/ahci.h"
#include "devices/ahci_regs.h"
#include "devices/ata/ata.h"
#include "devices/pci.h"
#include "storage/core/block_aio.h"

struct ahci_port;

/* The task-file registers a device returns with its status (D2H and PIO setup FIS). */
struct ahci_tf {
	uint64_t lba; /* 48 bits */
	uint16_t count;
	uint8_t device;
};

/* A walk through one command's PRDT, continued chunk by chunk. */
struct ahci_prdt {
	uint64_t ctba;	/* command table */
	unsigned prdtl; /* entries */
	unsigned idx;	/* current entry */
	uint64_t off;	/* bytes of the current entry already used */
	uint64_t done;	/* bytes described so far (PRDBC) */
};

/* An NCQ command (READ/WRITE/SEND FPDMA QUEUED) handed to the block layer, one request at a
 * time: the data, then (FUA) a flush, or (TRIM) one discard per range. */
struct ahci_slot {
	struct ahci_port *port;
	unsigned index;
	bool busy;	  /* a block-layer request is in flight */
	bool cancelled;	  /* its result must be dropped */
	uint64_t hdr_gpa; /* command header, for PRDBC */
	uint64_t bytes;
	struct block_aio_req req;
	struct iovec *iov; /* AHCI_NCQ_IOV_MAX entries, allocated on first use */
	/* Run under the lock when req succeeded (NULL: the command is done); it submits the next
	 * request or calls ahci_ncq_complete. */
	void (*next)(struct ahci_slot *s);
	uint8_t *dsm; /* SEND FPDMA DSM: the range list, copied out of guest memory (malloc'ed) */
	unsigned dsm_count, dsm_index;
	struct ata_ncq_error cmd; /* the command's FIS fields, reported in log 10h if it fails */
};

/* The non-queued command that owns the ATA device, and the events its ops reported: ops only
 * record, ahci_port_run acts, so the ATA layer and the port never call each other recursively. */
struct ahci_xfer {
	bool active;
	unsigned slot;
	uint64_t hdr_gpa;
	struct ahci_prdt prdt;
	bool pio_pending, pio_to_host;
	size_t pio_len;
	bool dma_pending;
	bool done_pending;
	uint32_t extra_is; /* PxIS bits the transfer earned (HBDS for an address outside RAM) */
};

struct ahci_port {
	struct ahci *hba;
	unsigned index;
	struct disk *disk; /* NULL: empty port */
	struct ata_device ata;

	uint32_t clb, clbu, fb, fbu, is, ie, cmd, tfd, sig, ssts, sctl, serr, sact, ci;
	uint32_t issued;	/* slots the port has taken and not yet finished */
	struct ahci_xfer x;	/* the running non-queued command */
	bool in_run, run_again; /* ahci_port_run is on the stack / must loop once more */
	bool error_stop;	/* a fatal or task-file error: nothing runs until ST 1->0 */
	bool d2h_pending;	/* link came up while FRE was 0: post the signature FIS later */
	bool srst;		/* a control FIS set SRST and has not cleared it yet */
	unsigned inflight;	/* NCQ slots with a block-layer request */
	unsigned quiescing;	/* resets waiting for inflight to drain */
	pthread_cond_t drained;
	struct ahci_slot slots[AHCI_SLOTS];
};

struct ahci {
	struct pci_device pci;
	const struct guest_memory *mem;
	pthread_mutex_t lock;
	unsigned nports;
	uint32_t ghc, is;
	uint32_t idp_index; /* BAR4 index register: an ABAR offset */
	bool irq_level;	    /* last aggregated level (INTx line or MSI edge detection) */
	struct ahci_port ports[AHCI_MAX_PORTS];
};

/* ahci.c */
/* An ABAR access at `offset` (lock held): the MMIO BAR's rules, also used by the IDP data port. */
void ahci_abar_access(struct ahci *hba, uint64_t offset, uint8_t *data, unsigned len,
		      bool is_write);
/* Re-aggregate port interrupts into IS and raise INTx/MSI. `event`: a new cause arrived (an MSI is
 * sent for it even if the level was already high). */
void ahci_irq_update(struct ahci *hba, bool event);

/* ahci_idp.c: the AHCI index/data pair in I/O BAR4 (AHCI 1.3 2.4, ICH9 D31:F2 BAR4). */
#define AHCI_BAR 5
#define AHCI_IDP_BAR 4
#define AHCI_IDP_SIZE 32 /* ICH9: 00h-0Fh unused in AHCI mode, 10h index, 14h data */
/* Add the SATA capability that tells software where the pair is. Before registering. */
int ahci_idp_init(struct pci_device *d);
/* A BAR4 access (lock held). */
void ahci_idp_access(struct ahci *hba, uint64_t offset, uint8_t *data, unsigned len, bool is_write);

/* ahci_port.c */
void ahci_port_init(struct ahci *hba, struct ahci_port *p, unsigned index);
uint32_t ahci_port_read(struct ahci_port *p, unsigned reg);
void ahci_port_write(struct ahci_port *p, unsigned reg, uint32_t val);
/* HBA reset (GHC.HR) of one port: cancel, then registers to their reset values and COMRESET. */
void ahci_port_hba_reset(struct ahci_port *p);
/* Cancel every in-flight command and wait until none can still complete. */
void ahci_port_quiesce(struct ahci_port *p);
/* Set PxIS bits and update the interrupt. */
void ahci_port_raise(struct ahci_port *p, uint32_t is_bits);
/* Act on ATA events and fetch issued commands until nothing is runnable. Re-entry (from an op the
 * ATA layer calls while we are inside it) only asks the running loop for one more pass. */
void ahci_port_run(struct ahci_port *p);
/* A command ended: update TFD, post the D2H FIS, clear CI, raise the interrupt. With ERR in
 * `status` also PxIS.TFES, and the port stops. */
void ahci_port_finish(struct ahci_port *p, unsigned slot, uint8_t status, uint8_t err,
		      const struct ahci_tf *tf, uint32_t extra_is);
/* Whether a block request of this port may still be running (NCQ or the ATA layer's). */
bool ahci_port_busy(const struct ahci_port *p);
/* A fatal host-bus problem (unreachable list, table or FIS area): PxIS bits, port stops. */
void ahci_port_fatal(struct ahci_port *p, uint32_t is_bits);

/* ahci_fis.c: post FISes into the receive area (dropped when FRE is off or FB is not RAM). */
int ahci_fis_d2h(struct ahci_port *p, uint8_t status, uint8_t err, const struct ahci_tf *tf);
int ahci_fis_signature(struct ahci_port *p);
int ahci_fis_pio_setup(struct ahci_port *p, uint8_t status, uint8_t err, const struct ahci_tf *tf,
		       uint16_t xfer, bool to_host);
int ahci_fis_sdb(struct ahci_port *p, uint8_t status, uint8_t err, uint32_t done);

/* ahci_prdt.c: describe the next at most `len` bytes of the PRDT in iov[0..iov_max) (adjacent
 * pieces merged). Returns the entry count and sets *mapped (less than len: the table ended), or
 * -EFAULT when an entry or a buffer lies outside RAM. Never loops more than the table's entries. */
int ahci_prdt_next(const struct guest_memory *mem, struct ahci_prdt *w, struct iovec *iov,
		   int iov_max, uint64_t len, uint64_t *mapped);
/* 0 when the rest of the table from w on maps at least len bytes, -ENOSPC when it is shorter,
 * -EFAULT when an entry or a buffer is outside RAM; w is not moved. */
int ahci_prdt_covers(const struct guest_memory *mem, const struct ahci_prdt *w, uint64_t len);

/* ahci_ncq.c: READ/WRITE FPDMA QUEUED in `slot`, fis the 20-byte H2D FIS. */
#define AHCI_NCQ_IOV_MAX 1024 /* IOV_MAX: one block request per command */
void ahci_ncq_start(struct ahci_port *p, unsigned slot, const uint8_t *fis, unsigned prdtl,
		    uint64_t ctba);
/* Take an NCQ command: CI clears; false (and the port in error) when the drive, the tag or its
 * PxSACT bit does not allow it, or an NCQ error is pending (log 10h not read yet). */
bool ahci_ncq_accept(struct ahci_port *p, unsigned slot, const uint8_t *fis);
/* Slot s's command failed: recorded for log 10h, ERR in PxTFD, an SDB FIS, PxIS.TFES (+ extra_is),
 * the port stops. */
void ahci_ncq_fail(struct ahci_slot *s, uint8_t err, uint32_t extra_is);
/* Submit s->req (op, offset, iov or len set) for the slot; -errno when the block layer refuses. */
int ahci_ncq_submit(struct ahci_slot *s);
/* The command succeeded: PRDBC = s->bytes, PxSACT bit cleared, SDB FIS with the interrupt. */
void ahci_ncq_complete(struct ahci_slot *s);
/* Forget a slot's command state (range list, continuation). */
void ahci_ncq_clear(struct ahci_slot *s);

/* ahci_ncq_send.c: SEND FPDMA QUEUED (64h), subcommand DATA SET MANAGEMENT with TRIM. */
#define ATA_CMD_SEND_FPDMA_QUEUED 0x64
void ahci_ncq_send_start(struct ahci_port *p, unsigned slot, const uint8_t *fis, unsigned prdtl,
			 uint64_t ctba);

/* ahci_cmd.c: non-queued ATA and ATAPI commands through the ATA layer (devices/ata/ata.h). */
int ahci_cmd_attach(struct ahci_port *p, struct disk *disk);
void ahci_cmd_start(struct ahci_port *p, unsigned slot, const uint8_t *fis, unsigned prdtl,
		    uint64_t ctba);
/* Act on the events the ATA layer reported; returns true when something happened. */
bool ahci_cmd_step(struct ahci_port *p);
/* Reset the device (power-on, COMRESET, SRST, command abort): its command is dropped. */
void ahci_cmd_device_reset(struct ahci_port *p);

static inline uint64_t ahci_u64(uint32_t lo, uint32_t hi)
{
	return (uint64_t)hi << 32 | lo;
}

#endif
