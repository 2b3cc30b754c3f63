/* VM snapshots as external differencing layers (see vm_snapshot.h). */
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/core/block.h"
#include "storage/core/block_path.h"
#include "storage/core/disk_lock.h"
#include "vmm/vm_disk_format.h"
#include "vmm/vm_snapshot.h"
#include "lib/log.h"
#include "lib/error.h"

#define SNAP_CHUNK (1u << 20)

static const char *jstr(json_object *o, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
		   ? json_object_get_string(v)
		   : NULL;
}

static json_object *jarr(json_object *o, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_array)
		   ? v
		   : NULL;
}

/* A layer must be creatable over a parent and re-pointable (delete rebases children). */
static bool snap_layer_format_ok(const struct block_driver *drv)
{
	return drv && drv->has_backing && drv->create && drv->set_backing;
}

/* snapshots.json, or a fresh tree built from disks.json (the record of the last run). */
static int snap_load_tree(const char *dir, json_object **out)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%.*s/snapshots.json", PATH_MAX - 20, dir);
	if (access(path, F_OK) == 0) {
		json_object *t = json_object_from_file(path);
		json_object *disks = t ? jarr(t, "disks") : NULL,
			    *snaps = t ? jarr(t, "snapshots") : NULL;
		if (!disks || !snaps) {
			json_object_put(t);
			return error_set(-EINVAL, "%s: not a snapshot tree", path);
		}
		for (size_t i = 0; i < json_object_array_length(disks); i++) {
			json_object *d = json_object_array_get_idx(disks, i);
			const char *lf = jstr(d, "layer_format");
			if (!jstr(d, "file")) {
				json_object_put(t);
				return error_set(-EINVAL, "%s: disk %zu has no file", path, i);
			}
			if (lf && !snap_layer_format_ok(block_driver_find(lf))) {
				error_set(-EINVAL, "%s: disk %zu: '%s' cannot be a layer format",
					  path, i, lf);
				json_object_put(t);
				return -EINVAL;
			}
		}
		*out = t;
		return 0;
	}
	snprintf(path, sizeof(path), "%.*s/disks.json", PATH_MAX - 20, dir);
	json_object *rec = json_object_from_file(path);
	if (!rec || !json_object_is_type(rec, json_type_array)) {
		json_object_put(rec);
		return error_set(-ENOENT, "%s: no disk record (has the VM been run with --disk?)",
				 path);
	}
	json_object *t = json_object_new_object(), *disks = json_object_new_array();
	for (size_t i = 0; i < json_object_array_length(rec); i++) {
		json_object *r = json_object_array_get_idx(rec, i), *d = json_object_new_object();
		const char *file = jstr(r, "file"), *mode = jstr(r, "mode"),
			   *media = jstr(r, "media"), *fmt = jstr(r, "format");
		bool normal = mode && !strcmp(mode, "normal") && media && !strcmp(media, "hdd");
		/* Given without format=: the format probed at its first attach, never a new probe
		 * (its guest may have written a header since: vmm/vm_disk_format.h). */
		char recorded[VM_DISK_FORMAT_NAME_MAX];
		if (!fmt && file && vm_disk_format_get(dir, file, recorded) == 0)
			fmt = recorded;
		json_object_object_add(d, "file", json_object_new_string(file ? file : ""));
		json_object_object_add(d, "format", fmt ? json_object_new_string(fmt) : NULL);
		json_object_object_add(d, "normal", json_object_new_boolean(normal));
		json_object_object_add(d, "current", NULL);
		json_object_array_add(disks, d);
	}
	json_object_put(rec);
	json_object_object_add(t, "disks", disks);
	json_object_object_add(t, "snapshots", json_object_new_array());
	*out = t;
	return 0;
}

/* The layers name the disks given to the VM, wherever they are: minivmm recorded them, so they are
 * the user's own, not names an image chose (storage/core/block_path.h). */
static void snap_allow_disks(json_object *t)
{
	json_object *disks = jarr(t, "disks");

	for (size_t i = 0; disks && i < json_object_array_length(disks); i++) {
		const char *file = jstr(json_object_array_get_idx(disks, i), "file");
		if (file && file[0])
			block_path_allow_file(file); /* missing: opening it says so */
	}
}

static int snap_load(const char *dir, json_object **out)
{
	int ret = snap_load_tree(dir, out);

	if (ret == 0)
		snap_allow_disks(*out);
	return ret;
}

static int snap_save(const char *dir, json_object *t)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	snprintf(path, sizeof(path), "%.*s/snapshots.json", PATH_MAX - 20, dir);
	snprintf(tmp, sizeof(tmp), "%.*s/snapshots.json.tmp", PATH_MAX - 20, dir);
	if (json_object_to_file_ext(tmp, t, JSON_C_TO_STRING_PRETTY) < 0 || rename(tmp, path) < 0)
		return error_set(-EIO, "%s: cannot write", path);
	return 0;
}

static bool disk_normal(json_object *d)
{
	json_object *v;
	return json_object_object_get_ex(d, "normal", &v) && json_object_get_boolean(v);
}

/* The format of every layer of disk d; trees written before layer_format existed are qcow2. */
static const char *disk_layer_fmt(json_object *d)
{
	const char *lf = jstr(d, "layer_format");
	return lf ? lf : "qcow2";
}

/* The format to open `path` of disk d with: the base's recorded one (NULL: probed, as the VM
 * does), else the layer format. Never a probe of a layer. */
static const char *disk_fmt(json_object *d, const char *path)
{
	return strcmp(path, jstr(d, "file")) ? disk_layer_fmt(d) : jstr(d, "format");
}

/* The layer the VM uses for disk d: its current diff, else the base file. */
static const char *disk_top(json_object *d)
{
	const char *c = jstr(d, "current");
	return c ? c : jstr(d, "file");
}

static json_object *snap_find(json_object *snaps, const char *name, size_t *idx)
{
	for (size_t i = 0; i < json_object_array_length(snaps); i++) {
		json_object *s = json_object_array_get_idx(snaps, i);
		const char *n = jstr(s, "name");
		if (n && !strcmp(n, name)) {
			if (idx)
				*idx = i;
			return s;
		}
	}
	return NULL;
}

static const char *snap_layer(json_object *s, size_t disk)
{
	json_object *l = jarr(s, "layers"), *v = l ? json_object_array_get_idx(l, disk) : NULL;
	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* Powered off: write-lock every normal disk's chain (a running VM holds it). Kept open in bs[]
 * until the operation is over so that no VM starts meanwhile. */
static int snap_lock_all(json_object *disks, struct block_device **bs)
{
	for (size_t i = 0; i < json_object_array_length(disks); i++) {
		json_object *d = json_object_array_get_idx(disks, i);
		if (!disk_normal(d))
			continue;
		int ret = block_open(disk_top(d), disk_fmt(d, disk_top(d)),
				     BLOCK_OPEN_RDWR | BLOCK_OPEN_LOCK, &bs[i]);
		if (ret < 0)
			return ret;
		if ((ret = disk_lock_chain(bs[i], true)) < 0)
			return ret;
	}
	return 0;
}

/* Create the new layer `path` over `below` (opened as b) in format fmt. */
static int snap_create_layer(const char *dir, size_t i, const char *file, struct block_device *b,
			     const char *below, const char *fmt, char *path, size_t len)
{
	const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
	const char *dot = strrchr(base, '.');
	const char *ext = strcmp(fmt, "vpc") ? fmt : "vhd";
	int stem = dot && dot != base ? (int)(dot - base) : (int)strlen(base);
	for (unsigned k = 1;; k++) {
		int n =
		    snprintf(path, len, "%s/disk%zu-%.*s.snap%u.%s", dir, i, stem, base, k, ext);
		if (n < 0 || (size_t)n >= len)
			return error_set(-ENAMETOOLONG, "%s: path too long", dir);
		if (access(path, F_OK) < 0)
			break;
	}
	struct block_create_args a = {
	    .size = b->size, .backing = below, .backing_fmt = b->drv->name};
	return block_create(fmt, path, &a);
}

/* A new empty layer over `below` for disk i (d), its path malloc'ed into *out. Every layer of a
 * disk has one format, chosen at its first layer: the base's own when minivmm can make a
 * differencing image of it and re-point one (qcow2, VDI, VMDK, VHD), else qcow2 (raw, VHDX,
 * Parallels, or a base whose format refuses this parent, e.g. a name too long for a VDI). */
static int snap_new_diff(const char *dir, size_t i, json_object *d, const char *below, char **out)
{
	struct block_device *b = NULL;
	char path[PATH_MAX];
	bool first = !jstr(d, "current");
	int ret = block_open(below, disk_fmt(d, below), BLOCK_OPEN_NO_BACKING, &b);
	if (ret < 0)
		return ret;
	const char *fmt =
	    first ? (snap_layer_format_ok(b->drv) ? b->drv->name : "qcow2") : disk_layer_fmt(d);
	ret = snap_create_layer(dir, i, jstr(d, "file"), b, below, fmt, path, sizeof(path));
	if (ret < 0 && first && strcmp(fmt, "qcow2") &&
	    (ret == -EINVAL || ret == -ENOTSUP || ret == -ENAMETOOLONG || ret == -EFBIG)) {
		fmt = "qcow2";
		ret = snap_create_layer(dir, i, jstr(d, "file"), b, below, fmt, path, sizeof(path));
	}
	block_close(b);
	if (ret < 0)
		return ret;
	if (first)
		json_object_object_add(d, "layer_format", json_object_new_string(fmt));
	*out = strdup(path);
	return *out ? 0 : -ENOMEM;
}

static bool layer_owned(json_object *snaps, size_t disk, const char *layer)
{
	for (size_t k = 0; k < json_object_array_length(snaps); k++) {
		const char *l = snap_layer(json_object_array_get_idx(snaps, k), disk);
		if (l && !strcmp(l, layer))
			return true;
	}
	return false;
}

static int snap_take(const char *dir, json_object *t, const char *name)
{
	json_object *disks = jarr(t, "disks"), *snaps = jarr(t, "snapshots");
	if (snap_find(snaps, name, NULL))
		return error_set(-EEXIST, "snapshot '%s' already exists", name);
	json_object *s = json_object_new_object(), *layers = json_object_new_array();
	json_object_object_add(s, "name", json_object_new_string(name));
	json_object_object_add(s, "created", json_object_new_int64(time(NULL)));
	json_object_object_add(s, "layers", layers);
	for (size_t i = 0; i < json_object_array_length(disks); i++) {
		json_object *d = json_object_array_get_idx(disks, i);
		char *diff = NULL;
		if (!disk_normal(d)) {
			json_object_array_add(layers, NULL);
			continue;
		}
		int ret = snap_new_diff(dir, i, d, disk_top(d), &diff);
		if (ret < 0) {
			/* Nothing is saved: drop the layers made for the disks before this one. */
			for (size_t k = 0; k < i; k++) {
				json_object *dk = json_object_array_get_idx(disks, k);
				const char *top = snap_layer(s, k);
				if (disk_normal(dk) && top && jstr(dk, "current") &&
				    strcmp(top, jstr(dk, "current"))) {
					unlink(jstr(dk, "current"));
					json_object_object_add(dk, "current",
							       strcmp(top, jstr(dk, "file"))
								   ? json_object_new_string(top)
								   : NULL);
				}
			}
			json_object_put(s);
			return ret;
		}
		json_object_array_add(layers, json_object_new_string(disk_top(d)));
		json_object_object_add(d, "current", json_object_new_string(diff));
		free(diff);
	}
	json_object_array_add(snaps, s);
	return 0;
}

static int snap_restore(const char *dir, json_object *t, const char *name)
{
	json_object *disks = jarr(t, "disks"), *snaps = jarr(t, "snapshots");
	json_object *s = snap_find(snaps, name, NULL);
	if (!s)
		return error_set(-ENOENT, "no snapshot '%s'", name);
	for (size_t i = 0; i < json_object_array_length(disks); i++) {
		json_object *d = json_object_array_get_idx(disks, i);
		const char *layer = snap_layer(s, i), *cur = jstr(d, "current");
		char *diff = NULL;
		if (!disk_normal(d) || !layer)
			continue;
		int ret = snap_new_diff(dir, i, d, layer, &diff);
		if (ret < 0)
			return ret;
		/* The state since the last take or restore is thrown away, as in VirtualBox. */
		if (cur && !layer_owned(snaps, i, cur))
			unlink(cur);
		json_object_object_add(d, "current", json_object_new_string(diff));
		free(diff);
	}
	return 0;
}

/* Write every range C itself allocates into F (C's view of it), so that F becomes F+C. */
static int snap_commit(json_object *d, const char *child, const char *parent)
{
	struct block_device *c = NULL, *f = NULL;
	char *buf = malloc(SNAP_CHUNK);
	int ret = buf ? block_open(child, disk_fmt(d, child), 0, &c) : -ENOMEM;
	if (!ret)
		ret = block_open(parent, disk_fmt(d, parent), BLOCK_OPEN_RDWR, &f);
	for (uint64_t off = 0; !ret && off < c->size;) {
		uint64_t pnum = 0, map;
		int st = 0;
		uint64_t len = c->size - off < SNAP_CHUNK ? c->size - off : SNAP_CHUNK;
		if ((ret = block_status(c, off, len, &pnum, &st, &map)) < 0 || !pnum)
			break;
		if ((st & BLOCK_STATUS_ALLOCATED) && off < f->size) {
			uint64_t n = pnum < f->size - off ? pnum : f->size - off;
			if ((ret = block_pread(c, off, buf, n)) < 0 ||
			    (ret = block_pwrite(f, off, buf, n)) < 0)
				break;
		}
		off += pnum;
	}
	if (!ret && f)
		ret = block_flush(f);
	if (ret < 0)
		error_set(ret, "merging %s into %s: %s", child, parent,
			  ret == -ENOMEM ? "out of memory" : error_msg());
	if (c)
		block_close(c);
	if (f)
		block_close(f);
	free(buf);
	return ret;
}

/* Point image `path`'s backing file at `parent` (both layers or the base of disk d). */
static int snap_rebase(json_object *d, const char *path, const char *parent)
{
	struct block_device *x = NULL, *p = NULL;
	int ret = block_open(parent, disk_fmt(d, parent), BLOCK_OPEN_NO_BACKING, &p);
	if (!ret)
		ret = block_open(path, disk_fmt(d, path), BLOCK_OPEN_RDWR | BLOCK_OPEN_NO_BACKING,
				 &x);
	if (!ret)
		ret = x->drv->set_backing ? x->drv->set_backing(x, parent, p->drv->name) : -ENOTSUP;
	if (ret < 0)
		error_wrap(ret, "%s: cannot rebase on %s", path, parent);
	if (x)
		block_close(x);
	if (p)
		block_close(p);
	return ret;
}

static int snap_delete(json_object *t, const char *name)
{
	json_object *disks = jarr(t, "disks"), *snaps = jarr(t, "snapshots");
	size_t idx;
	json_object *s = snap_find(snaps, name, &idx);
	if (!s)
		return error_set(-ENOENT, "no snapshot '%s'", name);
	/* First check every disk (nothing changes if one cannot be merged). */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < json_object_array_length(disks); i++) {
			json_object *d = json_object_array_get_idx(disks, i);
			const char *f = snap_layer(s, i);
			if (!disk_normal(d) || !f)
				continue;
			/* The children of F: current and other snapshots' layers backed by F. */
			const char *kids[2];
			json_object *owner[2] = {NULL, NULL};
			unsigned nk = 0;
			for (size_t k = 0; k <= json_object_array_length(snaps); k++) {
				json_object *o = k < json_object_array_length(snaps)
						     ? json_object_array_get_idx(snaps, k)
						     : NULL;
				const char *l =
				    o ? (k == idx ? NULL : snap_layer(o, i)) : jstr(d, "current");
				struct block_device *b = NULL;
				if (!l ||
				    block_open(l, disk_fmt(d, l), BLOCK_OPEN_NO_BACKING, &b) < 0)
					continue;
				bool child = b->backing_name && !strcmp(b->backing_name, f);
				block_close(b);
				if (child && nk < 2) {
					owner[nk] = o;
					kids[nk] = l;
				}
				nk += child;
			}
			if (nk != 1)
				return error_set(
				    -EBUSY,
				    "snapshot '%s': disk %zu's layer has %u child layers: "
				    "cannot merge (delete the newer snapshots first)",
				    name, i, nk);
			if (pass == 0)
				continue;
			char *kid = strdup(kids[0]);
			int ret = kid ? snap_commit(d, kid, f) : -ENOMEM;
			/* C's children now sit on F; whoever held C holds F. */
			for (size_t k = 0; !ret && k <= json_object_array_length(snaps); k++) {
				json_object *o = k < json_object_array_length(snaps)
						     ? json_object_array_get_idx(snaps, k)
						     : NULL;
				const char *l = o ? snap_layer(o, i) : jstr(d, "current");
				struct block_device *b = NULL;
				if (!l || !strcmp(l, kid) ||
				    block_open(l, disk_fmt(d, l), BLOCK_OPEN_NO_BACKING, &b) < 0)
					continue;
				bool child = b->backing_name && !strcmp(b->backing_name, kid);
				block_close(b);
				if (child)
					ret = snap_rebase(d, l, f);
			}
			if (!ret) {
				if (owner[0])
					json_object_array_put_idx(jarr(owner[0], "layers"), i,
								  json_object_new_string(f));
				else if (!strcmp(f, jstr(d, "file")))
					json_object_object_add(d, "current", NULL); /* the base */
				else
					json_object_object_add(d, "current",
							       json_object_new_string(f));
				unlink(kid);
			}
			free(kid);
			if (ret < 0)
				return ret;
		}
	}
	json_object_array_del_idx(snaps, idx, 1);
	return 0;
}

int vm_snapshot_apply(const char *dir, enum vm_snapshot_op op, const char *name)
{
	json_object *t = NULL;
	int ret = snap_load(dir, &t);
	if (ret < 0)
		return ret;
	size_t n = json_object_array_length(jarr(t, "disks"));
	struct block_device **bs = calloc(n ? n : 1, sizeof(*bs));
	if (!bs)
		ret = -ENOMEM;
	else
		ret = snap_lock_all(jarr(t, "disks"), bs);
	if (!ret) {
		if (op == VM_SNAPSHOT_TAKE)
			ret = snap_take(dir, t, name);
		else if (op == VM_SNAPSHOT_RESTORE)
			ret = snap_restore(dir, t, name);
		else
			ret = snap_delete(t, name);
	}
	if (!ret)
		ret = snap_save(dir, t);
	for (size_t i = 0; bs && i < n; i++)
		if (bs[i])
			block_close(bs[i]);
	free(bs);
	json_object_put(t);
	return ret;
}

int vm_snapshot_list(const char *dir)
{
	json_object *t = NULL;
	int ret = snap_load(dir, &t);
	if (ret < 0)
		return ret;
	json_object *snaps = jarr(t, "snapshots");
	for (size_t i = 0; i < json_object_array_length(snaps); i++) {
		json_object *s = json_object_array_get_idx(snaps, i), *c;
		time_t when =
		    json_object_object_get_ex(s, "created", &c) ? json_object_get_int64(c) : 0;
		char date[32];
		strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", gmtime(&when));
		printf("%-24s %s UTC\n", jstr(s, "name") ? jstr(s, "name") : "?", date);
	}
	json_object_put(t);
	return 0;
}

int vm_snapshot_current(const char *dir, unsigned index, const char *file, char **layer, char **fmt)
{
	char path[PATH_MAX];
	*layer = *fmt = NULL;
	snprintf(path, sizeof(path), "%.*s/snapshots.json", PATH_MAX - 20, dir);
	if (access(path, F_OK) < 0)
		return 0;
	json_object *t = NULL;
	int ret = snap_load(dir, &t);
	if (ret < 0)
		return ret;
	json_object *disks = jarr(t, "disks");
	json_object *d = index < json_object_array_length(disks)
			     ? json_object_array_get_idx(disks, index)
			     : NULL;
	const char *cur = d ? jstr(d, "current") : NULL;
	if (cur && file && strcmp(jstr(d, "file"), file)) {
		ret =
		    error_set(-EINVAL,
			      "disk %u is %s, but the VM's snapshots were taken of %s (use another "
			      "--state-dir or --name)",
			      index, file, jstr(d, "file"));
	} else if (cur && (!(*layer = strdup(cur)) || !(*fmt = strdup(disk_layer_fmt(d))))) {
		free(*layer);
		*layer = NULL;
		ret = -ENOMEM;
	}
	json_object_put(t);
	return ret;
}

/* realpath of `path` compared with `want` (both may name one file differently). */
static bool snap_same_file(const char *path, const char *want)
{
	char *a = realpath(path, NULL), *b = realpath(want, NULL);
	bool same = a && b && !strcmp(a, b);
	free(a);
	free(b);
	return same;
}

int vm_snapshot_take_live(const char *dir, const char *name, const char *const *tops, size_t ntops,
			  vm_snapshot_switch_fn switch_layers, void *opaque)
{
	json_object *t = NULL, *before = NULL;
	int ret = snap_load(dir, &t);
	if (ret < 0)
		return ret;
	if ((ret = snap_load(dir, &before)) < 0) {
		json_object_put(t);
		return ret;
	}
	json_object *disks = jarr(t, "disks");
	size_t n = json_object_array_length(disks);
	const char **layers = calloc(n ? n : 1, sizeof(*layers));
	const char **formats = calloc(n ? n : 1, sizeof(*formats));
	if (!layers || !formats) {
		ret = error_set(-ENOMEM, "out of memory");
	}
	/* The tree must describe what the VM runs: disk i's top is the file the VM writes. */
	for (size_t i = 0; !ret && i < n; i++) {
		json_object *d = json_object_array_get_idx(disks, i);
		if (!disk_normal(d))
			continue;
		if (i >= ntops || !tops[i] || !snap_same_file(tops[i], disk_top(d))) {
			ret = error_set(
			    -ESTALE,
			    "disk %zu: the VM writes %s, but its snapshot record says %s (the "
			    "disks changed since the VM started: power it off to take a "
			    "snapshot)",
			    i, i < ntops && tops[i] ? tops[i] : "nothing", disk_top(d));
		}
	}
	if (!ret)
		ret = snap_take(dir, t, name);
	for (size_t i = 0; !ret && i < n; i++) {
		json_object *d = json_object_array_get_idx(disks, i);
		layers[i] = disk_normal(d) ? jstr(d, "current") : NULL;
		formats[i] = layers[i] ? disk_layer_fmt(d) : NULL;
	}
	/* Saved before the switch: if we die in between, the guest (paused) wrote nothing since,
	 * and the next start opens the new empty layers over the same contents. */
	if (!ret && (ret = snap_save(dir, t)) == 0 &&
	    (ret = switch_layers(opaque, layers, formats, n)) < 0) {
		if (snap_save(dir, before) < 0)
			log_error("snapshot", "%s", error_msg());
		for (size_t i = 0; i < n; i++)
			if (layers[i])
				unlink(layers[i]);
	}
	free(layers);
	free(formats);
	json_object_put(before);
	json_object_put(t);
	return ret;
}
