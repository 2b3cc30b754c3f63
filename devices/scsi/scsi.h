/* The SCSI target layer: one logical unit (a hard disk, or a CD-ROM drive) that executes CDBs for
 * any transport (LSI Fusion-MPT today).  QEMU's scsi-disk plays this part behind its HBAs.
 *
 * Transports: LSI Fusion-MPT (SCSI IO messages) and ATAPI (the 12-byte packets of IDE and AHCI
 * CD-ROM drives, devices/ata/atapi.c).
 *
 * A transport fills a struct scsi_req (the CDB, the data buffer as a checked sg_list, the data
 * direction it was told) and calls scsi_req_start.  Commands that need no disk I/O (INQUIRY,
 * MODE SENSE, ...) finish there; reads, writes, flushes and unmaps go to the block layer and finish
 * later: the block layer calls req->io_callback, and the transport (under its lock) calls
 * scsi_req_resume, which either finishes the request or starts its next step (the flush after a
 * FUA write, the next UNMAP descriptor).  Either way the result is req->status
 * (GOOD or CHECK CONDITION), the sense data (fixed or descriptor format, as the guest chose in
 * the control mode page) and req->xfer, the bytes moved.
 *
 * Every CDB field is checked: a range past the end of the medium, a transfer longer than the
 * data buffer, a write to a read-only unit, an unknown opcode or a reserved bit all get CHECK
 * CONDITION with the matching sense, never a crash.  The caller serialises calls on one unit (its
 * controller lock).
 */
#ifndef MINIVMM_DEVICES_SCSI_SCSI_H
#define MINIVMM_DEVICES_SCSI_SCSI_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "memory/sg_list.h"
#include "storage/core/block_aio.h"

struct disk;

/* SAM status codes. */
#define SCSI_STATUS_GOOD 0x00
#define SCSI_STATUS_CHECK_CONDITION 0x02

/* Sense keys. */
#define SCSI_SENSE_NO_SENSE 0x0
#define SCSI_SENSE_NOT_READY 0x2
#define SCSI_SENSE_MEDIUM_ERROR 0x3
#define SCSI_SENSE_HARDWARE_ERROR 0x4
#define SCSI_SENSE_ILLEGAL_REQUEST 0x5
#define SCSI_SENSE_UNIT_ATTENTION 0x6
#define SCSI_SENSE_DATA_PROTECT 0x7
#define SCSI_SENSE_ABORTED_COMMAND 0xB

/* ASC/ASCQ pairs, as one 16-bit value. */
#define SCSI_ASC_NONE 0x0000
#define SCSI_ASC_INVALID_OPCODE 0x2000
#define SCSI_ASC_LBA_OUT_OF_RANGE 0x2100
#define SCSI_ASC_INVALID_FIELD_CDB 0x2400
#define SCSI_ASC_INVALID_FIELD_PARAM 0x2600
#define SCSI_ASC_PARAM_LIST_LENGTH 0x1A00
#define SCSI_ASC_WRITE_PROTECTED 0x2700
#define SCSI_ASC_MEDIUM_NOT_PRESENT 0x3A00
#define SCSI_ASC_MEDIUM_CHANGED 0x2800
#define SCSI_ASC_RESET_OCCURRED 0x2900
#define SCSI_ASC_SAVING_NOT_SUPPORTED 0x3900
#define SCSI_ASC_INCOMPATIBLE_MEDIUM 0x3000
#define SCSI_ASC_READ_ERROR 0x1100
#define SCSI_ASC_WRITE_ERROR 0x0C00
#define SCSI_ASC_LU_NOT_READY_STOPPED 0x0402 /* initializing command required */
#define SCSI_ASC_TASK_ABORTED 0x4700

#define SCSI_SENSE_MAX 32
#define SCSI_CDB_MAX 16
#define SCSI_DISK_BLOCK 512
#define SCSI_CD_BLOCK 2048

enum scsi_dir { SCSI_DIR_NONE = 0, SCSI_DIR_TO_DEVICE, SCSI_DIR_FROM_DEVICE };

/* Why a request did not reach a SCSI status (the transport reports these in its own terms). */
enum scsi_host_status {
	SCSI_HOST_OK = 0,
	SCSI_HOST_OVERRUN, /* the command wants more data than the buffer, or the other direction */
	SCSI_HOST_ABORTED, /* task management or a reset ended it */
};

/* GET EVENT STATUS NOTIFICATION media event codes (MMC-5 6.6.2.2). */
enum scsi_media_event {
	SCSI_MEDIA_EVENT_NONE = 0,
	SCSI_MEDIA_EVENT_NEW = 2,
	SCSI_MEDIA_EVENT_REMOVAL = 3
};

struct scsi_lun {
	struct disk *disk;
	bool cdrom;
	bool atapi; /* set by an ATAPI transport: the MMC core feature names ATAPI, not SCSI */
	bool write_cache;    /* WCE in the caching mode page: starts from the disk's cache mode */
	bool desc_sense;     /* D_SENSE in the control mode page */
	bool stopped;	     /* START STOP UNIT with START=0 */
	bool locked;	     /* PREVENT ALLOW MEDIUM REMOVAL (CD-ROM) */
	bool media_changed;  /* a CD-ROM medium change not yet reported (UNIT ATTENTION) */
	bool tray_open;	     /* the guest ejected (START STOP UNIT): no medium until it loads */
	uint8_t media_event; /* enum scsi_media_event not yet read by GET EVENT STATUS */
	uint8_t last_sense[SCSI_SENSE_MAX]; /* REQUEST SENSE returns this, then clears it */
	unsigned last_sense_len;
	unsigned inflight; /* requests in the block layer */
};

#define SCSI_UNMAP_MAX_DESCRIPTORS 16

struct scsi_req {
	/* Set by the transport. */
	uint8_t cdb[SCSI_CDB_MAX];
	unsigned cdb_len;
	struct sg_list *data; /* the data buffer (may hold 0 bytes) */
	enum scsi_dir dir;
	/* For requests scsi_req_start left in flight: called from the block layer's completion
	 * thread, without locks; the transport takes its lock and calls scsi_req_resume. */
	void (*io_callback)(struct scsi_req *req, int ret);
	void *opaque;
	/* A transport that moves medium data itself (ATAPI: in its own PIO and DMA chunks) sets
	 * this: a READ is checked (medium, range) and finishes at once with medium_read set,
	 * nothing moved; the transport then moves [read_offset, read_offset + read_len) of the
	 * medium.  Other commands are unchanged. */
	bool transport_reads;

	/* Result. */
	enum scsi_host_status host;
	uint8_t status;
	uint8_t sense[SCSI_SENSE_MAX];
	unsigned sense_len;
	uint64_t xfer;	  /* bytes of the data buffer moved */
	bool medium_read; /* transport_reads: the READ is the transport's to move */
	uint64_t read_offset, read_len;

	/* Private to the SCSI layer. */
	struct scsi_lun *lun;
	struct block_aio_req aio;
	struct iovec *iov; /* the transport's array of iov_max entries for the block request */
	unsigned iov_max;
	uint64_t lba, blocks; /* of a read or write */
	bool fua;
	bool zero_unmap; /* WRITE SAME with UNMAP */
	unsigned unmap_next, unmap_count;
	uint64_t unmap_lba[SCSI_UNMAP_MAX_DESCRIPTORS];
	uint32_t unmap_len[SCSI_UNMAP_MAX_DESCRIPTORS];
};

/* Start `d` as a unit (cdrom: an MMC device with 2048-byte blocks). */
void scsi_lun_init(struct scsi_lun *lun, struct disk *d, bool cdrom);
/* Power-on state (the disk stays): mode pages, sense, the tray lock.  Nothing may be in flight. */
void scsi_lun_reset(struct scsi_lun *lun);

/* Execute req on lun.  Returns true when the request finished (result filled in), false when it
 * is in flight (req->io_callback will run). */
bool scsi_req_start(struct scsi_lun *lun, struct scsi_req *req);

/* After req->io_callback(req, ret), under the caller's lock: true when req finished (result
 * filled in), false when it went on to its next block request (io_callback will run again). */
bool scsi_req_resume(struct scsi_req *req, int ret);

/* A request addressed to a LUN that does not exist: INQUIRY says "no device", the rest get
 * ILLEGAL REQUEST (logical unit not supported).  Always finishes at once. */
void scsi_req_no_lun(struct scsi_req *req);
/* Medium change on a CD-ROM unit (after disk_medium_swap): the tray closes and unlocks, the next
 * command other than INQUIRY, REQUEST SENSE, GET EVENT STATUS or REPORT LUNS gets UNIT ATTENTION,
 * and the media event says new medium (or removal, when the drive is now empty). */
void scsi_lun_medium_changed(struct scsi_lun *lun);

/* Fill req's sense with key/asc (fixed or descriptor format as the unit wants) and set CHECK
 * CONDITION. */
void scsi_req_check(struct scsi_req *req, uint8_t key, uint16_t asc);
/* Record a condition found by the transport (a failed medium transfer) as the unit's sense, for
 * the next REQUEST SENSE. */
void scsi_lun_set_sense(struct scsi_lun *lun, uint8_t key, uint16_t asc);
/* The sense key of sense data in either format. */
uint8_t scsi_sense_key(const uint8_t *sense);
/* Build sense data in buf (at least SCSI_SENSE_MAX bytes); returns its length. */
unsigned scsi_sense_build(uint8_t *buf, bool descriptor, uint8_t key, uint16_t asc);

/* Bytes a CDB of opcode `op` has (6, 10, 12 or 16), 0 for a group the layer does not know. */
unsigned scsi_cdb_length(uint8_t op);

#endif
