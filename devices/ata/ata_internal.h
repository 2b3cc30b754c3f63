/* Shared between the files of devices/ata/: the transfer engine and command completion. */
#ifndef MINIVMM_DEVICES_ATA_INTERNAL_H
#define MINIVMM_DEVICES_ATA_INTERNAL_H

#include "devices/ata/ata.h"

/* ATAPI interrupt reason (in the COUNT register). */
enum { ATAPI_IREASON_COD = 0x01, ATAPI_IREASON_IO = 0x02 };

/* Command end: status and error as given, ATAPI ireason I/O+C/D after a PACKET command, INTRQ
 * when irq is set, then ops->done. */
void ata_cmd_end(struct ata_device *dev, uint8_t status, uint8_t error, bool irq);
/* Command end. ok: status DRDY|DSC (ATAPI: ireason I/O+C/D), INTRQ when irq is set. */
void ata_cmd_ok(struct ata_device *dev, bool irq);
/* Command end with ERR and `error` in the error register; INTRQ. */
void ata_cmd_error(struct ata_device *dev, uint8_t error);
static inline void ata_cmd_abort(struct ata_device *dev)
{
	ata_cmd_error(dev, ATA_ERR_ABRT);
}

/* Start the data phase of a command.
 *  ata_xfer_buf:    dev->buf[0..len) goes to the host (to_host) or comes from it.
 *  ata_xfer_medium: len bytes of the medium at `offset` (range already checked).
 * dev->use_dma picks DMA or PIO; dev->xfer_done (NULL: ata_cmd_ok) runs when the phase ends. */
void ata_xfer_buf(struct ata_device *dev, size_t len, bool to_host);
void ata_xfer_medium(struct ata_device *dev, uint64_t offset, uint64_t len, bool to_host);

/* Submit a block request with no data (FLUSH, DISCARD) for the running command; `done` runs with
 * the result under the lock, unless the command was reset meanwhile. */
int ata_submit_simple(struct ata_device *dev, int op, uint64_t offset, uint64_t len,
		      void (*done)(struct ata_device *dev, int ret));

/* ATA command set (ata_cmd.c), ATAPI (atapi.c), IDENTIFY (ata_identify.c). */
void ata_cmd_execute(struct ata_device *dev, uint8_t command);
void ata_cmd_read_log(struct ata_device *dev); /* READ LOG EXT (ata_log.c) */
void ata_identify_packet_fill(struct ata_device *dev, uint16_t id[256]);
void ata_set_signature(struct ata_device *dev);
void atapi_execute(struct ata_device *dev);

#endif
