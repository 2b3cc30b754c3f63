/* A hostile virtio driver for the fuzz targets of virtio devices: each step the input picks
 * writes guest RAM (rings, buffers), a common, ISR or device config register of any width, the
 * MSI-X table, a queue set-up of any size, a chain of buffers anywhere, or a kick.  The device
 * answers from the same thread (no loop) or from the fixture's loop thread.  The target adds its
 * own steps (peer traffic, host requests) through `extra`. */
#ifndef MINIVMM_TESTS_FUZZ_VIRTIO_OPS_H
#define MINIVMM_TESTS_FUZZ_VIRTIO_OPS_H

#include "tests/device/virtio_fixture.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/fuzz_ram.h"

#define FV_RAM_USED 0x200000ull /* rings at VF_RING(q), buffers above */

static inline unsigned fv_width(uint8_t sel)
{
	return 1u << (sel & 3); /* 1, 2, 4 or 8 */
}

/* The driver's side back to power-on for the next input: RAM zeroed, no queue known, the device
 * enabled on the PCI bus.  (The device's own reset is the target's.) */
static inline void fv_driver_reset(struct vf *f)
{
	fuzz_ram_zero(&f->mem, 0, f->mem.size);
	memset(f->qsize, 0, sizeof(f->qsize));
	memset(f->avail_idx, 0, sizeof(f->avail_idx));
	memset(f->next_desc, 0, sizeof(f->next_desc));
	vf_enable(f);
}

/* A friendly start half of the time, so the steps reach the queues: features the input picks,
 * MSI-X, nq queues of 64 entries, DRIVER_OK. */
static inline void fv_start(struct vf *f, struct fuzz_input *in, unsigned nq)
{
	vf_msix_enable(f, nq + 1);
	uint8_t s = vf_negotiate(f, take_u64(in) | 1ull << VIRTIO_F_VERSION_1);
	for (unsigned q = 0; q < nq; q++)
		vf_queue_setup(f, q, 64, (uint16_t)(q + 1));
	vf_set_status(f, s | VIRTIO_STATUS_DRIVER_OK);
}

/* One step; returns false when the op was not one of ours (op & 15 >= 12: the target's). */
static inline bool fv_step(struct vf *f, struct fuzz_input *in, uint8_t op, unsigned nq)
{
	unsigned q = (op >> 4) % nq;
	switch (op & 15) {
	case 0: { /* guest RAM */
		uint32_t gpa = take_u32(in) % FV_RAM_USED;
		size_t n = take_u8(in);
		if (gpa + n > FV_RAM_USED)
			n = FV_RAM_USED - gpa;
		take_bytes(in, vf_ram(f, gpa, n ? n : 1), n);
		return true;
	}
	case 1: { /* common config, any width */
		uint8_t sel = take_u8(in);
		vf_w(f, VF_COMMON(take_u8(in) % VIRTIO_PCI_COMMON_LEN), fv_width(sel),
		     take_u64(in));
		return true;
	}
	case 2: { /* device config */
		uint8_t sel = take_u8(in);
		uint16_t off = take_u16(in) % 0x40;
		if (sel & 4)
			vf_r(f, VIRTIO_PCI_DEVICE_OFF + off, fv_width(sel));
		else
			vf_w(f, VIRTIO_PCI_DEVICE_OFF + off, fv_width(sel), take_u64(in));
		return true;
	}
	case 3: /* kick */
		vf_kick(f, q);
		return true;
	case 4: /* kick with any value, any queue number, any width */
	{
		uint8_t sel = take_u8(in);
		vf_w(f, VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULT * (take_u8(in) % 70),
		     fv_width(sel), take_u16(in));
		return true;
	}
	case 5: { /* a chain on queue q: buffers anywhere, any length, either direction */
		struct vf_buf b[8];
		unsigned n = 1 + take_u8(in) % 8;
		if (!f->qsize[q])
			return true;
		for (unsigned i = 0; i < n; i++) {
			uint32_t v = take_u32(in);
			b[i].gpa = (v & 1) ? take_u64(in) : 0x200000ull + (v & 0xFFFF0);
			b[i].len = take_u16(in) | (v & 2 ? 0x10000u : 0);
			b[i].write = v & 4;
		}
		vf_post(f, q, b, n);
		if (take_u8(in) & 1)
			vf_kick(f, q);
		return true;
	}
	case 6: { /* a queue of any size, addresses anywhere, enabled or not */
		uint16_t size = take_u16(in);
		vf_w(f, VF_COMMON(0x16), 2, q);
		vf_w(f, VF_COMMON(0x18), 2, size);
		vf_w(f, VF_COMMON(0x1A), 2, take_u16(in) % 8);
		if (take_u8(in) & 1) {
			vf_w(f, VF_COMMON(0x20), 8, take_u64(in));
			vf_w(f, VF_COMMON(0x28), 8, take_u64(in));
			vf_w(f, VF_COMMON(0x30), 8, take_u64(in));
		}
		vf_w(f, VF_COMMON(0x1C), 2, take_u8(in) & 1);
		f->qsize[q] = size && size <= 1024 && !(size & (size - 1)) ? size : 0;
		return true;
	}
	case 7: /* status: any value (0 resets) */
		vf_set_status(f, take_u8(in));
		return true;
	case 8: /* ISR read (clears it) */
		vf_r(f, VIRTIO_PCI_ISR_OFF, 1);
		return true;
	case 9: { /* MSI-X table and PBA */
		uint8_t sel = take_u8(in);
		uint16_t off = take_u16(in) % 0x1100;
		if (sel & 4)
			vf_r(f, VIRTIO_PCI_MSIX_TABLE_OFF + off, fv_width(sel & 2));
		else
			vf_w(f, VIRTIO_PCI_MSIX_TABLE_OFF + off, fv_width(sel & 2), take_u32(in));
		return true;
	}
	case 10: /* PCI config space of the device (MSI-X enable, BARs, command) */
	{
		uint8_t off = take_u8(in);
		uint8_t sel = take_u8(in);
		if (off >= PCI_BAR0 && off < PCI_BAR0 + 24)
			return true; /* moving the BARs would only lose the device */
		pci_config_write(f->bus, f->devfn, off, fv_width(sel & 2), take_u32(in));
		if (!(pci_config_read(f->bus, f->devfn, PCI_COMMAND, 2) & PCI_COMMAND_MEMORY))
			pci_config_write(f->bus, f->devfn, PCI_COMMAND, 2,
					 PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
		return true;
	}
	case 11: /* read any register of the common config */
		vf_r(f, VF_COMMON(take_u8(in) % VIRTIO_PCI_COMMON_LEN), fv_width(take_u8(in)));
		return true;
	default:
		return false;
	}
}

/* An input's steps after its flags byte (bit 0: the friendly start): the driver's, and the
 * target's own (op & 15 >= 12) through extra(in, op). */
static inline void fv_run(struct vf *f, struct fuzz_input *in, uint8_t flags, unsigned nq,
			  void (*extra)(struct fuzz_input *in, uint8_t op))
{
	if (flags & 1)
		fv_start(f, in, nq);
	while (fuzz_left(in)) {
		uint8_t op = take_u8(in);
		if (!fv_step(f, in, op, nq))
			extra(in, op);
	}
}

#endif
