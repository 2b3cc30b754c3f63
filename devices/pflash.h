/* A parallel NOR flash with the Intel/Sharp command set (CFI command set 0x0001), as QEMU's
 * pflash_cfi01 presents OVMF's variable store: OVMF probes it (QemuFlashDetected) and then keeps
 * its UEFI variables there with byte programs and block erases.
 *
 * Read-array mode ("ROMD"): the guest reads the contents straight from memory (the VM maps them
 * read-only) and every write exits to pflash_io as a command.  Any command but read-array leaves
 * that mode: the VM unmaps the contents (romd(false)), so reads exit too and return the status
 * register.  Read-array (0xFF) maps them again after the dirty range was made durable.
 *
 *   0x10/0x40 program the next byte(s) written   0x20 + 0xD0 erase the block holding the address
 *   0x50 clear status   0x70 read status   0xFF/0x00 read array   anything else: back to read array
 *
 * Every address comes from the io_bus region (inside the flash); a command sequence a guest breaks
 * off only sets the status register's error bits.
 */
#ifndef MINIVMM_DEVICES_PFLASH_H
#define MINIVMM_DEVICES_PFLASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PFLASH_STATUS_READY 0x80
#define PFLASH_STATUS_ERASE_ERROR 0x20
#define PFLASH_STATUS_PROGRAM_ERROR 0x10

struct pflash_ops {
	/* Map (true) or unmap (false) the contents for direct guest reads. */
	void (*romd)(void *opaque, bool on);
	/* Make [offset, offset+len) of the contents durable; -errno. */
	int (*persist)(void *opaque, uint64_t offset, uint64_t len);
	void *opaque;
};

struct pflash;

/* A flash over `data` (size bytes, kept by the caller), erase blocks of block_size (a power of
 * two dividing size).  -EINVAL, -ENOMEM. */
int pflash_create(uint8_t *data, uint64_t size, uint64_t block_size, const struct pflash_ops *ops,
		  struct pflash **out);
void pflash_destroy(struct pflash *f);
/* io_bus handler for the flash's guest-physical range. */
void pflash_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write);
/* Power on: read-array mode (contents mapped), status ready. */
void pflash_reset(struct pflash *f);
/* Whether the contents are mapped for direct reads now (tests). */
bool pflash_romd(struct pflash *f);

#endif
