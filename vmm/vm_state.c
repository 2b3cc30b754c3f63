/* The VM state directory (see vm_state.h). */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/core/block.h"
#include "storage/core/block_path.h"
#include "storage/core/disk_lock.h"
#include "devices/disk_mode.h"
#include "vmm/control.h"
#include "vmm/vm_config.h"
#include "vmm/vm_disk_format.h"
#include "vmm/vm_snapshot.h"
#include "vmm/vm_state.h"
#include "vmm/vm_uuid.h"
#include "lib/error.h"
#include "lib/mkdirs.h"

int vm_state_dir(const char *dir, const char *name, char *buf, size_t len)
{
	const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
	int n;
	if (dir && dir[0])
		n = snprintf(buf, len, "%s", dir);
	else if (xdg && xdg[0] == '/')
		n = snprintf(buf, len, "%s/minivmm/vms/%s", xdg, name);
	else if (home && home[0] == '/')
		n = snprintf(buf, len, "%s/.local/share/minivmm/vms/%s", home, name);
	else
		return error_set(-ENOENT,
				 "no state directory: set --state-dir, XDG_DATA_HOME or HOME");
	if (n < 0 || (size_t)n >= len)
		return error_set(-ENAMETOOLONG, "state directory path too long");
	return 0;
}

static int vm_state_path(const char *dir, const char *name, char *buf);

void vm_state_allow_recorded_disks(const char *image)
{
	char root[PATH_MAX], *real = realpath(image, NULL), *real_root = NULL;
	/* The root is the state directory of a VM named "x", less "/x". */
	if (!real || vm_state_dir(NULL, "x", root, sizeof(root)) < 0)
		goto out;
	root[strlen(root) - 2] = '\0';
	real_root = realpath(root, NULL);
	char *slash = strrchr(real, '/');
	size_t n = real_root ? strlen(real_root) : 0;
	/* real must be ROOT/NAME/FILE: exactly one directory below the root. */
	if (!real_root || !slash || strncmp(real, real_root, n) || real[n] != '/' ||
	    memchr(real + n + 1, '/', slash - (real + n + 1)))
		goto out;
	*slash = '\0';
	char path[PATH_MAX];
	if (vm_state_path(real, "disks.json", path) < 0)
		goto out;
	json_object *rec = json_object_from_file(path);
	for (size_t i = 0;
	     rec && json_object_is_type(rec, json_type_array) && i < json_object_array_length(rec);
	     i++) {
		json_object *file;
		if (json_object_object_get_ex(json_object_array_get_idx(rec, i), "file", &file) &&
		    json_object_is_type(file, json_type_string) && json_object_get_string(file)[0])
			block_path_allow_file(
			    json_object_get_string(file)); /* missing: says so later */
	}
	json_object_put(rec);
out:
	free(real);
	free(real_root);
}

/* dir/name into buf (PATH_MAX bytes); -ENAMETOOLONG when it does not fit. */
static int vm_state_path(const char *dir, const char *name, char *buf)
{
	size_t a = strlen(dir), b = strlen(name);
	if (a + 1 + b >= PATH_MAX)
		return -ENAMETOOLONG;
	memcpy(buf, dir, a);
	buf[a] = '/';
	memcpy(buf + a + 1, name, b + 1);
	return 0;
}

/* Field 22 of /proc/self/stat: the process start time, which exec keeps. */
static unsigned long long vm_state_starttime(void)
{
	char buf[1024];
	unsigned long long t = 0;
	FILE *f = fopen("/proc/self/stat", "re");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')'); /* the command name may hold spaces */
	for (int field = 2; p && field < 22; field++)
		p = strchr(p + 1, ' ');
	if (p)
		t = strtoull(p + 1, NULL, 10);
	return t;
}

/* Was the VM started by this very process before an exec (--reboot restart)? Then record us. */
static int vm_state_run_marker(const char *dir, bool *restarted)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	unsigned long long start = vm_state_starttime(), ostart = 0;
	int pid = 0;
	if (vm_state_path(dir, "run.pid", path) < 0 || vm_state_path(dir, "run.pid.tmp", tmp) < 0)
		return error_set(-ENAMETOOLONG, "%s: state directory path too long", dir);
	FILE *f = fopen(path, "re");
	*restarted = false;
	if (f) {
		if (fscanf(f, "%d %llu", &pid, &ostart) == 2 && pid == getpid() && start &&
		    ostart == start)
			*restarted = true;
		fclose(f);
	}
	f = fopen(tmp, "we");
	if (!f || fprintf(f, "%d %llu\n", (int)getpid(), start) < 0 || fclose(f) ||
	    rename(tmp, path) < 0)
		return error_set(-errno, "%s: %s", path, strerror(errno));
	return 0;
}

/* disks.json as last written: disk_open adds the UUIDs the state keeps (vm_state_disk_uuid). */
static json_object *vm_state_disks;
static char vm_state_dirpath[PATH_MAX];

static int vm_state_write_disks(const char *dir)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	int ret = vm_state_disks && vm_state_path(dir, "disks.json", path) == 0 &&
			  vm_state_path(dir, "disks.json.tmp", tmp) == 0 &&
			  json_object_to_file_ext(tmp, vm_state_disks,
						  JSON_C_TO_STRING_PRETTY |
						      JSON_C_TO_STRING_NOSLASHESCAPE) == 0 &&
			  rename(tmp, path) == 0
		      ? 0
		      : -EIO;
	if (ret < 0)
		error_set(ret, "%s/disks.json: cannot write", dir);
	return ret;
}

/* disks.json: what the VM is made of, for verbs that run while it is powered off. */
static int vm_state_record_disks(const char *dir, const struct vm_config *cfg)
{
	json_object *arr = json_object_new_array();
	for (unsigned i = 0; arr && i < cfg->ndisks; i++) {
		const struct disk_config *d = &cfg->disks[i];
		json_object *o = json_object_new_object();
		char *real = d->path ? realpath(d->path, NULL) : NULL;
		json_object_object_add(o, "file",
				       json_object_new_string(real	? real
							      : d->path ? d->path
									: ""));
		free(real);
		json_object_object_add(
		    o, "media",
		    json_object_new_string(d->media == DISK_MEDIA_CDROM ? "cdrom" : "hdd"));
		json_object_object_add(o, "mode", json_object_new_string(disk_mode_name(d->mode)));
		json_object_object_add(o, "format",
				       d->format ? json_object_new_string(d->format) : NULL);
		json_object_object_add(o, "bus", json_object_new_string(disk_bus_name(d->bus)));
		json_object_array_add(arr, o);
	}
	json_object_put(vm_state_disks);
	vm_state_disks = arr;
	return vm_state_write_disks(dir);
}

/* disk_open, for a hard disk whose format has no UUID: the one this VM keeps for the file,
 * also shown in disks.json. */
static int vm_state_disk_uuid(unsigned index, const char *path, uint8_t uuid[16])
{
	char text[37];
	char *real = realpath(path, NULL);
	if (!real) {
		int e = errno;
		return error_set(-e, "%s: %s", path, strerror(e));
	}
	int ret = vm_uuid_get(vm_state_dirpath, real, uuid, NULL);
	free(real);
	json_object *o = vm_state_disks && index < json_object_array_length(vm_state_disks)
			     ? json_object_array_get_idx(vm_state_disks, index)
			     : NULL;
	if (ret < 0 || !o)
		return ret;
	vm_uuid_format(uuid, text);
	json_object_object_add(o, "uuid", json_object_new_string(text));
	return vm_state_write_disks(vm_state_dirpath);
}

/* disk_mode_open, for a hard disk given without format=: the format recorded at its first
 * attach (STATE/formats.json), by the file's real path. */
static int vm_state_real(const char *path, char **real)
{
	*real = realpath(path, NULL);
	if (*real)
		return 0;
	int e = errno;
	return error_set(-e, "%s: %s", path, strerror(e));
}

static int vm_state_format_get(const char *path, char *fmt, size_t len)
{
	char found[VM_DISK_FORMAT_NAME_MAX], *real;
	int ret = vm_state_real(path, &real);
	if (ret < 0)
		return ret;
	ret = vm_disk_format_get(vm_state_dirpath, real, found);
	free(real);
	if (ret == 0 && snprintf(fmt, len, "%s", found) >= (int)len)
		ret = -ENAMETOOLONG;
	return ret;
}

static int vm_state_format_record(const char *path, const char *fmt)
{
	char *real;
	int ret = vm_state_real(path, &real);
	if (ret < 0)
		return ret;
	ret = vm_disk_format_record(vm_state_dirpath, real, fmt);
	free(real);
	return ret;
}

/* Normal disks with VM snapshots write their snapshot's current layer. */
static char **vm_state_layer, **vm_state_layer_fmt;
static unsigned vm_state_nlayers;

static void vm_state_layers_free(void)
{
	for (unsigned i = 0; i < vm_state_nlayers; i++) {
		free(vm_state_layer[i]);
		free(vm_state_layer_fmt[i]);
	}
	free(vm_state_layer);
	free(vm_state_layer_fmt);
	vm_state_layer = vm_state_layer_fmt = NULL;
	vm_state_nlayers = 0;
}

static int vm_state_layers(const char *dir, const struct vm_config *cfg)
{
	vm_state_layers_free();
	vm_state_layer = calloc(cfg->ndisks, sizeof(*vm_state_layer));
	vm_state_layer_fmt = calloc(cfg->ndisks, sizeof(*vm_state_layer_fmt));
	if (!vm_state_layer || !vm_state_layer_fmt) {
		free(vm_state_layer);
		free(vm_state_layer_fmt);
		vm_state_layer = vm_state_layer_fmt = NULL;
		return error_set(-ENOMEM, "out of memory");
	}
	vm_state_nlayers = cfg->ndisks;
	for (unsigned i = 0; i < cfg->ndisks; i++) {
		const struct disk_config *d = &cfg->disks[i];
		if (d->media != DISK_MEDIA_HDD || d->mode != DISK_MODE_NORMAL || !d->path)
			continue;
		char *real = realpath(d->path, NULL);
		int ret = vm_snapshot_current(dir, i, real ? real : d->path, &vm_state_layer[i],
					      &vm_state_layer_fmt[i]);
		free(real);
		if (ret < 0) {
			vm_state_layers_free();
			return ret;
		}
	}
	return 0;
}

/* The state directory of the VM this process runs ("" before vm_state_prepare or without one). */
static char vm_state_active[PATH_MAX];

const char *vm_state_current(void)
{
	return vm_state_active[0] ? vm_state_active : NULL;
}

int vm_state_prepare(const struct vm_config *cfg)
{
	struct disk_mode_env env = {0};
	char rundir[PATH_MAX];
	int ret;

	if (!cfg->ndisks && !(cfg->firmware_efi && !cfg->kernel))
		return 0; /* nothing to keep (UEFI keeps its variables) */
	if ((ret = vm_state_dir(cfg->state_dir, cfg->name, env.state_dir, sizeof(env.state_dir))) <
		0 ||
	    (ret = mkdirs(env.state_dir, 0700)) < 0 ||
	    (ret = vm_state_run_marker(env.state_dir, &env.restarted)) < 0 ||
	    (ret = vm_uuid_check(env.state_dir)) < 0 ||
	    (ret = vm_disk_format_check(env.state_dir)) < 0 ||
	    (ret = vm_state_record_disks(env.state_dir, cfg)) < 0)
		return ret;
	if ((ret = vm_state_layers(env.state_dir, cfg)) < 0)
		return ret;
	env.layers = vm_state_layer;
	env.layer_formats = vm_state_layer_fmt;
	env.nlayers = vm_state_nlayers;
	env.uuid = vm_state_disk_uuid;
	env.format_get = vm_state_format_get;
	env.format_record = vm_state_format_record;
	memcpy(vm_state_dirpath, env.state_dir, sizeof(vm_state_dirpath));
	disk_mode_env_set(&env);
	snprintf(vm_state_active, sizeof(vm_state_active), "%s", env.state_dir);
	/* Without a runtime dir, holders of locked images just go unnamed. */
	if (control_runtime_dir(rundir, sizeof(rundir)) == 0)
		disk_lock_owner_set(cfg->name, rundir);
	return 0;
}

void vm_state_release(void)
{
	disk_lock_owner_clear();
	vm_state_active[0] = 0;
	disk_mode_env_set(NULL);
	vm_state_layers_free();
	json_object_put(vm_state_disks);
	vm_state_disks = NULL;
	vm_state_dirpath[0] = 0;
}
