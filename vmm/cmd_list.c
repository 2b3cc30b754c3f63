/* `minivmm list [--json]`: the running VMs, found as sockets in the runtime dir.
 *
 * Each socket is asked `info`; the pid comes from the kernel (SO_PEERCRED) when info does not say.
 * A socket nobody listens on, whose name lock nobody holds, was left by a killed VM: removed.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-c/json.h>

#include "vmm/command.h"
#include "vmm/control_internal.h"
#include "lib/error.h"
#include "lib/log.h"

#define INFO_TIMEOUT_MS 5000

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names NAME of every NAME.sock in dir, sorted; *count set.  NULL on error. */
static char **scan_names(const char *dir, int *count)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **names = NULL;
	int n = 0, cap = 0;

	*count = 0;
	if (!d)
		return NULL;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		char *name;
		if (len <= 5 || strcmp(de->d_name + len - 5, ".sock"))
			continue;
		name = strndup(de->d_name, len - 5);
		if (!name || !control_name_valid(name)) {
			free(name);
			continue;
		}
		if (n == cap) {
			char **p = realloc(names, (cap = cap ? cap * 2 : 16) * sizeof(*p));
			if (!p) {
				free(name);
				break;
			}
			names = p;
		}
		names[n++] = name;
	}
	closedir(d);
	if (!names)
		names = calloc(1, sizeof(*names));
	if (names)
		qsort(names, n, sizeof(*names), cmp_str);
	*count = n;
	return names;
}

static void remove_stale(const char *name)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct stat before, after;

	if (control_path_for(name, ".sock", path, sizeof(path)) < 0 || lstat(path, &before) < 0 ||
	    !S_ISSOCK(before.st_mode))
		return;
	/* A held lock means a VM owns the name (it may be starting): leave its socket alone. */
	if (control_lock_held(name) != 0)
		return;
	if (lstat(path, &after) == 0 && after.st_ino == before.st_ino)
		unlink(path);
	if (control_path_for(name, ".lock", path, sizeof(path)) == 0)
		unlink(path); /* unlocked, so stale too; a starter re-checks its inode */
}

static int add(struct json_object *obj, const char *key, struct json_object *val)
{
	if (!val || json_object_object_add(obj, key, val) < 0) {
		json_object_put(val);
		return -ENOMEM;
	}
	return 0;
}

/* One VM's entry {"name","pid","state","info"?}, or NULL when it is gone (stale or vanished). */
static struct json_object *probe(const char *name)
{
	struct json_object *entry, *reply = NULL, *ok, *result, *v, *info = NULL;
	const char *state = "unreachable";
	pid_t pid = 0;
	int fd, ret;

	ret = control_connect(name, &fd, &pid);
	if (ret == -ECONNREFUSED)
		remove_stale(name);
	if (ret == -ECONNREFUSED || ret == -ENOENT)
		return NULL;
	entry = json_object_new_object();
	if (!entry || add(entry, "name", json_object_new_string(name)) < 0) {
		json_object_put(entry);
		if (!ret)
			close(fd);
		return NULL;
	}
	if (!ret) {
		ret = control_exchange(fd, name, 1, "info", 0, NULL, INFO_TIMEOUT_MS, &reply);
		close(fd);
	}
	if (!ret && json_object_object_get_ex(reply, "ok", &ok) && json_object_get_boolean(ok) &&
	    json_object_object_get_ex(reply, "result", &result) &&
	    json_object_is_type(result, json_type_object)) {
		state = "unknown";
		if (json_object_object_get_ex(result, "state", &v) &&
		    json_object_is_type(v, json_type_string))
			state = json_object_get_string(v);
		if (json_object_object_get_ex(result, "pid", &v) &&
		    json_object_is_type(v, json_type_int) && json_object_get_int64(v) > 0 &&
		    json_object_get_int64(v) <= 0x7fffffff)
			pid = (pid_t)json_object_get_int64(v);
		info = result;
	} else if (!ret) {
		state = "unknown"; /* answers, but has no info verb */
	}
	add(entry, "pid", pid > 0 ? json_object_new_int(pid) : json_object_new_null());
	add(entry, "state", json_object_new_string(state));
	if (info)
		add(entry, "info", json_object_get(info));
	json_object_put(reply);
	return entry;
}

static void print_line(struct json_object *e)
{
	struct json_object *v;
	char pid[16] = "-";

	if (json_object_object_get_ex(e, "pid", &v) && json_object_is_type(v, json_type_int))
		snprintf(pid, sizeof(pid), "%d", json_object_get_int(v));
	json_object_object_get_ex(e, "name", &v);
	control_print_clean(stdout, json_object_get_string(v));
	/* Names are at most 64 characters: pad to a column so the output lines up. */
	for (int i = (int)strlen(json_object_get_string(v)); i < 20; i++)
		putchar(' ');
	printf(" %-8s ", pid);
	json_object_object_get_ex(e, "state", &v);
	control_print_clean(stdout, json_object_get_string(v));
	putchar('\n');
}

static int run_list(int argc, char **argv)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct json_object *all;
	int json = 0, n, ret;
	char **names;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("usage: minivmm list [--json]\n"
			       "  One line per running VM: name, pid, state.\n");
			return 0;
		} else {
			log_error("list", "unknown argument '%s'", argv[i]);
			return 2;
		}
	}
	ret = control_runtime_dir_checked(dir, sizeof(dir));
	if (ret < 0) {
		log_error("list", "%s", error_msg());
		return 1;
	}
	names = scan_names(dir, &n);
	all = json_object_new_array();
	if (!names || !all) {
		log_error("list", "%s: %s", dir, names ? "out of memory" : strerror(errno));
		json_object_put(all);
		free(names);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		struct json_object *e = probe(names[i]);
		if (e && json_object_array_add(all, e) < 0)
			json_object_put(e);
		free(names[i]);
	}
	free(names);
	if (json) {
		printf("%s\n", json_object_to_json_string_ext(
				   all, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	} else {
		for (size_t i = 0; i < json_object_array_length(all); i++)
			print_line(json_object_array_get_idx(all, i));
	}
	json_object_put(all);
	if (fflush(stdout) != 0) {
		log_error("list", "writing output: %s", strerror(errno));
		return 1;
	}
	return 0;
}

static const struct command cmd_list = {
    .name = "list",
    .summary = "list running VMs (name, pid, state)",
    .run = run_list,
};
COMMAND(cmd_list)
