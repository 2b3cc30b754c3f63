/* Port-I/O and MMIO dispatch by address range.
 *
 * vCPU threads dispatch concurrently (read lock); registration takes the write lock, so a device
 * can move its regions (PCI BARs) while the VM runs.  A handler is called without the bus lock
 * held, so it may itself register or unregister regions; a device that unregisters must make sure
 * no vCPU is still inside its handler before freeing its state (pause the VM).  Accesses to no
 * region read as all-ones and ignore writes.
 */
#ifndef MINIVMM_DEVICES_IO_BUS_H
#define MINIVMM_DEVICES_IO_BUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* `offset` is from the region's base; len is 1..8; on reads fill data[0..len). */
typedef void (*io_handler_fn)(void *opaque, uint64_t offset, uint8_t *data, unsigned len,
			      bool is_write);

struct io_region {
	uint64_t base, len;
	io_handler_fn fn;
	void *opaque;
};

struct io_bus {
	pthread_rwlock_t lock;
	struct io_region *regions; /* sorted by base, never overlapping */
	size_t n, cap;
};

int io_bus_init(struct io_bus *bus);
void io_bus_destroy(struct io_bus *bus);
/* -EBUSY if the range overlaps a registered region, -EINVAL if empty or wrapping. */
int io_bus_register(struct io_bus *bus, uint64_t base, uint64_t len, io_handler_fn fn,
		    void *opaque);
/* Remove the region that starts at `base` and belongs to `opaque`; -ENOENT if none. */
int io_bus_unregister(struct io_bus *bus, uint64_t base, void *opaque);
/* Returns true if a region handled the access (it lies entirely inside one). */
bool io_bus_access(struct io_bus *bus, uint64_t addr, uint8_t *data, unsigned len, bool is_write);

#endif
