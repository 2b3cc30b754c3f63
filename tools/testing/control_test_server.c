/* `minivmm control-test-server NAME [--no-info]` (testing): a control server with fake verbs, so
 * the CLI and `minivmm list` can be tested without a VM.  Prints "ready" once the socket is up and
 * serves until SIGTERM or SIGINT.
 *   echo [ARGS...]  result {"verb":"echo","count":N,"args":[...],"nested":{"first":..,"last":..}}
 *   fail [WORDS...] error "failed on request: WORDS"
 *   info            result {"name":NAME,"pid":PID,"state":"running"} (absent with --no-info)
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "vmm/command.h"
#include "vmm/control_internal.h"
#include "lib/error.h"

static int add(struct json_object *obj, const char *key, struct json_object *val)
{
	if (!val || json_object_object_add(obj, key, val) < 0) {
		json_object_put(val);
		return -ENOMEM;
	}
	return 0;
}

static const char *arg_at(struct json_object *args, size_t i)
{
	return json_object_get_string(json_object_array_get_idx(args, i));
}

static int fake_echo(void *opaque, struct json_object *args, struct json_object *result)
{
	size_t n = json_object_array_length(args);
	struct json_object *nested = json_object_new_object();
	int ret;

	(void)opaque;
	ret = add(result, "verb", json_object_new_string("echo"));
	if (!ret)
		ret = add(result, "count", json_object_new_int((int)n));
	if (!ret)
		ret = add(result, "args", json_object_get(args));
	if (!ret)
		ret = add(result, "nested", nested);
	else
		json_object_put(nested);
	if (!ret && n)
		ret = add(nested, "first", json_object_new_string(arg_at(args, 0)));
	if (!ret && n)
		ret = add(nested, "last", json_object_new_string(arg_at(args, n - 1)));
	if (ret)
		error_set(ret, "out of memory");
	return ret;
}

static int fake_fail(void *opaque, struct json_object *args, struct json_object *result)
{
	char msg[CONTROL_ERR_LEN];
	size_t used;

	(void)opaque;
	(void)result;
	used = (size_t)snprintf(msg, sizeof(msg), "failed on request");
	for (size_t i = 0; i < json_object_array_length(args) && used < sizeof(msg); i++)
		used += (size_t)snprintf(msg + used, sizeof(msg) - used, "%s%s", i ? " " : ": ",
					 arg_at(args, i));
	return error_set(-EINVAL, "%s", msg);
}

static int fake_info(void *opaque, struct json_object *args, struct json_object *result)
{
	(void)args;
	if (add(result, "name", json_object_new_string(opaque)) ||
	    add(result, "pid", json_object_new_int(getpid())) ||
	    add(result, "state", json_object_new_string("running")))
		return error_set(-ENOMEM, "out of memory");
	return 0;
}

static int run_test_server(int argc, char **argv)
{
	struct control_server *srv;
	int info = 1, sig, ret;
	sigset_t set;

	if (argc == 3 && !strcmp(argv[2], "--no-info"))
		info = 0;
	else if (argc != 2) {
		fprintf(stderr, "usage: minivmm control-test-server NAME [--no-info]\n");
		return 2;
	}
	/* Block before the control thread exists so that only sigwait() sees the signals. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	ret = control_server_start(argv[1], &srv);
	if (ret < 0) {
		fprintf(stderr, "minivmm control-test-server: %s\n", error_msg());
		return 1;
	}
	ret = control_register_verb(srv, "echo", "echo [ARGS...]", fake_echo, NULL);
	if (!ret)
		ret = control_register_verb(srv, "fail", "fail [WORDS...]", fake_fail, NULL);
	if (!ret && info)
		ret = control_register_verb(srv, "info", "info", fake_info, argv[1]);
	if (ret < 0) {
		fprintf(stderr, "minivmm control-test-server: registering verbs: %s\n",
			strerror(-ret));
		control_server_stop(srv);
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	while (sigwait(&set, &sig) != 0)
		;
	control_server_stop(srv);
	return 0;
}

static const struct command cmd_control_test_server = {
    .name = "control-test-server",
    .summary = "(testing) serve fake control verbs echo/fail/info until SIGTERM",
    .testing = true,
    .run = run_test_server,
};
COMMAND(cmd_control_test_server)
