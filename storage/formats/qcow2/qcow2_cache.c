/* qcow2: a bounded LRU cache of cluster-sized metadata tables (L2 tables, refcount blocks).
 *
 * Entries are written back lazily; a cache may depend on another one (L2 tables depend on refcount
 * blocks), in which case the other is written and synced first, so a table on disk never points at
 * a cluster whose refcount is not yet durable. Callers hold the driver's metadata lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage/formats/qcow2/qcow2.h"

int qcow2_cache_init(struct qcow2_cache *c, struct block_device *bs, int entries, size_t size)
{
	memset(c, 0, sizeof(*c));
	c->bs = bs;
	c->e = calloc((size_t)entries, sizeof(*c->e));
	if (!c->e)
		return -ENOMEM;
	c->n = entries;
	for (int i = 0; i < entries; i++) {
		c->e[i].data = malloc(size);
		if (!c->e[i].data) {
			qcow2_cache_destroy(c);
			return -ENOMEM;
		}
	}
	return 0;
}

void qcow2_cache_destroy(struct qcow2_cache *c)
{
	if (!c->e)
		return;
	for (int i = 0; i < c->n; i++)
		free(c->e[i].data);
	free(c->e);
	c->e = NULL;
}

static size_t cache_table_size(struct qcow2_cache *c)
{
	return qcow2_state(c->bs)->cluster_size;
}

bool qcow2_cache_is_dirty(const struct qcow2_cache *c)
{
	for (int i = 0; i < c->n; i++)
		if (c->e[i].dirty)
			return true;
	return false;
}

static int cache_entry_write(struct qcow2_cache *c, struct qcow2_cache_entry *e)
{
	int ret = host_file_pwrite(&c->bs->file, e->offset, e->data, cache_table_size(c));
	if (ret < 0)
		return error_set(ret, "%s: cannot write metadata at %#llx", c->bs->filename,
				 (unsigned long long)e->offset);
	e->dirty = false;
	c->unsynced = true;
	return 0;
}

/* Write every dirty entry. A dependent cache (L2 tables) first makes its dependency and the data
 * already written durable, so a table on disk never points at uncounted or unwritten clusters. */
int qcow2_cache_write(struct qcow2_cache *c)
{
	int ret;

	if (!qcow2_cache_is_dirty(c))
		return 0;
	if (c->depends) {
		ret = qcow2_cache_write(c->depends);
		if (ret == 0)
			ret = host_file_flush(&c->bs->file);
		if (ret < 0)
			return error_set(ret, "%s: flush failed", c->bs->filename);
		/* Data written to an external data file is durable before a table maps it. */
		if (c->data_sync && (ret = host_file_flush(c->data_sync)) < 0)
			return error_set(ret, "%s: flush of the data file failed", c->bs->filename);
		c->depends->unsynced = false;
	}
	for (int i = 0; i < c->n; i++) {
		if (!c->e[i].dirty)
			continue;
		ret = cache_entry_write(c, &c->e[i]);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int qcow2_cache_flush(struct qcow2_cache *c)
{
	int ret = qcow2_cache_write(c);
	if (ret < 0 || !c->unsynced)
		return ret; /* nothing written since the last sync */
	ret = host_file_flush(&c->bs->file);
	if (ret < 0)
		return error_set(ret, "%s: flush failed", c->bs->filename);
	c->unsynced = false;
	return 0;
}

int qcow2_cache_get(struct qcow2_cache *c, uint64_t offset, bool fresh, uint8_t **data)
{
	struct qcow2_cache_entry *victim = NULL;
	int ret;

	for (int i = 0; i < c->n; i++) {
		struct qcow2_cache_entry *e = &c->e[i];
		if (e->offset == offset && offset != 0) {
			e->lru = ++c->tick;
			e->refs++;
			if (fresh) {
				memset(e->data, 0, cache_table_size(c));
				e->dirty = true;
			}
			*data = e->data;
			return 0;
		}
		if (e->refs == 0 && (!victim || e->lru < victim->lru))
			victim = e;
	}
	if (!victim)
		return error_set(-ENOMEM, "%s: qcow2 metadata cache exhausted", c->bs->filename);
	if (victim->dirty) {
		ret = qcow2_cache_write(c); /* write back all at once: one sync for many tables */
		if (ret < 0)
			return ret;
	}
	victim->offset = 0;
	if (fresh) {
		memset(victim->data, 0, cache_table_size(c));
		victim->dirty = true;
	} else {
		ret = host_file_pread(&c->bs->file, offset, victim->data, cache_table_size(c));
		if (ret < 0)
			return error_set(ret, "%s: cannot read metadata at %#llx", c->bs->filename,
					 (unsigned long long)offset);
	}
	victim->offset = offset;
	victim->lru = ++c->tick;
	victim->refs = 1;
	*data = victim->data;
	return 0;
}

static struct qcow2_cache_entry *cache_find_data(struct qcow2_cache *c, uint8_t *data)
{
	for (int i = 0; i < c->n; i++)
		if (c->e[i].data == data)
			return &c->e[i];
	return NULL;
}

void qcow2_cache_put(struct qcow2_cache *c, uint8_t *data)
{
	struct qcow2_cache_entry *e = cache_find_data(c, data);
	if (e && e->refs > 0)
		e->refs--;
}

void qcow2_cache_mark_dirty(struct qcow2_cache *c, uint8_t *data)
{
	struct qcow2_cache_entry *e = cache_find_data(c, data);
	if (e)
		e->dirty = true;
}

bool qcow2_cache_has(const struct qcow2_cache *c, uint64_t offset)
{
	for (int i = 0; i < c->n; i++)
		if (c->e[i].offset == offset && offset != 0)
			return true;
	return false;
}

void qcow2_cache_discard(struct qcow2_cache *c, uint64_t offset)
{
	for (int i = 0; i < c->n; i++) {
		if (c->e[i].offset == offset && c->e[i].refs == 0) {
			c->e[i].offset = 0;
			c->e[i].dirty = false;
		}
	}
}
