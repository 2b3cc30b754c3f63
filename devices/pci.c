/* PCI bus 0: config space semantics, mechanism 1, BAR allocation and mapping, INTx (see pci.h).
 * MSI and MSI-X are in pci_msi.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/device.h"
#include "devices/pci.h"
#include "devices/pci_internal.h"
#include "lib/endian.h"
#include "lib/log.h"
#include "lib/error.h"

#define PCI_CONFIG_ENABLE 0x80000000u
#define RESET_SYS 0x02
#define RESET_CPU 0x04
#define RESET_FULL 0x08

uint32_t pci_cfg_get(const struct pci_device *dev, unsigned off, unsigned len)
{
	uint32_t v = 0;
	for (unsigned i = 0; i < len; i++)
		v |= (uint32_t)dev->cfg[off + i] << (8 * i);
	return v;
}

static uint16_t command(const struct pci_device *dev)
{
	return pci_cfg_get(dev, PCI_COMMAND, 2);
}

/* --- BARs --------------------------------------------------------------------------------- */

static uint64_t bar_address(const struct pci_device *dev, unsigned i)
{
	const struct pci_bar *b = &dev->bars[i];
	uint32_t lo = pci_cfg_get(dev, PCI_BAR0 + 4 * i, 4);
	if (b->type == PCI_BAR_IO)
		return lo & ~3u;
	uint64_t a = lo & ~0xFu;
	if (b->type == PCI_BAR_MEM64)
		a |= (uint64_t)pci_cfg_get(dev, PCI_BAR0 + 4 * (i + 1), 4) << 32;
	return a;
}

static void bar_handler(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct pci_bar_ref *ref = opaque;
	struct pci_device *dev = ref->dev;
	if (pci_msix_bar_access(dev, ref->bar, offset, data, len, is_write))
		return;
	if (dev->ops && dev->ops->bar_access)
		dev->ops->bar_access(dev, ref->bar, offset, data, len, is_write);
	else if (!is_write)
		memset(data, 0xFF, len);
}

static void bar_mapped(struct pci_device *dev, unsigned i, bool mapped)
{
	if (dev->ops && dev->ops->bar_mapped)
		dev->ops->bar_mapped(dev, i, dev->bars[i].mapped_at, mapped);
}

/* Map or unmap each BAR to follow its register and the COMMAND decode bits. */
static void bars_update(struct pci_device *dev)
{
	struct pci_bus *bus = dev->bus;
	uint16_t cmd = command(dev);
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		struct pci_bar *b = &dev->bars[i];
		if (b->type == PCI_BAR_NONE)
			continue;
		bool io = b->type == PCI_BAR_IO;
		struct io_bus *target = io ? bus->pio : bus->mmio;
		uint64_t addr = bar_address(dev, i);
		uint64_t limit = io ? 0x10000 : b->type == PCI_BAR_MEM32 ? 1ULL << 32 : 1ULL << 52;
		bool want = (cmd & (io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY)) && addr != 0 &&
			    addr < limit && b->size <= limit - addr;
		if (b->mapped && (!want || addr != b->mapped_at)) {
			io_bus_unregister(target, b->mapped_at, &dev->bar_refs[i]);
			b->mapped = false;
			bar_mapped(dev, i, false);
		}
		if (want && !b->mapped) {
			if (io_bus_register(target, addr, b->size, bar_handler,
					    &dev->bar_refs[i]) == 0) {
				b->mapped = true;
				b->mapped_at = addr;
				bar_mapped(dev, i, true);
			} else {
				log_error(NULL,
					  "pci 00:%02x.0 BAR%u at 0x%llx overlaps another region: "
					  "left unmapped",
					  dev->slot, i, (unsigned long long)addr);
			}
		}
		if (b->type == PCI_BAR_MEM64)
			i++;
	}
}

static void bars_unmap(struct pci_device *dev)
{
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		struct pci_bar *b = &dev->bars[i];
		if (b->mapped) {
			io_bus_unregister(b->type == PCI_BAR_IO ? dev->bus->pio : dev->bus->mmio,
					  b->mapped_at, &dev->bar_refs[i]);
			b->mapped = false;
			bar_mapped(dev, i, false);
		}
	}
}

static int bar_allocate(struct pci_bus *bus, struct pci_bar *b, uint64_t *addr)
{
	uint64_t *next, end;
	if (b->type == PCI_BAR_IO) {
		next = &bus->next_io;
		end = LAYOUT_PORT_PCI_IO_END;
	} else if (b->type == PCI_BAR_MEM64 && b->size > 256 * MiB) {
		next = &bus->next_mmio64;
		end = LAYOUT_PCI_MMIO64_START + LAYOUT_PCI_MMIO64_SIZE;
	} else {
		next = &bus->next_mmio32;
		end = LAYOUT_PCI_MMIO32_END;
	}
	uint64_t a = (*next + b->size - 1) & ~(b->size - 1);
	if (a < *next || a > end || b->size > end - a)
		return -ENOSPC;
	*addr = a;
	*next = a + b->size;
	return 0;
}

/* Check the device's BAR declarations, set masks and give each BAR an address. */
static int bars_init(struct pci_bus *bus, struct pci_device *dev)
{
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		struct pci_bar *b = &dev->bars[i];
		dev->bar_refs[i] = (struct pci_bar_ref){.dev = dev, .bar = i};
		if (b->type == PCI_BAR_NONE)
			continue;
		uint64_t min = b->type == PCI_BAR_IO ? 4 : 16;
		uint64_t max = b->type == PCI_BAR_IO	  ? 256
			       : b->type == PCI_BAR_MEM32 ? 1ULL << 31
							  : 1ULL << 40;
		if (b->size < min || b->size > max || (b->size & (b->size - 1)))
			return -EINVAL;
		if (b->type == PCI_BAR_MEM64 && (i == PCI_NUM_BARS - 1 || dev->bars[i + 1].type))
			return -EINVAL;
		uint64_t addr;
		int r = bar_allocate(bus, b, &addr);
		if (r < 0)
			return r;
		unsigned off = PCI_BAR0 + 4 * i;
		uint64_t mask = ~(b->size - 1);
		if (b->type == PCI_BAR_IO) {
			put_le32(dev->cfg + off, (uint32_t)addr | 1);
			put_le32(dev->wmask + off, (uint32_t)mask & ~3u);
			continue;
		}
		uint32_t flags = (b->type == PCI_BAR_MEM64 ? 0x4 : 0) | (b->prefetchable ? 0x8 : 0);
		put_le32(dev->cfg + off, (uint32_t)addr | flags);
		put_le32(dev->wmask + off, (uint32_t)mask & ~0xFu);
		if (b->type == PCI_BAR_MEM64) {
			put_le32(dev->cfg + off + 4, addr >> 32);
			put_le32(dev->wmask + off + 4, mask >> 32);
			i++;
			dev->bar_refs[i] = (struct pci_bar_ref){.dev = dev, .bar = i};
		}
	}
	return 0;
}

/* --- INTx --------------------------------------------------------------------------------- */

static bool intx_effective(const struct pci_device *dev)
{
	return dev->intx_level && dev->irq_pin && !(command(dev) & PCI_COMMAND_INTX_DISABLE);
}

static void gsi_adjust(struct pci_bus *bus, struct pci_device *dev, bool before, bool after)
{
	if (before == after)
		return;
	unsigned gsi = layout_pci_intx_gsi(dev->slot, dev->irq_pin - 1);
	if (after && bus->gsi_count[gsi]++ == 0 && bus->ops.set_irq)
		bus->ops.set_irq(bus->ops.opaque, gsi, true);
	if (!after && --bus->gsi_count[gsi] == 0 && bus->ops.set_irq)
		bus->ops.set_irq(bus->ops.opaque, gsi, false);
}

static void intx_set(struct pci_device *dev, bool level)
{
	struct pci_bus *bus = dev->bus;
	if (!bus)
		return;
	pthread_mutex_lock(&bus->lock);
	bool before = intx_effective(dev);
	dev->intx_level = level;
	if (level)
		dev->cfg[PCI_STATUS] |= PCI_STATUS_INTERRUPT;
	else
		dev->cfg[PCI_STATUS] &= ~PCI_STATUS_INTERRUPT;
	gsi_adjust(bus, dev, before, intx_effective(dev));
	pthread_mutex_unlock(&bus->lock);
}

void pci_irq_assert(struct pci_device *dev)
{
	intx_set(dev, true);
}

void pci_irq_deassert(struct pci_device *dev)
{
	intx_set(dev, false);
}

/* --- config space ------------------------------------------------------------------------- */

static void header_init(struct pci_device *dev)
{
	memset(dev->cfg, 0, sizeof(dev->cfg));
	memset(dev->wmask, 0, sizeof(dev->wmask));
	memset(dev->w1cmask, 0, sizeof(dev->w1cmask));
	put_le16(dev->cfg + PCI_VENDOR_ID, dev->vendor_id);
	put_le16(dev->cfg + PCI_DEVICE_ID, dev->device_id);
	dev->cfg[PCI_REVISION] = dev->revision;
	put_le16(dev->cfg + PCI_CLASS_PROG, dev->class_code & 0xFF);
	put_le16(dev->cfg + PCI_CLASS_PROG + 1, dev->class_code >> 8);
	put_le16(dev->cfg + PCI_SUBSYSTEM_VENDOR, dev->subsystem_vendor_id);
	put_le16(dev->cfg + PCI_SUBSYSTEM_ID, dev->subsystem_id);
	put_le16(dev->wmask + PCI_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEMORY |
					       PCI_COMMAND_MASTER | 0x0040 | 0x0100 |
					       PCI_COMMAND_INTX_DISABLE);
	put_le16(dev->w1cmask + PCI_STATUS, 0xF900); /* error bits: write 1 to clear */
	dev->wmask[0x0C] = 0xFF;		     /* cache line size */
	dev->wmask[0x0D] = 0xFF;		     /* latency timer */
	dev->wmask[PCI_INTERRUPT_LINE] = 0xFF;
	dev->cfg[PCI_INTERRUPT_PIN] = dev->irq_pin;
	if (dev->irq_pin)
		dev->cfg[PCI_INTERRUPT_LINE] = layout_pci_intx_gsi(dev->slot, dev->irq_pin - 1);
	dev->cap_end = 0x40;
}

int pci_add_capability(struct pci_device *dev, uint8_t id, unsigned len)
{
	if (dev->cap_end < 0x40)
		dev->cap_end = 0x40;
	if (len < 2 || len > PCI_CONFIG_SIZE || dev->cap_end + len > PCI_CONFIG_SIZE)
		return -ENOSPC;
	unsigned off = dev->cap_end;
	dev->cfg[off] = id;
	dev->cfg[off + 1] = dev->cfg[PCI_CAP_PTR]; /* newest first */
	dev->cfg[PCI_CAP_PTR] = off;
	dev->cfg[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
	dev->cap_end = (off + len + 3) & ~3u;
	return off;
}

/* The function at devfn, NULL for none (called with the lock held). */
static struct pci_device *function_at(struct pci_bus *bus, unsigned devfn)
{
	unsigned slot = devfn >> 3, fn = devfn & 7;
	if (slot >= PCI_SLOTS)
		return NULL;
	return fn ? bus->functions[slot][fn - 1] : bus->slots[slot];
}

uint32_t pci_config_read(struct pci_bus *bus, unsigned devfn, unsigned offset, unsigned len)
{
	if ((len != 1 && len != 2 && len != 4) || offset % len || offset + len > PCI_CONFIG_SIZE ||
	    devfn >= 256)
		return 0xFFFFFFFFu; /* nothing past the header */
	pthread_mutex_lock(&bus->lock);
	struct pci_device *dev = function_at(bus, devfn);
	uint32_t v = 0xFFFFFFFFu >> (32 - 8 * len);
	if (dev) {
		if (dev->ops && dev->ops->config_read)
			dev->ops->config_read(dev, offset, len);
		v = pci_cfg_get(dev, offset, len);
	}
	pthread_mutex_unlock(&bus->lock);
	return v;
}

void pci_config_write(struct pci_bus *bus, unsigned devfn, unsigned offset, unsigned len,
		      uint32_t value)
{
	if ((len != 1 && len != 2 && len != 4) || offset % len || offset + len > PCI_CONFIG_SIZE ||
	    devfn >= 256)
		return;
	pthread_mutex_lock(&bus->lock);
	struct pci_device *dev = function_at(bus, devfn);
	if (!dev)
		goto out;
	bool intx_before = intx_effective(dev);
	for (unsigned i = 0; i < len; i++) {
		unsigned b = offset + i;
		uint8_t v = value >> (8 * i);
		dev->cfg[b] =
		    ((dev->cfg[b] & ~dev->wmask[b]) | (v & dev->wmask[b])) & ~(v & dev->w1cmask[b]);
	}
	bool touches = offset < PCI_BAR0 + 4 * PCI_NUM_BARS && offset + len > PCI_COMMAND;
	if (touches)
		bars_update(dev);
	gsi_adjust(bus, dev, intx_before, intx_effective(dev));
	pci_msi_config_written(dev, offset, len);
	if (dev->ops && dev->ops->config_write)
		dev->ops->config_write(dev, offset, len, value);
out:
	pthread_mutex_unlock(&bus->lock);
}

/* --- mechanism 1 -------------------------------------------------------------------------- */

static void address_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct pci_bus *bus = opaque;
	pthread_mutex_lock(&bus->lock);
	if (offset == 0 && len == 4) {
		if (is_write) {
			uint32_t v;
			memcpy(&v, data, 4);
			bus->config_address = v & 0x80FFFFFCu;
		} else {
			memcpy(data, &bus->config_address, 4);
		}
	} else if (offset == 1 && len == 1) { /* 0xCF9: reset control */
		if (!is_write) {
			data[0] = bus->reset_control;
		} else {
			bus->reset_control = data[0] & (RESET_SYS | RESET_FULL);
			if ((data[0] & RESET_CPU) && bus->ops.reset)
				bus->ops.reset(bus->ops.opaque);
		}
	} else if (!is_write) {
		memset(data, 0xFF, len);
	}
	pthread_mutex_unlock(&bus->lock);
}

static void data_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct pci_bus *bus = opaque;
	pthread_mutex_lock(&bus->lock);
	uint32_t ca = bus->config_address;
	unsigned reg = (ca & 0xFC) + offset;
	bool ok = (ca & PCI_CONFIG_ENABLE) && ((ca >> 16) & 0xFF) == 0 && offset + len <= 4 &&
		  (len == 1 || len == 2 || len == 4) && reg % len == 0;
	if (ok && is_write) {
		uint32_t v = 0;
		for (unsigned i = 0; i < len; i++)
			v |= (uint32_t)data[i] << (8 * i);
		pci_config_write(bus, (ca >> 8) & 0xFF, reg, len, v);
	} else if (ok) {
		uint32_t v = pci_config_read(bus, (ca >> 8) & 0xFF, reg, len);
		for (unsigned i = 0; i < len; i++)
			data[i] = v >> (8 * i);
	} else if (!is_write) {
		memset(data, 0xFF, len);
	}
	pthread_mutex_unlock(&bus->lock);
}

/* --- devices ------------------------------------------------------------------------------ */

int pci_device_register(struct pci_bus *bus, struct pci_device *dev, int slot)
{
	if (dev->irq_pin > 4)
		return -EINVAL;
	pthread_mutex_lock(&bus->lock);
	int r = -ENOSPC;
	if (slot >= PCI_SLOTS) {
		r = -EINVAL;
		goto out;
	}
	if (slot < 0) {
		for (slot = 0; slot < PCI_SLOTS && bus->slots[slot]; slot++)
			;
		if (slot == PCI_SLOTS)
			goto out;
	} else if (bus->slots[slot]) {
		r = -EBUSY;
		goto out;
	}
	/* pci_msi_init/pci_msix_init may have built capabilities already: keep them. */
	uint8_t caps[PCI_CONFIG_SIZE - 0x40], capw[PCI_CONFIG_SIZE - 0x40];
	memcpy(caps, dev->cfg + 0x40, sizeof(caps));
	memcpy(capw, dev->wmask + 0x40, sizeof(capw));
	uint8_t cap_ptr = dev->cfg[PCI_CAP_PTR];
	unsigned cap_end = dev->cap_end;
	dev->slot = slot;
	dev->bus = bus;
	header_init(dev);
	memcpy(dev->cfg + 0x40, caps, sizeof(caps));
	memcpy(dev->wmask + 0x40, capw, sizeof(capw));
	if (cap_ptr) {
		dev->cfg[PCI_CAP_PTR] = cap_ptr;
		dev->cfg[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
		dev->cap_end = cap_end;
	}
	r = bars_init(bus, dev);
	if (r < 0)
		goto out;
	/* As firmware leaves it: decoding on, so the BARs are live. */
	put_le16(dev->cfg + PCI_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
	memcpy(dev->cfg_power_on, dev->cfg, PCI_CONFIG_SIZE);
	bus->slots[slot] = dev;
	bars_update(dev);
	r = 0;
out:
	if (r < 0)
		dev->bus = NULL;
	pthread_mutex_unlock(&bus->lock);
	return r;
}

int pci_function_register(struct pci_bus *bus, struct pci_device *dev, unsigned slot, unsigned fn)
{
	if (slot >= PCI_SLOTS || fn < 1 || fn > 7 || dev->irq_pin || dev->msi_cap || dev->msix_cap)
		return -EINVAL;
	for (unsigned i = 0; i < PCI_NUM_BARS; i++)
		if (dev->bars[i].size)
			return -EINVAL;
	pthread_mutex_lock(&bus->lock);
	int r = -EBUSY;
	if (!bus->functions[slot][fn - 1]) {
		/* The function's own registers past the header, as the device set them. */
		uint8_t own[PCI_CONFIG_SIZE - 0x40];
		memcpy(own, dev->cfg + 0x40, sizeof(own));
		dev->slot = slot;
		dev->function = fn;
		dev->bus = bus;
		header_init(dev);
		memcpy(dev->cfg + 0x40, own, sizeof(own));
		memcpy(dev->cfg_power_on, dev->cfg, PCI_CONFIG_SIZE);
		bus->functions[slot][fn - 1] = dev;
		r = 0;
	}
	pthread_mutex_unlock(&bus->lock);
	return r;
}

void pci_device_unregister(struct pci_device *dev)
{
	struct pci_bus *bus = dev->bus;
	if (!bus)
		return;
	if (dev->function) {
		pthread_mutex_lock(&bus->lock);
		bus->functions[dev->slot][dev->function - 1] = NULL;
		pthread_mutex_unlock(&bus->lock);
		dev->bus = NULL;
		return;
	}
	pthread_mutex_lock(&bus->lock);
	gsi_adjust(bus, dev, intx_effective(dev), false);
	dev->intx_level = false;
	bars_unmap(dev);
	bus->slots[dev->slot] = NULL;
	pthread_mutex_unlock(&bus->lock);
	pci_msi_free(dev);
	dev->bus = NULL;
}

#define I440FX_PAM0 0x59
#define I440FX_PAM6 0x5F
#define I440FX_SMRAM 0x72

int pci_bus_create(struct io_bus *pio, struct io_bus *mmio, const struct pci_bus_ops *ops,
		   struct pci_bus **out)
{
	struct pci_bus *bus = calloc(1, sizeof(*bus));
	if (!bus)
		return -ENOMEM;
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	/* Device hooks run under the lock and may raise INTx: allow re-entry. */
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&bus->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	bus->pio = pio;
	bus->mmio = mmio;
	if (ops)
		bus->ops = *ops;
	bus->next_mmio32 = LAYOUT_PCI_MMIO32_START;
	bus->next_mmio64 = LAYOUT_PCI_MMIO64_START;
	bus->next_io = LAYOUT_PORT_PCI_IO_START;

	struct pci_device *hb = &bus->host_bridge;
	hb->vendor_id = 0x8086;
	hb->device_id = 0x1237; /* i440FX */
	hb->subsystem_vendor_id = 0x1AF4;
	hb->subsystem_id = 0x1100;
	hb->class_code = 0x060000;
	hb->revision = 2;
	int r = pci_device_register(bus, hb, 0);
	if (r == 0) {
		/* i440FX PAM0-6 and SMRAM: firmware programs them and reads them back.  They are
		 * only stored: 0xC0000-0xFFFFF is always RAM (vmm/boot_firmware.h says why). */
		for (unsigned off = I440FX_PAM0; off <= I440FX_PAM6; off++)
			hb->wmask[off] = 0xFF;
		hb->cfg[I440FX_SMRAM] = 0x02;	/* C_BASE_SEG: the A segment */
		hb->wmask[I440FX_SMRAM] = 0x78; /* D_OPEN, D_CLS, D_LCK, G_SMRAME */
		r = io_bus_register(pio, LAYOUT_PORT_PCI_CONFIG, 4, address_io, bus);
	}
	if (r == 0) {
		r = io_bus_register(pio, LAYOUT_PORT_PCI_CONFIG + 4, 4, data_io, bus);
		if (r < 0)
			io_bus_unregister(pio, LAYOUT_PORT_PCI_CONFIG, bus);
	}
	if (r < 0) {
		pthread_mutex_destroy(&bus->lock);
		free(bus);
		return r;
	}
	*out = bus;
	return 0;
}

void pci_bus_destroy(struct pci_bus *bus)
{
	if (!bus)
		return;
	io_bus_unregister(bus->pio, LAYOUT_PORT_PCI_CONFIG, bus);
	io_bus_unregister(bus->pio, LAYOUT_PORT_PCI_CONFIG + 4, bus);
	for (unsigned i = 0; i < PCI_SLOTS; i++) {
		for (unsigned fn = 0; fn < 7; fn++)
			if (bus->functions[i][fn])
				pci_device_unregister(bus->functions[i][fn]);
		if (bus->slots[i])
			pci_device_unregister(bus->slots[i]);
	}
	pthread_mutex_destroy(&bus->lock);
	free(bus);
}

void pci_bus_reset(struct pci_bus *bus)
{
	pthread_mutex_lock(&bus->lock);
	for (unsigned i = 0; i < PCI_SLOTS; i++) {
		struct pci_device *dev = bus->slots[i];
		if (!dev)
			continue;
		gsi_adjust(bus, dev, intx_effective(dev), false);
		dev->intx_level = false;
		bars_unmap(dev);
		memcpy(dev->cfg, dev->cfg_power_on, PCI_CONFIG_SIZE);
		pci_msi_power_on(dev);
		bars_update(dev);
	}
	for (unsigned i = 0; i < PCI_SLOTS; i++)
		for (unsigned fn = 0; fn < 7; fn++)
			if (bus->functions[i][fn])
				memcpy(bus->functions[i][fn]->cfg,
				       bus->functions[i][fn]->cfg_power_on, PCI_CONFIG_SIZE);
	bus->config_address = 0;
	bus->reset_control = 0;
	pthread_mutex_unlock(&bus->lock);
}

/* ---- the machine's PCI bus ---- */

static int pci_env_set_irq(void *opaque, unsigned gsi, bool level)
{
	const struct device_env *env = opaque;
	return env->irq->set_irq(env->opaque, gsi, level);
}

static int pci_env_signal_msi(void *opaque, uint64_t address, uint32_t data)
{
	const struct device_env *env = opaque;
	return env->irq->signal_msi(env->opaque, address, data);
}

static void pci_env_reset(void *opaque)
{
	const struct device_env *env = opaque;
	env->request(env->opaque, DEVICE_REQUEST_RESET);
}

static int pci_bus_device_create(struct device_env *env, void **state)
{
	struct pci_bus_ops ops = {.set_irq = pci_env_set_irq,
				  .signal_msi = pci_env_signal_msi,
				  .reset = pci_env_reset,
				  .irq = env->fast_irq,
				  .opaque = env};
	struct pci_bus *bus;
	int r = pci_bus_create(env->pio, env->mmio, &ops, &bus);
	if (r < 0)
		return error_set(r, "PCI bus: %s", strerror(-r));
	env->pci = bus;
	*state = bus;
	return 0;
}

static void pci_bus_device_reset(void *state)
{
	pci_bus_reset(state);
}

static void pci_bus_device_destroy(void *state)
{
	pci_bus_destroy(state);
}

static const struct device_ops pci_bus_device = {
    .name = "pci-bus",
    .create = pci_bus_device_create,
    .reset = pci_bus_device_reset,
    .destroy = pci_bus_device_destroy,
};
DEVICE(pci_bus_device, DEVICE_LEVEL_BUS);
