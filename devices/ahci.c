/* AHCI controller: the PCI function, the generic host registers (CAP, GHC, IS, PI, VS, CAP2),
 * interrupt aggregation (IS.IPS -> MSI or INTx) and HBA reset.  Ports live in ahci_port.c, the
 * I/O-space index/data pair (BAR4) in ahci_idp.c.
 *
 * CAP advertises: 64-bit addressing, NCQ, activity LED, command-list override, gen3 speed,
 * AHCI-only mode (so GHC.AE reads 1), 32 command slots; no staggered spin-up, no port multiplier,
 * no link power management, no command completion coalescing, no enclosure management.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/ahci_internal.h"
#include "devices/disk.h"
#include "lib/endian.h"

#define AHCI_VENDOR 0x8086
#define AHCI_DEVICE 0x2922 /* ICH9 6-port SATA controller [AHCI mode] */
#define AHCI_CLASS 0x010601

static uint32_t ahci_cap(const struct ahci *hba)
{
	return AHCI_CAP_S64A | AHCI_CAP_SNCQ | AHCI_CAP_SAL | AHCI_CAP_SCLO | AHCI_CAP_ISS_GEN3 |
	       AHCI_CAP_SAM | (AHCI_SLOTS - 1) << AHCI_CAP_NCS_SHIFT | (hba->nports - 1);
}

static uint32_t ahci_pi(const struct ahci *hba)
{
	return (uint32_t)((1ULL << hba->nports) - 1);
}

static bool msi_enabled(const struct pci_device *dev)
{
	return dev->msi_cap && (__atomic_load_n(&dev->cfg[dev->msi_cap + 2], __ATOMIC_RELAXED) & 1);
}

void ahci_irq_update(struct ahci *hba, bool event)
{
	for (unsigned i = 0; i < hba->nports; i++)
		if (hba->ports[i].is & hba->ports[i].ie)
			hba->is |= 1u << i;
	bool level = (hba->ghc & AHCI_GHC_IE) && hba->is;
	bool was = hba->irq_level;
	hba->irq_level = level;
	if (msi_enabled(&hba->pci)) {
		if (hba->pci.intx_level)
			pci_irq_deassert(&hba->pci);
		/* MSI is an edge: one message per new cause, or when the level rises. */
		if (level && (event || !was) && pci_msi_notify(&hba->pci, 0) == 0)
			return;
		if (!level || !msi_enabled(&hba->pci))
			return;
	}
	if (level)
		pci_irq_assert(&hba->pci);
	else if (hba->pci.intx_level)
		pci_irq_deassert(&hba->pci);
}

static void ahci_hba_reset(struct ahci *hba)
{
	for (unsigned i = 0; i < hba->nports; i++)
		ahci_port_hba_reset(&hba->ports[i]);
	hba->ghc = AHCI_GHC_AE;
	hba->is = 0;
	ahci_irq_update(hba, false);
}

void ahci_power_on(struct ahci *hba)
{
	pthread_mutex_lock(&hba->lock);
	/* The HBA reset waits for every request in flight (none after a storage quiesce). */
	ahci_hba_reset(hba);
	for (unsigned i = 0; i < hba->nports; i++) {
		struct ahci_port *p = &hba->ports[i];
		p->clb = p->clbu = p->fb = p->fbu = 0; /* kept by HR, not by power-on */
		if (p->disk) {
			ata_device_power_on(&p->ata);
			ahci_port_hba_reset(p); /* the signature FIS again, with the new settings */
		}
	}
	hba->idp_index = 0;
	pthread_mutex_unlock(&hba->lock);
}

static uint32_t host_read(struct ahci *hba, unsigned reg)
{
	switch (reg) {
	case AHCI_CAP:
		return ahci_cap(hba);
	case AHCI_GHC:
		return hba->ghc;
	case AHCI_IS:
		return hba->is;
	case AHCI_PI:
		return ahci_pi(hba);
	case AHCI_VS:
		return AHCI_VS_13;
	default: /* CCC, EM, CAP2 (no extended capabilities), BOHC: not implemented, read 0 */
		return 0;
	}
}

static void host_write(struct ahci *hba, unsigned reg, uint32_t val)
{
	switch (reg) {
	case AHCI_GHC:
		if (val & AHCI_GHC_HR) {
			ahci_hba_reset(hba); /* HR reads back 0: the reset is done when we return */
			return;
		}
		hba->ghc = AHCI_GHC_AE | (val & AHCI_GHC_IE);
		ahci_irq_update(hba, true);
		return;
	case AHCI_IS:
		hba->is &= ~val;
		/* A port still pending sets its bit again: the driver gets another message. */
		ahci_irq_update(hba, true);
		return;
	default: /* read-only or unimplemented */
		return;
	}
}

static uint32_t abar_read(struct ahci *hba, uint64_t off)
{
	if (off < AHCI_PORT_BASE)
		return host_read(hba, off);
	uint64_t n = (off - AHCI_PORT_BASE) / AHCI_PORT_SIZE;
	if (n >= hba->nports)
		return 0;
	return ahci_port_read(&hba->ports[n], (off - AHCI_PORT_BASE) % AHCI_PORT_SIZE);
}

static void abar_write(struct ahci *hba, uint64_t off, uint32_t val)
{
	if (off < AHCI_PORT_BASE) {
		host_write(hba, off, val);
		return;
	}
	uint64_t n = (off - AHCI_PORT_BASE) / AHCI_PORT_SIZE;
	if (n < hba->nports)
		ahci_port_write(&hba->ports[n], (off - AHCI_PORT_BASE) % AHCI_PORT_SIZE, val);
}

/* Registers are dwords: reads of any size return the covered bytes, writes narrower than a dword
 * are ignored (AHCI 1.3 3: software must use dword accesses), 8-byte accesses are two dwords. */
void ahci_abar_access(struct ahci *hba, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	if (offset >= AHCI_ABAR_SIZE || len > 8 || len > AHCI_ABAR_SIZE - offset) {
		if (!is_write)
			memset(data, 0xFF, len);
		return;
	}
	if (is_write) {
		if (len >= 4 && !(offset & 3))
			for (unsigned i = 0; i < len; i += 4)
				abar_write(hba, offset + i, get_le32(data + i));
	} else {
		uint64_t base = offset & ~3ULL;
		uint8_t buf[12];
		for (unsigned i = 0; i < sizeof(buf); i += 4)
			put_le32(buf + i, base + i < AHCI_ABAR_SIZE ? abar_read(hba, base + i) : 0);
		memcpy(data, buf + (offset - base), len);
	}
}

/* Under the lock: the disk queue of the port whose command issue or status register `offset` is,
 * if that port is polled (PxIE 0: its driver takes no interrupts, as a BIOS) and requests of its
 * disk are in flight; NULL otherwise. */
static struct block_aio_ctx *polled_queue(struct ahci *hba, uint64_t offset)
{
	if (offset < AHCI_PORT_BASE)
		return NULL;
	uint64_t n = (offset - AHCI_PORT_BASE) / AHCI_PORT_SIZE;
	unsigned reg = (unsigned)((offset - AHCI_PORT_BASE) % AHCI_PORT_SIZE);
	if (n >= hba->nports || (reg != PORT_IS && reg != PORT_CI && reg != PORT_TFD))
		return NULL;
	const struct ahci_port *p = &hba->ports[n];
	if (p->ie || !p->disk || p->ata.atapi || !p->disk->aio)
		return NULL;
	return block_aio_pending(p->disk->aio) ? p->disk->aio : NULL;
}

static void ahci_bar_access(struct pci_device *dev, unsigned bar, uint64_t offset, uint8_t *data,
			    unsigned len, bool is_write)
{
	struct ahci *hba = dev->opaque;
	struct block_aio_ctx *q = NULL;
	if (bar != AHCI_BAR && bar != AHCI_IDP_BAR) {
		if (!is_write)
			memset(data, 0xFF, len);
		return;
	}
	/* A BIOS issues one command and polls PxIS with interrupts off (SeaBIOS), every poll an
	 * exit: the requests that finished are completed here, on the vCPU, before the status is
	 * read and right after the command is issued (a read from the page cache ends inside its
	 * submission), instead of at the event loop's next turn.  block_aio_complete_polled runs
	 * them only when no other thread does (else the loop completes them, as with interrupts);
	 * the callbacks take the lock themselves.  ATAPI is left out: a medium change swaps a CD's
	 * queue, and a disk's queue changes only with the VM paused (snapshots). */
	pthread_mutex_lock(&hba->lock);
	if (bar == AHCI_BAR && !is_write && (q = polled_queue(hba, offset))) {
		pthread_mutex_unlock(&hba->lock);
		block_aio_complete_polled(q);
		pthread_mutex_lock(&hba->lock);
	}
	if (bar == AHCI_BAR)
		ahci_abar_access(hba, offset, data, len, is_write);
	else
		ahci_idp_access(hba, offset, data, len, is_write);
	q = bar == AHCI_BAR && is_write ? polled_queue(hba, offset) : NULL;
	pthread_mutex_unlock(&hba->lock);
	if (q)
		block_aio_complete_polled(q);
}

static const struct pci_device_ops ahci_pci_ops = {
    .bar_access = ahci_bar_access,
};

int ahci_create(struct pci_bus *bus, int slot, const struct guest_memory *mem, unsigned nports,
		struct ahci **out)
{
	if (!bus || !mem || nports < 1 || nports > AHCI_MAX_PORTS)
		return -EINVAL;
	struct ahci *hba = calloc(1, sizeof(*hba));
	if (!hba)
		return -ENOMEM;
	hba->mem = mem;
	hba->nports = nports;
	pthread_mutex_init(&hba->lock, NULL);
	for (unsigned i = 0; i < nports; i++)
		ahci_port_init(hba, &hba->ports[i], i);
	hba->ghc = AHCI_GHC_AE;

	struct pci_device *d = &hba->pci;
	d->vendor_id = AHCI_VENDOR;
	d->device_id = AHCI_DEVICE;
	d->subsystem_vendor_id = 0x1AF4; /* as QEMU's ich9-ahci: Red Hat, QEMU */
	d->subsystem_id = 0x1100;
	d->class_code = AHCI_CLASS;
	d->revision = 2;
	d->irq_pin = 1;
	d->bars[AHCI_BAR].type = PCI_BAR_MEM32;
	d->bars[AHCI_BAR].size = AHCI_ABAR_SIZE;
	d->bars[AHCI_IDP_BAR].type = PCI_BAR_IO;
	d->bars[AHCI_IDP_BAR].size = AHCI_IDP_SIZE;
	d->ops = &ahci_pci_ops;
	d->opaque = hba;
	int r = ahci_idp_init(d);
	if (r == 0)
		r = pci_msi_init(d, 0);
	if (r == 0)
		r = pci_device_register(bus, d, slot);
	if (r < 0) {
		ahci_destroy(hba);
		return r;
	}
	*out = hba;
	return 0;
}

int ahci_attach(struct ahci *hba, unsigned port, struct disk *disk)
{
	if (!hba || port >= hba->nports || !disk)
		return -EINVAL;
	pthread_mutex_lock(&hba->lock);
	struct ahci_port *p = &hba->ports[port];
	int r = p->disk ? -EBUSY : ahci_cmd_attach(p, disk);
	if (r == 0) {
		ahci_port_hba_reset(p); /* the link comes up with the drive's signature */
		/* SeaBIOS names an AHCI drive by its port as the ATA channel, unit 0. */
		snprintf(disk->fw_path, sizeof(disk->fw_path), "/pci@i0cf8/sata@%x/drive@%x/disk@0",
			 hba->pci.slot, port);
	}
	pthread_mutex_unlock(&hba->lock);
	return r;
}

void ahci_destroy(struct ahci *hba)
{
	if (!hba)
		return;
	pthread_mutex_lock(&hba->lock);
	for (unsigned i = 0; i < hba->nports; i++)
		ahci_port_quiesce(&hba->ports[i]);
	pthread_mutex_unlock(&hba->lock);
	if (hba->pci.bus)
		pci_device_unregister(&hba->pci);
	for (unsigned i = 0; i < hba->nports; i++) {
		struct ahci_port *p = &hba->ports[i];
		if (p->disk)
			ata_device_cleanup(&p->ata);
		for (unsigned s = 0; s < AHCI_SLOTS; s++) {
			free(p->slots[s].iov);
			ahci_ncq_clear(&p->slots[s]);
		}
		pthread_cond_destroy(&p->drained);
	}
	pthread_mutex_destroy(&hba->lock);
	free(hba);
}
