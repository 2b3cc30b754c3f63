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

int switch_call(const char *path, struct json_object *request, int timeout_ms, int *fd_out,
		struct json_object **reply)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sun.sun_path))
		return error_set(-ENAMETOOLONG, "%s: path too long for a UNIX socket", path);
	strcpy(sun.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int e = errno;
		return error_set(-e, "socket: %s", strerror(e));
	}
	struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	int ret;
	char *buf = NULL;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		ret = -errno;
		error_set(ret, "%s: %s", path,
			  ret == -ENOENT || ret == -ECONNREFUSED ? "no switch is running there"
								 : strerror(-ret));
		goto out;
	}
	json_object_object_add(request, "version", json_object_new_int(SWITCH_PROTO_VERSION));
	const char *text = json_object_to_json_string_ext(request, JSON_C_TO_STRING_PLAIN);
	if (send(fd, text, strlen(text), MSG_NOSIGNAL) < 0) {
		ret = -errno;
		error_set(ret, "%s: send: %s", path, strerror(-ret));
		goto out;
	}
	ret = -ENOMEM;
	if (!(buf = malloc(SWITCH_MSG_MAX + 1))) {
		error_set(ret, "out of memory");
		goto out;
	}
	ssize_t n = recv(fd, buf, SWITCH_MSG_MAX, 0);
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
		error_set(-EINVAL, "%s",
			  json_object_object_get_ex(r, "error", &e) ? json_object_get_string(e)
								    : "refused");
		json_object_put(r);
		ret = -EINVAL;
		goto out;
	}
	*reply = r;
	ret = 0;
	if (fd_out) {
		*fd_out = fd;
		fd = -1;
	}
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return ret;
}

int switch_join(const char *path, const char *port_name, const uint8_t mac[6], unsigned vlan)
{
	struct json_object *req = json_object_new_object(), *reply = NULL;
	char m[18];
	switch_mac_format(mac, m);
	json_object_object_add(req, "op", json_object_new_string("join"));
	json_object_object_add(req, "name", json_object_new_string(port_name));
	json_object_object_add(req, "mac", json_object_new_string(m));
	json_object_object_add(req, "vlan", json_object_new_int((int)vlan));
	int fd = -1;
	int r = switch_call(path, req, 5000, &fd, &reply);
	json_object_put(req);
	json_object_put(reply);
	if (r < 0)
		return r;
	int sndbuf = SWITCH_PORT_SNDBUF;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	struct timeval tv = {0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}
