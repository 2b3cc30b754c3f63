/* fw_cfg: items, the file directory, the port interface and the DMA interface (fw_cfg.h). */
#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "devices/device.h"
#include "devices/fw_cfg.h"
#include "devices/io_bus.h"
#include "lib/endian.h"
#include "devices/machine_config.h"
#include "lib/error.h"

#define DIR_ENTRY_LEN 64 /* be32 size, be16 select, be16 reserved, name[56] */
#define DMA_DESC_LEN 16	 /* be32 control, be32 length, be64 address */
#define DMA_KNOWN_BITS                                                                             \
	(FW_CFG_DMA_ERROR | FW_CFG_DMA_READ | FW_CFG_DMA_SKIP | FW_CFG_DMA_SELECT |                \
	 FW_CFG_DMA_WRITE | 0xFFFF0000u)
/* Reading the DMA address register gives "QEMU CFG": how a guest learns DMA is there. */
static const char dma_signature[8] = "QEMU CFG";

struct item {
	uint16_t key;
	uint8_t *data;
	uint32_t len;
	char name[FW_CFG_NAME_MAX]; /* "" for numbered items */
};

struct fw_cfg {
	pthread_mutex_t lock; /* vCPUs may use the ports concurrently */
	const struct guest_memory *mem;
	struct item *items;
	size_t n, cap;
	unsigned nfiles;
	uint16_t selector;
	uint32_t offset;     /* read position in the selected item */
	uint8_t dma_addr[8]; /* big-endian, as written */
};

static struct item *find(struct fw_cfg *c, uint16_t key)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->items[i].key == key)
			return &c->items[i];
	return NULL;
}

/* Store a copy of data under key (replacing what was there). */
static int put(struct fw_cfg *c, uint16_t key, const char *name, const void *data, size_t len)
{
	if (len > UINT32_MAX)
		return -EINVAL;
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		return -ENOMEM;
	if (len)
		memcpy(copy, data, len);
	struct item *it = find(c, key);
	if (!it) {
		if (c->n == c->cap) {
			size_t cap = c->cap ? 2 * c->cap : 16;
			struct item *n = realloc(c->items, cap * sizeof(*n));
			if (!n) {
				free(copy);
				return -ENOMEM;
			}
			c->items = n;
			c->cap = cap;
		}
		it = &c->items[c->n++];
		memset(it, 0, sizeof(*it));
		it->key = key;
	}
	free(it->data);
	it->data = copy;
	it->len = (uint32_t)len;
	snprintf(it->name, sizeof(it->name), "%s", name ? name : "");
	return 0;
}

/* The directory lists files in key order, which is the order they were added. */
static int rebuild_dir(struct fw_cfg *c)
{
	size_t len = 4 + (size_t)c->nfiles * DIR_ENTRY_LEN;
	uint8_t *dir = calloc(1, len);
	if (!dir)
		return -ENOMEM;
	put_be32(dir, c->nfiles);
	uint8_t *e = dir + 4;
	for (uint16_t key = FW_CFG_FILE_FIRST; key < FW_CFG_FILE_FIRST + c->nfiles; key++) {
		struct item *it = find(c, key);
		put_be32(e, it->len);
		put_be16(e + 4, key);
		memcpy(e + 8, it->name, strlen(it->name));
		e += DIR_ENTRY_LEN;
	}
	int r = put(c, FW_CFG_FILE_DIR, NULL, dir, len);
	free(dir);
	return r;
}

int fw_cfg_create(const struct guest_memory *mem, struct fw_cfg **out)
{
	struct fw_cfg *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	c->mem = mem;
	int r = put(c, FW_CFG_SIGNATURE, NULL, "QEMU", 4);
	if (r == 0)
		r = fw_cfg_add_u32(c, FW_CFG_ID, FW_CFG_ID_TRADITIONAL | FW_CFG_ID_DMA);
	if (r == 0)
		r = rebuild_dir(c);
	if (r < 0) {
		fw_cfg_destroy(c);
		return r;
	}
	*out = c;
	return 0;
}

void fw_cfg_destroy(struct fw_cfg *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		free(c->items[i].data);
	free(c->items);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

int fw_cfg_add_item(struct fw_cfg *c, uint16_t key, const void *data, size_t len)
{
	bool numbered =
	    (key < FW_CFG_FILE_FIRST && key != FW_CFG_FILE_DIR) || (key >= 0x8000 && key <= 0x80FF);
	if (!numbered)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	int r = put(c, key, NULL, data, len);
	pthread_mutex_unlock(&c->lock);
	return r;
}

int fw_cfg_add_u16(struct fw_cfg *c, uint16_t key, uint16_t v)
{
	uint8_t b[2];
	put_le16(b, v);
	return fw_cfg_add_item(c, key, b, sizeof(b));
}

int fw_cfg_add_u32(struct fw_cfg *c, uint16_t key, uint32_t v)
{
	uint8_t b[4];
	put_le32(b, v);
	return fw_cfg_add_item(c, key, b, sizeof(b));
}

int fw_cfg_add_u64(struct fw_cfg *c, uint16_t key, uint64_t v)
{
	uint8_t b[8];
	put_le64(b, v);
	return fw_cfg_add_item(c, key, b, sizeof(b));
}

int fw_cfg_add_file(struct fw_cfg *c, const char *name, const void *data, size_t len)
{
	if (!name || !*name || strlen(name) >= FW_CFG_NAME_MAX || len > UINT32_MAX)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	int r = 0;
	for (size_t i = 0; i < c->n; i++)
		if (c->items[i].key >= FW_CFG_FILE_FIRST && !strcmp(c->items[i].name, name))
			r = -EEXIST;
	if (r == 0 && c->nfiles >= FW_CFG_MAX_FILES)
		r = -ENOSPC;
	if (r == 0)
		r = put(c, FW_CFG_FILE_FIRST + c->nfiles, name, data, len);
	if (r == 0) {
		c->nfiles++;
		r = rebuild_dir(c);
		if (r < 0) /* keep the directory and the files in step */
			c->nfiles--;
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

static void select_item(struct fw_cfg *c, uint16_t key)
{
	c->selector = key;
	c->offset = 0;
}

/* Bit 14 of the selector asked for write mode (gone since QEMU 2.4); the item is bits 0-13 and
 * bit 15 (the architecture-specific range). */
static struct item *selected(struct fw_cfg *c)
{
	return find(c, c->selector & ~0x4000);
}

static uint8_t read_byte(struct fw_cfg *c)
{
	struct item *it = selected(c);
	if (!it || c->offset >= it->len)
		return 0; /* past the end (or no item): zeroes */
	return it->data[c->offset++];
}

/* DMA READ into guest memory: the item's bytes from the current offset, zeroes past its end. */
static int dma_read(struct fw_cfg *c, uint64_t gpa, uint32_t len)
{
	uint8_t *dst = guest_memory_ptr(c->mem, gpa, len);
	if (!dst)
		return -EFAULT;
	struct item *it = selected(c);
	uint32_t avail = it && c->offset < it->len ? it->len - c->offset : 0;
	uint32_t n = len < avail ? len : avail;
	if (n)
		memcpy(dst, it->data + c->offset, n);
	memset(dst + n, 0, len - n);
	c->offset += n;
	return 0;
}

static void dma_skip(struct fw_cfg *c, uint32_t len)
{
	struct item *it = selected(c);
	uint32_t avail = it && c->offset < it->len ? it->len - c->offset : 0;
	c->offset += len < avail ? len : avail;
}

/* Run the descriptor at `desc` and write its control word back (0, or the error bit). */
static void dma_run(struct fw_cfg *c, uint64_t desc)
{
	uint8_t d[DMA_DESC_LEN];
	if (guest_memory_read(c->mem, desc, d, sizeof(d)) < 0)
		return; /* nowhere to report: the guest polls a descriptor that is not in RAM */
	uint32_t control = get_be32(d), len = get_be32(d + 4);
	uint64_t addr = get_be64(d + 8);
	int r = 0;
	unsigned ops = control & (FW_CFG_DMA_READ | FW_CFG_DMA_SKIP | FW_CFG_DMA_WRITE);
	if (control & ~DMA_KNOWN_BITS)
		r = -EINVAL;
	if (r == 0 && (control & FW_CFG_DMA_SELECT))
		select_item(c, control >> 16);
	/* QEMU's order of precedence when several are set: read, write, skip. */
	if (r == 0 && (ops & FW_CFG_DMA_READ))
		r = dma_read(c, addr, len);
	else if (r == 0 && (ops & FW_CFG_DMA_WRITE))
		r = -EROFS; /* every item is read-only */
	else if (r == 0 && (ops & FW_CFG_DMA_SKIP))
		dma_skip(c, len);
	uint8_t out[4];
	put_be32(out, r < 0 ? FW_CFG_DMA_ERROR : 0);
	guest_memory_write(c->mem, desc, out, sizeof(out));
}

void fw_cfg_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct fw_cfg *c = opaque;
	pthread_mutex_lock(&c->lock);
	if (offset == 0 && len == 2) { /* selector */
		if (is_write)
			select_item(c, get_le16(data));
		else
			memset(data, 0, len);
	} else if (offset == 1 && len == 1) { /* data; writes are ignored (QEMU >= 2.4) */
		if (!is_write)
			data[0] = read_byte(c);
	} else if (offset >= 4 && offset + len <= FW_CFG_PORT_LEN) { /* DMA address */
		unsigned at = offset - 4;
		if (!is_write) {
			memcpy(data, dma_signature + at, len);
		} else {
			memcpy(c->dma_addr + at, data, len);
			if (at + len == 8) { /* the low half's last byte: go */
				uint64_t desc = get_be64(c->dma_addr);
				memset(c->dma_addr, 0, sizeof(c->dma_addr));
				dma_run(c, desc);
			}
		}
	} else if (!is_write) {
		memset(data, 0, len);
	}
	pthread_mutex_unlock(&c->lock);
}

void fw_cfg_reset(struct fw_cfg *c)
{
	pthread_mutex_lock(&c->lock);
	select_item(c, 0);
	memset(c->dma_addr, 0, sizeof(c->dma_addr));
	pthread_mutex_unlock(&c->lock);
}

/* ---- the machine's fw_cfg: only when firmware boots (no --kernel) ---- */

struct fw_cfg_device {
	struct fw_cfg *c;
	struct io_bus *pio;
};

static int fw_cfg_device_create(struct device_env *env, void **state)
{
	*state = NULL;
	if (!env->machine || env->machine->kernel_boot)
		return 0; /* direct boot: no firmware to talk to */
	struct fw_cfg_device *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->pio = env->pio;
	int r = fw_cfg_create(env->mem, &d->c);
	if (r < 0) {
		free(d);
		return r;
	}
	r = io_bus_register(env->pio, FW_CFG_PORT_BASE, FW_CFG_PORT_LEN, fw_cfg_io, d->c);
	if (r < 0) {
		error_set(r, "fw_cfg: ports 0x%x-0x%x: %s", FW_CFG_PORT_BASE,
			  FW_CFG_PORT_BASE + FW_CFG_PORT_LEN - 1, strerror(-r));
		fw_cfg_destroy(d->c);
		free(d);
		return r;
	}
	*state = d;
	return 0;
}

static void fw_cfg_device_reset(void *state)
{
	struct fw_cfg_device *d = state;
	if (d)
		fw_cfg_reset(d->c);
}

static void fw_cfg_device_destroy(void *state)
{
	struct fw_cfg_device *d = state;
	if (!d)
		return;
	io_bus_unregister(d->pio, FW_CFG_PORT_BASE, d->c);
	fw_cfg_destroy(d->c);
	free(d);
}

struct fw_cfg *fw_cfg_device_store(void *state)
{
	struct fw_cfg_device *d = state;
	return d ? d->c : NULL;
}

static const struct device_ops fw_cfg_device = {
    .name = "fw_cfg",
    .create = fw_cfg_device_create,
    .reset = fw_cfg_device_reset,
    .destroy = fw_cfg_device_destroy,
};
DEVICE(fw_cfg_device, DEVICE_LEVEL_PLATFORM);
