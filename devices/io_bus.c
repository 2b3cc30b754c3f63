/* Range dispatch for port I/O and MMIO (see io_bus.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/io_bus.h"

int io_bus_init(struct io_bus *bus)
{
	memset(bus, 0, sizeof(*bus));
	return -pthread_rwlock_init(&bus->lock, NULL);
}

void io_bus_destroy(struct io_bus *bus)
{
	free(bus->regions);
	pthread_rwlock_destroy(&bus->lock);
	memset(bus, 0, sizeof(*bus));
}

/* Index of the first region whose end is above addr. Caller holds the lock. */
static size_t find(const struct io_bus *bus, uint64_t addr)
{
	size_t lo = 0, hi = bus->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct io_region *r = &bus->regions[mid];
		if (r->base + (r->len - 1) < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int io_bus_register(struct io_bus *bus, uint64_t base, uint64_t len, io_handler_fn fn, void *opaque)
{
	if (!len || !fn || base + (len - 1) < base)
		return -EINVAL;
	int r = 0;
	pthread_rwlock_wrlock(&bus->lock);
	size_t i = find(bus, base);
	if (i < bus->n && bus->regions[i].base <= base + (len - 1)) {
		r = -EBUSY;
		goto out;
	}
	if (bus->n == bus->cap) {
		size_t cap = bus->cap ? 2 * bus->cap : 16;
		struct io_region *p = realloc(bus->regions, cap * sizeof(*p));
		if (!p) {
			r = -ENOMEM;
			goto out;
		}
		bus->regions = p;
		bus->cap = cap;
	}
	memmove(&bus->regions[i + 1], &bus->regions[i], (bus->n - i) * sizeof(bus->regions[0]));
	bus->regions[i] = (struct io_region){.base = base, .len = len, .fn = fn, .opaque = opaque};
	bus->n++;
out:
	pthread_rwlock_unlock(&bus->lock);
	return r;
}

int io_bus_unregister(struct io_bus *bus, uint64_t base, void *opaque)
{
	int r = -ENOENT;
	pthread_rwlock_wrlock(&bus->lock);
	size_t i = find(bus, base);
	if (i < bus->n && bus->regions[i].base == base && bus->regions[i].opaque == opaque) {
		memmove(&bus->regions[i], &bus->regions[i + 1],
			(bus->n - i - 1) * sizeof(bus->regions[0]));
		bus->n--;
		r = 0;
	}
	pthread_rwlock_unlock(&bus->lock);
	return r;
}

bool io_bus_access(struct io_bus *bus, uint64_t addr, uint8_t *data, unsigned len, bool is_write)
{
	struct io_region hit = {0};
	if (len == 0 || len > 8 || addr + (len - 1) < addr)
		goto none;
	pthread_rwlock_rdlock(&bus->lock);
	size_t i = find(bus, addr);
	if (i < bus->n) {
		const struct io_region *r = &bus->regions[i];
		if (r->base <= addr && addr + (len - 1) <= r->base + (r->len - 1))
			hit = *r;
	}
	pthread_rwlock_unlock(&bus->lock);
	if (hit.fn) {
		hit.fn(hit.opaque, addr - hit.base, data, len, is_write);
		return true;
	}
none:
	if (!is_write && len <= 8)
		memset(data, 0xFF, len);
	return false;
}
