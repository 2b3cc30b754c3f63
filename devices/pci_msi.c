/* MSI and MSI-X for PCI devices (see pci.h): capability registers, the MSI-X table and pending
 * bits in a BAR, masking, and delivery through the bus's signal_msi. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/pci.h"
#include "devices/pci_internal.h"
#include "lib/endian.h"

#define MSI_CTRL_ENABLE 0x0001
#define MSI_CTRL_64BIT 0x0080
#define MSI_CTRL_PVM 0x0100
#define MSI_CAP_LEN 24
#define MSIX_CTRL_MASKALL 0x4000
#define MSIX_CTRL_ENABLE 0x8000
#define MSIX_CAP_LEN 12
#define MSIX_ENTRY_MASKED 1
#define MSIX_MAX_VECTORS 2048

int pci_msi_init(struct pci_device *dev, unsigned log2_vectors)
{
	if (log2_vectors > 5 || dev->msi_cap)
		return -EINVAL;
	int off = pci_add_capability(dev, PCI_CAP_ID_MSI, MSI_CAP_LEN);
	if (off < 0)
		return off;
	dev->msi_cap = off;
	uint16_t ctrl = MSI_CTRL_64BIT | MSI_CTRL_PVM | log2_vectors << 1;
	dev->cfg[off + 2] = ctrl;
	dev->cfg[off + 3] = ctrl >> 8;
	dev->wmask[off + 2] = 0x71; /* enable, multiple message enable */
	put_le32(dev->wmask + off + 4, 0xFFFFFFFC);
	put_le32(dev->wmask + off + 8, 0xFFFFFFFF);
	dev->wmask[off + 12] = 0xFF;
	dev->wmask[off + 13] = 0xFF;
	put_le32(dev->wmask + off + 16, (uint32_t)((1ULL << (1u << log2_vectors)) - 1));
	return 0;
}

int pci_msix_init(struct pci_device *dev, unsigned nvec, unsigned bar, uint32_t table_off,
		  uint32_t pba_off)
{
	if (nvec == 0 || nvec > MSIX_MAX_VECTORS || bar >= PCI_NUM_BARS || dev->msix_cap ||
	    (table_off & 7) || (pba_off & 7))
		return -EINVAL;
	const struct pci_bar *b = &dev->bars[bar];
	uint64_t table_len = 16ULL * nvec, pba_len = 8ULL * ((nvec + 63) / 64);
	if ((b->type != PCI_BAR_MEM32 && b->type != PCI_BAR_MEM64) || table_off > b->size ||
	    table_len > b->size - table_off || pba_off > b->size || pba_len > b->size - pba_off ||
	    (pba_off < table_off + table_len && table_off < pba_off + pba_len))
		return -EINVAL;
	dev->msix_table = calloc(nvec, 16);
	dev->msix_pba = calloc((nvec + 63) / 64, 8);
	if (!dev->msix_table || !dev->msix_pba) {
		pci_msi_free(dev);
		return -ENOMEM;
	}
	int off = pci_add_capability(dev, PCI_CAP_ID_MSIX, MSIX_CAP_LEN);
	if (off < 0) {
		pci_msi_free(dev);
		return off;
	}
	for (unsigned i = 0; i < nvec; i++)
		dev->msix_table[4 * i + 3] = MSIX_ENTRY_MASKED;
	dev->msix_cap = off;
	dev->msix_nvec = nvec;
	dev->msix_bar = bar;
	dev->msix_table_off = table_off;
	dev->msix_pba_off = pba_off;
	dev->cfg[off + 2] = (nvec - 1) & 0xFF;
	dev->cfg[off + 3] = (nvec - 1) >> 8;
	dev->wmask[off + 3] = 0xC0; /* enable, function mask */
	put_le32(dev->cfg + off + 4, table_off | bar);
	put_le32(dev->cfg + off + 8, pba_off | bar);
	return 0;
}

static void routes_free(struct pci_device *dev)
{
	const struct irq_ops *irq = dev->bus ? dev->bus->ops.irq : NULL;
	for (unsigned i = 0; i < dev->msi_nroutes; i++)
		if (dev->msi_routes[i].gsi >= 0 && irq)
			irq->msi_route_del(irq->opaque, dev->msi_routes[i].gsi);
	free(dev->msi_routes);
	dev->msi_routes = NULL;
	dev->msi_nroutes = 0;
}

void pci_msi_power_on(struct pci_device *dev)
{
	routes_free(dev); /* the guest programs its vectors again */
	for (unsigned i = 0; i < dev->msix_nvec; i++) {
		memset(&dev->msix_table[4 * i], 0, 16);
		dev->msix_table[4 * i + 3] = MSIX_ENTRY_MASKED;
	}
	if (dev->msix_pba)
		memset(dev->msix_pba, 0, 8 * ((dev->msix_nvec + 63) / 64));
}

void pci_msi_free(struct pci_device *dev)
{
	routes_free(dev);
	free(dev->msix_table);
	free(dev->msix_pba);
	dev->msix_table = NULL;
	dev->msix_pba = NULL;
	dev->msix_cap = 0;
	dev->msix_nvec = 0;
}

static uint16_t msi_ctrl(const struct pci_device *dev)
{
	return pci_cfg_get(dev, dev->msi_cap + 2, 2);
}

static uint16_t msix_ctrl(const struct pci_device *dev)
{
	return pci_cfg_get(dev, dev->msix_cap + 2, 2);
}

static bool msix_enabled(const struct pci_device *dev)
{
	return dev->msix_cap && (msix_ctrl(dev) & MSIX_CTRL_ENABLE);
}

static bool msi_enabled(const struct pci_device *dev)
{
	return dev->msi_cap && (msi_ctrl(dev) & MSI_CTRL_ENABLE);
}

bool pci_msi_enabled(const struct pci_device *dev)
{
	return dev->msi_cap &&
	       (__atomic_load_n(&dev->cfg[dev->msi_cap + 2], __ATOMIC_RELAXED) & MSI_CTRL_ENABLE);
}

/* Through the slot's irqfd route (made on first use, repointed when the guest changed the
 * message); -errno when there is none to be had. Bus lock held. */
static int send_irqfd(struct pci_device *dev, unsigned slot, uint64_t addr, uint32_t data)
{
	const struct irq_ops *irq = dev->bus->ops.irq;
	if (!irq || !irq->msi_route_add)
		return -ENOSYS;
	if (!dev->msi_routes) {
		unsigned n = dev->msix_nvec + 32;
		if (!(dev->msi_routes = malloc(n * sizeof(*dev->msi_routes))))
			return -ENOMEM;
		for (unsigned i = 0; i < n; i++)
			dev->msi_routes[i].gsi = -1;
		dev->msi_nroutes = n;
	}
	if (slot >= dev->msi_nroutes)
		return -EINVAL;
	struct pci_msi_route *r = &dev->msi_routes[slot];
	if (r->gsi < 0) {
		int gsi = irq->msi_route_add(irq->opaque, addr, data);
		if (gsi < 0)
			return gsi;
		*r = (struct pci_msi_route){.gsi = gsi, .address = addr, .data = data};
	} else if (r->address != addr || r->data != data) {
		int e = irq->msi_route_set(irq->opaque, r->gsi, addr, data);
		if (e < 0)
			return e;
		r->address = addr;
		r->data = data;
	}
	return irq->msi_route_fire(irq->opaque, r->gsi);
}

static int send(struct pci_device *dev, unsigned slot, uint64_t addr, uint32_t data)
{
	struct pci_bus *bus = dev->bus;
	/* A message is a memory write by the device: no bus mastering, no message. */
	if (!(pci_cfg_get(dev, PCI_COMMAND, 2) & PCI_COMMAND_MASTER))
		return -EIO;
	if (send_irqfd(dev, slot, addr, data) == 0)
		return 0;
	if (!bus->ops.signal_msi)
		return -ENOSYS;
	return bus->ops.signal_msi(bus->ops.opaque, addr, data);
}

static bool pending_test(const uint64_t *bits, unsigned v)
{
	return bits[v / 64] >> (v % 64) & 1;
}

static void pending_set(uint64_t *bits, unsigned v, bool on)
{
	if (on)
		bits[v / 64] |= 1ULL << (v % 64);
	else
		bits[v / 64] &= ~(1ULL << (v % 64));
}

static int msix_fire(struct pci_device *dev, unsigned v)
{
	const uint32_t *e = &dev->msix_table[4 * v];
	if ((msix_ctrl(dev) & MSIX_CTRL_MASKALL) || (e[3] & MSIX_ENTRY_MASKED)) {
		pending_set(dev->msix_pba, v, true);
		return 0;
	}
	pending_set(dev->msix_pba, v, false);
	return send(dev, v, (uint64_t)e[1] << 32 | e[0], e[2]);
}

static int msi_fire(struct pci_device *dev, unsigned v)
{
	unsigned c = dev->msi_cap;
	uint32_t mask = pci_cfg_get(dev, c + 16, 4);
	uint32_t pending = pci_cfg_get(dev, c + 20, 4);
	if (mask >> v & 1) {
		put_le32(dev->cfg + c + 20, pending | 1u << v);
		return 0;
	}
	put_le32(dev->cfg + c + 20, pending & ~(1u << v));
	unsigned nvec = 1u << ((msi_ctrl(dev) >> 4) & 7);
	uint32_t data = pci_cfg_get(dev, c + 12, 2);
	data = (data & ~(nvec - 1)) | v; /* multiple messages: the low bits carry the vector */
	uint64_t addr = (uint64_t)pci_cfg_get(dev, c + 8, 4) << 32 | pci_cfg_get(dev, c + 4, 4);
	return send(dev, dev->msix_nvec + v, addr, data);
}

int pci_msi_notify(struct pci_device *dev, unsigned vector)
{
	struct pci_bus *bus = dev->bus;
	if (!bus)
		return -ENODEV;
	int r;
	pthread_mutex_lock(&bus->lock);
	if (msix_enabled(dev)) {
		r = vector < dev->msix_nvec ? msix_fire(dev, vector) : -EINVAL;
	} else if (msi_enabled(dev)) {
		unsigned nvec = 1u << ((msi_ctrl(dev) >> 4) & 7);
		unsigned cap = 1u << ((msi_ctrl(dev) >> 1) & 7);
		r = vector < nvec && vector < cap ? msi_fire(dev, vector) : -EINVAL;
	} else {
		r = -ENODEV;
	}
	pthread_mutex_unlock(&bus->lock);
	return r;
}

static void msix_flush_pending(struct pci_device *dev)
{
	if (!msix_enabled(dev) || (msix_ctrl(dev) & MSIX_CTRL_MASKALL))
		return;
	for (unsigned v = 0; v < dev->msix_nvec; v++)
		if (pending_test(dev->msix_pba, v) &&
		    !(dev->msix_table[4 * v + 3] & MSIX_ENTRY_MASKED))
			msix_fire(dev, v);
}

void pci_msi_config_written(struct pci_device *dev, unsigned offset, unsigned len)
{
	if (dev->msix_cap && offset < dev->msix_cap + 4 && offset + len > dev->msix_cap + 2)
		msix_flush_pending(dev);
	if (dev->msi_cap && msi_enabled(dev) && offset < dev->msi_cap + 24 &&
	    offset + len > dev->msi_cap + 16) {
		uint32_t pending = pci_cfg_get(dev, dev->msi_cap + 20, 4);
		uint32_t mask = pci_cfg_get(dev, dev->msi_cap + 16, 4);
		for (unsigned v = 0; v < 32; v++)
			if ((pending & ~mask) >> v & 1)
				msi_fire(dev, v);
	}
}

/* One aligned dword of the table or PBA. */
static void msix_dword(struct pci_device *dev, uint64_t offset, uint32_t *val, bool is_write)
{
	if (offset >= dev->msix_table_off &&
	    offset - dev->msix_table_off < 16ULL * dev->msix_nvec) {
		uint64_t i = (offset - dev->msix_table_off) / 4;
		unsigned v = i / 4;
		if (!is_write) {
			*val = dev->msix_table[i];
		} else if (i % 4 == 3) {
			dev->msix_table[i] = *val & MSIX_ENTRY_MASKED;
			if (!(*val & MSIX_ENTRY_MASKED) && pending_test(dev->msix_pba, v) &&
			    msix_enabled(dev))
				msix_fire(dev, v);
		} else {
			dev->msix_table[i] = *val;
		}
		return;
	}
	uint64_t p = offset - dev->msix_pba_off; /* inside the PBA: the caller checked */
	if (!is_write)
		*val = dev->msix_pba[p / 8] >> (32 * (p / 4 % 2));
}

bool pci_msix_bar_access(struct pci_device *dev, unsigned bar, uint64_t offset, uint8_t *data,
			 unsigned len, bool is_write)
{
	if (!dev->msix_cap || bar != dev->msix_bar)
		return false;
	uint64_t tend = dev->msix_table_off + 16ULL * dev->msix_nvec;
	uint64_t pend = dev->msix_pba_off + 8ULL * ((dev->msix_nvec + 63) / 64);
	bool in_table = offset >= dev->msix_table_off && offset < tend;
	bool in_pba = offset >= dev->msix_pba_off && offset < pend;
	if (!in_table && !in_pba)
		return false;
	if ((len != 4 && len != 8) || offset % len || offset + len > (in_table ? tend : pend)) {
		if (!is_write) /* the spec allows only aligned dword and qword accesses */
			memset(data, 0xFF, len);
		return true;
	}
	pthread_mutex_lock(&dev->bus->lock);
	for (unsigned i = 0; i < len; i += 4) {
		uint32_t v = 0;
		if (is_write)
			memcpy(&v, data + i, 4);
		msix_dword(dev, offset + i, &v, is_write);
		if (!is_write)
			memcpy(data + i, &v, 4);
	}
	pthread_mutex_unlock(&dev->bus->lock);
	return true;
}
