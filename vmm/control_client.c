/* The client side of the control socket: connect to a VM by name, send one request, read one
 * reply line within a deadline, and check the reply's envelope before anyone trusts it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "vmm/control_internal.h"
#include "lib/error.h"

int control_connect(const char *name, int *fd_out, pid_t *peer_pid)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	int fd, ret;

	ret = control_path_for(name, ".sock", sun.sun_path, sizeof(sun.sun_path));
	if (ret < 0)
		return ret;
	/* Non-blocking: a VM whose control thread is stuck must not hang the client in connect().
	 */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		ret = -errno;
		return error_set(ret, "socket: %s", strerror(-ret));
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		ret = -errno;
		close(fd);
		if (ret == -ENOENT || ret == -ECONNREFUSED)
			error_set(ret, "no VM named '%s' is running", name);
		else if (ret == -EAGAIN)
			error_set(ret, "VM '%s' is not accepting control connections (busy)", name);
		else
			error_set(ret, "%s: %s", sun.sun_path, strerror(-ret));
		return ret;
	}
	if (peer_pid)
		*peer_pid =
		    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0 ? cred.pid : 0;
	*fd_out = fd;
	return 0;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Wait for `events` on fd until the deadline (-1: none). */
static int wait_fd(int fd, short events, long long deadline)
{
	for (;;) {
		struct pollfd p = {.fd = fd, .events = events};
		int timeout = -1, r;
		if (deadline >= 0) {
			long long left = deadline - now_ms();
			if (left <= 0)
				return -ETIMEDOUT;
			timeout = left > 1000000 ? 1000000 : (int)left;
		}
		r = poll(&p, 1, timeout);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

static char *build_request(int id, const char *verb, int argc, char **argv)
{
	struct json_object *req = json_object_new_object(), *args = json_object_new_array();
	char *line = NULL;
	int bad = !req || !args;

	for (int i = 0; !bad && i < argc; i++) {
		struct json_object *s = json_object_new_string(argv[i]);
		bad = !s || json_object_array_add(args, s) < 0;
	}
	if (!bad &&
	    !json_object_object_add(req, "version",
				    json_object_new_int(CONTROL_PROTOCOL_VERSION)) &&
	    !json_object_object_add(req, "id", json_object_new_int(id)) &&
	    !json_object_object_add(req, "verb", json_object_new_string(verb)) &&
	    !json_object_object_add(req, "args", json_object_get(args))) {
		const char *s = json_object_to_json_string_ext(
		    req, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
		if (s && asprintf(&line, "%s\n", s) < 0)
			line = NULL;
	}
	json_object_put(args);
	json_object_put(req);
	return line;
}

static int send_all(int fd, const char *buf, size_t len, long long deadline)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			int ret = errno == EAGAIN  ? wait_fd(fd, POLLOUT, deadline)
				  : errno == EINTR ? 0
						   : -errno;
			if (ret < 0)
				return ret;
			continue;
		}
		buf += n;
		len -= n;
	}
	return 0;
}

/* Read up to and excluding the first newline into a malloc'd string. */
static int recv_line(int fd, long long deadline, char **out, size_t *outlen)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;
		char *nl;
		if (len + 1 >= cap) {
			char *p = cap >= CONTROL_REPLY_MAX ? NULL : realloc(buf, cap * 2);
			if (!p) {
				free(buf);
				return cap >= CONTROL_REPLY_MAX ? -EMSGSIZE : -ENOMEM;
			}
			buf = p;
			cap *= 2;
		}
		n = recv(fd, buf + len, cap - len - 1, MSG_DONTWAIT);
		if (n < 0 && errno == EAGAIN) {
			int ret = wait_fd(fd, POLLIN, deadline);
			if (ret < 0) {
				free(buf);
				return ret;
			}
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(buf);
			return n == 0 ? -ECONNRESET : -errno;
		}
		nl = memchr(buf + len, '\n', n);
		len += n;
		if (nl) {
			/* One request, one reply: bytes after the newline are not ours to read. */
			*nl = 0;
			*out = buf;
			*outlen = nl - buf;
			return 0;
		}
	}
}

static int check_reply(struct json_object *r, int id, char *why, size_t whylen)
{
	struct json_object *v;

	if (!json_object_is_type(r, json_type_object)) {
		snprintf(why, whylen, "not a JSON object");
		return -EPROTO;
	}
	if (!json_object_object_get_ex(r, "version", &v) ||
	    !json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) != CONTROL_PROTOCOL_VERSION) {
		snprintf(why, whylen, "missing or unsupported protocol version (expected %d)",
			 CONTROL_PROTOCOL_VERSION);
		return -EPROTO;
	}
	/* A server that could not parse our request answers with a null id. */
	if (json_object_object_get_ex(r, "id", &v) && v &&
	    (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) != id)) {
		snprintf(why, whylen, "reply id does not match the request");
		return -EPROTO;
	}
	if (!json_object_object_get_ex(r, "ok", &v) || !json_object_is_type(v, json_type_boolean)) {
		snprintf(why, whylen, "missing \"ok\"");
		return -EPROTO;
	}
	if (json_object_get_boolean(v)) {
		if (!json_object_object_get_ex(r, "result", &v)) {
			snprintf(why, whylen, "missing \"result\"");
			return -EPROTO;
		}
	} else if (!json_object_object_get_ex(r, "error", &v) ||
		   !json_object_is_type(v, json_type_string)) {
		snprintf(why, whylen, "missing \"error\"");
		return -EPROTO;
	}
	return 0;
}

int control_exchange(int fd, const char *name, int id, const char *verb, int argc, char **argv,
		     int timeout_ms, struct json_object **reply)
{
	long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	char *req, *line = NULL, why[128];
	size_t len = 0;
	struct json_object *r;
	int ret;

	*reply = NULL;
	if (!control_verb_valid(verb))
		return error_set(-EINVAL, "invalid verb '%.40s'", verb ? verb : "");
	req = build_request(id, verb, argc, argv);
	if (!req)
		return error_set(-ENOMEM, "out of memory");
	if (strlen(req) > CONTROL_LINE_MAX + 1) {
		free(req);
		return error_set(-E2BIG, "request longer than %d bytes", CONTROL_LINE_MAX);
	}
	ret = send_all(fd, req, strlen(req), deadline);
	free(req);
	if (!ret)
		ret = recv_line(fd, deadline, &line, &len);
	if (ret == -ETIMEDOUT)
		return error_set(ret, "no reply from VM '%s' within %d ms", name, timeout_ms);
	if (ret == -EMSGSIZE)
		return error_set(-EPROTO, "bad reply from VM '%s': longer than %d bytes", name,
				 CONTROL_REPLY_MAX);
	if (ret < 0)
		return error_set(ret, "VM '%s': %s", name,
				 ret == -ECONNRESET ? "connection closed before the reply"
						    : strerror(-ret));
	r = control_json_parse_line(line, len);
	free(line);
	if (!r)
		return error_set(-EPROTO, "bad reply from VM '%s': %s", name, why);
	ret = check_reply(r, id, why, sizeof(why));
	if (ret < 0) {
		json_object_put(r);
		return error_set(ret, "bad reply from VM '%s': %s", name, why);
	}
	*reply = r;
	return 0;
}

int control_call(const char *name, const char *verb, int argc, char **argv, int timeout_ms,
		 struct json_object **reply)
{
	struct json_object *r, *v;
	int fd = -1, ret;

	*reply = NULL;
	ret = control_connect(name, &fd, NULL);
	if (ret < 0)
		return ret;
	ret = control_exchange(fd, name, 1, verb, argc, argv, timeout_ms, &r);
	close(fd);
	if (ret < 0)
		return ret;
	json_object_object_get_ex(r, "ok", &v);
	if (!json_object_get_boolean(v)) {
		json_object_object_get_ex(r, "error", &v);
		error_set(-EREMOTEIO, "%s", json_object_get_string(v));
		json_object_put(r);
		return -EREMOTEIO;
	}
	*reply = r;
	return 0;
}
