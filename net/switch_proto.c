/* The client side of the switch protocol (see switch_proto.h). */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "net/switch_proto.h"
#include "lib/error.h"

int switch_mac_parse(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char end;
	if (strlen(s) != 17 || sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3],
				      &v[4], &v[5], &end) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		if (s[i * 3] == ' ' || s[i * 3] == '+' || s[i * 3] == '-')
			return -EINVAL;
		mac[i] = (uint8_t)v[i];
	}
	return 0;
}

void switch_mac_format(const uint8_t m[6], char out[18])
{
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

/* A SOCK_SEQPACKET socket connected to the switch at `path`; `flags` adds SOCK_NONBLOCK.  For a
 * UNIX socket connect never waits on the switch process: it succeeds once the kernel queued the
 * connection, or fails (-EAGAIN when the switch's backlog is full). */
static int connect_switch(const char *path, int flags)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sun.sun_path))
		return error_set(-ENAMETOOLONG, "%s: path too long for a UNIX socket", path);
	strcpy(sun.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | flags, 0);
	if (fd < 0) {
		int e = errno;
		return error_set(-e, "socket: %s", strerror(e));
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int e = errno;
		close(fd);
		return error_set(-e, "%s: %s", path,
				 e == ENOENT || e == ECONNREFUSED ? "no switch is running there"
								  : strerror(e));
	}
	return fd;
}

static int send_request(int fd, const char *path, struct json_object *request)
{
	json_object_object_add(request, "version", json_object_new_int(SWITCH_PROTO_VERSION));
	const char *text = json_object_to_json_string_ext(request, JSON_C_TO_STRING_PLAIN);
	if (send(fd, text, strlen(text), MSG_NOSIGNAL) < 0) {
		int e = errno;
		return error_set(-e, "%s: send: %s", path, strerror(e));
	}
	return 0;
}

/* Receive the reply on fd (`flags`: MSG_DONTWAIT or 0): 0 with *reply, -EAGAIN nothing yet (with
 * MSG_DONTWAIT), else -errno with a message. */
static int receive_reply(int fd, int flags, const char *path, struct json_object **reply)
{
	char *buf = malloc(SWITCH_MSG_MAX + 1);
	if (!buf)
		return error_set(-ENOMEM, "out of memory");
	int ret = 0;
	ssize_t n = recv(fd, buf, SWITCH_MSG_MAX, flags);
	if (n < 0 && errno == EAGAIN && (flags & MSG_DONTWAIT)) {
		ret = -EAGAIN;
		goto out;
	}
	if (n <= 0) {
		ret = n < 0 ? -errno : -ECONNRESET;
		error_set(ret, "%s: no reply from the switch (%s)", path,
			  ret == -EAGAIN ? "timed out" : strerror(-ret));
		goto out;
	}
	buf[n] = 0;
	struct json_object *r = json_tokener_parse(buf), *ok, *e;
	if (!r || !json_object_is_type(r, json_type_object) ||
	    !json_object_object_get_ex(r, "ok", &ok)) {
		json_object_put(r);
		ret = -EPROTO;
		error_set(ret, "%s: malformed reply from the switch", path);
		goto out;
	}
	if (!json_object_get_boolean(ok)) {
		ret =
		    error_set(-EINVAL, "%s",
			      json_object_object_get_ex(r, "error", &e) ? json_object_get_string(e)
									: "refused");
		json_object_put(r);
		goto out;
	}
	*reply = r;
out:
	free(buf);
	return ret;
}

int switch_call(const char *path, struct json_object *request, int timeout_ms, int *fd_out,
		struct json_object **reply)
{
	int fd = connect_switch(path, 0);
	if (fd < 0)
		return fd;
	struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	int ret = send_request(fd, path, request);
	if (ret == 0)
		ret = receive_reply(fd, 0, path, reply);
	if (ret == 0 && fd_out) {
		*fd_out = fd;
		fd = -1;
	}
	if (fd >= 0)
		close(fd);
	return ret;
}

/* A joined connection as a port: big send buffer, non-blocking. */
static int port_ready(int fd)
{
	int sndbuf = SWITCH_PORT_SNDBUF;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	struct timeval tv = {0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

static struct json_object *join_request(const char *port_name, const uint8_t mac[6], unsigned vlan)
{
	struct json_object *req = json_object_new_object();
	char m[18];
	switch_mac_format(mac, m);
	json_object_object_add(req, "op", json_object_new_string("join"));
	json_object_object_add(req, "name", json_object_new_string(port_name));
	json_object_object_add(req, "mac", json_object_new_string(m));
	json_object_object_add(req, "vlan", json_object_new_int((int)vlan));
	return req;
}

int switch_join(const char *path, const char *port_name, const uint8_t mac[6], unsigned vlan)
{
	struct json_object *req = join_request(port_name, mac, vlan), *reply = NULL;
	int fd = -1;
	int r = switch_call(path, req, 5000, &fd, &reply);
	json_object_put(req);
	json_object_put(reply);
	return r < 0 ? r : port_ready(fd);
}

int switch_join_begin(struct switch_joining *j, const char *path, const char *port_name,
		      const uint8_t mac[6], unsigned vlan)
{
	j->fd = -1;
	snprintf(j->path, sizeof(j->path), "%s", path);
	int fd = connect_switch(path, SOCK_NONBLOCK);
	if (fd < 0)
		return fd;
	struct json_object *req = join_request(port_name, mac, vlan);
	int r = send_request(fd, path, req); /* a fresh connection takes it at once */
	json_object_put(req);
	if (r < 0) {
		close(fd);
		return r;
	}
	j->fd = fd;
	return 0;
}

int switch_join_finish(struct switch_joining *j)
{
	if (j->fd < 0)
		return error_set(-EINVAL, "no join under way");
	struct json_object *reply = NULL;
	int r = receive_reply(j->fd, MSG_DONTWAIT, j->path, &reply);
	json_object_put(reply);
	if (r == -EAGAIN)
		return r;
	int fd = j->fd;
	j->fd = -1;
	if (r < 0) {
		close(fd);
		return r;
	}
	return port_ready(fd);
}

void switch_join_abandon(struct switch_joining *j)
{
	if (j->fd >= 0)
		close(j->fd);
	j->fd = -1;
}
