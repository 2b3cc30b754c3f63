/* Device-to-host FISes posted into a port's received-FIS area (PxFB, 256 bytes): register D2H,
 * PIO setup, set device bits (SATA 3.x 10.5). Posting needs PxCMD.FR; an area outside RAM is a
 * host-bus fatal error for the port, never a write elsewhere.
 */
#include <errno.h>
#include <string.h>

#include "devices/ahci_internal.h"
#include "memory/guest_memory.h"
#include "lib/endian.h"

#define FIS_I 0x40 /* interrupt bit, byte 1 */
#define FIS_D 0x20 /* PIO setup: data direction device to host */

static int fis_post(struct ahci_port *p, unsigned off, const uint8_t *fis, size_t len)
{
	if (!(p->cmd & PORT_CMD_FR))
		return 0;
	uint64_t gpa = ahci_u64(p->fb, p->fbu) + off;
	if (guest_memory_write(p->hba->mem, gpa, fis, len) < 0) {
		ahci_port_fatal(p, PORT_IS_HBFS);
		return -EFAULT;
	}
	return 0;
}

static void fis_put_tf(uint8_t *fis, const struct ahci_tf *tf)
{
	if (!tf)
		return;
	fis[4] = tf->lba;
	fis[5] = tf->lba >> 8;
	fis[6] = tf->lba >> 16;
	fis[7] = tf->device;
	fis[8] = tf->lba >> 24;
	fis[9] = tf->lba >> 32;
	fis[10] = tf->lba >> 40;
	fis[12] = tf->count;
	fis[13] = tf->count >> 8;
}

int ahci_fis_d2h(struct ahci_port *p, uint8_t status, uint8_t err, const struct ahci_tf *tf)
{
	uint8_t fis[20] = {FIS_TYPE_REG_D2H, FIS_I, status, err};
	fis_put_tf(fis, tf);
	return fis_post(p, RFIS_RFIS, fis, sizeof(fis));
}

/* After a reset the device announces its class in the task-file registers (ATA 8 9.12). */
int ahci_fis_signature(struct ahci_port *p)
{
	struct ahci_tf tf = {
	    .lba = p->sig >> 8,
	    .count = p->sig & 0xFF,
	};
	p->d2h_pending = false;
	uint8_t fis[20] = {FIS_TYPE_REG_D2H, 0, p->tfd & 0xFF, p->tfd >> 8};
	fis_put_tf(fis, &tf);
	return fis_post(p, RFIS_RFIS, fis, sizeof(fis));
}

int ahci_fis_pio_setup(struct ahci_port *p, uint8_t status, uint8_t err, const struct ahci_tf *tf,
		       uint16_t xfer, bool to_host)
{
	/* Status is what the device shows during the transfer (DRQ), E_Status what follows it. */
	uint8_t fis[20] = {FIS_TYPE_PIO_SETUP, FIS_I | (to_host ? FIS_D : 0),
			   ATA_STAT_DRDY | ATA_STAT_DRQ | (status & ATA_STAT_DSC), err};
	fis_put_tf(fis, tf);
	fis[15] = status;
	fis[16] = xfer;
	fis[17] = xfer >> 8;
	return fis_post(p, RFIS_PSFIS, fis, sizeof(fis));
}

int ahci_fis_sdb(struct ahci_port *p, uint8_t status, uint8_t err, uint32_t done)
{
	/* Status bits 6:4 and 2:0 only: BSY and DRQ are not carried by this FIS. */
	uint8_t fis[8] = {FIS_TYPE_SDB, FIS_I, status & 0x77, err};
	put_le32(fis + 4, done);
	return fis_post(p, RFIS_SDBFIS, fis, sizeof(fis));
}
