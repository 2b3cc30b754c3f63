/* The switch's socket protocol.  A switch listens on one UNIX SOCK_SEQPACKET socket
 * (<runtime dir>/NAME.switch, chosen by vmm/).  A client's first message is a JSON request:
 *
 *   {"version":1,"op":"join","name":"vm1.nic0","mac":"02:..","vlan":10}  -> {"ok":true,"port":3}
 *   {"version":1,"op":"info"}                                            -> {"ok":true,"result":{}}
 *   {"version":1,"op":"stop"}                                            -> {"ok":true}
 *   failures: {"ok":false,"error":"one line"}
 *
 * After a successful join the connection is the port: each message either way is one frame, a
 * 12-byte virtio-net header (net/vnet_hdr.h) followed by the Ethernet frame.  The switch never
 * waits on a port: a frame the port's socket cannot take at once is dropped and counted.  A
 * port ends when its connection closes (the VM ended or crashed).
 */
#ifndef MINIVMM_NET_SWITCH_PROTO_H
#define MINIVMM_NET_SWITCH_PROTO_H

#include <stddef.h>
#include <stdint.h>

struct json_object;

#define SWITCH_PROTO_VERSION 1
#define SWITCH_SOCKET_SUFFIX ".switch" /* <runtime dir>/NAME.switch */
#define SWITCH_MSG_MAX (1 << 20)       /* longest request or reply */
#define SWITCH_PORT_SNDBUF (1 << 20)

/* "02:00:00:00:00:01" <-> bytes; parse returns -EINVAL for anything else. */
int switch_mac_parse(const char *s, uint8_t mac[6]);
void switch_mac_format(const uint8_t mac[6], char out[18]);

/* Send `request` (an object; version is added) to the switch at `path` and wait for the reply
 * (bounded by timeout_ms).  On success *fd_out (when not NULL) keeps the connection open
 * (blocking), else it is closed; *reply gets the reply object (the caller puts it).  -errno with
 * a message: -ENOENT/-ECONNREFUSED when no switch runs there, the switch's own error otherwise. */
int switch_call(const char *path, struct json_object *request, int timeout_ms, int *fd_out,
		struct json_object **reply);

/* Join the switch at `path` as a port: returns the connection (non-blocking, close-on-exec) or
 * -errno with a message. */
int switch_join(const char *path, const char *port_name, const uint8_t mac[6], unsigned vlan);

/* The same join without ever waiting on the switch (a VM's event loop rejoining a restarted
 * switch: one that is alive but does not answer must not hold the loop).  begin connects and
 * sends the request, both of which a UNIX socket does at once or fails; then the caller watches
 * j->fd for EPOLLIN and calls finish, which returns the port's connection (as switch_join's),
 * -EAGAIN while no reply came yet (j stays under way), or -errno with a message (j ended).  A
 * caller that gives up calls abandon.  begin's -errno leaves nothing open. */
struct switch_joining {
	int fd; /* -1 when no join is under way */
	char path[108];
};
int switch_join_begin(struct switch_joining *j, const char *path, const char *port_name,
		      const uint8_t mac[6], unsigned vlan);
int switch_join_finish(struct switch_joining *j);
void switch_join_abandon(struct switch_joining *j);

#endif
