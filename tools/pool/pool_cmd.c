/* `minivmm pool`: storage pools (storage/pool/pool.h), directories of volumes under a name.
 *
 *   minivmm pool create NAME DIR     define a pool over DIR (created when missing)
 *   minivmm pool delete NAME         forget the pool; its directory and volumes stay
 *   minivmm pool list [--json]       every pool: directory, volumes, space
 *   minivmm pool info NAME [--json]  one pool and its volumes
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "lib/error.h"
#include "lib/log.h"
#include "storage/core/disk_lock.h"
#include "storage/pool/pool.h"
#include "tools/pool/pool_vols.h"
#include "tools/size.h"
#include "vmm/command.h"
#include "vmm/control.h"

static const char pool_usage[] = "usage: minivmm pool create NAME DIR\n"
				 "       minivmm pool delete NAME\n"
				 "       minivmm pool list [--json]\n"
				 "       minivmm pool info NAME [--json]\n";

static int usage_error(const char *fmt, const char *arg)
{
	log_error("pool", fmt, arg);
	fputs(pool_usage, stderr);
	return 2;
}

static int fail(void)
{
	log_error("pool", "%s", error_msg());
	return 1;
}

/* A pool's figures: its volumes and the space of the file system under it. */
struct pool_summary {
	char *path;
	struct pool_vol *vols;
	size_t nvols;
	uint64_t capacity, available, allocation;
};

static int pool_summary_get(const char *name, struct pool_summary *s)
{
	memset(s, 0, sizeof(*s));
	int ret = pool_path(name, &s->path);
	if (ret < 0)
		return ret;
	if ((ret = pool_vols_scan(s->path, &s->vols, &s->nvols)) < 0)
		return error_wrap(ret, "pool %s", name);
	struct statvfs fs;
	if (statvfs(s->path, &fs) == 0) {
		s->capacity = (uint64_t)fs.f_blocks * fs.f_frsize;
		s->available = (uint64_t)fs.f_bavail * fs.f_frsize;
	}
	for (size_t i = 0; i < s->nvols; i++)
		s->allocation += s->vols[i].allocation;
	return 0;
}

static void pool_summary_free(struct pool_summary *s)
{
	free(s->path);
	pool_vols_free(s->vols, s->nvols);
}

static struct json_object *pool_summary_json(const char *name, const struct pool_summary *s,
					     bool with_vols)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "type", json_object_new_string("dir"));
	json_object_object_add(o, "path", json_object_new_string(s->path));
	json_object_object_add(o, "volumes", json_object_new_int64((int64_t)s->nvols));
	json_object_object_add(o, "capacity", json_object_new_int64((int64_t)s->capacity));
	json_object_object_add(o, "allocation", json_object_new_int64((int64_t)s->allocation));
	json_object_object_add(o, "available", json_object_new_int64((int64_t)s->available));
	if (with_vols) {
		struct json_object *a = json_object_new_array();
		for (size_t i = 0; i < s->nvols; i++)
			json_object_array_add(a, pool_vol_json(&s->vols[i]));
		json_object_object_add(o, "volume-list", a);
	}
	return o;
}

static void print_json(struct json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
	json_object_put(o);
}

static int pool_create(int argc, char **argv)
{
	if (argc != 4)
		return usage_error("%s: create expects NAME and DIR", "create");
	if (pool_define(argv[2], argv[3]) < 0)
		return fail();
	char *path = NULL;
	pool_path(argv[2], &path);
	printf("pool %s: %s\n", argv[2], path ? path : argv[3]);
	free(path);
	return 0;
}

static int pool_delete(int argc, char **argv)
{
	if (argc != 3)
		return usage_error("%s: delete expects NAME", "delete");
	struct pool_summary s;
	if (pool_summary_get(argv[2], &s) < 0) {
		pool_summary_free(&s);
		return fail();
	}
	/* A running VM naming pool:NAME/... would lose nothing, but the user would lose the name
	 * its next start uses: refuse while any volume is held. */
	for (size_t i = 0; i < s.nvols; i++) {
		if (s.vols[i].holder) {
			log_error("pool", "%s: volume %s is in use (%s)", argv[2], s.vols[i].name,
				  s.vols[i].holder);
			pool_summary_free(&s);
			return 1;
		}
	}
	if (pool_undefine(argv[2]) < 0) {
		pool_summary_free(&s);
		return fail();
	}
	printf("pool %s deleted; %s and its %zu volume%s stay\n", argv[2], s.path, s.nvols,
	       s.nvols == 1 ? "" : "s");
	pool_summary_free(&s);
	return 0;
}

static int json_flag(int argc, char **argv, int first, bool *json)
{
	*json = false;
	for (int i = first; i < argc; i++) {
		if (strcmp(argv[i], "--json"))
			return usage_error("unknown argument '%s'", argv[i]);
		*json = true;
	}
	return 0;
}

static int pool_list_cmd(int argc, char **argv)
{
	bool json;
	if (json_flag(argc, argv, 2, &json))
		return 2;
	char **names;
	size_t n;
	if (pool_list(&names, &n) < 0)
		return fail();
	struct json_object *arr = json ? json_object_new_array() : NULL;
	if (!json)
		printf("%-20s %-8s %-10s %-10s %s\n", "NAME", "VOLUMES", "ALLOCATED", "AVAILABLE",
		       "PATH");
	int ret = 0;
	for (size_t i = 0; i < n; i++) {
		struct pool_summary s;
		if (pool_summary_get(names[i], &s) < 0) {
			log_error("pool", "%s", error_msg()); /* the others are still listed */
			ret = 1;
		} else if (json) {
			json_object_array_add(arr, pool_summary_json(names[i], &s, false));
		} else {
			char a[32], b[32];
			printf("%-20s %-8zu %-10s %-10s %s\n", names[i], s.nvols,
			       size_format(s.allocation, a, sizeof(a)),
			       size_format(s.available, b, sizeof(b)), s.path);
		}
		pool_summary_free(&s);
	}
	pool_list_free(names, n);
	if (json)
		print_json(arr);
	return ret;
}

static int pool_info(int argc, char **argv)
{
	bool json;
	if (argc < 3)
		return usage_error("%s: info expects NAME", "info");
	if (json_flag(argc, argv, 3, &json))
		return 2;
	struct pool_summary s;
	if (pool_summary_get(argv[2], &s) < 0) {
		pool_summary_free(&s);
		return fail();
	}
	if (json) {
		print_json(pool_summary_json(argv[2], &s, true));
	} else {
		char c[32], a[32], f[32];
		printf("name:       %s\ntype:       dir\npath:       %s\n", argv[2], s.path);
		printf("capacity:   %s\nallocation: %s\navailable:  %s\nvolumes:    %zu\n",
		       size_format(s.capacity, c, sizeof(c)),
		       size_format(s.allocation, a, sizeof(a)),
		       size_format(s.available, f, sizeof(f)), s.nvols);
		if (s.nvols) {
			printf("\n");
			pool_vols_print(s.vols, s.nvols);
		}
	}
	pool_summary_free(&s);
	return 0;
}

static int pool_main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help")) {
		fputs(pool_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	const char *verb = argv[1];
	disk_lock_registry_dir_fn(control_runtime_dir); /* to name a running VM holding a volume */
	if (!strcmp(verb, "create"))
		return pool_create(argc, argv);
	if (!strcmp(verb, "delete"))
		return pool_delete(argc, argv);
	if (!strcmp(verb, "list"))
		return pool_list_cmd(argc, argv);
	if (!strcmp(verb, "info"))
		return pool_info(argc, argv);
	return usage_error("unknown verb '%s'", verb);
}

static const struct command pool_command = {
    .name = "pool",
    .summary = "storage pools: directories of volumes under a name (minivmm pool help)",
    .run = pool_main,
};
COMMAND(pool_command)
