/* The parts of the SCSI target layer (devices/scsi/), one file each; transports use scsi.h. */
#ifndef MINIVMM_DEVICES_SCSI_SCSI_INTERNAL_H
#define MINIVMM_DEVICES_SCSI_SCSI_INTERNAL_H

#include "devices/scsi/scsi.h"

/* Blocks on the medium (512 bytes for a disk, 2048 for a CD-ROM); 0 without a medium. */
uint64_t scsi_lun_blocks(const struct scsi_lun *lun);
/* Copy a response (the first `len` bytes of buf, cut to alloc) into the data buffer; GOOD. */
void scsi_req_reply(struct scsi_req *req, const void *buf, uint64_t len, uint64_t alloc);

/* scsi_inquiry.c, scsi_mode.c */
void scsi_inquiry(struct scsi_req *req);
void scsi_mode_sense(struct scsi_req *req);
void scsi_mode_select(struct scsi_req *req);

/* scsi_io.c: true when the request finished at once, false when it is in flight. */
bool scsi_rw(struct scsi_req *req, bool write);
bool scsi_sync_cache(struct scsi_req *req);
bool scsi_unmap(struct scsi_req *req);
bool scsi_write_same(struct scsi_req *req);

/* scsi_mmc.c: the MMC commands of a CD-ROM; false when `op` is not one of them. */
bool scsi_mmc_command(struct scsi_req *req);

#endif
