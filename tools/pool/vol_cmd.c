/* `minivmm vol`: volumes of a storage pool (tools/pool/pool_cmd.c), named POOL/VOLUME.
 *
 *   minivmm vol create POOL/VOL [SIZE] [-f FMT] [--thick] [-b BACKING_VOL [-F FMT]]
 *   minivmm vol delete POOL/VOL
 *   minivmm vol list POOL [--json]
 *   minivmm vol info POOL/VOL [--json]
 *   minivmm vol clone POOL/VOL [POOL2/]NEW [-f FMT] [--thick]
 *   minivmm vol resize POOL/VOL SIZE
 *   minivmm vol path POOL/VOL
 *
 * A volume's format is -f, else what its name's extension says (.qcow2, .vdi, .vmdk, .vhd, .vhdx,
 * .hdd, .img/.raw).  Thin (the default) allocates as the guest writes; --thick reserves the whole
 * size now (preallocation=falloc for raw, qcow2 and VDI, fixed VHD/VHDX, a flat VMDK), as
 * VirtualBox's "fixed size" and libvirt's allocation=capacity.  A running VM's volume is never
 * deleted (its image lock says so), nor a volume another one in the pool uses as its backing.
 * Resize and clone run through `minivmm img` and keep its checks and messages.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/error.h"
#include "lib/log.h"
#include "storage/core/block.h"
#include "storage/core/disk_lock.h"
#include "storage/pool/pool.h"
#include "tools/img.h"
#include "tools/pool/pool_vols.h"
#include "tools/size.h"
#include "vmm/command.h"
#include "vmm/control.h"

static const char vol_usage[] =
    "usage: minivmm vol create POOL/VOL [SIZE] [-f FMT] [--thick] [-b BACKING_VOL [-F FMT]]\n"
    "       minivmm vol delete POOL/VOL\n"
    "       minivmm vol list POOL [--json]\n"
    "       minivmm vol info POOL/VOL [--json]\n"
    "       minivmm vol clone POOL/VOL [POOL2/]NEW [-f FMT] [--thick]\n"
    "       minivmm vol resize POOL/VOL SIZE\n"
    "       minivmm vol path POOL/VOL\n"
    "  A VM uses a volume as --disk pool:POOL/VOL[,MODE][,bus=...].\n";

static int usage_error(const char *fmt, const char *arg)
{
	log_error("vol", fmt, arg);
	fputs(vol_usage, stderr);
	return 2;
}

static int fail(void)
{
	log_error("vol", "%s", error_msg());
	return 1;
}

/* A volume named on the command line. */
struct vol_ref {
	char *pool, *vol, *dir, *path;
};

static void vol_ref_free(struct vol_ref *r)
{
	free(r->pool);
	free(r->vol);
	free(r->dir);
	free(r->path);
	memset(r, 0, sizeof(*r));
}

/* "POOL/VOL", or "VOL" in default_pool when that is given. */
static int vol_ref_get(const char *spec, const char *default_pool, struct vol_ref *r)
{
	memset(r, 0, sizeof(*r));
	int ret;
	if (default_pool && !strchr(spec, '/')) {
		r->pool = strdup(default_pool);
		r->vol = strdup(spec);
		ret = !r->pool || !r->vol ? error_set(-ENOMEM, "out of memory")
					  : vol_name_check(spec);
	} else {
		ret = pool_volume_split(spec, &r->pool, &r->vol);
	}
	if (!ret)
		ret = pool_path(r->pool, &r->dir);
	if (!ret && asprintf(&r->path, "%s/%s", r->dir, r->vol) < 0) {
		r->path = NULL;
		ret = error_set(-ENOMEM, "out of memory");
	}
	if (ret)
		vol_ref_free(r);
	return ret;
}

static int vol_ref_exists(const struct vol_ref *r)
{
	struct stat st;
	if (lstat(r->path, &st) < 0)
		return error_set(-ENOENT, "no volume %s in pool %s", r->vol, r->pool);
	if (!S_ISREG(st.st_mode))
		return error_set(-EINVAL, "%s/%s: %s is not a regular file", r->pool, r->vol,
				 r->path);
	return 0;
}

/* The -o options that make fmt thick (every byte reserved at creation). */
static int thick_options(const char *fmt, bool backing, const char **opts)
{
	if (!strcmp(fmt, "raw") || !strcmp(fmt, "vdi") || (!strcmp(fmt, "qcow2") && !backing))
		*opts = "preallocation=falloc";
	else if (!strcmp(fmt, "vpc") || !strcmp(fmt, "vhdx"))
		*opts = "subformat=fixed";
	else if (!strcmp(fmt, "vmdk") && !backing)
		*opts = "subformat=monolithicFlat";
	else
		return error_set(-ENOTSUP, "thick provisioning is not available for %s%s", fmt,
				 backing ? " with a backing volume" : "");
	return 0;
}

/* Reserve the host blocks of every file of a new thick volume: a fixed VHD or a flat VMDK
 * extent is created at full length but sparse. */
static int reserve_files(const char *dir, const char *name)
{
	struct pool_vol v;
	int ret = pool_vol_scan_one(dir, name, &v);
	for (size_t i = 0; !ret && i <= v.nextents; i++) {
		const char *f = i ? v.extents[i - 1] : name;
		char *p = NULL;
		if (!f || asprintf(&p, "%s/%s", dir, f) < 0)
			continue;
		int fd = open(p, O_RDWR | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0 ||
		    (st.st_size && fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, st.st_size) < 0))
			ret = error_set(-errno, "%s: cannot reserve space: %s", p, strerror(errno));
		if (fd >= 0)
			close(fd);
		free(p);
	}
	pool_vol_free(&v);
	return ret;
}

static const char *vol_format(const char *given, const char *name)
{
	const char *implied = pool_vol_format(name);
	/* A volume is opened as its name's format: a name saying another one would not open. */
	if (given && implied) {
		const char *g = img_vbox_format(given) ? img_vbox_format(given) : given;
		if (strcmp(g, implied)) {
			error_set(-EINVAL, "%s: the name says %s, -f says %s", name, implied,
				  given);
			return NULL;
		}
	}
	const char *fmt = given ? given : implied;
	if (!fmt) {
		error_set(-EINVAL,
			  "%s: give -f FMT or a name ending in .qcow2, .vdi, .vmdk, .vhd, "
			  ".vhdx, .hdd, .img or .raw",
			  name);
		return NULL;
	}
	/* VirtualBox's names for formats too (VHD, QCOW2, ...). */
	const char *vbox = img_vbox_format(fmt);
	fmt = vbox ? vbox : fmt;
	if (!block_driver_find(fmt)) {
		error_set(-EINVAL, "%s: unknown format '%s'", name, fmt);
		return NULL;
	}
	return fmt;
}

enum { OPT_THICK = 256, OPT_JSON };
static const struct option vol_longopts[] = {
    {"thick", no_argument, NULL, OPT_THICK},
    {"thin", no_argument, NULL, 't'},
    {"backing", required_argument, NULL, 'b'},
    {"json", no_argument, NULL, OPT_JSON},
    {0},
};

struct vol_args {
	const char *fmt, *backing, *backing_fmt;
	bool thick, json;
	int npos;
	char *pos[3];
};

static int vol_args_parse(int argc, char **argv, const char *allowed, struct vol_args *a)
{
	memset(a, 0, sizeof(*a));
	int c;
	optind = 0;
	opterr = 0;
	/* argv[1] is the sub-verb: getopt starts after it. */
	while ((c = getopt_long(argc - 1, argv + 1, "+f:b:F:", vol_longopts, NULL)) != -1 ||
	       optind < argc - 1) {
		if (c == -1) { /* a positional argument; options may follow it */
			if (a->npos == 3)
				return usage_error("%s: too many arguments", argv[1]);
			a->pos[a->npos++] = argv[1 + optind++];
			continue;
		}
		const char *name = c == 'f'	    ? "f"
				   : c == 'b'	    ? "b"
				   : c == 'F'	    ? "F"
				   : c == OPT_THICK ? "thick"
				   : c == 't'	    ? "thin"
				   : c == OPT_JSON  ? "json"
						    : NULL;
		if (!name || !strstr(allowed, name))
			return usage_error("%s: unknown or misplaced option", argv[1]);
		switch (c) {
		case 'f':
			a->fmt = optarg;
			break;
		case 'b':
			a->backing = optarg;
			break;
		case 'F':
			a->backing_fmt = optarg;
			break;
		case OPT_THICK:
			a->thick = true;
			break;
		case 't':
			a->thick = false;
			break;
		case OPT_JSON:
			a->json = true;
			break;
		}
	}
	return 0;
}

static int vol_create(int argc, char **argv)
{
	struct vol_args a;
	if (vol_args_parse(argc, argv, " f b F thick thin ", &a))
		return 2;
	if (a.npos < 1 || a.npos > 2 || (a.npos == 1 && !a.backing))
		return usage_error(
		    "%s: create expects POOL/VOL and SIZE (SIZE may be left out with "
		    "a backing volume)",
		    "create");
	struct vol_ref r;
	if (vol_ref_get(a.pos[0], NULL, &r) < 0)
		return fail();
	int ret = 1;
	struct block_opts opts = {0};
	struct stat st;
	uint64_t size = 0;
	const char *fmt = vol_format(a.fmt, r.vol), *thick = NULL, *bfmt = NULL;
	struct vol_ref b = {0};
	if (!fmt)
		goto out_err;
	if (lstat(r.path, &st) == 0) {
		error_set(-EEXIST, "volume %s exists in pool %s", r.vol, r.pool);
		goto out_err;
	}
	if (a.npos == 2) {
		int e = size_parse(a.pos[1], &size);
		if (e < 0 || size > (uint64_t)INT64_MAX - 511) {
			error_set(-EINVAL, "invalid size '%s'", a.pos[1]);
			goto out_err;
		}
		size = (size + 511) & ~511ULL;
	}
	if (a.backing) {
		/* The backing volume lives in the same pool, and the image names it relative to
		 * its own directory, so the pool can move as a whole. */
		if (vol_ref_get(a.backing, r.pool, &b) < 0 || vol_ref_exists(&b) < 0)
			goto out_err;
		if (strcmp(b.pool, r.pool)) {
			error_set(-EINVAL, "backing volume %s/%s is in another pool than %s",
				  b.pool, b.vol, r.pool);
			goto out_err;
		}
		/* Never probed: a guest may have written any header into a raw volume. */
		if (!(bfmt = vol_format(a.backing_fmt, b.vol)))
			goto out_err;
	}
	if (a.thick && thick_options(fmt, a.backing != NULL, &thick) < 0)
		goto out_err;
	if (thick && block_opts_parse(&opts, thick) < 0) {
		error_set(-ENOMEM, "out of memory");
		goto out_err;
	}
	struct block_create_args args = {
	    .size = size, .backing = b.vol, .backing_fmt = bfmt, .opts = &opts};
	if (block_create(fmt, r.path, &args) < 0)
		goto out_err;
	if (thick && reserve_files(r.dir, r.vol) < 0) {
		unlink(r.path); /* half a thick volume is not what was asked for */
		goto out_err;
	}
	char human[32];
	printf("volume %s/%s: %s, %s, %s%s%s\n", r.pool, r.vol, fmt,
	       a.npos == 2 ? size_format(size, human, sizeof(human)) : "size of its backing",
	       thick ? "thick" : "thin", b.vol ? ", backing " : "", b.vol ? b.vol : "");
	ret = 0;
	goto out;
out_err:
	fail();
out:
	block_opts_free(&opts);
	vol_ref_free(&b);
	vol_ref_free(&r);
	return ret;
}

/* Take a write lock on path for the moment of its unlink: a VM that opened it meanwhile is
 * refused by its own lock, and one that holds it keeps it. */
static int unlink_locked(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return error_set(-errno, "%s: %s", path, strerror(errno));
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	int ret = 0;
	if (fcntl(fd, F_OFD_SETLK, &fl) < 0 && (errno == EAGAIN || errno == EACCES)) {
		ret = disk_lock_path_busy(path);
		if (ret == 0)
			ret = error_set(-EBUSY, "%s: locked by another process", path);
	} else if (unlink(path) < 0) {
		ret = error_set(-errno, "%s: %s", path, strerror(errno));
	}
	close(fd);
	return ret;
}

static int vol_delete(int argc, char **argv)
{
	if (argc != 3)
		return usage_error("%s: delete expects POOL/VOL", "delete");
	struct vol_ref r;
	if (vol_ref_get(argv[2], NULL, &r) < 0)
		return fail();
	struct pool_vol v = {0}, *all = NULL;
	size_t n = 0;
	int ret = pool_vol_scan_one(r.dir, r.vol, &v);
	if (!ret)
		ret = pool_vols_scan(r.dir, &all, &n);
	for (size_t i = 0; !ret && i < n; i++) {
		const char *bk = all[i].backing;
		const char *base = bk ? strrchr(bk, '/') : NULL;
		if (bk && !strcmp(base ? base + 1 : bk, r.vol) && strcmp(all[i].name, r.vol))
			ret = error_set(-EBUSY, "volume %s is the backing of %s/%s", r.vol, r.pool,
					all[i].name);
	}
	/* The extents first: a descriptor left without them is unusable anyway, while the
	 * reverse would leave orphans nothing lists. */
	for (size_t i = 0; !ret && i < v.nextents; i++) {
		char *p = NULL;
		if (!v.extents[i] || vol_name_check(v.extents[i]) < 0)
			continue; /* an extent outside the pool's rules is not ours to delete */
		if (asprintf(&p, "%s/%s", r.dir, v.extents[i]) < 0)
			ret = error_set(-ENOMEM, "out of memory");
		else if (disk_lock_path_busy(p) == -EBUSY)
			ret = -EBUSY;
		free(p);
	}
	if (!ret)
		ret = unlink_locked(r.path);
	for (size_t i = 0; !ret && i < v.nextents; i++) {
		char *p = NULL;
		if (v.extents[i] && !vol_name_check(v.extents[i]) &&
		    asprintf(&p, "%s/%s", r.dir, v.extents[i]) >= 0) {
			if (unlink(p) < 0 && errno != ENOENT)
				log_warn("vol", "%s: %s", p, strerror(errno));
			free(p);
		}
	}
	if (ret == 0)
		printf("volume %s/%s deleted\n", r.pool, r.vol);
	else
		fail();
	pool_vol_free(&v);
	pool_vols_free(all, n);
	vol_ref_free(&r);
	return ret ? 1 : 0;
}

static int vol_list(int argc, char **argv)
{
	struct vol_args a;
	if (vol_args_parse(argc, argv, " json ", &a))
		return 2;
	if (a.npos != 1)
		return usage_error("%s: list expects POOL", "list");
	char *dir = NULL;
	struct pool_vol *vols = NULL;
	size_t n = 0;
	if (pool_path(a.pos[0], &dir) < 0 || pool_vols_scan(dir, &vols, &n) < 0) {
		free(dir);
		return fail();
	}
	if (a.json) {
		struct json_object *arr = json_object_new_array();
		for (size_t i = 0; i < n; i++)
			json_object_array_add(arr, pool_vol_json(&vols[i]));
		puts(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY));
		json_object_put(arr);
	} else {
		pool_vols_print(vols, n);
	}
	pool_vols_free(vols, n);
	free(dir);
	return 0;
}

static int vol_info(int argc, char **argv)
{
	struct vol_args a;
	if (vol_args_parse(argc, argv, " json ", &a))
		return 2;
	if (a.npos != 1)
		return usage_error("%s: info expects POOL/VOL", "info");
	struct vol_ref r;
	struct pool_vol v;
	if (vol_ref_get(a.pos[0], NULL, &r) < 0)
		return fail();
	if (pool_vol_scan_one(r.dir, r.vol, &v) < 0) {
		vol_ref_free(&r);
		return fail();
	}
	if (a.json) {
		struct json_object *o = pool_vol_json(&v);
		json_object_object_add(o, "pool", json_object_new_string(r.pool));
		json_object_object_add(o, "path", json_object_new_string(r.path));
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
		json_object_put(o);
	} else {
		char c[32], al[32];
		printf("volume:     %s/%s\npath:       %s\n", r.pool, r.vol, r.path);
		if (v.format)
			printf("format:     %s\ncapacity:   %s (%llu bytes)\n", v.format,
			       size_format(v.capacity, c, sizeof(c)),
			       (unsigned long long)v.capacity);
		else
			printf("format:     unreadable (%s)\n", v.problem ? v.problem : "?");
		printf("allocation: %s\nbacking:    %s\nin use:     %s\n",
		       size_format(v.allocation, al, sizeof(al)), v.backing ? v.backing : "-",
		       v.holder ? v.holder : "no");
	}
	pool_vol_free(&v);
	vol_ref_free(&r);
	return 0;
}

static int vol_clone(int argc, char **argv)
{
	struct vol_args a;
	if (vol_args_parse(argc, argv, " f thick thin ", &a))
		return 2;
	if (a.npos != 2)
		return usage_error("%s: clone expects POOL/VOL and NEW", "clone");
	struct vol_ref src, dst = {0};
	if (vol_ref_get(a.pos[0], NULL, &src) < 0)
		return fail();
	int ret = 1;
	struct stat st;
	const char *fmt, *thick = NULL;
	if (vol_ref_exists(&src) < 0 || vol_ref_get(a.pos[1], src.pool, &dst) < 0)
		goto out_err;
	if (lstat(dst.path, &st) == 0) {
		error_set(-EEXIST, "volume %s exists in pool %s", dst.vol, dst.pool);
		goto out_err;
	}
	if (!(fmt = vol_format(a.fmt, dst.vol)))
		goto out_err;
	if (a.thick && thick_options(fmt, false, &thick) < 0)
		goto out_err;
	/* img convert opens the source under a read lock (a VM writing it refuses) and copies
	 * the data the chain shows, so the clone stands alone. */
	char *cv[8];
	int cc = 0;
	cv[cc++] = "convert";
	cv[cc++] = "-O";
	cv[cc++] = (char *)fmt;
	if (thick) {
		cv[cc++] = "-o";
		cv[cc++] = (char *)thick;
	}
	cv[cc++] = src.path;
	cv[cc++] = dst.path;
	cv[cc] = NULL;
	ret = img_convert_main(cc, cv);
	if (ret == 0)
		printf("volume %s/%s: a %s%s copy of %s/%s\n", dst.pool, dst.vol,
		       thick ? "thick " : "", fmt, src.pool, src.vol);
	goto out;
out_err:
	fail();
out:
	vol_ref_free(&src);
	vol_ref_free(&dst);
	return ret;
}

static int vol_resize(int argc, char **argv)
{
	if (argc != 4)
		return usage_error("%s: resize expects POOL/VOL and SIZE", "resize");
	struct vol_ref r;
	if (vol_ref_get(argv[2], NULL, &r) < 0 || vol_ref_exists(&r) < 0) {
		vol_ref_free(&r);
		return fail();
	}
	/* img resize locks the image for writing: a running VM's volume is refused, naming it. */
	char *rv[] = {"resize", r.path, argv[3], NULL};
	int ret = img_resize_main(3, rv);
	vol_ref_free(&r);
	return ret;
}

static int vol_path(int argc, char **argv)
{
	if (argc != 3)
		return usage_error("%s: path expects POOL/VOL", "path");
	struct vol_ref r;
	if (vol_ref_get(argv[2], NULL, &r) < 0 || vol_ref_exists(&r) < 0) {
		vol_ref_free(&r);
		return fail();
	}
	puts(r.path);
	vol_ref_free(&r);
	return 0;
}

static int vol_main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(int argc, char **argv);
	} verbs[] = {
	    {"create", vol_create}, {"delete", vol_delete}, {"list", vol_list}, {"info", vol_info},
	    {"clone", vol_clone},   {"resize", vol_resize}, {"path", vol_path},
	};
	if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help")) {
		fputs(vol_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	/* Holders of locked volumes are named from the VMs' runtime directory. */
	disk_lock_registry_dir_fn(control_runtime_dir);
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (!strcmp(argv[1], verbs[i].name))
			return verbs[i].run(argc, argv);
	return usage_error("unknown verb '%s'", argv[1]);
}

static const struct command vol_command = {
    .name = "vol",
    .summary = "volumes of a storage pool: create, delete, list, clone (minivmm vol help)",
    .run = vol_main,
};
COMMAND(vol_command)
