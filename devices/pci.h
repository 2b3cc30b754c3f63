/* The PCI bus (bus 0): configuration mechanism 1 at 0xCF8/0xCFC, the host bridge at 00:00.0, BAR
 * allocation and mapping on the VM's buses, INTx, MSI and MSI-X.
 *
 * A device fills a `struct pci_device` (IDs, BARs, ops) and calls pci_device_register(); the bus
 * owns config space semantics (read-only bits, BAR sizing, COMMAND decode bits, the capability
 * list) so devices only handle their registers.  The bus reaches KVM only through `pci_bus_ops`,
 * which is what lets tests drive it with a fake.
 */
#ifndef MINIVMM_DEVICES_PCI_H
#define MINIVMM_DEVICES_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/io_bus.h"
#include "devices/irq_ops.h"
#include "memory/layout.h"

#define PCI_SLOTS 32
#define PCI_CONFIG_SIZE 256
#define PCI_NUM_BARS 6

/* Config space offsets and bits used by minivmm. */
#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_REVISION 0x08
#define PCI_CLASS_PROG 0x09
#define PCI_HEADER_TYPE 0x0E
#define PCI_BAR0 0x10
#define PCI_SUBSYSTEM_VENDOR 0x2C
#define PCI_SUBSYSTEM_ID 0x2E
#define PCI_CAP_PTR 0x34
#define PCI_INTERRUPT_LINE 0x3C
#define PCI_INTERRUPT_PIN 0x3D
#define PCI_COMMAND_IO 0x0001
#define PCI_COMMAND_MEMORY 0x0002
#define PCI_COMMAND_MASTER 0x0004
#define PCI_COMMAND_INTX_DISABLE 0x0400
#define PCI_STATUS_INTERRUPT 0x0008
#define PCI_STATUS_CAP_LIST 0x0010
#define PCI_CAP_ID_MSI 0x05
#define PCI_CAP_ID_MSIX 0x11

enum pci_bar_type { PCI_BAR_NONE = 0, PCI_BAR_IO, PCI_BAR_MEM32, PCI_BAR_MEM64 };

struct pci_device;

/* What a device implements. All optional. */
struct pci_device_ops {
	/* An access to BAR `bar` at `offset`; data as io_handler_fn. */
	void (*bar_access)(struct pci_device *dev, unsigned bar, uint64_t offset, uint8_t *data,
			   unsigned len, bool is_write);
	/* After the bus applied a config write (device-specific registers live in cfg[]). */
	void (*config_write)(struct pci_device *dev, unsigned offset, unsigned len, uint32_t value);
	/* Before a config read returns (to refresh device-specific registers in cfg[]). */
	void (*config_read)(struct pci_device *dev, unsigned offset, unsigned len);
	/* BAR `bar` was mapped at addr, or unmapped (to move ioeventfds along). Bus lock held. */
	void (*bar_mapped)(struct pci_device *dev, unsigned bar, uint64_t addr, bool mapped);
};

struct pci_bar {
	enum pci_bar_type type;
	uint64_t size; /* power of two; >= 16 for memory, >= 4 for I/O */
	bool prefetchable;
	/* bus state */
	uint64_t mapped_at; /* where it is on the io_bus, when mapped */
	bool mapped;
};

struct pci_bus;
struct pci_device;

struct pci_bar_ref { /* the io_bus opaque of a mapped BAR */
	struct pci_device *dev;
	unsigned bar;
};

struct pci_device {
	/* filled by the device before registering */
	uint16_t vendor_id, device_id, subsystem_vendor_id, subsystem_id;
	uint32_t class_code; /* class << 16 | subclass << 8 | prog-if */
	uint8_t revision;
	uint8_t irq_pin;		   /* 0: no INTx, 1..4: INTA..INTD */
	struct pci_bar bars[PCI_NUM_BARS]; /* a 64-bit BAR also uses the next slot */
	const struct pci_device_ops *ops;
	void *opaque;

	/* bus state */
	struct pci_bus *bus;
	unsigned slot;
	uint8_t cfg[PCI_CONFIG_SIZE];
	uint8_t wmask[PCI_CONFIG_SIZE];	  /* bits the guest may write */
	uint8_t w1cmask[PCI_CONFIG_SIZE]; /* bits a guest write of 1 clears */
	unsigned cap_end;		  /* next free byte for capabilities */
	bool intx_level;
	unsigned msi_cap; /* 0 if none */
	unsigned msix_cap;
	unsigned msix_nvec, msix_bar;
	uint32_t msix_table_off, msix_pba_off;
	uint32_t *msix_table; /* nvec * 4 dwords: addr lo, addr hi, data, control */
	uint64_t *msix_pba;
	/* irqfd routes of the vectors that fired (MSI-X vector v at v, MSI vector v at msix_nvec +
	 * v), made on first use when the bus has irq ops, repointed when the guest reprogrammed
	 * them. */
	struct pci_msi_route *msi_routes;
	unsigned msi_nroutes;
	struct pci_bar_ref bar_refs[PCI_NUM_BARS];
	uint8_t cfg_power_on[PCI_CONFIG_SIZE]; /* config space as registration left it */
	unsigned function;		       /* 0, or 1..7 for pci_function_register */
};

struct pci_msi_route {
	int gsi; /* -1: none yet */
	uint64_t address;
	uint32_t data;
};

struct pci_bus_ops {
	int (*set_irq)(void *opaque, unsigned gsi, bool level);
	int (*signal_msi)(void *opaque, uint64_t address, uint32_t data);
	void (*reset)(void *opaque); /* 0xCF9 reset register */
	void *opaque;
	/* irqfds and ioeventfds (devices/irq_ops.h); NULL: messages go through signal_msi, devices
	 * take their doorbells as MMIO exits. */
	const struct irq_ops *irq;
};

struct pci_bus {
	pthread_mutex_t lock; /* config cycles and mapping */
	struct io_bus *pio, *mmio;
	struct pci_bus_ops ops;
	struct pci_device *slots[PCI_SLOTS];
	struct pci_device host_bridge;
	struct pci_device *functions[PCI_SLOTS][7]; /* functions 1..7 (pci_function_register) */
	uint32_t config_address;		    /* 0xCF8 */
	uint8_t reset_control;			    /* 0xCF9 */
	uint64_t next_mmio32, next_mmio64, next_io;
	unsigned gsi_count[LAYOUT_IOAPIC_PINS]; /* asserted INTx lines per GSI (shared lines) */
};

/* Create the bus with its host bridge and register the config ports on `pio`. */
int pci_bus_create(struct io_bus *pio, struct io_bus *mmio, const struct pci_bus_ops *ops,
		   struct pci_bus **out);
void pci_bus_destroy(struct pci_bus *bus);
/* Machine reset: every function's config space back to what registration left it (with no
 * firmware, that is the power-on state: BARs at their assigned addresses, decoding on, bus
 * mastering, MSI and MSI-X off), BARs the guest moved unmapped and mapped back, INTx lowered,
 * the MSI-X tables masked.  The functions' own registers are their devices' business.  As a
 * machine device: "pci-bus" (devices/device.h), which sets env->pci. */
void pci_bus_reset(struct pci_bus *bus);

/* Add a device in the first free slot (or `slot` if < PCI_SLOTS), allocate its BARs from the
 * layout windows and map them. */
int pci_device_register(struct pci_bus *bus, struct pci_device *dev, int slot);
void pci_device_unregister(struct pci_device *dev);
/* Add a configuration-only function (no BARs, no INTx, no MSI) as function `fn` (1..7) of `slot`,
 * for firmware that reads fixed addresses (OVMF: the PIIX4 PM function at 00:01.3); its bytes from
 * 0x40 up are kept as the device set them (read-only unless it sets wmask).  Function 0
 * does not announce it (no multi-function bit), so operating systems do not scan for it.
 * -EINVAL, -EBUSY.  pci_device_unregister removes it. */
int pci_function_register(struct pci_bus *bus, struct pci_device *dev, unsigned slot, unsigned fn);

/* Add a capability of `len` bytes; returns its offset or -ENOSPC. */
int pci_add_capability(struct pci_device *dev, uint8_t id, unsigned len);
/* Offer MSI with up to 2^log2_vectors vectors (64-bit address, per-vector masking). */
int pci_msi_init(struct pci_device *dev, unsigned log2_vectors);
/* Offer MSI-X: `nvec` vectors, table at table_off and PBA at pba_off inside memory BAR `bar`
 * (which the device declared, big enough). Call before pci_device_register. */
int pci_msix_init(struct pci_device *dev, unsigned nvec, unsigned bar, uint32_t table_off,
		  uint32_t pba_off);

/* The guest enabled MSI (a snapshot, read without the bus lock): a device with MSI sends an edge
 * where INTx would hold a level. */
bool pci_msi_enabled(const struct pci_device *dev);

/* INTx: level-triggered, shared. */
void pci_irq_assert(struct pci_device *dev);
void pci_irq_deassert(struct pci_device *dev);
/* Send message `vector` through MSI-X or MSI, whichever the guest enabled. Returns 0 when sent or
 * left pending (masked), -ENODEV when neither is enabled (the device should use INTx). */
int pci_msi_notify(struct pci_device *dev, unsigned vector);

/* Config cycle by bus/device/function/offset (mechanism 1 and tests). len 1, 2 or 4. */
uint32_t pci_config_read(struct pci_bus *bus, unsigned devfn, unsigned offset, unsigned len);
void pci_config_write(struct pci_bus *bus, unsigned devfn, unsigned offset, unsigned len,
		      uint32_t value);

#endif
