/* The control socket: a running VM answers `minivmm control NAME VERB ...` over a UNIX socket.
 *
 * Socket: <runtime dir>/NAME.sock, where the runtime dir is $XDG_RUNTIME_DIR/minivmm, else
 * /run/user/UID/minivmm, else /run/minivmm for root, else $XDG_STATE_HOME/minivmm/run or
 * ~/.local/state/minivmm/run (created 0700; the socket is 0600; vmm/control_path.c has the rule).
 *
 * Protocol (version 1): one JSON object per line each way.
 *   request: {"version":1, "id":N, "verb":"info", "args":["700"]}
 *   reply:   {"version":1, "id":N, "ok":true, "result":{...}}
 *            {"version":1, "id":N, "ok":false, "error":"one line"}
 * A request with another major version gets an error reply; unknown verbs likewise.  Several
 * requests may be sent on one connection.  The same rules are written out in README.md.
 *
 * Modules add verbs at run time (cpu hot-plug, balloon, ...), so the client needs no change for a
 * new verb: it sends the words after the verb as "args" and prints the result.
 */
#ifndef MINIVMM_VMM_CONTROL_H
#define MINIVMM_VMM_CONTROL_H

#include <stddef.h>

struct json_object;
struct control_server;
struct event_loop;
struct worker;

#define CONTROL_PROTOCOL_VERSION 1

/* Runs on the server's worker thread, one verb at a time.  Fill `result` (a JSON object, already
 * created) and return 0, or return -errno with a one-line message recorded with error_set()
 * (lib/error.h); without one the reply says "VERB: strerror". `args` is the JSON array of string
 * arguments. */
typedef int (*control_verb_fn)(void *opaque, struct json_object *args, struct json_object *result);

/* Create the socket for VM `name` and start its thread. Fails (-EADDRINUSE, with a message) when a
 * live VM already has that name; a stale socket left by a killed VM is replaced. */
int control_server_start(const char *name, struct control_server **out);
/* The same on the VM's event loop (its sockets become sources there; start and stop while the loop
 * is not running, or on its thread) with the verbs run by `worker`, where the VM's own waiting
 * jobs (reboot) also run, so they never interleave with a verb.  NULL for either: the server's
 * own (a thread running a private loop; a private worker), as control_server_start does. */
int control_server_start_on(const char *name, struct event_loop *loop, struct worker *worker,
			    struct control_server **out);
/* Verbs may be registered before or after start. `usage` is one line, e.g. "balloon MIB". */
int control_register_verb(struct control_server *srv, const char *verb, const char *usage,
			  control_verb_fn fn, void *opaque);
void control_server_stop(struct control_server *srv); /* closes and unlinks the socket */

/* The runtime dir (created if missing) and a VM's socket path. */
int control_runtime_dir(char *buf, size_t len);
int control_socket_path(const char *name, char *buf, size_t len);

/* Client side: send one request, wait for the reply (timeout in ms). On success *reply is the
 * parsed reply object (caller puts it). */
int control_call(const char *name, const char *verb, int argc, char **argv, int timeout_ms,
		 struct json_object **reply);

#endif
