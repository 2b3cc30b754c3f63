/* The switch process (see switch_server.h). */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lib/event_loop.h"
#include "lib/peer_cred.h"
#include "net/switch_core.h"
#include "net/switch_proto.h"
#include "net/switch_server.h"
#include "net/tap.h"
#include "net/vnet_hdr.h"
#include "lib/error.h"

#define MAX_CONNS (SWITCH_MAX_PORTS + 16)
#define BATCH 64     /* frames from one port before the others get their turn */
#define RECV_BATCH 8 /* frames one recvmmsg takes from a port socket */

struct conn {
	struct switch_server *srv;
	int fd;
	int port; /* -1: not joined yet (its first message is a request) */
	bool tap;
	bool refused; /* another user: its request gets "permission denied" */
	struct event_source *src;
};

struct switch_server {
	struct switch_options o;
	char name[65];
	char path[108];
	char uplink[TAP_NAME_MAX + 1];
	struct switch_core core;
	struct event_loop *loop;
	int listen_fd;
	struct event_source *listen_src, *age_timer;
	struct conn conns[MAX_CONNS];
	struct conn *by_port[SWITCH_MAX_PORTS];
	struct conn tap;
	uint8_t buf[VNET_MAX_MSG + 1];	   /* a TAP's frame */
	uint8_t (*bufs)[VNET_MAX_MSG + 1]; /* RECV_BATCH of them: a port's frames */
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void conn_close(struct conn *c)
{
	struct switch_server *s = c->srv;
	event_source_remove(c->src);
	c->src = NULL;
	if (c->port >= 0) {
		switch_port_remove(&s->core, (unsigned)c->port);
		s->by_port[c->port] = NULL;
	}
	if (!c->tap)
		close(c->fd);
	c->fd = -1;
	c->port = -1;
}

/* --- frames --------------------------------------------------------------------------- */

static void send_frame(struct switch_server *s, unsigned port, const uint8_t *msg, size_t len,
		       enum switch_tag_op op, uint16_t vlan)
{
	struct conn *c = s->by_port[port];
	struct switch_port *p = &s->core.ports[port];
	uint8_t hdr[VNET_HDR_LEN], tag[4];
	struct iovec iov[4];
	int n = 0;
	size_t frame_len = len - VNET_HDR_LEN;
	const uint8_t *f = msg + VNET_HDR_LEN;
	if (op == SWITCH_TAG_KEEP) {
		iov[n++] = (struct iovec){(void *)msg, len};
	} else {
		struct vnet_hdr h;
		vnet_hdr_get(msg, &h);
		if (vnet_hdr_retag(&h, frame_len, op == SWITCH_TAG_PUSH) < 0) {
			p->c.tx_drops++; /* offsets at the edge: not passed on wrapped */
			return;
		}
		vnet_hdr_put(hdr, &h);
		iov[n++] = (struct iovec){hdr, VNET_HDR_LEN};
		iov[n++] = (struct iovec){(void *)f, 12};
		if (op == SWITCH_TAG_PUSH) {
			tag[0] = 0x81;
			tag[1] = 0x00;
			tag[2] = (uint8_t)(vlan >> 8);
			tag[3] = (uint8_t)vlan;
			iov[n++] = (struct iovec){tag, 4};
			iov[n++] = (struct iovec){(void *)(f + 12), frame_len - 12};
			frame_len += 4;
		} else {
			iov[n++] = (struct iovec){(void *)(f + 16), frame_len - 16};
			frame_len -= 4;
		}
	}
	ssize_t w;
	if (c->tap) {
		w = writev(c->fd, iov, n);
	} else {
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
		w = sendmsg(c->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	}
	if (w < 0) {
		p->c.tx_drops++; /* full (the port stopped reading) or gone: never wait */
		return;
	}
	p->c.tx_frames++;
	p->c.tx_bytes += frame_len;
}

static const struct vnet_accept port_accept = {
    .csum = true, .tso4 = true, .tso6 = true, .ecn = true, .ufo = true};

static void frame_in(struct switch_server *s, struct conn *c, const uint8_t *msg, size_t len,
		     bool truncated)
{
	struct switch_port *p = &s->core.ports[c->port];
	struct vnet_hdr h;
	if (truncated || len < VNET_HDR_LEN) {
		p->c.rx_frames++;
		p->c.rx_drops++;
		return;
	}
	vnet_hdr_get(msg, &h);
	if (vnet_hdr_check(&h, len - VNET_HDR_LEN, &port_accept) != VNET_OK) {
		p->c.rx_frames++;
		p->c.rx_bytes += len - VNET_HDR_LEN;
		p->c.rx_drops++;
		return;
	}
	struct switch_decision d;
	if (switch_forward(&s->core, (unsigned)c->port, msg + VNET_HDR_LEN, len - VNET_HDR_LEN,
			   now_ns(), &d) < 0)
		return;
	for (unsigned i = 0; i < d.nout; i++)
		send_frame(s, d.out[i], msg, len, d.op[i], d.vlan);
}

static void tap_readable(struct conn *c)
{
	struct switch_server *s = c->srv;
	for (int i = 0; i < BATCH; i++) {
		ssize_t n = read(c->fd, s->buf, sizeof(s->buf));
		if (n < 0)
			return; /* EAGAIN, or the TAP went away (its link is the host's business) */
		frame_in(s, c, s->buf, (size_t)n, n > VNET_MAX_MSG);
	}
}

/* Up to BATCH frames from a port socket, RECV_BATCH per recvmmsg (one call for a burst, and
 * no extra call to learn that a lone frame was the last). */
static void port_readable(struct conn *c)
{
	struct switch_server *s = c->srv;
	struct mmsghdr mm[RECV_BATCH];
	struct iovec iov[RECV_BATCH];
	for (int done = 0; done < BATCH;) {
		for (int i = 0; i < RECV_BATCH; i++) {
			iov[i] = (struct iovec){s->bufs[i], sizeof(s->bufs[i])};
			mm[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[i], .msg_iovlen = 1}};
		}
		int got = recvmmsg(c->fd, mm, RECV_BATCH, MSG_DONTWAIT, NULL);
		if (got < 0) {
			if (errno != EAGAIN && errno != EINTR)
				conn_close(c);
			return;
		}
		for (int i = 0; i < got; i++) {
			if (mm[i].msg_len == 0) { /* end of file: the port's VM is gone */
				conn_close(c);
				return;
			}
			bool trunc = (mm[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
			frame_in(s, c, s->bufs[i], mm[i].msg_len, trunc);
			if (c->port < 0)
				return;
		}
		if (got < RECV_BATCH)
			return;
		done += got;
	}
}

/* --- requests ------------------------------------------------------------------------- */

static void reply(struct conn *c, struct json_object *r)
{
	const char *t = json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN);
	(void)!send(c->fd, t, strlen(t), MSG_DONTWAIT | MSG_NOSIGNAL);
	json_object_put(r);
}

static void reply_error(struct conn *c, const char *msg)
{
	struct json_object *r = json_object_new_object();
	json_object_object_add(r, "ok", json_object_new_boolean(0));
	json_object_object_add(r, "error", json_object_new_string(msg));
	reply(c, r);
}

static struct json_object *counters_json(const struct switch_port *p, unsigned i)
{
	struct json_object *o = json_object_new_object();
	char m[18];
	switch_mac_format(p->mac, m);
	json_object_object_add(o, "port", json_object_new_int((int)i));
	json_object_object_add(o, "name", json_object_new_string(p->name));
	json_object_object_add(o, "mac", json_object_new_string(m));
	json_object_object_add(o, "vlan", json_object_new_int(p->vlan));
	json_object_object_add(o, "trunk", json_object_new_boolean(p->trunk));
	json_object_object_add(o, "learned", json_object_new_int((int)p->nmacs));
	json_object_object_add(o, "mac_limit", json_object_new_int((int)p->mac_limit));
	json_object_object_add(o, "rx_frames", json_object_new_int64((int64_t)p->c.rx_frames));
	json_object_object_add(o, "rx_bytes", json_object_new_int64((int64_t)p->c.rx_bytes));
	json_object_object_add(o, "rx_drops", json_object_new_int64((int64_t)p->c.rx_drops));
	json_object_object_add(o, "tx_frames", json_object_new_int64((int64_t)p->c.tx_frames));
	json_object_object_add(o, "tx_bytes", json_object_new_int64((int64_t)p->c.tx_bytes));
	json_object_object_add(o, "tx_drops", json_object_new_int64((int64_t)p->c.tx_drops));
	return o;
}

static struct json_object *info_json(struct switch_server *s)
{
	struct json_object *r = json_object_new_object(), *ports = json_object_new_array(),
			   *macs = json_object_new_array();
	uint64_t now = now_ns();
	switch_age(&s->core, now);
	json_object_object_add(r, "name", json_object_new_string(s->name));
	json_object_object_add(r, "pid", json_object_new_int((int)getpid()));
	json_object_object_add(r, "vlan_aware", json_object_new_boolean(s->core.vlan_aware));
	json_object_object_add(r, "uplink",
			       s->uplink[0] ? json_object_new_string(s->uplink)
					    : json_object_new_string(""));
	json_object_object_add(r, "aging_s",
			       json_object_new_int64((int64_t)(s->core.aging_ns / 1000000000ULL)));
	json_object_object_add(r, "flooded", json_object_new_int64((int64_t)s->core.flooded));
	for (unsigned i = 0; i < SWITCH_MAX_PORTS; i++)
		if (s->core.ports[i].used)
			json_object_array_add(ports, counters_json(&s->core.ports[i], i));
	for (unsigned i = 0; i < SWITCH_FDB_MAX; i++) {
		const struct switch_fdb_entry *e = &s->core.fdb[i];
		if (e->port < 0)
			continue;
		struct json_object *o = json_object_new_object();
		char m[18];
		switch_mac_format(e->mac, m);
		json_object_object_add(o, "mac", json_object_new_string(m));
		json_object_object_add(o, "vlan", json_object_new_int(e->vlan));
		json_object_object_add(o, "port", json_object_new_int(e->port));
		json_object_object_add(
		    o, "age_s",
		    json_object_new_int64((int64_t)((now - e->seen_ns) / 1000000000ULL)));
		json_object_array_add(macs, o);
	}
	json_object_object_add(r, "ports", ports);
	json_object_object_add(r, "macs", macs);
	return r;
}

static void join(struct switch_server *s, struct conn *c, struct json_object *req)
{
	struct json_object *v;
	const char *name = "", *mac_s = NULL;
	uint8_t mac[6] = {0};
	int vlan = 0;
	char msg[160];
	if (json_object_object_get_ex(req, "name", &v) && json_object_is_type(v, json_type_string))
		name = json_object_get_string(v);
	if (json_object_object_get_ex(req, "mac", &v) && json_object_is_type(v, json_type_string))
		mac_s = json_object_get_string(v);
	if (json_object_object_get_ex(req, "vlan", &v)) {
		if (!json_object_is_type(v, json_type_int)) {
			reply_error(c, "join: vlan must be a number");
			return;
		}
		vlan = json_object_get_int(v);
	}
	if (mac_s && (switch_mac_parse(mac_s, mac) < 0 || (mac[0] & 1))) {
		reply_error(c, "join: bad mac (a unicast xx:xx:xx:xx:xx:xx)");
		return;
	}
	if (vlan < 0 || vlan > SWITCH_VLAN_MAX) {
		reply_error(c, "join: vlan outside 1..4094");
		return;
	}
	if (vlan && !s->core.vlan_aware) {
		snprintf(msg, sizeof(msg),
			 "join: switch %s is not vlan-aware (start it with --vlan-aware)", s->name);
		reply_error(c, msg);
		return;
	}
	unsigned limit = s->o.mac_limit ? s->o.mac_limit : SWITCH_DEFAULT_MAC_LIMIT;
	int port = switch_port_add(&s->core, name, mac, (uint16_t)vlan, false, limit);
	if (port < 0) {
		snprintf(msg, sizeof(msg), "join: switch %s has no free port (%d at most)", s->name,
			 SWITCH_MAX_PORTS);
		reply_error(c, msg);
		return;
	}
	c->port = port;
	s->by_port[port] = c;
	int sndbuf = SWITCH_PORT_SNDBUF;
	setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	struct json_object *r = json_object_new_object();
	json_object_object_add(r, "ok", json_object_new_boolean(1));
	json_object_object_add(r, "port", json_object_new_int(port));
	reply(c, r);
}

static void request(struct conn *c)
{
	struct switch_server *s = c->srv;
	char *buf = malloc(SWITCH_MSG_MAX + 1);
	if (!buf) {
		conn_close(c);
		return;
	}
	ssize_t n = recv(c->fd, buf, SWITCH_MSG_MAX, MSG_DONTWAIT);
	if (n <= 0) {
		free(buf);
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			conn_close(c);
		return;
	}
	buf[n] = 0;
	struct json_object *req = json_tokener_parse(buf), *v;
	free(buf);
	const char *op = NULL;
	if (c->refused) {
		reply_error(c, "permission denied (the switch admits its owner and root only)");
	} else if (!req || !json_object_is_type(req, json_type_object)) {
		reply_error(c, "malformed request (one JSON object)");
	} else if (!json_object_object_get_ex(req, "version", &v) ||
		   json_object_get_int(v) != SWITCH_PROTO_VERSION) {
		reply_error(c, "protocol version 1 only");
	} else if (!json_object_object_get_ex(req, "op", &v) ||
		   !json_object_is_type(v, json_type_string)) {
		reply_error(c, "request without op");
	} else if (!strcmp(op = json_object_get_string(v), "join")) {
		join(s, c, req);
	} else if (!strcmp(op, "info")) {
		struct json_object *r = json_object_new_object();
		json_object_object_add(r, "ok", json_object_new_boolean(1));
		json_object_object_add(r, "result", info_json(s));
		int sndbuf = SWITCH_MSG_MAX + 4096;
		setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
		reply(c, r);
	} else if (!strcmp(op, "stop")) {
		struct json_object *r = json_object_new_object();
		json_object_object_add(r, "ok", json_object_new_boolean(1));
		reply(c, r);
		event_loop_stop(s->loop);
	} else {
		reply_error(c, "unknown op (join, info, stop)");
	}
	json_object_put(req);
	if (c->port < 0)
		conn_close(c); /* one request per control connection */
}

static void conn_event(void *opaque, uint32_t events)
{
	struct conn *c = opaque;
	if (c->port >= 0 && (events & EPOLLIN)) {
		if (c->tap)
			tap_readable(c);
		else
			port_readable(c);
		return;
	}
	if (c->port < 0 && (events & EPOLLIN)) {
		request(c);
		return;
	}
	if (events & (EPOLLHUP | EPOLLERR))
		conn_close(c);
}

static void accept_event(void *opaque, uint32_t events)
{
	struct switch_server *s = opaque;
	(void)events;
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	for (unsigned i = 0; i < MAX_CONNS; i++) {
		struct conn *c = &s->conns[i];
		if (c->fd >= 0)
			continue;
		c->fd = fd;
		c->port = -1;
		/* Another user reached the socket (modes opened up by mistake): it may not join or
		 * ask.  Its request is read before the refusal, so it gets the reason, not a reset.
		 */
		c->refused = !peer_is_owner_or_root(fd);
		if (event_loop_add_fd(s->loop, fd, EPOLLIN, conn_event, c, &c->src) < 0) {
			close(fd);
			c->fd = -1;
		}
		return;
	}
	close(fd); /* every slot taken: the client sees the connection close */
}

static void age_event(void *opaque, uint32_t events)
{
	struct switch_server *s = opaque;
	(void)events;
	switch_age(&s->core, now_ns());
}

/* --- lifecycle ------------------------------------------------------------------------ */

static int listen_on(struct switch_server *s)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (strlen(s->path) >= sizeof(sun.sun_path))
		return error_set(-ENAMETOOLONG, "%s: path too long for a UNIX socket", s->path);
	strcpy(sun.sun_path, s->path);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A live switch answers; a socket left by a killed one refuses and is replaced. */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0 || errno == EAGAIN) {
		close(fd);
		return error_set(-EADDRINUSE, "switch %s is already running (%s)", s->name,
				 s->path);
	}
	close(fd);
	unlink(s->path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	mode_t old = umask(0177);
	int r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (r < 0 || listen(fd, 64) < 0) {
		r = -errno;
		error_set(r, "%s: %s", s->path, strerror(-r));
		close(fd);
		return r;
	}
	s->listen_fd = fd;
	return 0;
}

int switch_server_create(const struct switch_options *o, struct switch_server **out)
{
	struct switch_server *s = calloc(1, sizeof(*s));
	if (!s)
		return error_set(-ENOMEM, "out of memory");
	s->o = *o;
	s->bufs = malloc(RECV_BATCH * sizeof(*s->bufs));
	if (!s->bufs) {
		free(s);
		return error_set(-ENOMEM, "out of memory");
	}
	snprintf(s->name, sizeof(s->name), "%s", o->name);
	snprintf(s->path, sizeof(s->path), "%s", o->path);
	s->listen_fd = -1;
	s->tap.fd = -1;
	s->tap.port = -1;
	for (unsigned i = 0; i < MAX_CONNS; i++) {
		s->conns[i].srv = s;
		s->conns[i].fd = -1;
		s->conns[i].port = -1;
	}
	switch_core_init(&s->core, o->vlan_aware);
	if (o->aging_s)
		s->core.aging_ns = (uint64_t)o->aging_s * 1000000000ULL;
	int r = event_loop_create(&s->loop);
	if (r < 0) {
		error_set(r, "event loop: %s", strerror(-r));
		free(s->bufs);
		free(s);
		return r;
	}
	if ((r = listen_on(s)) < 0)
		goto fail;
	if (o->uplink) {
		snprintf(s->uplink, sizeof(s->uplink), "%s", o->uplink);
		int fd = tap_open(o->uplink);
		if (fd < 0) {
			r = fd;
			goto fail;
		}
		char pname[64];
		snprintf(pname, sizeof(pname), "uplink:%s", o->uplink);
		s->tap = (struct conn){.srv = s, .fd = fd, .tap = true};
		s->tap.port =
		    switch_port_add(&s->core, pname, NULL, 0, o->vlan_aware, SWITCH_FDB_MAX);
		s->by_port[s->tap.port] = &s->tap;
		if ((r = event_loop_add_fd(s->loop, fd, EPOLLIN, conn_event, &s->tap,
					   &s->tap.src)) < 0) {
			error_set(r, "event loop: %s", strerror(-r));
			goto fail;
		}
	}
	if ((r = event_loop_add_fd(s->loop, s->listen_fd, EPOLLIN, accept_event, s,
				   &s->listen_src)) < 0 ||
	    (r = event_loop_add_timer(s->loop, 1000000000ULL, 1000000000ULL, age_event, s,
				      &s->age_timer)) < 0) {
		error_set(r, "event loop: %s", strerror(-r));
		goto fail;
	}
	*out = s;
	return 0;
fail:
	switch_server_destroy(s);
	return r;
}

int switch_server_run(struct switch_server *s)
{
	return event_loop_run(s->loop);
}

void switch_server_destroy(struct switch_server *s)
{
	if (!s)
		return;
	for (unsigned i = 0; i < MAX_CONNS; i++)
		if (s->conns[i].fd >= 0)
			conn_close(&s->conns[i]);
	if (s->tap.fd >= 0) {
		event_source_remove(s->tap.src);
		close(s->tap.fd);
	}
	event_source_remove(s->listen_src);
	event_source_remove(s->age_timer);
	if (s->listen_fd >= 0) {
		close(s->listen_fd);
		unlink(s->path);
	}
	event_loop_destroy(s->loop);
	free(s->bufs);
	free(s);
}
