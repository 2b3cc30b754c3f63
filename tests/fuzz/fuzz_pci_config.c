/* PCI configuration space through configuration mechanism 1 (ports 0xCF8..0xCFF, any width and
 * offset, the reset register at 0xCF9 included) on a bus with the host bridge, a device with
 * 64-bit, 32-bit and I/O BARs, MSI and MSI-X, a second function, and a real virtio device
 * (virtio-balloon and its vendor capabilities).  Between the accesses, BAR decoding is exercised
 * where the guest moved the BARs (overlapping each other or not), and the devices raise INTx,
 * MSI and MSI-X vectors whatever the guest left in their capabilities.  A fresh bus per input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/balloon/virtio_balloon.h"
#include "memory/layout.h"
#include "tests/device/virtio_fixture.h"
#include "tests/fuzz/fuzz_input.h"

static void bar_access(struct pci_device *dev, unsigned bar, uint64_t off, uint8_t *data,
		       unsigned len, bool is_write)
{
	if (bar >= PCI_NUM_BARS || !dev->bars[bar].size || off + len > dev->bars[bar].size)
		abort(); /* the bus must hand a device only accesses inside its BAR */
	if (!is_write)
		memset(data, 0xAB, len);
}

static const struct pci_device_ops dev_ops = {.bar_access = bar_access};

static void device_init(struct pci_device *dev, uint16_t id)
{
	memset(dev, 0, sizeof(*dev));
	dev->vendor_id = 0x1234;
	dev->device_id = id;
	dev->class_code = 0x010802;
	dev->irq_pin = 1;
	dev->bars[0] = (struct pci_bar){.type = PCI_BAR_MEM64, .size = 0x4000};
	dev->bars[2] = (struct pci_bar){.type = PCI_BAR_IO, .size = 0x20};
	dev->bars[3] =
	    (struct pci_bar){.type = PCI_BAR_MEM32, .size = 0x1000, .prefetchable = true};
	dev->ops = &dev_ops;
}

static uint32_t pio(struct vf *f, uint16_t port, unsigned len, bool is_write, uint32_t v)
{
	uint8_t d[4];
	memcpy(d, &v, 4);
	io_bus_access(&f->pio, port, d, len, is_write);
	memcpy(&v, d, 4);
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = {data, size};
	static struct pci_device dev[2];
	struct virtio_balloon *b;
	struct vf f;

	if (vf_init(&f, take_u8(&in) & 1) < 0)
		abort();
	device_init(&dev[0], 0x5678);
	memset(&dev[1], 0, sizeof(dev[1])); /* a second function: config space only */
	dev[1].vendor_id = 0x1234;
	dev[1].device_id = 0x5679;
	dev[1].class_code = 0x0C0330;
	struct virtio_balloon_env env = {.pci = f.bus, .mem = &f.mem};
	if (pci_msi_init(&dev[0], 2) < 0 || pci_msix_init(&dev[0], 8, 0, 0x2000, 0x3000) < 0 ||
	    pci_device_register(f.bus, &dev[0], 3) < 0 ||
	    pci_function_register(f.bus, &dev[1], 3, 1) < 0 || virtio_balloon_create(&env, &b) < 0)
		abort();
	while (fuzz_left(&in)) {
		uint8_t op = take_u8(&in);
		unsigned len = 1u << ((op >> 3) % 3);
		switch (op & 7) {
		case 0: /* the address register: enable bit, bus, slot, function, register */
			pio(&f, 0xCF8, 4, true, take_u32(&in));
			break;
		case 1:
		case 2: /* the data window, any width at any of its bytes */
			pio(&f, 0xCFC + take_u8(&in) % 4, len, op & 0x40, take_u32(&in));
			break;
		case 3: /* anything in 0xCF8..0xCFF, the reset control register at 0xCF9 too */
			pio(&f, 0xCF8 + take_u8(&in) % 8, len, op & 0x40, take_u32(&in));
			break;
		case 4: { /* where a device's BAR now decodes: its memory or its I/O ports */
			unsigned devfn = (op & 0x80) ? f.devfn : 3 << 3 | ((op >> 6) & 1);
			unsigned bar = take_u8(&in) % PCI_NUM_BARS;
			uint32_t lo = pci_config_read(f.bus, devfn, PCI_BAR0 + 4 * bar, 4);
			uint32_t off = take_u16(&in);
			uint8_t d[8] = {0};
			if (lo & 1)
				io_bus_access(&f.pio, ((lo & ~3u) + off % 0x40) & 0xFFFF, d, len,
					      op & 0x40);
			else
				io_bus_access(&f.mmio, (lo & ~0xFu) + off, d, len, op & 0x40);
			break;
		}
		case 5: /* the devices interrupt, whatever the guest programmed */
			if (op & 0x40)
				pci_msi_notify(&dev[0], take_u8(&in) % 10);
			else if (op & 0x80)
				pci_irq_assert(&dev[0]);
			else
				pci_irq_deassert(&dev[0]);
			break;
		case 6: /* the virtio device's config space */
			if (!f.devfn)
				vf_enable(&f);
			pci_config_write(f.bus, f.devfn, take_u8(&in), len, take_u32(&in));
			break;
		default: /* a machine reset puts every config space back */
			if (op & 0x40)
				pci_bus_reset(f.bus);
			else
				pci_config_read(f.bus, take_u16(&in), take_u16(&in), len);
			break;
		}
	}
	virtio_balloon_destroy(b);
	pci_device_unregister(&dev[1]);
	pci_device_unregister(&dev[0]);
	vf_fini(&f);
	return 0;
}
