/* One ATA device (hard disk or ATAPI CD-ROM): task-file registers and the command state machine,
 * independent of the transport that carries them (PIIX IDE ports + BMDMA, AHCI FIS + PRDT).
 *
 * The transport owns the wires; the device owns the protocol:
 *  - the transport writes the task file (ata_reg_write for IDE ports, or dev->tf directly from an
 *    H2D FIS) and starts a command with ata_command();
 *  - PIO data goes through dev->buf: the transport moves bytes with ata_pio_read/ata_pio_write
 *    (IDE: the data port; AHCI: a copy from/to the PRDT when ops->pio_ready is called);
 *  - DMA data goes straight between guest memory and the block layer: the device asks the
 *    transport for scatter-gather lists (ops->dma_map, guest_memory_ptr per segment) and submits
 *    asynchronous block requests on them; the transport says when its DMA engine runs with
 *    ata_dma_go() (IDE: BMDMA start bit; AHCI: at once);
 *  - the device calls ops->irq when the protocol raises INTRQ and ops->done at command end.
 *
 * Threads: block completions run wherever block_aio_complete() is called (the VM's I/O thread).
 * The completion path takes *dev->lock (set by the transport; NULL when single-threaded), and the
 * transport takes the same lock around every call into this file, so ops run with it held.
 *
 * Reset (SRST, channel or port reset) cancels the command: requests still in flight complete into
 * nothing (a generation number tells stale completions apart), so a new command may start at once.
 *
 * One command at a time per device: NCQ (FPDMA) queueing, if a transport offers it, is the
 * transport's own business on top of struct disk.
 */
#ifndef MINIVMM_DEVICES_ATA_ATA_H
#define MINIVMM_DEVICES_ATA_ATA_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "devices/scsi/scsi.h"

struct disk;
struct ata_device;

/* Status register bits. */
enum {
	ATA_STAT_ERR = 0x01,
	ATA_STAT_DRQ = 0x08,
	ATA_STAT_DSC = 0x10, /* seek complete (service for ATAPI) */
	ATA_STAT_DF = 0x20,
	ATA_STAT_DRDY = 0x40,
	ATA_STAT_BSY = 0x80,
};
/* Error register bits. */
enum {
	ATA_ERR_ABRT = 0x04,
	ATA_ERR_IDNF = 0x10,
	ATA_ERR_UNC = 0x40,
};
/* Device control register bits. */
enum {
	ATA_CTL_NIEN = 0x02,
	ATA_CTL_SRST = 0x04,
	ATA_CTL_HOB = 0x80,
};
/* Task-file register numbers as on the IDE command block (offsets 0..7). */
enum ata_reg {
	ATA_REG_DATA = 0,
	ATA_REG_FEATURE = 1, /* read: ERROR */
	ATA_REG_COUNT = 2,
	ATA_REG_LBA_LOW = 3,
	ATA_REG_LBA_MID = 4,
	ATA_REG_LBA_HIGH = 5,
	ATA_REG_DEVICE = 6,
	ATA_REG_COMMAND = 7, /* read: STATUS */
};

/* The task file. `*_exp` hold the previous write of each register (the 48-bit "HOB" bytes). */
struct ata_taskfile {
	uint8_t feature, feature_exp;
	uint8_t count, count_exp;
	uint8_t lba_low, lba_low_exp;
	uint8_t lba_mid, lba_mid_exp;
	uint8_t lba_high, lba_high_exp;
	uint8_t device;
	uint8_t command;
	uint8_t status;
	uint8_t error;
	uint8_t control;
};

struct ata_ops {
	/* The device asserts INTRQ (the transport applies nIEN, its own masks and edge rules). */
	void (*irq)(void *opaque, struct ata_device *dev);
	/* A PIO data block of `len` bytes is ready in dev->buf: to_host true means the host reads
	 * it (IN), false means the host must write it (OUT). IDE needs nothing here (the guest
	 * polls the data port); AHCI copies the PRDT data and calls ata_pio_read/ata_pio_write. May
	 * be NULL. */
	void (*pio_ready)(void *opaque, struct ata_device *dev, bool to_host, size_t len);
	/* A DMA command is waiting for the transport's engine: call ata_dma_go() when it runs (at
	 * once, from inside this op, is allowed). */
	void (*dma_ready)(void *opaque, struct ata_device *dev, bool to_host);
	/* Describe the next at most `len` bytes of the transfer's guest memory, continuing where
	 * the previous call stopped, in iov[0..iov_max). Returns the number of entries and sets
	 * *mapped to the bytes described (fewer than len: the table ended), or -errno when the
	 * table or an address is bad. Called only between ata_dma_go() and the command's end. */
	int (*dma_map)(void *opaque, struct ata_device *dev, struct iovec *iov, int iov_max,
		       size_t len, size_t *mapped);
	/* Before a medium transfer's first dma_map: 0 when the table describes at least `len`
	 * bytes from where the walk starts, -ENOSPC when it is shorter, -errno when it is bad;
	 * the walk is left where it was. A device never moves part of a command, so a short table
	 * fails it before anything is read or written. May be NULL (not checked). */
	int (*dma_check)(void *opaque, struct ata_device *dev, uint64_t len);
	/* The DMA part of a command ended: ret 0, or -errno when the transport's table failed
	 * (short table: -ENOSPC; bad address: -EFAULT) or the medium failed (-EIO). Before
	 * ops->done. */
	void (*dma_end)(void *opaque, struct ata_device *dev, int ret);
	/* The command ended (dev->tf.status/error final, BSY clear). AHCI posts its D2H FIS here.
	 * May be NULL. */
	void (*done)(void *opaque, struct ata_device *dev);
	/* The last block request in flight has completed (dev->inflight is 0), stale ones after a
	 * reset included: a transport waiting for its device to go idle wakes here. May be NULL. */
	void (*idle)(void *opaque, struct ata_device *dev);
};

enum ata_phase {
	ATA_PHASE_IDLE,	    /* no command */
	ATA_PHASE_BUSY,	    /* block request in flight, BSY */
	ATA_PHASE_PIO_IN,   /* dev->buf holds data for the host */
	ATA_PHASE_PIO_OUT,  /* the host fills dev->buf */
	ATA_PHASE_PACKET,   /* ATAPI: the host writes the 12-byte packet */
	ATA_PHASE_DMA_WAIT, /* DMA command waiting for ata_dma_go() */
	ATA_PHASE_DMA,	    /* DMA running */
};

#define ATA_BUF_SIZE (128 * 1024)	/* PIO block / ATAPI reply buffer */
#define ATA_DMA_IOV_MAX 64		/* segments per block request */
#define ATA_DMA_CHUNK (4 * 1024 * 1024) /* bytes per block request */
#define ATA_MULTIPLE_MAX 16		/* sectors per DRQ block in READ/WRITE MULTIPLE */

struct ata_device {
	/* Set by the transport before ata_device_init(). */
	const struct ata_ops *ops;
	void *opaque;
	pthread_mutex_t *lock;
	bool sata; /* IDENTIFY shows the SATA words (76..79, 222) */
	bool ncq;  /* IDENTIFY shows NCQ with queue depth 32 (the transport implements FPDMA) */

	struct disk *disk;
	bool atapi;
	struct ata_taskfile tf;

	/* Command state (private to devices/ata/). */
	enum ata_phase phase;
	uint32_t generation; /* bumped by reset: stale completions are dropped */
	unsigned inflight;   /* block requests submitted whose callback has not run */
	uint8_t *buf;	  /* ATA_BUF_SIZE bytes: PIO blocks, IDENTIFY, ATAPI replies, DSM ranges */
	size_t buf_pos;	  /* next byte of buf the host reads or writes */
	size_t drq_end;	  /* end of the current DRQ block in buf */
	size_t buf_len;	  /* bytes of buf that make up the transfer (buffer transfers) */
	bool from_medium; /* the transfer's data is the medium at `offset`, not buf */
	bool to_host;
	bool use_dma;
	uint64_t offset;			   /* next byte of the medium */
	uint64_t remaining;			   /* bytes of a medium transfer not yet done */
	void (*xfer_done)(struct ata_device *dev); /* runs when the data phase has ended */
	unsigned multiple;			   /* SET MULTIPLE MODE value; 0: disabled */
	unsigned
	    drq_bytes; /* bytes per PIO DRQ block (ATA: sectors x 512; ATAPI: byte count limit) */
	bool write_cache;
	bool fua; /* the running write is Forced Unit Access: durable before it completes */
	uint8_t xfer_mode;	       /* SET FEATURES 03h value */
	unsigned dsm_index, dsm_count; /* DATA SET MANAGEMENT: next range, ranges */

	/* ATAPI (atapi.c): the packet, and the SCSI layer's CD-ROM unit that executes it (sense,
	 * tray, lock and media events live there). */
	uint8_t packet[12];
	struct scsi_lun lun;

	/* NCQ Command Error log (10h): the queued command that failed, kept until the host reads
	 * the log or the device is reset (COMRESET, SRST). Set by the transport. */
	struct ata_ncq_error {
		bool pending;
		uint8_t tag, status, error, device;
		uint64_t lba;	/* 48 bits */
		uint16_t count; /* the command's FEATURE field: its sector or block count */
	} ncq_error;
};

/* Attach `disk` (NULL: no device at this position) as ATA or, when the disk is a CD-ROM, ATAPI.
 * Allocates dev->buf. */
int ata_device_init(struct ata_device *dev, struct disk *disk);
void ata_device_cleanup(struct ata_device *dev);
static inline bool ata_device_present(const struct ata_device *dev)
{
	return dev->disk != NULL;
}

/* Reset: the command is cancelled, registers hold the signature (ATA 00/00, ATAPI 14/EB). */
void ata_device_reset(struct ata_device *dev);
/* Machine reset: the settings the guest made (write cache, transfer mode, MULTIPLE, tray lock,
 * NCQ error log) back to their power-on values, then a reset.  The medium stays. */
void ata_device_power_on(struct ata_device *dev);

/* IDE-style register access honouring the HOB bit; writes shift the previous value into _exp. */
void ata_reg_write(struct ata_device *dev, enum ata_reg reg, uint8_t val);
uint8_t ata_reg_read(const struct ata_device *dev, enum ata_reg reg);

/* Execute dev->tf.command with the current task file. BSY commands are ignored (as hardware). */
void ata_command(struct ata_device *dev, uint8_t command);

/* PIO data transfer: copy up to len bytes out of / into the current DRQ block; the device moves
 * on (next block, command end) when the block is consumed. Returns the bytes moved (0 when no PIO
 * phase is active: reads then see 0xFF bytes on IDE, the caller decides). */
size_t ata_pio_read(struct ata_device *dev, void *data, size_t len);
size_t ata_pio_write(struct ata_device *dev, const void *data, size_t len);

/* The transport's DMA engine runs: start moving the waiting DMA command's data. */
void ata_dma_go(struct ata_device *dev);

/* DATA SET MANAGEMENT (TRIM) payload, shared by DSM (06h) and the NCQ form (SEND FPDMA QUEUED):
 * 512-byte blocks of 8-byte little-endian entries, LBA in bits 47:0 and a sector count in bits
 * 63:48 (0: unused entry). At most ATA_DSM_MAX_BLOCKS blocks per command (IDENTIFY word 105). */
#define ATA_DSM_MAX_BLOCKS (ATA_BUF_SIZE / 512)
void ata_dsm_entry(const uint8_t *list, unsigned i, uint64_t *lba, uint64_t *count);
/* Every used entry of list[0..n) lies on a disk of `sectors` sectors: 0, else -ERANGE. */
int ata_dsm_check(const uint8_t *list, unsigned n, uint64_t sectors);
/* A discard's result: false when it failed. A format that cannot deallocate keeps the data, which
 * TRIM allows (-ENOTSUP). */
static inline bool ata_dsm_discard_ok(int ret)
{
	return ret >= 0 || ret == -ENOTSUP || ret == -EOPNOTSUPP;
}

/* Logs READ LOG EXT answers (ata_log.c): the directory and, when dev->ncq, the NCQ Command Error
 * log and the NCQ Send and Receive log, whose DSM/TRIM bit tells a host that SEND FPDMA QUEUED
 * with TRIM works. */
#define ATA_LOG_DIRECTORY 0x00
#define ATA_LOG_NCQ_ERROR 0x10
#define ATA_LOG_NCQ_SEND_RECV 0x13

/* A queued command failed: record it for log 10h. While an error is pending the first one is kept
 * (the device refuses queued commands until the host has read the log). */
void ata_ncq_error_record(struct ata_device *dev, const struct ata_ncq_error *e);

/* IDENTIFY data (for tests and the AHCI signature path): fills 256 words. */
void ata_identify_fill(struct ata_device *dev, uint16_t id[256]);

/* ATAPI (atapi.c).  After disk_medium_swap() the transport calls
 * scsi_lun_medium_changed(&dev->lun). */
void atapi_packet_start(struct ata_device *dev);

#endif
