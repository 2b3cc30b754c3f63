/* AHCI port: registers, the PxCMD engine (ST/CR, FRE/FR, CLO), COMRESET through PxSCTL, and the
 * command-list walk that hands each issued slot to the NCQ or the ATA path.
 *
 * Hostile-guest rules kept here: a slot is fetched at most once per issue (port->issued), so a CI
 * write while commands run only adds new slots; command processing is a loop, never recursion; a
 * list, table or FIS area outside RAM stops the port with PxIS.HBFS instead of touching anything.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/ahci_internal.h"
#include "devices/disk.h"
#include "memory/guest_memory.h"
#include "lib/endian.h"

#define TFD_NO_DEVICE 0x7F
#define SCTL_WRITABLE 0xFFFu /* DET, SPD, IPM */

static bool port_is_atapi(const struct ahci_port *p)
{
	return p->disk && p->disk->media == DISK_MEDIA_CDROM;
}

/* The device finished its power-on or reset sequence: link up, signature in PxSIG and PxTFD, and
 * the signature D2H FIS posted (now, or as soon as FIS receive is enabled). */
static void port_link_up(struct ahci_port *p)
{
	if (!p->disk) {
		p->ssts = 0;
		p->sig = 0xFFFFFFFF;
		p->tfd = TFD_NO_DEVICE;
		p->d2h_pending = false;
		return;
	}
	ahci_cmd_device_reset(p);
	/* Only a device reset forgets an NCQ error; a port stop (the driver's error handling,
	 * before it reads log 10h) does not. */
	p->ata.ncq_error.pending = false;
	p->ssts = SSTS_DET_PRESENT | SSTS_SPD_GEN3 | SSTS_IPM_ACTIVE;
	p->sig = port_is_atapi(p) ? PORT_SIG_ATAPI : PORT_SIG_ATA;
	/* The device's own reset values: error 01h (diagnostics passed); ATAPI without DRDY. */
	p->tfd = (uint32_t)p->ata.tf.error << 8 | p->ata.tf.status;
	p->d2h_pending = true;
	if (p->cmd & PORT_CMD_FR)
		ahci_fis_signature(p);
}

/* Forget every command: the caller has quiesced the port. */
static void port_drop_commands(struct ahci_port *p)
{
	p->ci = 0;
	p->sact = 0;
	p->issued = 0;
	memset(&p->x, 0, sizeof(p->x));
	p->srst = false;
	p->cmd &= ~(PORT_CMD_CR | PORT_CMD_CCS_MASK);
}

void ahci_port_init(struct ahci *hba, struct ahci_port *p, unsigned index)
{
	memset(p, 0, sizeof(*p));
	p->hba = hba;
	p->index = index;
	pthread_cond_init(&p->drained, NULL);
	for (unsigned i = 0; i < AHCI_SLOTS; i++) {
		p->slots[i].port = p;
		p->slots[i].index = i;
	}
	p->cmd = PORT_CMD_SUD | PORT_CMD_POD;
	port_link_up(p);
}

bool ahci_port_busy(const struct ahci_port *p)
{
	return p->inflight || p->ata.inflight;
}

void ahci_port_quiesce(struct ahci_port *p)
{
	for (unsigned i = 0; i < AHCI_SLOTS; i++)
		if (p->slots[i].busy)
			p->slots[i].cancelled = true;
	if (p->x.active)
		ahci_cmd_device_reset(p); /* the ATA layer drops the command's later completions */
	p->quiescing++;
	disk_release_stopped(p->disk); /* werror=stop: a parked write fails now, or never ends */
	/* Until the block layer has finished every request, data may still land in guest RAM.
	 * Both kinds of completion (NCQ slots and the ATA layer's requests) signal p->drained when
	 * their count reaches 0. */
	while (ahci_port_busy(p))
		pthread_cond_wait(&p->drained, &p->hba->lock);
	p->quiescing--;
	port_drop_commands(p);
}

void ahci_port_hba_reset(struct ahci_port *p)
{
	ahci_port_quiesce(p);
	/* PxCLB/PxFB survive an HBA reset (AHCI 1.3 10.4.3); the rest returns to reset values. */
	p->is = 0;
	p->ie = 0;
	p->cmd = PORT_CMD_SUD | PORT_CMD_POD;
	p->serr = 0;
	p->sctl = 0;
	p->error_stop = false;
	port_link_up(p);
}

void ahci_port_raise(struct ahci_port *p, uint32_t is_bits)
{
	is_bits &= PORT_IS_VALID;
	p->is |= is_bits;
	ahci_irq_update(p->hba, (is_bits & p->ie) != 0);
}

void ahci_port_fatal(struct ahci_port *p, uint32_t is_bits)
{
	p->error_stop = true;
	p->tfd |= ATA_STAT_ERR;
	ahci_port_raise(p, is_bits);
}

void ahci_port_finish(struct ahci_port *p, unsigned slot, uint8_t status, uint8_t err,
		      const struct ahci_tf *tf, uint32_t extra_is)
{
	uint32_t bit = 1u << slot;
	status &= ~(ATA_STAT_BSY | ATA_STAT_DRQ);
	p->tfd = (uint32_t)err << 8 | status;
	ahci_fis_d2h(p, status, err, tf);
	p->ci &= ~bit;
	p->issued &= ~bit;
	if (status & ATA_STAT_ERR) {
		p->error_stop = true; /* until the driver clears ST (AHCI 1.3 6.2.2.1) */
		extra_is |= PORT_IS_TFES;
	}
	ahci_port_raise(p, PORT_IS_DHRS | extra_is);
}

/* A control FIS (C=0): SRST set resets the device, SRST cleared ends the reset and the device
 * sends its signature. Refused while requests are in flight: the port is then not idle. */
static void port_control_fis(struct ahci_port *p, unsigned slot, const uint8_t *fis)
{
	uint32_t bit = 1u << slot;
	if (ahci_port_busy(p)) {
		ahci_port_finish(p, slot, ATA_STAT_DRDY | ATA_STAT_ERR, ATA_ERR_ABRT, NULL, 0);
		return;
	}
	if (fis[15] & FIS_CTL_SRST) {
		p->srst = true;
		p->tfd = ATA_STAT_BSY;
	} else if (p->srst) {
		p->srst = false;
		port_link_up(p);
	}
	p->ci &= ~bit;
	p->issued &= ~bit;
}

/* Fetch slot's header and FIS and start it. */
static void port_exec(struct ahci_port *p, unsigned slot)
{
	const struct guest_memory *mem = p->hba->mem;
	struct ahci_slot *s = &p->slots[slot];
	uint8_t hdr[CMDH_SIZE], fis[20];

	s->hdr_gpa = ahci_u64(p->clb, p->clbu) + (uint64_t)slot * CMDH_SIZE;
	if (guest_memory_read(mem, s->hdr_gpa, hdr, sizeof(hdr)) < 0) {
		ahci_port_fatal(p, PORT_IS_HBFS);
		return;
	}
	uint32_t dw0 = get_le32(hdr);
	uint64_t ctba = ahci_u64(get_le32(hdr + 8), get_le32(hdr + 12)) & ~0x7FULL;
	if (guest_memory_read(mem, ctba + CMDT_CFIS, fis, sizeof(fis)) < 0) {
		ahci_port_fatal(p, PORT_IS_HBFS);
		return;
	}
	p->cmd = (p->cmd & ~PORT_CMD_CCS_MASK) | slot << PORT_CMD_CCS_SHIFT;
	/* Only a register H2D FIS of at least 5 dwords is a command; anything else the device would
	 * reject: abort with a task-file error. */
	if (fis[0] != FIS_TYPE_REG_H2D || (dw0 & CMDH_CFL_MASK) < 5) {
		ahci_port_finish(p, slot, ATA_STAT_DRDY | ATA_STAT_ERR, ATA_ERR_ABRT, NULL,
				 PORT_IS_UFS);
		return;
	}
	if (!(fis[1] & FIS_H2D_C)) {
		port_control_fis(p, slot, fis);
		return;
	}
	if (fis[2] == ATA_CMD_READ_FPDMA_QUEUED || fis[2] == ATA_CMD_WRITE_FPDMA_QUEUED)
		ahci_ncq_start(p, slot, fis, dw0 >> 16, ctba);
	else if (fis[2] == ATA_CMD_SEND_FPDMA_QUEUED)
		ahci_ncq_send_start(p, slot, fis, dw0 >> 16, ctba);
	else
		ahci_cmd_start(p, slot, fis, dw0 >> 16, ctba);
}

static bool port_fetch_one(struct ahci_port *p)
{
	if (!(p->cmd & PORT_CMD_ST) || p->error_stop || p->quiescing || p->x.active || !p->disk)
		return false;
	uint32_t pending = p->ci & ~p->issued;
	if (!pending)
		return false;
	unsigned slot = __builtin_ctz(pending);
	p->issued |= 1u << slot;
	port_exec(p, slot);
	return true;
}

void ahci_port_run(struct ahci_port *p)
{
	if (p->in_run) {
		p->run_again = true;
		return;
	}
	p->in_run = true;
	/* The NCQ commands of one PxCI write reach the host kernel in one submission. */
	struct block_aio_ctx *aio = p->disk ? p->disk->aio : NULL;
	if (aio)
		block_aio_plug(aio);
	/* Every pass either moves the ATA command on or takes a new slot (at most AHCI_SLOTS while
	 * nothing completes), so the loop ends. */
	do {
		p->run_again = false;
		while (ahci_cmd_step(p) || port_fetch_one(p))
			;
	} while (p->run_again);
	if (aio)
		block_aio_unplug(aio);
	p->in_run = false;
}

static void port_write_cmd(struct ahci_port *p, uint32_t val)
{
	uint32_t old = p->cmd;
	uint32_t cmd = (old & ~PORT_CMD_WRITABLE) | (val & PORT_CMD_WRITABLE) | PORT_CMD_SUD |
		       PORT_CMD_POD; /* no staggered spin-up, no cold presence: both read 1 */
	cmd = val & PORT_CMD_FRE ? cmd | PORT_CMD_FR : cmd & ~PORT_CMD_FR;
	if (val & PORT_CMD_CLO) /* command list override: clear BSY and DRQ, self-clearing */
		p->tfd &= ~(ATA_STAT_BSY | ATA_STAT_DRQ);
	p->cmd = cmd;
	if ((old & PORT_CMD_ST) && !(cmd & PORT_CMD_ST)) {
		/* Stop: outstanding commands are aborted; CR clears when none can complete. */
		ahci_port_quiesce(p);
		p->error_stop = false;
	} else if (!(old & PORT_CMD_ST) && (cmd & PORT_CMD_ST)) {
		p->cmd |= PORT_CMD_CR;
		p->error_stop = false;
	}
	if ((p->cmd & PORT_CMD_FR) && p->d2h_pending)
		ahci_fis_signature(p);
	ahci_port_run(p);
}

static bool det_holds_link_down(uint32_t det)
{
	return det == SCTL_DET_COMRESET || det == SCTL_DET_OFFLINE;
}

static void port_write_sctl(struct ahci_port *p, uint32_t val)
{
	uint32_t old = p->sctl & SCTL_DET_MASK, det = val & SCTL_DET_MASK;
	p->sctl = val & SCTL_WRITABLE;
	if (det_holds_link_down(det) && !det_holds_link_down(old)) {
		/* COMRESET asserted, or the PHY taken offline: the device goes away until DET
		 * returns to 0. */
		ahci_port_quiesce(p);
		p->ssts = det == SCTL_DET_OFFLINE && p->disk ? SSTS_DET_OFFLINE : 0;
		p->tfd = ATA_STAT_BSY;
		p->d2h_pending = false;
	} else if (det_holds_link_down(old) && det == 0) {
		port_link_up(p);
	}
}

uint32_t ahci_port_read(struct ahci_port *p, unsigned reg)
{
	switch (reg) {
	case PORT_CLB:
		return p->clb;
	case PORT_CLBU:
		return p->clbu;
	case PORT_FB:
		return p->fb;
	case PORT_FBU:
		return p->fbu;
	case PORT_IS:
		return p->is;
	case PORT_IE:
		return p->ie;
	case PORT_CMD:
		return p->cmd;
	case PORT_TFD:
		return p->tfd;
	case PORT_SIG:
		return p->sig;
	case PORT_SSTS:
		return p->ssts;
	case PORT_SCTL:
		return p->sctl;
	case PORT_SERR:
		return p->serr;
	case PORT_SACT:
		return p->sact;
	case PORT_CI:
		return p->ci;
	default: /* SNTF, FBS, DEVSLP, vendor: not implemented */
		return 0;
	}
}

void ahci_port_write(struct ahci_port *p, unsigned reg, uint32_t val)
{
	switch (reg) {
	case PORT_CLB: /* fixed while the engine runs (AHCI 1.3 3.3.1) */
		if (!(p->cmd & PORT_CMD_CR))
			p->clb = val & ~0x3FFu;
		return;
	case PORT_CLBU:
		if (!(p->cmd & PORT_CMD_CR))
			p->clbu = val;
		return;
	case PORT_FB:
		if (!(p->cmd & PORT_CMD_FR))
			p->fb = val & ~0xFFu;
		return;
	case PORT_FBU:
		if (!(p->cmd & PORT_CMD_FR))
			p->fbu = val;
		return;
	case PORT_IS:
		p->is &= ~val;
		ahci_irq_update(p->hba, false);
		return;
	case PORT_IE:
		p->ie = val & PORT_IS_VALID;
		ahci_irq_update(p->hba, true);
		return;
	case PORT_CMD:
		port_write_cmd(p, val);
		return;
	case PORT_SCTL:
		port_write_sctl(p, val);
		return;
	case PORT_SERR:
		p->serr &= ~val;
		return;
	case PORT_SACT: /* bits are only set by software, cleared by the HBA */
		if (p->cmd & PORT_CMD_ST)
			p->sact |= val;
		return;
	case PORT_CI:
		if (p->cmd & PORT_CMD_ST) {
			p->ci |= val;
			ahci_port_run(p);
		}
		return;
	default: /* read-only or not implemented */
		return;
	}
}
