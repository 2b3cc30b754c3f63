/* `minivmm switch start|stop|list|info`: virtual switches, each its own process (net/).
 *
 *   minivmm switch start NAME [--uplink TAP] [--vlan-aware] [--mac-limit N] [--aging S]
 *   minivmm switch stop NAME
 *   minivmm switch list [--json]
 *   minivmm switch info NAME [--json]
 *
 * A switch listens on <runtime dir>/NAME.switch (the VMs' control directory rule); `start`
 * returns once it accepts ports, and the switch lives on (its own session) until `stop`.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/switch_core.h"
#include "net/switch_proto.h"
#include "net/switch_server.h"
#include "vmm/command.h"
#include "vmm/control_internal.h"
#include "lib/error.h"
#include "lib/log.h"

#define SWITCH_SUFFIX SWITCH_SOCKET_SUFFIX
#define CALL_TIMEOUT_MS 5000

static const char switch_usage[] =
    "usage: minivmm switch start NAME [--uplink TAP] [--vlan-aware] [--mac-limit N] [--aging S]\n"
    "       minivmm switch stop NAME\n"
    "       minivmm switch list [--json]\n"
    "       minivmm switch info NAME [--json]\n";

static int usage_error(const char *msg)
{
	log_error("switch", "%s", msg);
	fputs(switch_usage, stderr);
	return 2;
}

static int path_of(const char *name, char *path, size_t len)
{
	if (control_path_for(name, SWITCH_SUFFIX, path, len) < 0) {
		log_error("switch", "%s", error_msg());
		return -1;
	}
	return 0;
}

static int call(const char *name, const char *op, struct json_object **reply)
{
	char path[PATH_MAX];
	if (path_of(name, path, sizeof(path)) < 0)
		return 1;
	struct json_object *req = json_object_new_object();
	json_object_object_add(req, "op", json_object_new_string(op));
	int r = switch_call(path, req, CALL_TIMEOUT_MS, NULL, reply);
	json_object_put(req);
	if (r < 0) {
		log_error("switch", "%s: %s", name, error_msg());
		return 1;
	}
	return 0;
}

static int parse_count(const char *s, unsigned max, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (!*s || *s < '0' || *s > '9' || *end || errno || v == 0 || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int cmd_start(int argc, char **argv)
{
	struct switch_options o = {0};
	if (argc < 1)
		return usage_error("start: NAME missing");
	o.name = argv[0];
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--vlan-aware")) {
			o.vlan_aware = true;
		} else if (!strcmp(a, "--uplink") && i + 1 < argc) {
			o.uplink = argv[++i];
		} else if (!strcmp(a, "--mac-limit") && i + 1 < argc) {
			if (parse_count(argv[++i], SWITCH_FDB_MAX, &o.mac_limit) < 0)
				return usage_error("bad --mac-limit (1..4096)");
		} else if (!strcmp(a, "--aging") && i + 1 < argc) {
			if (parse_count(argv[++i], 1000000, &o.aging_s) < 0)
				return usage_error("bad --aging (seconds, 1..1000000)");
		} else {
			char msg[120];
			snprintf(msg, sizeof(msg), "start: unknown or incomplete option '%.60s'",
				 a);
			return usage_error(msg);
		}
	}
	char path[PATH_MAX];
	if (path_of(o.name, path, sizeof(path)) < 0)
		return 1;
	o.path = path;
	/* The child reports "ok" or its error through a pipe, so start returns when the switch
	 * accepts ports, or fails with the switch's own message. */
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		log_error("switch", "pipe: %s", strerror(errno));
		return 1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		log_error("switch", "fork: %s", strerror(errno));
		return 1;
	}
	if (pid == 0) {
		close(p[0]);
		setsid();
		/* A daemon keeps none of the caller's descriptors (a shell's pipes would never see
		 * their end); 0-2 go to /dev/null once the switch is ready. */
		for (int fd = 3; fd < 1024; fd++)
			if (fd != p[1])
				close(fd);
		struct switch_server *s;
		int r = switch_server_create(&o, &s);
		if (r < 0) {
			(void)!write(p[1], error_msg(), strlen(error_msg()));
			_exit(1);
		}
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
			close(null);
		}
		(void)!write(p[1], "ok", 2);
		close(p[1]);
		(void)!chdir("/");
		r = switch_server_run(s);
		switch_server_destroy(s);
		_exit(r < 0 ? 1 : 0);
	}
	close(p[1]);
	char msg[400];
	ssize_t n, got = 0;
	while ((n = read(p[0], msg + got, sizeof(msg) - 1 - (size_t)got)) > 0)
		got += n;
	close(p[0]);
	msg[got > 0 ? got : 0] = 0;
	if (strcmp(msg, "ok")) {
		log_error("switch", "%s: %s", o.name,
			  *msg ? msg : "the switch process ended before it was ready");
		return 1;
	}
	printf("switch %s started (pid %d)\n", o.name, (int)pid);
	return 0;
}

static void print_info(struct json_object *r)
{
	struct json_object *v, *ports, *macs;
	printf("name: %s\n",
	       json_object_object_get_ex(r, "name", &v) ? json_object_get_string(v) : "?");
	printf("pid: %d\n", json_object_object_get_ex(r, "pid", &v) ? json_object_get_int(v) : 0);
	json_object_object_get_ex(r, "uplink", &v);
	printf("uplink: %s\n", v && *json_object_get_string(v) ? json_object_get_string(v) : "-");
	json_object_object_get_ex(r, "vlan_aware", &v);
	printf("vlan_aware: %s\n", json_object_get_boolean(v) ? "yes" : "no");
	json_object_object_get_ex(r, "flooded", &v);
	printf("flooded: %lld\n", (long long)json_object_get_int64(v));
	printf("ports:\n  %-4s %-20s %-17s %-5s %10s %12s %8s %10s %12s %8s\n", "PORT", "NAME",
	       "MAC", "VLAN", "RX_FRAMES", "RX_BYTES", "RX_DROP", "TX_FRAMES", "TX_BYTES",
	       "TX_DROP");
	if (json_object_object_get_ex(r, "ports", &ports))
		for (size_t i = 0; i < json_object_array_length(ports); i++) {
			struct json_object *p = json_object_array_get_idx(ports, i), *f;
#define GET(k) (long long)(json_object_object_get_ex(p, k, &f) ? json_object_get_int64(f) : 0)
#define GETS(k) (json_object_object_get_ex(p, k, &f) ? json_object_get_string(f) : "")
			printf("  %-4lld %-20.20s %-17s %-5s %10lld %12lld %8lld %10lld %12lld "
			       "%8lld\n",
			       GET("port"), GETS("name"), GETS("mac"),
			       json_object_object_get_ex(p, "trunk", &f) &&
				       json_object_get_boolean(f)
				   ? "trunk"
				   : GETS("vlan"),
			       GET("rx_frames"), GET("rx_bytes"), GET("rx_drops"), GET("tx_frames"),
			       GET("tx_bytes"), GET("tx_drops"));
		}
	printf("macs:\n  %-17s %-5s %-4s %s\n", "MAC", "VLAN", "PORT", "AGE_S");
	if (json_object_object_get_ex(r, "macs", &macs))
		for (size_t i = 0; i < json_object_array_length(macs); i++) {
			struct json_object *p = json_object_array_get_idx(macs, i), *f;
			printf("  %-17s %-5lld %-4lld %lld\n", GETS("mac"), GET("vlan"),
			       GET("port"), GET("age_s"));
		}
#undef GET
#undef GETS
}

static int cmd_info(int argc, char **argv)
{
	bool json = false;
	const char *name = NULL;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!name)
			name = argv[i];
		else
			return usage_error("info: one NAME");
	}
	if (!name)
		return usage_error("info: NAME missing");
	struct json_object *reply = NULL, *r;
	if (call(name, "info", &reply))
		return 1;
	if (!json_object_object_get_ex(reply, "result", &r)) {
		json_object_put(reply);
		log_error("switch", "%s: malformed reply", name);
		return 1;
	}
	if (json)
		printf("%s\n", json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN));
	else
		print_info(r);
	json_object_put(reply);
	return 0;
}

static int cmd_list(int argc, char **argv)
{
	bool json = argc == 1 && !strcmp(argv[0], "--json");
	if (argc > 1 || (argc == 1 && !json))
		return usage_error("list: only --json");
	char dir[PATH_MAX];
	if (control_runtime_dir_checked(dir, sizeof(dir)) < 0) {
		log_error("switch", "%s", error_msg());
		return 1;
	}
	struct json_object *arr = json_object_new_array();
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t sl = strlen(SWITCH_SUFFIX);
	while (d && (de = readdir(d))) {
		size_t len = strlen(de->d_name);
		if (len <= sl || strcmp(de->d_name + len - sl, SWITCH_SUFFIX))
			continue;
		char name[128], path[PATH_MAX];
		snprintf(name, sizeof(name), "%.*s", (int)(len - sl), de->d_name);
		if (!control_name_valid(name) || path_of(name, path, sizeof(path)) < 0)
			continue;
		struct json_object *req = json_object_new_object(), *reply = NULL, *r, *v;
		json_object_object_add(req, "op", json_object_new_string("info"));
		int ret = switch_call(path, req, CALL_TIMEOUT_MS, NULL, &reply);
		json_object_put(req);
		if (ret == -ECONNREFUSED) {
			unlink(path); /* left by a killed switch */
			continue;
		}
		if (ret < 0 || !json_object_object_get_ex(reply, "result", &r)) {
			json_object_put(reply);
			continue;
		}
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "name", json_object_new_string(name));
		const char *keys[] = {"pid", "uplink", "vlan_aware"};
		for (int k = 0; k < 3; k++)
			if (json_object_object_get_ex(r, keys[k], &v))
				json_object_object_add(o, keys[k], json_object_get(v));
		json_object_object_get_ex(r, "ports", &v);
		json_object_object_add(o, "ports",
				       json_object_new_int((int)json_object_array_length(v)));
		json_object_array_add(arr, o);
		json_object_put(reply);
	}
	if (d)
		closedir(d);
	if (json) {
		printf("%s\n", json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN));
	} else {
		printf("%-20s %-8s %-6s %-16s %s\n", "NAME", "PID", "PORTS", "UPLINK", "VLANS");
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			struct json_object *o = json_object_array_get_idx(arr, i), *v;
			json_object_object_get_ex(o, "name", &v);
			printf("%-20s ", json_object_get_string(v));
			json_object_object_get_ex(o, "pid", &v);
			printf("%-8d ", json_object_get_int(v));
			json_object_object_get_ex(o, "ports", &v);
			printf("%-6d ", json_object_get_int(v));
			json_object_object_get_ex(o, "uplink", &v);
			printf("%-16s ",
			       v && *json_object_get_string(v) ? json_object_get_string(v) : "-");
			json_object_object_get_ex(o, "vlan_aware", &v);
			printf("%s\n", json_object_get_boolean(v) ? "yes" : "no");
		}
	}
	json_object_put(arr);
	return 0;
}

static int cmd_stop(int argc, char **argv)
{
	if (argc != 1)
		return usage_error("stop: NAME");
	struct json_object *reply = NULL;
	if (call(argv[0], "stop", &reply))
		return 1;
	json_object_put(reply);
	return 0;
}

static int switch_run(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(switch_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	const char *verb = argv[1];
	if (!strcmp(verb, "start"))
		return cmd_start(argc - 2, argv + 2);
	if (!strcmp(verb, "stop"))
		return cmd_stop(argc - 2, argv + 2);
	if (!strcmp(verb, "list"))
		return cmd_list(argc - 2, argv + 2);
	if (!strcmp(verb, "info"))
		return cmd_info(argc - 2, argv + 2);
	return usage_error("unknown verb (start, stop, list, info)");
}

static const struct command switch_command = {
    .name = "switch",
    .summary = "start, stop, list and inspect virtual switches",
    .run = switch_run,
};
COMMAND(switch_command);
