/* QEMU's firmware configuration device (fw_cfg), as SeaBIOS and OVMF read it on x86: a 16-bit
 * selector at port 0x510, a byte-wide data port at 0x511 and the DMA address register at
 * 0x514..0x51B (big-endian; a write to the low half at 0x518 starts the transfer).
 *
 * Items are read-only blobs: numbered ones (FW_CFG_*) and named files, which get keys from
 * FW_CFG_FILE_FIRST up and are listed in the FW_CFG_FILE_DIR directory.  Every DMA descriptor and
 * buffer goes through the checked guest-memory accessor: a bad control word, a buffer outside RAM
 * or a write sets the descriptor's error bit; nothing the guest writes can crash or hang minivmm.
 */
#ifndef MINIVMM_DEVICES_FW_CFG_H
#define MINIVMM_DEVICES_FW_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memory/guest_memory.h"

#define FW_CFG_PORT_BASE 0x510
#define FW_CFG_PORT_LEN 12 /* selector 0x510, data 0x511, DMA address 0x514..0x51B */

/* Numbered items (docs/specs/fw_cfg.rst in QEMU; SeaBIOS src/fw/paravirt.c). */
#define FW_CFG_SIGNATURE 0x00
#define FW_CFG_ID 0x01
#define FW_CFG_UUID 0x02
#define FW_CFG_RAM_SIZE 0x03
#define FW_CFG_NB_CPUS 0x05
#define FW_CFG_NUMA 0x0d
#define FW_CFG_BOOT_MENU 0x0e
#define FW_CFG_MAX_CPUS 0x0f
#define FW_CFG_FILE_DIR 0x19
#define FW_CFG_FILE_FIRST 0x20
#define FW_CFG_IRQ0_OVERRIDE 0x8002

#define FW_CFG_ID_TRADITIONAL 0x1
#define FW_CFG_ID_DMA 0x2

/* DMA control word bits (big-endian in the descriptor). */
#define FW_CFG_DMA_ERROR 0x01
#define FW_CFG_DMA_READ 0x02
#define FW_CFG_DMA_SKIP 0x04
#define FW_CFG_DMA_SELECT 0x08
#define FW_CFG_DMA_WRITE 0x10

#define FW_CFG_NAME_MAX 56 /* a file name with its NUL */
#define FW_CFG_MAX_FILES 64

struct fw_cfg;

/* A device with the signature, the ID (traditional + DMA) and an empty file directory.  `mem` is
 * where DMA descriptors and buffers live; it must outlive the device. */
int fw_cfg_create(const struct guest_memory *mem, struct fw_cfg **out);
void fw_cfg_destroy(struct fw_cfg *c);

/* Add (or replace) numbered item `key` (below FW_CFG_FILE_FIRST, or 0x8000..0x80FF); the data
 * is copied.  -EINVAL for a directory/file key, -ENOMEM. */
int fw_cfg_add_item(struct fw_cfg *c, uint16_t key, const void *data, size_t len);
int fw_cfg_add_u16(struct fw_cfg *c, uint16_t key, uint16_t v); /* little-endian */
int fw_cfg_add_u32(struct fw_cfg *c, uint16_t key, uint32_t v);
int fw_cfg_add_u64(struct fw_cfg *c, uint16_t key, uint64_t v);
/* Add a named file (copied; at most 4 GiB - 1).  -EEXIST for a name already there, -EINVAL for
 * a name that is empty or does not fit, -ENOSPC past FW_CFG_MAX_FILES. */
int fw_cfg_add_file(struct fw_cfg *c, const char *name, const void *data, size_t len);

/* io_bus handler for [FW_CFG_PORT_BASE, +FW_CFG_PORT_LEN). */
void fw_cfg_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write);

/* Back to the power-on state (selector 0, DMA address cleared); the items stay. */
void fw_cfg_reset(struct fw_cfg *c);

/* The machine's device "fw_cfg" (DEVICE_LEVEL_PLATFORM) exists only when firmware boots (no
 * --kernel in env->cfg); it starts empty and the VM fills it with the machine's description
 * before the first vCPU runs.  The store of the instance devices_find() returned, or NULL. */
struct fw_cfg *fw_cfg_device_store(void *state);

#endif
