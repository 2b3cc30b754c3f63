/* PIIX4 IDE (8086:7111), compatibility mode: prog-if 0x80, channels at 0x1F0-7/0x3F6 (IRQ 14) and
 * 0x170-7/0x376 (IRQ 15), bus-master DMA in BAR4 (ide_bmdma.c). Linux drives it with ata_piix,
 * which wants IDETIM bit 15 (config 0x41/0x43 bit 7) set before it looks at a channel.
 *
 * Options (from --disk FILE,bus=ide and --cdrom ISO[,bus=ide]): disks fill primary master,
 * primary slave, secondary slave; a CD-ROM takes the secondary master (like VirtualBox).
 *
 * Register file: writes to the command block reach both devices of a channel (one cable), the
 * selected one (DEVICE bit 4) answers reads and runs commands. An absent device reads 0 while its
 * partner exists; a channel with no device at all reads 0xFF (floating bus), as ata_piix expects.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/ide.h"
#include "devices/io_bus.h"
#include "memory/layout.h"
#include "lib/error.h"

static const struct {
	uint16_t cmd, ctl;
	unsigned irq;
} ide_ports[2] = {
    {0x1F0, 0x3F6, LAYOUT_IRQ_IDE_PRIMARY},
    {0x170, 0x376, LAYOUT_IRQ_IDE_SECONDARY},
};

static struct ata_device *ide_selected(struct ide_channel *ch)
{
	return &ch->dev[(ch->dev[0].tf.device >> 4) & 1];
}

/* The line follows the selected device's INTRQ unless nIEN masks it. ISA IRQs are edge-triggered:
 * the interrupt controller sees the rising edge. */
static void ide_update_irq(struct ide_channel *ch)
{
	struct ata_device *dev = ide_selected(ch);
	bool level = ch->intrq[dev - ch->dev] && !(ch->control & ATA_CTL_NIEN);
	if (level == ch->line)
		return;
	ch->line = level;
	const struct storage_env *env = &ch->ide->env;
	if (env->set_irq)
		env->set_irq(env->irq_opaque, ide_ports[ch->index].irq, level);
}

void ide_channel_irq(struct ide_channel *ch, struct ata_device *dev)
{
	ch->intrq[dev - ch->dev] = true;
	ch->bm.status |= BM_STATUS_INTR; /* what ata_bmdma_interrupt checks first */
	ide_update_irq(ch);
}

static bool ide_channel_empty(const struct ide_channel *ch)
{
	return !ata_device_present(&ch->dev[0]) && !ata_device_present(&ch->dev[1]);
}

static void ide_soft_reset(struct ide_channel *ch)
{
	for (int i = 0; i < 2; i++) {
		uint8_t device = ch->dev[i].tf.device;
		ata_device_reset(&ch->dev[i]);
		ch->dev[i].tf.device = device & ~0x10; /* reset selects the master */
		ch->intrq[i] = false;
	}
	ide_bmdma_reset(ch);
	ide_update_irq(ch);
}

static void ide_control_write(struct ide_channel *ch, uint8_t val)
{
	bool srst_was = ch->control & ATA_CTL_SRST;
	ch->control = val;
	for (int i = 0; i < 2; i++)
		ch->dev[i].tf.control = val;
	/* The reset happens on the rising edge; while SRST stays set the devices read BSY. */
	if ((val & ATA_CTL_SRST) && !srst_was)
		ide_soft_reset(ch);
	ide_update_irq(ch);
}

static uint8_t ide_status(struct ide_channel *ch, struct ata_device *dev)
{
	if (ch->control & ATA_CTL_SRST)
		return ata_device_present(dev) ? ATA_STAT_BSY : 0;
	return ata_device_present(dev) ? dev->tf.status : 0;
}

static void ide_data_io(struct ide_channel *ch, uint8_t *data, unsigned len, bool is_write)
{
	struct ata_device *dev = ide_selected(ch);
	size_t done;
	if (is_write) {
		ata_pio_write(dev, data, len);
		return;
	}
	done = ata_pio_read(dev, data, len);
	if (done < len)
		memset(data + done, 0xFF, len - done); /* no data phase: the bus floats */
}

void ide_channel_io(struct ide_channel *ch, unsigned offset, uint8_t *data, unsigned len,
		    bool is_write)
{
	pthread_mutex_lock(&ch->lock);
	if (offset == ATA_REG_DATA) {
		if (len == 2 || len == 4)
			ide_data_io(ch, data, len, is_write);
		else if (!is_write)
			memset(data, 0xFF, len); /* the data port is 16 (or 32) bits wide */
		goto out;
	}
	if (is_write) {
		uint8_t v = data[0];
		if (offset == 8) {
			ide_control_write(ch, v);
		} else if (offset == ATA_REG_COMMAND) {
			struct ata_device *dev = ide_selected(ch);
			ch->intrq[dev - ch->dev] = false;
			ide_update_irq(ch);
			if (!(ch->control & ATA_CTL_SRST))
				ata_reg_write(dev, ATA_REG_COMMAND, v);
		} else {
			for (int i = 0; i < 2; i++)
				ata_reg_write(&ch->dev[i], (enum ata_reg)offset, v);
			if (offset == ATA_REG_DEVICE)
				ide_update_irq(ch); /* another device now drives the line */
		}
		goto out;
	}
	memset(data, 0, len);
	struct ata_device *dev = ide_selected(ch);
	if (ide_channel_empty(ch)) {
		memset(data, 0xFF, len);
	} else if (offset == 8) {
		data[0] = ide_status(ch, dev); /* alternate status: no side effect */
	} else if (offset == ATA_REG_COMMAND) {
		data[0] = ide_status(ch, dev);
		ch->intrq[dev - ch->dev] = false; /* reading STATUS acknowledges INTRQ */
		ide_update_irq(ch);
	} else if (ata_device_present(dev)) {
		data[0] = ata_reg_read(dev, (enum ata_reg)offset);
	} else if (offset == ATA_REG_DEVICE) {
		data[0] = dev->tf.device; /* the register itself lives on the cable */
	}
out:
	pthread_mutex_unlock(&ch->lock);
}

static void ide_cmd_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	ide_channel_io(opaque, (unsigned)offset, data, len, is_write);
}

static void ide_ctl_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	(void)offset;
	ide_channel_io(opaque, 8, data, len, is_write);
}

static void ide_bar_access(struct pci_device *pci, unsigned bar, uint64_t offset, uint8_t *data,
			   unsigned len, bool is_write)
{
	struct ide_piix *ide = pci->opaque;
	if (bar == 4)
		ide_bmdma_io(ide, offset, data, len, is_write);
	else if (!is_write)
		memset(data, 0xFF, len);
}

static const struct pci_device_ops ide_pci_ops = {
    .bar_access = ide_bar_access,
};

int ide_assign_positions(const struct disk_config *cfgs, unsigned n, int pos[4])
{
	/* Positions: 0 primary master, 1 primary slave, 2 secondary master, 3 secondary slave. */
	static const int disk_order[] = {0, 1, 3, 2};
	static const int cdrom_order[] = {2, 3, 1, 0};
	for (int i = 0; i < 4; i++)
		pos[i] = -1;
	/* CD-ROMs first, so that they get the secondary master whatever the option order. */
	for (int pass = 0; pass < 2; pass++) {
		for (unsigned i = 0; i < n; i++) {
			bool cd = cfgs[i].media == DISK_MEDIA_CDROM;
			if (cfgs[i].bus != DISK_BUS_IDE || cd != (pass == 0))
				continue;
			const int *order = cd ? cdrom_order : disk_order;
			int k = 0;
			while (k < 4 && pos[order[k]] >= 0)
				k++;
			if (k == 4)
				return error_set(
				    -ENOSPC,
				    "%s: no free IDE position (the IDE controller takes 4 "
				    "drives; use bus=sata)",
				    cfgs[i].path ? cfgs[i].path : "--cdrom");
			pos[order[k]] = (int)i;
		}
	}
	return 0;
}

static void ide_piix_init_channel(struct ide_piix *ide, unsigned i)
{
	struct ide_channel *ch = &ide->ch[i];
	ch->ide = ide;
	ch->index = i;
	pthread_mutex_init(&ch->lock, NULL);
	for (int d = 0; d < 2; d++) {
		ch->dev[d].ops = &ide_ata_ops;
		ch->dev[d].opaque = ch;
		ch->dev[d].lock = &ch->lock;
	}
}

int ide_piix_create(const struct storage_env *env, struct disk *pos[4], struct ide_piix **out)
{
	struct ide_piix *ide = calloc(1, sizeof(*ide));
	int ret = 0;
	*out = NULL;
	if (!ide)
		return -ENOMEM;
	ide->env = *env;
	for (unsigned i = 0; i < 2; i++) {
		ide_piix_init_channel(ide, i);
		for (int d = 0; d < 2 && !ret; d++)
			ret = ata_device_init(&ide->ch[i].dev[d], pos[2 * i + d]);
	}
	if (ret < 0)
		goto fail;

	struct pci_device *pci = &ide->pci;
	pci->vendor_id = 0x8086;
	pci->device_id = 0x7111;
	pci->class_code = 0x010180; /* IDE, compatibility mode both channels, bus master */
	pci->revision = 0x01;
	pci->bars[4] = (struct pci_bar){.type = PCI_BAR_IO, .size = 16};
	pci->ops = &ide_pci_ops;
	pci->opaque = ide;
	/* IDETIM primary/secondary with IDE decode enable (bit 15); SIDETIM, UDMA control and
	 * timing are the guest's to program and mean nothing to an image. */
	pci->cfg[0x41] = 0x80;
	pci->cfg[0x43] = 0x80;
	for (unsigned off = 0x40; off <= 0x4B; off++)
		pci->wmask[off] = 0xFF;
	if (env->pci && (ret = pci_device_register(env->pci, pci, -1)) < 0)
		goto fail;
	for (unsigned i = 0; i < 4 && env->pci; i++)
		if (pos[i])
			snprintf(pos[i]->fw_path, sizeof(pos[i]->fw_path),
				 "/pci@i0cf8/ide@%x/drive@%x/disk@%x", pci->slot, i / 2, i % 2);
	for (unsigned i = 0; i < 2 && env->pio; i++) {
		ret = io_bus_register(env->pio, ide_ports[i].cmd, 8, ide_cmd_io, &ide->ch[i]);
		if (ret == 0)
			ret =
			    io_bus_register(env->pio, ide_ports[i].ctl, 1, ide_ctl_io, &ide->ch[i]);
		if (ret < 0)
			goto fail;
	}
	*out = ide;
	return 0;
fail:
	ide_piix_destroy(ide);
	return ret;
}

void ide_piix_destroy(struct ide_piix *ide)
{
	if (!ide)
		return;
	for (unsigned i = 0; i < 2; i++) {
		if (ide->env.pio) {
			io_bus_unregister(ide->env.pio, ide_ports[i].cmd, &ide->ch[i]);
			io_bus_unregister(ide->env.pio, ide_ports[i].ctl, &ide->ch[i]);
		}
		for (int d = 0; d < 2; d++)
			ata_device_cleanup(&ide->ch[i].dev[d]);
		pthread_mutex_destroy(&ide->ch[i].lock);
	}
	pci_device_unregister(&ide->pci);
	free(ide);
}

/* ---- The storage controller for bus=ide ---- */

static int ide_check(const struct disk_config *cfgs, unsigned n)
{
	int pos[4];
	return ide_assign_positions(cfgs, n, pos);
}

static int ide_create(const struct storage_env *env, struct disk **disks, unsigned n, void **state)
{
	struct disk_config cfgs[4];
	struct disk *pos[4] = {NULL};
	int idx[4];
	if (n > 4)
		return error_set(-ENOSPC, "IDE: %u drives, at most 4", n);
	for (unsigned i = 0; i < n; i++)
		cfgs[i] = (struct disk_config){
		    .path = disks[i]->path, .bus = DISK_BUS_IDE, .media = disks[i]->media};
	int ret = ide_assign_positions(cfgs, n, idx);
	if (ret < 0)
		return ret;
	for (int i = 0; i < 4; i++)
		pos[i] = idx[i] >= 0 ? disks[idx[i]] : NULL;
	struct ide_piix *ide;
	ret = ide_piix_create(env, pos, &ide);
	if (ret < 0)
		return error_set(ret, "IDE controller: %s", strerror(-ret));
	*state = ide;
	return 0;
}

static void ide_destroy(void *state)
{
	ide_piix_destroy(state);
}

static int ide_change_medium(void *state, struct disk *d, struct disk_medium *m, bool force)
{
	struct ide_piix *ide = state;
	for (unsigned i = 0; i < 2; i++) {
		struct ide_channel *ch = &ide->ch[i];
		for (int k = 0; k < 2; k++) {
			struct ata_device *dev = &ch->dev[k];
			if (dev->disk != d)
				continue;
			int ret = 0;
			pthread_mutex_lock(&ch->lock);
			if (dev->phase == ATA_PHASE_BUSY || dev->phase == ATA_PHASE_DMA) {
				ret = error_set(-EBUSY, "the drive is busy: try again");
			} else if (dev->lun.locked && !force) {
				ret = error_set(
				    -EPERM, "the guest locked the tray (medium in use): eject it "
					    "in the guest, or force");
			} else {
				disk_medium_swap(d, m);
				scsi_lun_medium_changed(&dev->lun);
			}
			pthread_mutex_unlock(&ch->lock);
			return ret;
		}
	}
	return error_set(-ENODEV, "the drive is not on the IDE controller");
}

/* Machine reset, with nothing in flight (storage quiesced): both channels back to power-on.  The
 * PCI configuration (IDE decode enables) is the bus's to restore. */
static void ide_reset(void *state)
{
	struct ide_piix *ide = state;
	for (unsigned i = 0; i < 2; i++) {
		struct ide_channel *ch = &ide->ch[i];
		pthread_mutex_lock(&ch->lock);
		for (int k = 0; k < 2; k++)
			ata_device_power_on(&ch->dev[k]);
		ch->control = 0;
		ide_soft_reset(ch);
		pthread_mutex_unlock(&ch->lock);
	}
}

static const struct storage_controller ide_controller = {
    .bus = DISK_BUS_IDE,
    .name = "IDE (PIIX4)",
    .check = ide_check,
    .create = ide_create,
    .destroy = ide_destroy,
    .reset = ide_reset,
    .change_medium = ide_change_medium,
};
STORAGE_CONTROLLER(ide_controller);
