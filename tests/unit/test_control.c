/* The control socket: server, request checking, client, paths and permissions.
 * Each test gets its own XDG_RUNTIME_DIR under /tmp and fake verbs registered on a real server.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "vmm/control.h"
#include "vmm/control_internal.h"
#include "tests/lib/testlib.h"
#include "lib/error.h"

static char rtdir[PATH_MAX];
static int block_pipe[2] = {-1, -1};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	(void)state;
	snprintf(rtdir, sizeof(rtdir), "/tmp/minivmm-test-control-XXXXXX");
	if (!mkdtemp(rtdir))
		return -1;
	setenv("XDG_RUNTIME_DIR", rtdir, 1);
	return pipe(block_pipe);
}

static int teardown(void **state)
{
	(void)state;
	close(block_pipe[0]);
	close(block_pipe[1]);
	return nftw(rtdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Fake verbs. */

static int fake_echo(void *opaque, struct json_object *args, struct json_object *result)
{
	(void)opaque;
	json_object_object_add(result, "count",
			       json_object_new_int(json_object_array_length(args)));
	json_object_object_add(result, "args", json_object_get(args));
	return 0;
}

static int fake_fail(void *opaque, struct json_object *args, struct json_object *result)
{
	(void)opaque;
	(void)args;
	(void)result;
	return error_set(-EIO, "disk on fire\nsecond line");
}

static int fake_fail_quiet(void *opaque, struct json_object *args, struct json_object *result)
{
	(void)opaque;
	(void)args;
	(void)result;
	return -ENOSPC;
}

/* Blocks the control thread until the test writes a byte to block_pipe. */
static int fake_block(void *opaque, struct json_object *args, struct json_object *result)
{
	char c;

	(void)opaque;
	(void)args;
	(void)result;
	return read(block_pipe[0], &c, 1) == 1 ? 0 : -EIO;
}

/* Stops its own server from the control thread, as a "poweroff" verb might. */
static int fake_stop_self(void *opaque, struct json_object *args, struct json_object *result)
{
	(void)args;
	json_object_object_add(result, "stopping", json_object_new_boolean(1));
	control_server_stop(opaque);
	return 0;
}

static struct control_server *start(const char *name)
{
	struct control_server *srv;

	int ret = control_server_start(name, &srv);
	if (ret)
		fail_msg("start %s: %d %s", name, ret, error_msg());
	assert_int_equal(control_register_verb(srv, "echo", "echo [ARGS...]", fake_echo, NULL), 0);
	assert_int_equal(control_register_verb(srv, "fail", "fail", fake_fail, NULL), 0);
	assert_int_equal(control_register_verb(srv, "quiet", "quiet", fake_fail_quiet, NULL), 0);
	assert_int_equal(control_register_verb(srv, "block", "block", fake_block, NULL), 0);
	return srv;
}

/* Raw connections, to send what control_call never would. */

static int raw_connect(const char *name)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = 30}; /* only a guard against a hung test */
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(control_socket_path(name, sun.sun_path, sizeof(sun.sun_path)), 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static void raw_send(int fd, const char *s, size_t len)
{
	while (len) {
		ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
		assert_true(n > 0);
		s += n;
		len -= n;
	}
}

static void raw_puts(int fd, const char *s)
{
	raw_send(fd, s, strlen(s));
}

/* Next reply line parsed, or NULL at end of stream. */
static struct json_object *raw_reply(int fd)
{
	size_t len = 0, cap = 256;
	char *buf = malloc(cap);
	struct json_object *r;

	for (;;) {
		char c;
		ssize_t n = recv(fd, &c, 1, 0);
		if (n <= 0) {
			assert_int_equal(len, 0);
			free(buf);
			return NULL;
		}
		if (c == '\n')
			break;
		if (len + 1 == cap)
			buf = realloc(buf, cap *= 2);
		buf[len++] = c;
	}
	buf[len] = 0;
	r = json_tokener_parse(buf);
	if (!r)
		fail_msg("reply is not JSON: %s", buf);
	free(buf);
	return r;
}

static const char *str_field(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return NULL;
	return json_object_get_string(v);
}

static int ok_of(struct json_object *r)
{
	struct json_object *v;

	assert_true(json_object_object_get_ex(r, "ok", &v));
	return json_object_get_boolean(v);
}

static void expect_error(int fd, const char *fragment)
{
	struct json_object *r = raw_reply(fd);

	assert_non_null(r);
	assert_false(ok_of(r));
	if (!strstr(str_field(r, "error"), fragment))
		fail_msg("error '%s' lacks '%s'", str_field(r, "error"), fragment);
	json_object_put(r);
}

static void expect_ok(int fd, int id)
{
	struct json_object *r = raw_reply(fd), *v;

	assert_non_null(r);
	assert_true(ok_of(r));
	assert_true(json_object_object_get_ex(r, "id", &v));
	assert_int_equal(json_object_get_int(v), id);
	json_object_put(r);
}

/* Tests. */

static void test_round_trip(void **state)
{
	struct control_server *srv = start("vm1");
	char *argv[] = {"a", "b"};
	struct json_object *reply, *result, *v;

	(void)state;
	assert_int_equal(control_call("vm1", "echo", 2, argv, 10000, &reply), 0);
	assert_true(ok_of(reply));
	assert_true(json_object_object_get_ex(reply, "result", &result));
	assert_true(json_object_object_get_ex(result, "count", &v));
	assert_int_equal(json_object_get_int(v), 2);
	json_object_put(reply);
	control_server_stop(srv);
}

static void test_several_requests_one_connection(void **state)
{
	struct control_server *srv = start("vm1");
	int fd = raw_connect("vm1");

	(void)state;
	/* Three requests in one write, the last split across two writes. */
	raw_puts(fd, "{\"version\":1,\"id\":1,\"verb\":\"echo\"}\n"
		     "{\"version\":1,\"id\":2,\"verb\":\"version\"}\r\n"
		     "{\"version\":1,\"id\":3,");
	raw_puts(fd, "\"verb\":\"help\"}\n");
	expect_ok(fd, 1);
	expect_ok(fd, 2);
	expect_ok(fd, 3);
	close(fd);
	control_server_stop(srv);
}

static void test_unknown_verb(void **state)
{
	struct control_server *srv = start("vm1");
	struct json_object *reply = (void *)1;

	(void)state;
	assert_int_equal(control_call("vm1", "nosuch", 0, NULL, 10000, &reply), -EREMOTEIO);
	assert_null(reply);
	assert_non_null(strstr(error_msg(), "unknown verb 'nosuch'"));
	control_server_stop(srv);
}

/* A message that quotes the request cut to 40 bytes, through a two-byte character: the reply is
 * still valid UTF-8 (the cut byte becomes '?'), so a strict client can read it. */
static void test_error_cut_inside_utf8(void **state)
{
	struct control_server *srv = start("vm1");
	int fd = raw_connect("vm1");
	char req[256], verb[64];

	(void)state;
	memset(verb, 'v', 39);
	memcpy(verb + 39, "\xc3\xa9tail", 7); /* U+00E9 at bytes 39-40: "%.40s" keeps half */
	snprintf(req, sizeof(req), "{\"version\":1,\"id\":5,\"verb\":\"%s\"}\n", verb);
	raw_puts(fd, req);
	char *line = NULL;
	size_t cap = 0;
	FILE *f = fdopen(fd, "r");
	assert_non_null(f);
	assert_true(getline(&line, &cap, f) > 0);
	struct json_object *r = control_json_parse_line(line, strlen(line) - 1);
	if (!r)
		fail_msg("reply refused by the strict parser (%s): %s", error_msg(), line);
	assert_non_null(strstr(str_field(r, "error"), "unknown verb 'vvv"));
	assert_non_null(strstr(str_field(r, "error"), "v?' (try 'help')"));
	json_object_put(r);
	free(line);
	fclose(f);
	control_server_stop(srv);
}

static void test_bad_json(void **state)
{
	struct control_server *srv = start("vm1");
	int fd = raw_connect("vm1");

	(void)state;
	raw_puts(fd, "this is not json\n");
	expect_error(fd, "invalid JSON");
	raw_puts(fd, "{\"version\":1,\"verb\":\"echo\"} trailing\n");
	expect_error(fd, "invalid JSON");
	raw_puts(fd, "{\"version\":1,\"verb\":\"echo\"}{}\n");
	expect_error(fd, "invalid JSON");
	raw_puts(fd, "[1,2]\n");
	expect_error(fd, "not a JSON object");
	raw_puts(fd, "{\"version\":1,\"verb\":\"echo\"\n");
	expect_error(fd, "invalid JSON");
	raw_send(fd, "{\"version\":1,\0\"verb\":\"echo\"}\n", 29);
	expect_error(fd, "invalid JSON");
	raw_puts(fd, "{\"version\":1,\"id\":\"x\",\"verb\":\"echo\"}\n");
	expect_error(fd, "\"id\" must be an integer");
	raw_puts(fd, "\n");
	expect_error(fd, "empty");
	/* The connection survives all of that. */
	raw_puts(fd, "{\"version\":1,\"id\":9,\"verb\":\"echo\"}\n");
	expect_ok(fd, 9);
	close(fd);
	control_server_stop(srv);
}

static void test_overlong_line(void **state)
{
	struct control_server *srv = start("vm1");
	int fd = raw_connect("vm1");
	const char *req = "{\"version\":1,\"id\":7,\"verb\":\"echo\"}";
	char *big = malloc(3 * CONTROL_LINE_MAX);

	(void)state;
	/* Exactly CONTROL_LINE_MAX bytes before the newline is still accepted. */
	memset(big, ' ', CONTROL_LINE_MAX);
	memcpy(big, req, strlen(req));
	big[CONTROL_LINE_MAX] = '\n';
	raw_send(fd, big, CONTROL_LINE_MAX + 1);
	expect_ok(fd, 7);
	/* One byte more is refused, the rest of that line skipped, and the next line served. */
	memset(big, 'x', 3 * CONTROL_LINE_MAX);
	big[CONTROL_LINE_MAX + 1] = '\n';
	raw_send(fd, big, CONTROL_LINE_MAX + 2);
	expect_error(fd, "longer than");
	big[CONTROL_LINE_MAX + 1] = 'x';
	big[3 * CONTROL_LINE_MAX - 1] = '\n';
	raw_send(fd, big, 3 * CONTROL_LINE_MAX);
	expect_error(fd, "longer than");
	raw_puts(fd, "{\"version\":1,\"id\":8,\"verb\":\"echo\"}\n");
	expect_ok(fd, 8);
	free(big);
	close(fd);
	control_server_stop(srv);
}

static void test_wrong_version_and_fields(void **state)
{
	struct control_server *srv = start("vm1");
	int fd = raw_connect("vm1");

	(void)state;
	raw_puts(fd, "{\"version\":2,\"id\":1,\"verb\":\"echo\"}\n");
	expect_error(fd, "unsupported protocol version 2");
	raw_puts(fd, "{\"version\":\"1\",\"verb\":\"echo\"}\n");
	expect_error(fd, "version");
	raw_puts(fd, "{\"id\":1,\"verb\":\"echo\"}\n");
	expect_error(fd, "missing \"version\"");
	raw_puts(fd, "{\"version\":1}\n");
	expect_error(fd, "\"verb\"");
	raw_puts(fd, "{\"version\":1,\"verb\":5}\n");
	expect_error(fd, "\"verb\"");
	raw_puts(fd, "{\"version\":1,\"verb\":\"echo\",\"args\":[\"a\",1]}\n");
	expect_error(fd, "\"args\"");
	raw_puts(fd, "{\"version\":1,\"verb\":\"echo\",\"args\":\"a\"}\n");
	expect_error(fd, "\"args\"");
	raw_puts(fd, "{\"version\":1,\"verb\":\"e\\ncho\"}\n");
	expect_error(fd, "unknown verb");
	close(fd);
	control_server_stop(srv);
}

static void test_args_passed_through(void **state)
{
	struct control_server *srv = start("vm1");
	char *argv[] = {
	    "", "two words", "--json", "quote\" and \\ back", "\xc3\xa9t\xc3\xa9", "line\nbreak"};
	int argc = sizeof(argv) / sizeof(argv[0]);
	struct json_object *reply, *result, *args;

	(void)state;
	assert_int_equal(control_call("vm1", "echo", argc, argv, 10000, &reply), 0);
	assert_true(json_object_object_get_ex(reply, "result", &result));
	assert_true(json_object_object_get_ex(result, "args", &args));
	assert_int_equal(json_object_array_length(args), argc);
	for (int i = 0; i < argc; i++)
		assert_string_equal(json_object_get_string(json_object_array_get_idx(args, i)),
				    argv[i]);
	json_object_put(reply);
	control_server_stop(srv);
}

static void test_handler_error_text(void **state)
{
	struct control_server *srv = start("vm1");
	struct json_object *reply;
	char expect[CONTROL_ERR_LEN];

	(void)state;
	assert_int_equal(control_call("vm1", "fail", 0, NULL, 10000, &reply), -EREMOTEIO);
	assert_string_equal(error_msg(), "disk on fire second line"); /* kept to one line */
	assert_int_equal(control_call("vm1", "quiet", 0, NULL, 10000, &reply), -EREMOTEIO);
	snprintf(expect, sizeof(expect), "quiet: %s", strerror(ENOSPC));
	assert_string_equal(error_msg(), expect);
	control_server_stop(srv);
}

static void test_builtin_verbs(void **state)
{
	struct control_server *srv = start("vm1");
	struct json_object *reply, *result, *v;

	(void)state;
	assert_int_equal(control_call("vm1", "help", 0, NULL, 10000, &reply), 0);
	assert_true(json_object_object_get_ex(reply, "result", &result));
	assert_string_equal(str_field(result, "echo"), "echo [ARGS...]");
	assert_string_equal(str_field(result, "help"), "help");
	assert_string_equal(str_field(result, "version"), "version");
	json_object_put(reply);
	assert_int_equal(control_call("vm1", "version", 0, NULL, 10000, &reply), 0);
	assert_true(json_object_object_get_ex(reply, "result", &result));
	assert_true(json_object_object_get_ex(result, "protocol", &v));
	assert_int_equal(json_object_get_int(v), CONTROL_PROTOCOL_VERSION);
	assert_string_equal(str_field(result, "minivmm"), MINIVMM_VERSION);
	json_object_put(reply);
	/* Verb names are checked, and each registered once. */
	assert_int_equal(control_register_verb(srv, "echo", "x", fake_echo, NULL), -EEXIST);
	assert_int_equal(control_register_verb(srv, "bad verb", "x", fake_echo, NULL), -EINVAL);
	assert_int_equal(control_register_verb(srv, "", "x", fake_echo, NULL), -EINVAL);
	control_server_stop(srv);
}

static void test_duplicate_name_refused(void **state)
{
	struct control_server *srv = start("vm1"), *again = (void *)1;

	(void)state;
	assert_int_equal(control_server_start("vm1", &again), -EADDRINUSE);
	assert_null(again);
	assert_non_null(strstr(error_msg(), "'vm1'"));
	control_server_stop(srv);
	/* Once stopped, the name is free again. */
	srv = start("vm1");
	control_server_stop(srv);
}

static void test_foreign_listener_refused(void **state)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct control_server *srv = NULL;
	char dir[PATH_MAX];
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	(void)state;
	assert_int_equal(control_runtime_dir(dir, sizeof(dir)), 0);
	assert_int_equal(control_socket_path("vm1", sun.sun_path, sizeof(sun.sun_path)), 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(control_server_start("vm1", &srv), -EADDRINUSE);
	assert_non_null(strstr(error_msg(), "'vm1' is already running"));
	close(fd);
}

static void test_stale_socket_replaced(void **state)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct control_server *srv;
	struct json_object *reply;
	char dir[PATH_MAX];
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	(void)state;
	/* A socket file nobody listens on, as a killed VM leaves it. */
	assert_int_equal(control_runtime_dir(dir, sizeof(dir)), 0);
	assert_int_equal(control_socket_path("vm1", sun.sun_path, sizeof(sun.sun_path)), 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(fd);
	assert_int_equal(control_call("vm1", "echo", 0, NULL, 10000, &reply), -ECONNREFUSED);
	assert_string_equal(error_msg(), "no VM named 'vm1' is running");
	srv = start("vm1");
	assert_int_equal(control_call("vm1", "echo", 0, NULL, 10000, &reply), 0);
	json_object_put(reply);
	control_server_stop(srv);
}

static void test_non_socket_not_replaced(void **state)
{
	struct control_server *srv = NULL;
	char path[PATH_MAX];
	struct stat st;
	int fd;

	(void)state;
	assert_int_equal(control_socket_path("vm1", path, sizeof(path)), 0);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(control_server_start("vm1", &srv), -EEXIST);
	assert_non_null(strstr(error_msg(), "not a socket"));
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
}

static void test_permissions(void **state)
{
	struct control_server *srv = start("vm1"), *other = NULL;
	char dir[PATH_MAX], path[PATH_MAX];
	struct stat st;

	(void)state;
	assert_int_equal(control_runtime_dir(dir, sizeof(dir)), 0);
	assert_int_equal(lstat(dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(control_socket_path("vm1", path, sizeof(path)), 0);
	assert_int_equal(strncmp(path, dir, strlen(dir)), 0);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	control_server_stop(srv);

	/* A group- or world-writable runtime dir is refused, with its name in the message. */
	assert_int_equal(chmod(dir, 0777), 0);
	assert_int_equal(control_server_start("vm2", &other), -EPERM);
	assert_null(other);
	assert_non_null(strstr(error_msg(), dir));
	assert_int_equal(chmod(dir, 0720), 0);
	assert_int_equal(control_runtime_dir(path, sizeof(path)), -EPERM);
	assert_int_equal(chmod(dir, 0700), 0);

	/* A symlink in place of the directory is refused too. */
	assert_int_equal(rmdir(dir), 0);
	assert_int_equal(symlink("/tmp", dir), 0);
	assert_int_equal(control_runtime_dir(path, sizeof(path)), -ENOTDIR);
	assert_int_equal(unlink(dir), 0);
}

static void test_stop_unlinks(void **state)
{
	struct control_server *srv = start("vm1");
	char path[PATH_MAX];
	struct json_object *reply;
	struct stat st;
	int idle = raw_connect("vm1");

	(void)state;
	assert_int_equal(control_socket_path("vm1", path, sizeof(path)), 0);
	assert_int_equal(lstat(path, &st), 0);
	control_server_stop(srv); /* prompt even with a client connected */
	assert_int_equal(lstat(path, &st), -1);
	assert_int_equal(errno, ENOENT);
	strcpy(path + strlen(path) - 5, ".lock");
	assert_int_equal(lstat(path, &st), -1);
	assert_null(raw_reply(idle)); /* the server closed our connection */
	close(idle);
	assert_int_equal(control_call("vm1", "echo", 0, NULL, 10000, &reply), -ENOENT);
	assert_string_equal(error_msg(), "no VM named 'vm1' is running");
}

static void test_stop_from_handler(void **state)
{
	struct control_server *srv = start("vm1");
	char path[PATH_MAX];
	struct stat st;
	int fd = raw_connect("vm1");

	(void)state;
	assert_int_equal(control_register_verb(srv, "stopme", "stopme", fake_stop_self, srv), 0);
	raw_puts(fd, "{\"version\":1,\"id\":3,\"verb\":\"stopme\"}\n"
		     "{\"version\":1,\"id\":4,\"verb\":\"echo\"}\n");
	expect_ok(fd, 3);
	assert_null(raw_reply(fd)); /* no request after the stop is served */
	close(fd);
	assert_int_equal(control_socket_path("vm1", path, sizeof(path)), 0);
	assert_int_equal(lstat(path, &st), -1);
	srv = start("vm1");
	control_server_stop(srv);
}

static void test_names(void **state)
{
	char name65[66], path[PATH_MAX];
	struct control_server *srv = NULL;
	struct json_object *reply;

	(void)state;
	memset(name65, 'a', 65);
	name65[65] = 0;
	assert_false(control_name_valid(name65));
	name65[64] = 0;
	assert_true(control_name_valid(name65));
	assert_true(control_name_valid("Vm_1.test-2"));
	assert_false(control_name_valid(""));
	assert_false(control_name_valid(".hidden"));
	assert_false(control_name_valid("a/b"));
	assert_false(control_name_valid(".."));
	assert_false(control_name_valid("a b"));
	assert_false(control_name_valid("\xc3\xa9"));
	assert_false(control_name_valid(NULL));
	assert_int_equal(control_socket_path("../x", path, sizeof(path)), -EINVAL);
	assert_int_equal(control_server_start("a/b", &srv), -EINVAL);
	assert_non_null(strstr(error_msg(), "invalid VM name 'a/b'"));
	error_clear();
	assert_int_equal(control_path_for(".x", ".sock", path, sizeof(path)), -EINVAL);
	assert_non_null(strstr(error_msg(), "invalid VM name '.x'"));
	assert_int_equal(control_name_check("ok"), 0);
	assert_int_equal(control_call("../x", "echo", 0, NULL, 1000, &reply), -EINVAL);
	/* Too long for a sockaddr_un: refused, not truncated. */
	assert_int_equal(control_socket_path("vm1", path, 8), -ENAMETOOLONG);
}

static void test_connection_limit(void **state)
{
	struct control_server *srv = start("vm1");
	int fds[CONTROL_MAX_CONNECTIONS], extra;
	char req[80];

	(void)state;
	for (int i = 0; i < CONTROL_MAX_CONNECTIONS; i++) {
		fds[i] = raw_connect("vm1");
		snprintf(req, sizeof(req), "{\"version\":1,\"id\":%d,\"verb\":\"echo\"}\n", i);
		raw_puts(fds[i], req);
		expect_ok(fds[i], i); /* served, so it holds a slot */
	}
	extra = raw_connect("vm1");
	expect_error(extra, "too many");
	assert_null(raw_reply(extra));
	close(extra);
	/* Freeing one slot lets the next client in.  Once fds[1] is answered, the server has
	 * seen fds[0] hang up: it closed before fds[1] asked. */
	close(fds[0]);
	raw_puts(fds[1], "{\"version\":1,\"id\":1,\"verb\":\"echo\"}\n");
	expect_ok(fds[1], 1);
	fds[0] = raw_connect("vm1");
	raw_puts(fds[0], "{\"version\":1,\"id\":5,\"verb\":\"echo\"}\n");
	expect_ok(fds[0], 5);
	for (int i = 0; i < CONTROL_MAX_CONNECTIONS; i++)
		close(fds[i]);
	control_server_stop(srv);
}

static void test_half_close_still_answered(void **state)
{
	struct control_server *srv = start("vm1");
	int fd = raw_connect("vm1");

	(void)state;
	raw_puts(fd, "{\"version\":1,\"id\":4,\"verb\":\"echo\"}\n{\"version\":1,\"id\":5,\"verb\":"
		     "\"x\"}\n");
	shutdown(fd, SHUT_WR);
	expect_ok(fd, 4);
	expect_error(fd, "unknown verb");
	assert_null(raw_reply(fd));
	close(fd);
	control_server_stop(srv);
}

static void test_slow_reader_does_not_block_others(void **state)
{
	struct control_server *srv = start("vm1");
	const char *req = "{\"version\":1,\"id\":1,\"verb\":\"help\"}\n";
	size_t reqlen = strlen(req), total = 0;
	char *chunk = malloc(256 * reqlen);
	int hog = raw_connect("vm1");
	struct json_object *reply;

	(void)state;
	for (int i = 0; i < 256; i++)
		memcpy(chunk + i * reqlen, req, reqlen);
	/* Send requests and never read a reply, until the server stops taking them (it must
	 * stop: it may not queue replies without bound).  The cap only ends a broken server. */
	fcntl(hog, F_SETFL, O_NONBLOCK);
	while (total < (64u << 20)) {
		struct pollfd p = {.fd = hog, .events = POLLOUT};
		ssize_t n = send(hog, chunk, 256 * reqlen, MSG_NOSIGNAL);
		if (n > 0)
			total += n;
		else if (errno == EAGAIN && poll(&p, 1, 500) == 0)
			break;
	}
	assert_true(total < (64u << 20));
	/* The hog is stuck; everyone else is still served. */
	assert_int_equal(control_call("vm1", "echo", 0, NULL, 30000, &reply), 0);
	json_object_put(reply);
	close(hog);
	free(chunk);
	control_server_stop(srv);
}

#define PIPELINE_N 20000
/* Bytes of requests the server takes with no reply read (its input buffer plus the requests whose
 * replies fill its output queue, whatever the kernel's socket buffers): reading only after that
 * drives the server into back-pressure, and out of it again. */
#define PIPELINE_UNREAD (120 * 1024)

static int pipeline_fd;
static size_t pipeline_sent; /* atomic: written by the writer, polled by the reader */

static void *pipeline_writer(void *arg)
{
	char *buf = malloc(PIPELINE_N * 48), *p = buf;

	(void)arg;
	for (int i = 0; i < PIPELINE_N; i++)
		p += sprintf(p, "{\"version\":1,\"id\":%d,\"verb\":\"help\"}\n", i);
	for (char *q = buf; q < p;) {
		ssize_t n = send(pipeline_fd, q, p - q > 4096 ? 4096 : p - q, MSG_NOSIGNAL);
		if (n <= 0)
			break;
		q += n;
		__atomic_add_fetch(&pipeline_sent, n, __ATOMIC_SEQ_CST);
	}
	shutdown(pipeline_fd, SHUT_WR);
	free(buf);
	return NULL;
}

/* Many requests in flight at once: every one answered, in order, then a clean end. */
static void test_pipelined_requests(void **state)
{
	struct control_server *srv = start("vm1");
	int fd = raw_connect("vm1"), n = 0;
	FILE *in = fdopen(dup(fd), "r");
	char *line = NULL;
	size_t cap = 0;
	pthread_t writer;

	(void)state;
	pipeline_fd = fd;
	pipeline_sent = 0;
	assert_int_equal(pthread_create(&writer, NULL, pipeline_writer, NULL), 0);
	while (__atomic_load_n(&pipeline_sent, __ATOMIC_SEQ_CST) < PIPELINE_UNREAD)
		sched_yield();
	while (getline(&line, &cap, in) > 0) {
		struct json_object *r = json_tokener_parse(line), *id;
		assert_non_null(r);
		assert_true(json_object_object_get_ex(r, "id", &id));
		assert_int_equal(json_object_get_int(id), n);
		assert_true(ok_of(r));
		json_object_put(r);
		n++;
	}
	assert_int_equal(n, PIPELINE_N);
	pthread_join(writer, NULL);
	free(line);
	fclose(in);
	close(fd);
	control_server_stop(srv);
}

static void test_client_timeout(void **state)
{
	struct control_server *srv = start("vm1");
	struct json_object *reply;

	(void)state;
	/* The handler waits for our byte, so the reply cannot come before the deadline. */
	assert_int_equal(control_call("vm1", "block", 0, NULL, 50, &reply), -ETIMEDOUT);
	assert_non_null(strstr(error_msg(), "no reply from VM 'vm1' within 50 ms"));
	assert_int_equal(write(block_pipe[1], "x", 1), 1);
	assert_int_equal(control_call("vm1", "echo", 0, NULL, 10000, &reply), 0);
	json_object_put(reply);
	control_server_stop(srv);
}

/* A fake VM that answers one request with a canned line, to test the client's checks. */
struct canned {
	int listen_fd;
	const char *reply;
};

static void *canned_server(void *arg)
{
	struct canned *c = arg;
	int fd = accept(c->listen_fd, NULL, NULL);
	char ch;

	while (fd >= 0 && recv(fd, &ch, 1, 0) == 1 && ch != '\n')
		;
	if (fd >= 0) {
		raw_send(fd, c->reply, strlen(c->reply));
		close(fd);
	}
	return NULL;
}

static int call_canned(const char *reply)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct canned c = {.reply = reply};
	struct json_object *r = NULL;
	pthread_t t;
	int ret;

	assert_int_equal(control_socket_path("fake", sun.sun_path, sizeof(sun.sun_path)), 0);
	unlink(sun.sun_path);
	c.listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(c.listen_fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(c.listen_fd, 1), 0);
	assert_int_equal(pthread_create(&t, NULL, canned_server, &c), 0);
	ret = control_call("fake", "info", 0, NULL, 10000, &r);
	pthread_join(t, NULL);
	close(c.listen_fd);
	if (ret == 0)
		json_object_put(r);
	else
		assert_null(r);
	return ret;
}

static void test_client_checks_replies(void **state)
{

	(void)state;
	assert_int_equal(call_canned("{\"version\":1,\"id\":1,\"ok\":true,\"result\":{}}\n"), 0);
	assert_int_equal(call_canned("garbage\n"), -EPROTO);
	assert_non_null(strstr(error_msg(), "bad reply from VM 'fake'"));
	assert_int_equal(call_canned("{\"version\":1,\"id\":1,\"ok\":true,\"result\":{}} x\n"),
			 -EPROTO);
	assert_int_equal(call_canned("{\"version\":2,\"id\":1,\"ok\":true,\"result\":{}}\n"),
			 -EPROTO);
	assert_non_null(strstr(error_msg(), "version"));
	assert_int_equal(call_canned("{\"version\":1,\"id\":99,\"ok\":true,\"result\":{}}\n"),
			 -EPROTO);
	assert_non_null(strstr(error_msg(), "id"));
	assert_int_equal(call_canned("{\"version\":1,\"id\":1,\"result\":{}}\n"), -EPROTO);
	assert_int_equal(call_canned("{\"version\":1,\"id\":1,\"ok\":true}\n"), -EPROTO);
	assert_int_equal(call_canned("{\"version\":1,\"id\":1,\"ok\":false}\n"), -EPROTO);
	assert_int_equal(call_canned("{\"version\":1,\"id\":1,\"ok\":false,\"error\":\"no\"}\n"),
			 -EREMOTEIO);
	assert_string_equal(error_msg(), "no");
	assert_int_equal(call_canned("{\"version\":1,\"id\":1,\"ok\":true"), -ECONNRESET);
	assert_non_null(strstr(error_msg(), "connection closed before the reply"));
}

static void test_print_human(void **state)
{
	struct json_object *r = json_tokener_parse(
	    "{\"a\":1,\"b\":{\"c\":\"x\",\"d\":[1,\"y\",true],\"e\":{\"f\":null}},\"g\":{},"
	    "\"h\":\"t\\u001b[31m\\u0085z\",\"i\":[]}");
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);

	(void)state;
	control_print_human(out, r);
	fclose(out);
	assert_string_equal(buf,
			    "a: 1\nb.c: x\nb.d: 1,y,true\nb.e.f: null\ng: {}\nh: t?[31m?z\ni: \n");
	free(buf);
	json_object_put(r);
}

/* The runtime directory rule: a private $XDG_RUNTIME_DIR, else our /run/user/UID, else /run for
 * root, else the state directory; never a fixed name under a world-writable directory. */
static void test_runtime_dir_choice(void **state)
{
	char xdg[PATH_MAX + 16], pub[PATH_MAX + 16], runuser[PATH_MAX + 16], mine[PATH_MAX + 32];
	char buf[PATH_MAX + 64], want[PATH_MAX + 64];
	uid_t user = geteuid() ? geteuid() : 65534; /* a non-root user (as root: nobody) */
	struct control_dir_inputs in = {
	    .xdg_runtime = xdg,
	    .xdg_state = "/state",
	    .home = "/home/u",
	    .run_user = runuser,
	    .run = "/fake-run",
	    .uid = user,
	};

	(void)state;
	snprintf(xdg, sizeof(xdg), "%s/xdg", rtdir);
	snprintf(pub, sizeof(pub), "%s/pub", rtdir);
	snprintf(runuser, sizeof(runuser), "%s/run-user", rtdir);
	snprintf(mine, sizeof(mine), "%s/%u", runuser, (unsigned)user);
	assert_int_equal(mkdir(xdg, 0700), 0);
	assert_int_equal(mkdir(pub, 0700), 0);
	assert_int_equal(chmod(pub, 01777), 0); /* like /tmp */
	assert_int_equal(mkdir(runuser, 0755), 0);
	assert_int_equal(mkdir(mine, 0700), 0);
	assert_int_equal(chown(xdg, user, (gid_t)-1), 0);
	assert_int_equal(chown(mine, user, (gid_t)-1), 0);

	/* A private XDG_RUNTIME_DIR wins. */
	assert_int_equal(control_dir_choose(&in, buf, sizeof(buf)), 0);
	snprintf(want, sizeof(want), "%s/minivmm", xdg);
	assert_string_equal(buf, want);
	/* A world-writable, foreign or relative one is not used: /run/user/UID is, when ours and
	 * private. */
	in.xdg_runtime = pub;
	assert_int_equal(control_dir_choose(&in, buf, sizeof(buf)), 0);
	snprintf(want, sizeof(want), "%s/minivmm", mine);
	assert_string_equal(buf, want);
	in.xdg_runtime = "relative";
	assert_int_equal(control_dir_choose(&in, buf, sizeof(buf)), 0);
	assert_string_equal(buf, want);
	/* Without it (or with a group-writable one), the state directory. */
	assert_int_equal(chmod(mine, 0770), 0);
	assert_int_equal(control_dir_choose(&in, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/state/minivmm/run");
	assert_int_equal(rmdir(mine), 0);
	in.xdg_runtime = NULL;
	assert_int_equal(control_dir_choose(&in, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/state/minivmm/run");
	in.xdg_state = "relative";
	assert_int_equal(control_dir_choose(&in, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/home/u/.local/state/minivmm/run");
	in.xdg_state = NULL;
	assert_int_equal(control_dir_choose(&in, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/home/u/.local/state/minivmm/run");
	/* Root without either: /run/minivmm (/run is root's and not world-writable). */
	in.uid = 0;
	assert_int_equal(control_dir_choose(&in, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/fake-run/minivmm");
	in.uid = user;
	/* Nothing usable, or too long. */
	in.home = NULL;
	assert_int_equal(control_dir_choose(&in, buf, sizeof(buf)), -ENOENT);
	in.home = "/home/u";
	assert_int_equal(control_dir_choose(&in, buf, 10), -ENAMETOOLONG);
}

/* A runtime directory so deep that a socket path cannot fit a sun_path: one clear error. */
static void test_runtime_dir_too_long(void **state)
{
	char deep[PATH_MAX + 128], path[PATH_MAX];

	(void)state;
	snprintf(deep, sizeof(deep), "%s/%0100d", rtdir, 0);
	assert_int_equal(mkdir(deep, 0700), 0);
	setenv("XDG_RUNTIME_DIR", deep, 1);
	int ret = control_path_for("vm1", ".sock", path, sizeof(path));
	setenv("XDG_RUNTIME_DIR", rtdir, 1);
	assert_int_equal(ret, -ENAMETOOLONG);
	assert_non_null(strstr(error_msg(), "path too long for a UNIX socket"));
	assert_non_null(strstr(error_msg(), deep));
}

/* Reads and drops replies until the server closes the connection (a junk sender must not stall
 * on its own replies). */
static void *drain_thread(void *arg)
{
	int fd = *(int *)arg;
	char buf[4096];

	while (recv(fd, buf, sizeof(buf), 0) > 0)
		;
	return NULL;
}

static void test_junk_leaves_server_answering(void **state)
{
	struct control_server *srv = start("vm1");
	int junk = raw_connect("vm1"), other = raw_connect("vm1");
	size_t len = 2u << 20;
	unsigned char *buf = malloc(len);
	uint32_t x = 2463534242u;
	pthread_t t;

	(void)state;
	/* 2 MiB of random bytes (newlines, NULs, half-JSON), then a 200 KiB line never finished. */
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (unsigned char)x;
		if (i % 4099 == 0 && i + 40 < len)
			memcpy(buf + i, "{\"version\":1,\"verb\":\"echo\",\"args\":[", 35);
	}
	memset(buf + len - (200 << 10), 'j', 200 << 10);
	assert_int_equal(pthread_create(&t, NULL, drain_thread, &junk), 0);
	raw_send(other, "{\"version\":1,\"id\":1,\"verb\":\"echo\"}\n", 35);
	expect_ok(other, 1);
	raw_send(junk, (const char *)buf, len);
	raw_puts(other, "{\"version\":1,\"id\":2,\"verb\":\"echo\"}\n");
	expect_ok(other, 2);
	shutdown(junk, SHUT_WR);
	pthread_join(t, NULL);
	/* The junk connection is gone; a new one and the old one are still served. */
	int fresh = raw_connect("vm1");
	raw_puts(fresh, "{\"version\":1,\"id\":3,\"verb\":\"echo\"}\n");
	expect_ok(fresh, 3);
	raw_puts(other, "{\"version\":1,\"id\":4,\"verb\":\"echo\"}\n");
	expect_ok(other, 4);
	close(fresh);
	close(other);
	close(junk);
	free(buf);
	control_server_stop(srv);
}

static void test_slow_request_times_out(void **state)
{
	unsigned saved = control_request_timeout_ms;
	control_request_timeout_ms = 200;
	struct control_server *srv = start("vm1");
	int slow = raw_connect("vm1"), busy = raw_connect("vm1");
	char c = 1;

	(void)state;
	/* Half a request, then nothing: an error, then the server closes. */
	raw_puts(slow, "{\"version\":1,\"id\":1,");
	expect_error(slow, "not completed");
	assert_null(raw_reply(slow));
	/* A line waiting behind a slow verb is not on the clock: the worker's time is not the
	 * client's.  (However long the worker takes, the deadline cannot fire here.) */
	raw_puts(busy, "{\"version\":1,\"id\":5,\"verb\":\"block\"}\n{\"version\":1,\"id\":6,");
	usleep(3 * 200 * 1000);
	assert_int_equal(write(block_pipe[1], &c, 1), 1);
	expect_ok(busy, 5);
	raw_puts(busy, "\"verb\":\"echo\"}\n");
	expect_ok(busy, 6);
	close(slow);
	close(busy);
	control_server_stop(srv);
	control_request_timeout_ms = saved;
}

/* Ask the control socket at `path` for an echo as `uid` (test_request_as_uid's answers). */
static char connect_as(uid_t uid, const char *path)
{
	return test_request_as_uid(uid, path, SOCK_STREAM,
				   "{\"version\":1,\"id\":1,\"verb\":\"echo\"}\n");
}

static void test_other_uid_refused(void **state)
{
	char dir[PATH_MAX], path[PATH_MAX];

	(void)state;
	if (geteuid() != 0)
		skip(); /* needs root to become another uid */
	struct control_server *srv = start("vm1");
	assert_int_equal(control_runtime_dir(dir, sizeof(dir)), 0);
	assert_int_equal(control_socket_path("vm1", path, sizeof(path)), 0);
	/* The 0700 directory keeps another uid from reaching the socket at all. */
	assert_int_equal(chmod(rtdir, 0755), 0);
	assert_int_equal(connect_as(65534, path), 'C');
	/* Opened up by mistake, the server still refuses the peer by its credentials. */
	assert_int_equal(chmod(dir, 0755), 0);
	assert_int_equal(chmod(path, 0777), 0);
	assert_int_equal(connect_as(65534, path), 'E');
	/* Root is let in, as the owner is. */
	assert_int_equal(connect_as(0, path), 'O');
	assert_int_equal(chmod(dir, 0700), 0);
	control_server_stop(srv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	    T(test_round_trip),
	    T(test_several_requests_one_connection),
	    T(test_unknown_verb),
	    T(test_bad_json),
	    T(test_error_cut_inside_utf8),
	    T(test_overlong_line),
	    T(test_wrong_version_and_fields),
	    T(test_args_passed_through),
	    T(test_handler_error_text),
	    T(test_builtin_verbs),
	    T(test_duplicate_name_refused),
	    T(test_foreign_listener_refused),
	    T(test_stale_socket_replaced),
	    T(test_non_socket_not_replaced),
	    T(test_permissions),
	    T(test_stop_unlinks),
	    T(test_stop_from_handler),
	    T(test_names),
	    T(test_connection_limit),
	    T(test_half_close_still_answered),
	    T(test_slow_reader_does_not_block_others),
	    T(test_pipelined_requests),
	    T(test_client_timeout),
	    T(test_client_checks_replies),
	    T(test_print_human),
	    T(test_runtime_dir_choice),
	    T(test_runtime_dir_too_long),
	    T(test_junk_leaves_server_answering),
	    T(test_slow_request_times_out),
	    T(test_other_uid_refused),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
