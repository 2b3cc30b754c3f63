/* The Intel/Sharp command set on a byte array (pflash.h). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "devices/pflash.h"
#include "lib/log.h"

#define CMD_READ_ARRAY 0xFF
#define CMD_READ_ARRAY_ALT 0x00
#define CMD_PROGRAM 0x10
#define CMD_PROGRAM_ALT 0x40
#define CMD_BLOCK_ERASE 0x20
#define CMD_ERASE_CONFIRM 0xD0
#define CMD_CLEAR_STATUS 0x50
#define CMD_READ_STATUS 0x70

enum pflash_state {
	STATE_READ_ARRAY, /* contents mapped */
	STATE_STATUS,	  /* reads give the status register */
	STATE_PROGRAM,	  /* the next write is data */
	STATE_ERASE,	  /* the next write must be the confirmation */
};

struct pflash {
	pthread_mutex_t lock; /* vCPUs exit here concurrently */
	uint8_t *data;
	uint64_t size, block_size;
	struct pflash_ops ops;
	enum pflash_state state;
	uint8_t status;
	bool romd;
	uint64_t dirty_start, dirty_end; /* written since the last read-array; start == end: none */
};

static void set_romd(struct pflash *f, bool on)
{
	if (f->romd == on)
		return;
	f->romd = on;
	if (f->ops.romd)
		f->ops.romd(f->ops.opaque, on);
}

static void mark_dirty(struct pflash *f, uint64_t start, uint64_t end)
{
	if (f->dirty_start == f->dirty_end) {
		f->dirty_start = start;
		f->dirty_end = end;
		return;
	}
	if (start < f->dirty_start)
		f->dirty_start = start;
	if (end > f->dirty_end)
		f->dirty_end = end;
}

/* Back to read-array: what was written is made durable before the guest reads it directly. */
static void read_array(struct pflash *f)
{
	if (f->dirty_start != f->dirty_end && f->ops.persist) {
		int r =
		    f->ops.persist(f->ops.opaque, f->dirty_start, f->dirty_end - f->dirty_start);
		if (r < 0) {
			log_error("pflash", "variable store: cannot save bytes %#llx-%#llx: %s",
				  (unsigned long long)f->dirty_start,
				  (unsigned long long)f->dirty_end - 1, strerror(-r));
			f->status |= PFLASH_STATUS_PROGRAM_ERROR;
		}
	}
	f->dirty_start = f->dirty_end = 0;
	f->state = STATE_READ_ARRAY;
	set_romd(f, true);
}

int pflash_create(uint8_t *data, uint64_t size, uint64_t block_size, const struct pflash_ops *ops,
		  struct pflash **out)
{
	if (!data || !size || !block_size || (block_size & (block_size - 1)) || size % block_size)
		return -EINVAL;
	struct pflash *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	pthread_mutex_init(&f->lock, NULL);
	f->data = data;
	f->size = size;
	f->block_size = block_size;
	if (ops)
		f->ops = *ops;
	f->romd = true; /* the caller maps the contents at creation */
	f->status = PFLASH_STATUS_READY;
	*out = f;
	return 0;
}

void pflash_destroy(struct pflash *f)
{
	if (!f)
		return;
	pthread_mutex_destroy(&f->lock);
	free(f);
}

void pflash_reset(struct pflash *f)
{
	pthread_mutex_lock(&f->lock);
	read_array(f);
	f->status = PFLASH_STATUS_READY;
	pthread_mutex_unlock(&f->lock);
}

bool pflash_romd(struct pflash *f)
{
	pthread_mutex_lock(&f->lock);
	bool on = f->romd;
	pthread_mutex_unlock(&f->lock);
	return on;
}

static void command(struct pflash *f, uint8_t cmd)
{
	switch (cmd) {
	case CMD_READ_ARRAY:
	case CMD_READ_ARRAY_ALT:
		read_array(f);
		return;
	case CMD_PROGRAM:
	case CMD_PROGRAM_ALT:
		f->state = STATE_PROGRAM;
		break;
	case CMD_BLOCK_ERASE:
		f->state = STATE_ERASE;
		break;
	case CMD_CLEAR_STATUS:
		f->status = 0;
		f->state = STATE_STATUS;
		break;
	case CMD_READ_STATUS:
		f->state = STATE_STATUS;
		break;
	default: /* read ID, CFI query, lock bits...: not offered; reads go on as array */
		read_array(f);
		return;
	}
	set_romd(f, false);
}

static void write_locked(struct pflash *f, uint64_t offset, const uint8_t *data, unsigned len)
{
	switch (f->state) {
	case STATE_PROGRAM:
		/* As QEMU's flash: the bytes are stored (OVMF erases before it programs). */
		memcpy(f->data + offset, data, len);
		mark_dirty(f, offset, offset + len);
		f->status |= PFLASH_STATUS_READY;
		f->state = STATE_STATUS;
		return;
	case STATE_ERASE:
		if (data[0] == CMD_ERASE_CONFIRM) {
			uint64_t start = offset & ~(f->block_size - 1);
			memset(f->data + start, 0xFF, f->block_size);
			mark_dirty(f, start, start + f->block_size);
			f->status |= PFLASH_STATUS_READY;
		} else {
			f->status |= PFLASH_STATUS_ERASE_ERROR | PFLASH_STATUS_PROGRAM_ERROR;
		}
		f->state = STATE_STATUS;
		return;
	default:
		command(f, data[0]);
	}
}

void pflash_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct pflash *f = opaque;
	pthread_mutex_lock(&f->lock);
	if (offset >= f->size || len > f->size - offset || !len) {
		if (!is_write)
			memset(data, 0xFF, len);
	} else if (is_write) {
		write_locked(f, offset, data, len);
	} else if (f->state == STATE_READ_ARRAY) {
		/* Only while the mapping is being put back: the contents. */
		memcpy(data, f->data + offset, len);
	} else {
		memset(data, f->status, len); /* the status register on every byte lane */
	}
	pthread_mutex_unlock(&f->lock);
}
