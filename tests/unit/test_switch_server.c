/* The switch process's socket side without VMs: a switch_server on its own thread, ports joined
 * through the real protocol (net/switch_proto.h), frames through them; info counters and MAC
 * table; a port that stops reading is dropped from while the others go on; a closed port frees
 * its slot and its MACs; malformed frames and requests are refused. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/switch_proto.h"
#include "net/switch_server.h"
#include "net/vnet_hdr.h"
#include "tests/lib/testlib.h"
#include "lib/error.h"

struct sw {
	struct switch_server *srv;
	pthread_t thread;
	char path[108];
};

static void *serve(void *arg)
{
	switch_server_run(arg);
	return NULL;
}

static void sw_start(struct sw *s, bool vlan_aware, unsigned mac_limit)
{
	snprintf(s->path, sizeof(s->path), "%s", test_path("sw.switch"));
	struct switch_options o = {
	    .name = "sw", .path = s->path, .vlan_aware = vlan_aware, .mac_limit = mac_limit};
	assert_int_equal(switch_server_create(&o, &s->srv), 0);
	assert_int_equal(pthread_create(&s->thread, NULL, serve, s->srv), 0);
}

static void sw_stop(struct sw *s)
{
	struct json_object *req = json_object_new_object(), *reply = NULL;
	json_object_object_add(req, "op", json_object_new_string("stop"));
	assert_int_equal(switch_call(s->path, req, 5000, NULL, &reply), 0);
	json_object_put(req);
	json_object_put(reply);
	pthread_join(s->thread, NULL);
	switch_server_destroy(s->srv);
}

static int join(struct sw *s, const char *name, uint8_t last, unsigned vlan)
{
	uint8_t mac[6] = {0x02, 0, 0, 0, 0, last};
	int fd = switch_join(s->path, name, mac, vlan);
	if (fd < 0)
		print_message("join %s: %s\n", name, error_msg());
	return fd;
}

/* Send an untagged frame dst <- src of len bytes with a zero vnet header. */
static void send_frame(int fd, uint8_t dst_last, uint8_t src_last, size_t len)
{
	uint8_t m[VNET_HDR_LEN + 1600] = {0};
	uint8_t *f = m + VNET_HDR_LEN;
	memset(f, 0xFF, 6);
	if (dst_last != 0xFF) {
		uint8_t d[6] = {0x02, 0, 0, 0, 0, dst_last};
		memcpy(f, d, 6);
	}
	uint8_t s[6] = {0x02, 0, 0, 0, 0, src_last};
	memcpy(f + 6, s, 6);
	f[12] = 0x08;
	assert_int_equal(send(fd, m, VNET_HDR_LEN + len, 0), (ssize_t)(VNET_HDR_LEN + len));
}

/* Next frame on fd (bounded wait, only against hangs): its length, or -1. */
static ssize_t recv_frame(int fd, uint8_t *buf, size_t len)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, 5000) != 1)
		return -1;
	return recv(fd, buf, len, 0);
}

static struct json_object *info(struct sw *s)
{
	struct json_object *req = json_object_new_object(), *reply = NULL, *r;
	json_object_object_add(req, "op", json_object_new_string("info"));
	assert_int_equal(switch_call(s->path, req, 5000, NULL, &reply), 0);
	json_object_put(req);
	assert_true(json_object_object_get_ex(reply, "result", &r));
	json_object_get(r);
	json_object_put(reply);
	return r;
}

static int64_t port_field(struct json_object *info, int port, const char *key)
{
	struct json_object *ports, *v;
	json_object_object_get_ex(info, "ports", &ports);
	for (size_t i = 0; i < json_object_array_length(ports); i++) {
		struct json_object *p = json_object_array_get_idx(ports, i);
		json_object_object_get_ex(p, "port", &v);
		if (json_object_get_int(v) == port) {
			assert_true(json_object_object_get_ex(p, key, &v));
			return json_object_get_int64(v);
		}
	}
	return -1;
}

/* Send a broadcast from `from` and wait until `to` has it: a barrier for what came before. */
static void sync_ports(int from, uint8_t from_last, int to)
{
	uint8_t buf[VNET_MAX_MSG];
	send_frame(from, 0xFF, from_last, 60);
	assert_int_equal(recv_frame(to, buf, sizeof(buf)), VNET_HDR_LEN + 60);
}

static void forwarding_through_sockets(void **state)
{
	(void)state;
	struct sw s;
	sw_start(&s, false, 0);
	int a = join(&s, "a", 1, 0), b = join(&s, "b", 2, 0), c = join(&s, "c", 3, 0);
	assert_true(a >= 0 && b >= 0 && c >= 0);
	uint8_t buf[VNET_MAX_MSG];
	/* a broadcasts: b and c get it */
	send_frame(a, 0xFF, 1, 100);
	assert_int_equal(recv_frame(b, buf, sizeof(buf)), VNET_HDR_LEN + 100);
	assert_int_equal(recv_frame(c, buf, sizeof(buf)), VNET_HDR_LEN + 100);
	/* b answers a: only a */
	send_frame(b, 1, 2, 80);
	assert_int_equal(recv_frame(a, buf, sizeof(buf)), VNET_HDR_LEN + 80);
	/* a -> b is known now: c sees nothing (its next frame is the barrier's) */
	send_frame(a, 2, 1, 70);
	assert_int_equal(recv_frame(b, buf, sizeof(buf)), VNET_HDR_LEN + 70);
	sync_ports(b, 2, c);
	/* malformed: runt, short of a header, bad GSO */
	uint8_t junk[VNET_HDR_LEN + 8] = {0};
	assert_int_equal(send(a, junk, 5, 0), 5);
	assert_int_equal(send(a, junk, sizeof(junk), 0), (ssize_t)sizeof(junk));
	uint8_t gso[VNET_HDR_LEN + 60] = {0};
	gso[1] = VNET_GSO_TCPV4; /* without NEEDS_CSUM */
	gso[4] = 0x10;
	assert_int_equal(send(a, gso, sizeof(gso), 0), (ssize_t)sizeof(gso));
	/* past the longest message: truncated on receipt, dropped */
	uint8_t *big = calloc(1, VNET_MAX_MSG + 100);
	assert_int_equal(send(a, big, VNET_MAX_MSG + 100, 0), VNET_MAX_MSG + 100);
	free(big);
	sync_ports(a, 1, b);
	struct json_object *i = info(&s);
	assert_int_equal(port_field(i, 0, "rx_drops"), 4);
	assert_int_equal(port_field(i, 0, "rx_frames"), 7);
	assert_int_equal(port_field(i, 1, "tx_frames"), 3);
	assert_int_equal(port_field(i, 2, "tx_frames"), 3);
	json_object_put(i);
	/* a burst (several recvmmsg batches) arrives whole and in order */
	for (int k = 0; k < 50; k++)
		send_frame(a, 2, 1, 60 + (size_t)k);
	for (int k = 0; k < 50; k++)
		assert_int_equal(recv_frame(b, buf, sizeof(buf)), VNET_HDR_LEN + 60 + k);
	i = info(&s);
	struct json_object *macs, *v;
	json_object_object_get_ex(i, "macs", &macs);
	assert_int_equal(json_object_array_length(macs), 2);
	json_object_object_get_ex(i, "flooded", &v);
	assert_int_equal(json_object_get_int(v), 0);
	json_object_put(i);
	/* a port that closes frees its slot and its MACs */
	close(b);
	sync_ports(a, 1, c);
	i = info(&s);
	assert_int_equal(port_field(i, 1, "rx_frames"), -1);
	json_object_object_get_ex(i, "macs", &macs);
	assert_int_equal(json_object_array_length(macs), 1);
	json_object_put(i);
	b = join(&s, "b2", 2, 0);
	assert_true(b >= 0);
	i = info(&s);
	assert_int_equal(port_field(i, 1, "rx_frames"), 0);
	json_object_put(i);
	close(a);
	close(b);
	close(c);
	sw_stop(&s);
}

static void port_that_stops_reading_is_dropped_from(void **state)
{
	(void)state;
	struct sw s;
	sw_start(&s, false, 0);
	int a = join(&s, "a", 1, 0), b = join(&s, "slow", 2, 0), c = join(&s, "c", 3, 0);
	uint8_t buf[VNET_MAX_MSG];
	/* b never reads: broadcasts fill its socket, then are dropped; c gets every one */
	int n = 3000;
	for (int k = 0; k < n; k++) {
		send_frame(a, 0xFF, 1, 1500);
		assert_int_equal(recv_frame(c, buf, sizeof(buf)), VNET_HDR_LEN + 1500);
	}
	struct json_object *i = info(&s);
	int64_t got = port_field(i, 1, "tx_frames"), dropped = port_field(i, 1, "tx_drops");
	assert_int_equal(got + dropped, n);
	assert_true(dropped > 0);
	assert_int_equal(port_field(i, 2, "tx_drops"), 0);
	json_object_put(i);
	close(a);
	close(b);
	close(c);
	sw_stop(&s);
}

static void vlans_and_limits(void **state)
{
	(void)state;
	struct sw s;
	sw_start(&s, true, 1);
	int a = join(&s, "a", 1, 10), b = join(&s, "b", 2, 10), c = join(&s, "c", 3, 20);
	assert_true(a >= 0 && b >= 0 && c >= 0);
	uint8_t buf[VNET_MAX_MSG];
	send_frame(c, 0xFF, 3, 60); /* VLAN 20 only: nobody hears it */
	send_frame(a, 0xFF, 1, 60);
	assert_int_equal(recv_frame(b, buf, sizeof(buf)), VNET_HDR_LEN + 60);
	/* a's second MAC is over its limit of 1: dropped */
	send_frame(a, 0xFF, 9, 60);
	sync_ports(a, 1, b);
	struct json_object *i = info(&s);
	assert_int_equal(port_field(i, 0, "rx_drops"), 1);
	assert_int_equal(port_field(i, 1, "tx_frames"), 2);
	assert_int_equal(port_field(i, 2, "tx_frames"), 0);
	json_object_put(i);
	/* bad joins */
	assert_true(join(&s, "x", 4, 5000) < 0);
	close(a);
	close(b);
	close(c);
	sw_stop(&s);
	sw_start(&s, false, 0);
	assert_true(join(&s, "x", 4, 10) < 0); /* not vlan-aware */
	/* a second switch on the same path is refused */
	struct switch_server *other;
	struct switch_options o = {.name = "sw", .path = s.path};
	assert_int_equal(switch_server_create(&o, &other), -EADDRINUSE);
	sw_stop(&s);
}

static void malformed_requests(void **state)
{
	(void)state;
	struct sw s;
	sw_start(&s, false, 0);
	struct json_object *req = json_object_new_object(), *reply = NULL;
	json_object_object_add(req, "op", json_object_new_string("explode"));
	assert_int_equal(switch_call(s.path, req, 5000, NULL, &reply), -EINVAL);
	json_object_put(req);
	req = json_object_new_object();
	json_object_object_add(req, "op", json_object_new_string("join"));
	json_object_object_add(req, "mac", json_object_new_string("ff:ff:ff:ff:ff:ff"));
	assert_int_equal(switch_call(s.path, req, 5000, NULL, &reply), -EINVAL);
	json_object_put(req);
	sw_stop(&s);
}

/* Try to join the switch at `path` as `uid` (test_request_as_uid's answers). */
static char join_as(uid_t uid, const char *path)
{
	return test_request_as_uid(uid, path, SOCK_SEQPACKET,
				   "{\"version\":1,\"op\":\"join\",\"name\":\"intruder\","
				   "\"mac\":\"02:00:00:00:00:66\"}");
}

static void other_uid_cannot_join(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip(); /* needs root to become another uid */
	struct sw s;
	sw_start(&s, false, 0);
	/* Modes opened up by mistake: nobody reaches the socket, and is still refused. */
	assert_int_equal(chmod(test_tmpdir, 0755), 0);
	assert_int_equal(chmod(s.path, 0777), 0);
	assert_int_equal(join_as(65534, s.path), 'E');
	struct json_object *i = info(&s);
	struct json_object *ports;
	assert_true(json_object_object_get_ex(i, "ports", &ports));
	assert_int_equal(json_object_array_length(ports), 0); /* no port was made for it */
	json_object_put(i);
	assert_int_equal(join_as(0, s.path), 'O'); /* root is let in, as the owner is */
	assert_int_equal(chmod(test_tmpdir, 0700), 0);
	sw_stop(&s);
}

static int listen_silent(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	unlink(path);
	int l = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	assert_true(l >= 0);
	assert_int_equal(bind(l, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(l, 4), 0);
	return l;
}

static bool nonblocking(int fd)
{
	return fcntl(fd, F_GETFL) & O_NONBLOCK;
}

/* The VM's rejoin against a switch that is alive but does not answer: nothing ever waits on it
 * (a finish that waited would hang this test, which has no reply coming).  The answer, when it
 * comes, finishes the join; a malformed one fails it; an abandoned one closes the connection. */
static void join_never_waits_on_a_silent_switch(void **state)
{
	(void)state;
	char path[108], buf[600];
	uint8_t mac[6] = {0x02, 0, 0, 0, 0, 9};
	snprintf(path, sizeof(path), "%s", test_path("silent.switch"));
	struct switch_joining j;
	assert_int_equal(switch_join_begin(&j, path, "vm.nic0", mac, 0), -ENOENT);
	assert_int_equal(j.fd, -1);
	int l = listen_silent(path);
	/* never accepted, never answered */
	assert_int_equal(switch_join_begin(&j, path, "vm.nic0", mac, 0), 0);
	assert_true(j.fd >= 0 && nonblocking(j.fd));
	for (int k = 0; k < 3; k++)
		assert_int_equal(switch_join_finish(&j), -EAGAIN);
	/* accepted, the request read, no answer yet */
	int c = accept(l, NULL, NULL);
	assert_true(c >= 0);
	ssize_t n = recv(c, buf, sizeof(buf) - 1, 0);
	assert_true(n > 0);
	buf[n] = 0;
	assert_non_null(strstr(buf, "\"op\":\"join\""));
	assert_non_null(strstr(buf, "\"name\":\"vm.nic0\""));
	assert_int_equal(switch_join_finish(&j), -EAGAIN);
	/* given up: the switch sees the connection end */
	switch_join_abandon(&j);
	assert_int_equal(j.fd, -1);
	assert_int_equal(recv(c, buf, sizeof(buf), 0), 0);
	close(c);
	/* a malformed answer fails the join and leaves nothing open */
	assert_int_equal(switch_join_begin(&j, path, "vm.nic0", mac, 0), 0);
	c = accept(l, NULL, NULL);
	assert_int_equal(send(c, "{\"port\":", 8, 0), 8);
	assert_int_equal(switch_join_finish(&j), -EPROTO);
	assert_int_equal(j.fd, -1);
	close(c);
	/* a refusal carries the switch's message */
	assert_int_equal(switch_join_begin(&j, path, "vm.nic0", mac, 0), 0);
	c = accept(l, NULL, NULL);
	const char *no = "{\"ok\":false,\"error\":\"port name taken\"}";
	assert_int_equal(send(c, no, strlen(no), 0), (ssize_t)strlen(no));
	assert_int_equal(switch_join_finish(&j), -EINVAL);
	assert_string_equal(error_msg(), "port name taken");
	close(c);
	/* the answer: the connection is the port (non-blocking), frames pass */
	assert_int_equal(switch_join_begin(&j, path, "vm.nic0", mac, 0), 0);
	c = accept(l, NULL, NULL);
	assert_true(recv(c, buf, sizeof(buf), 0) > 0);
	const char *yes = "{\"ok\":true,\"port\":0}";
	assert_int_equal(send(c, yes, strlen(yes), 0), (ssize_t)strlen(yes));
	int fd = switch_join_finish(&j);
	assert_true(fd >= 0 && nonblocking(fd));
	assert_int_equal(j.fd, -1);
	assert_int_equal(send(c, "frame", 5, 0), 5);
	assert_int_equal(recv_frame(fd, (uint8_t *)buf, sizeof(buf)), 5);
	close(fd);
	close(c);
	close(l);
	unlink(path);
}

/* The same join against the real switch, the reply awaited with poll as the VM's loop does. */
static void join_without_waiting_on_the_real_switch(void **state)
{
	(void)state;
	struct sw s;
	uint8_t mac[6] = {0x02, 0, 0, 0, 0, 7};
	sw_start(&s, false, 0);
	int a = join(&s, "a", 1, 0);
	struct switch_joining j;
	assert_int_equal(switch_join_begin(&j, s.path, "b", mac, 0), 0);
	int b;
	do {
		struct pollfd p = {.fd = j.fd, .events = POLLIN};
		assert_int_equal(poll(&p, 1, 5000), 1); /* bounded only against a hang */
		b = switch_join_finish(&j);
	} while (b == -EAGAIN);
	assert_true(a >= 0 && b >= 0);
	sync_ports(a, 1, b);
	sync_ports(b, 7, a);
	close(a);
	close(b);
	sw_stop(&s);
}

static int group_setup(void **state)
{
	(void)state;
	return test_tmpdir_setup("switch-server");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(forwarding_through_sockets),
	    cmocka_unit_test(port_that_stops_reading_is_dropped_from),
	    cmocka_unit_test(vlans_and_limits),
	    cmocka_unit_test(malformed_requests),
	    cmocka_unit_test(other_uid_cannot_join),
	    cmocka_unit_test(join_never_waits_on_a_silent_switch),
	    cmocka_unit_test(join_without_waiting_on_the_real_switch),
	};
	return cmocka_run_group_tests(tests, group_setup, test_tmpdir_teardown);
}
