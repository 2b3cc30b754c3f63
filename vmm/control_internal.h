/* Private interfaces of the control socket, shared by its server, client and the CLI verbs.
 * Nothing outside vmm/control_*.c and vmm/cmd_{control,list}.c should need this header.
 */
#ifndef MINIVMM_VMM_CONTROL_INTERNAL_H
#define MINIVMM_VMM_CONTROL_INTERNAL_H

#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/event_loop.h"
#include "vmm/control.h"

#ifndef MINIVMM_VERSION
#define MINIVMM_VERSION "0.1.0"
#endif

#define CONTROL_NAME_MAX 64
#define CONTROL_VERB_MAX 32
#define CONTROL_LINE_MAX 65536	     /* longest request line, newline excluded */
#define CONTROL_REPLY_MAX (16 << 20) /* longest reply line the client accepts */
#define CONTROL_MAX_CONNECTIONS 32
#define CONTROL_ERR_LEN 256
/* A request line must be complete this long after its first byte arrived (the worker's time on
 * earlier requests not counted), or the connection gets an error and is closed: a client that
 * trickles bytes cannot hold one of the CONTROL_MAX_CONNECTIONS slots for ever.  Tests lower it. */
extern unsigned control_request_timeout_ms;

/* VM names: [A-Za-z0-9._-]{1,64}, not starting with '.'; verbs: [A-Za-z0-9_-]{1,32}. */
int control_name_valid(const char *name);
int control_verb_valid(const char *verb);
/* control_name_valid with the one-line message a user sees: 0, or -EINVAL with the message recorded
 * (lib/error.h). */
int control_name_check(const char *name);

/* Where the runtime directory is, from these inputs (control_path.c says the rule): 0, -ENOENT
 * when nothing fits (no usable HOME), -ENAMETOOLONG. Nothing is created. */
struct control_dir_inputs {
	const char *xdg_runtime, *xdg_state, *home; /* the environment; NULL when unset */
	const char *run_user, *run;		    /* "/run/user" and "/run" (tests change them) */
	uid_t uid;
};
int control_dir_choose(const struct control_dir_inputs *in, char *buf, size_t len);

/* control_runtime_dir with a one-line message on failure (insecure or uncreatable directory). */
int control_runtime_dir_checked(char *buf, size_t len);
/* <runtime dir>/NAME + suffix (".sock", ".lock"); -ENAMETOOLONG when it does not fit a sun_path. */
int control_path_for(const char *name, const char *suffix, char *buf, size_t len);

/* The per-name lock a server holds for its lifetime: two VMs can never race for one name. */
int control_lock_acquire(const char *name, int *fd_out, char *path, size_t pathlen);
/* Needs only unlink/fstat/close: it may run after the VM has installed its seccomp filter. */
void control_lock_release(const char *path, int fd);
int control_lock_held(const char *name); /* 1 held, 0 free, -errno */

/* Client pieces.  control_connect gives -ENOENT / -ECONNREFUSED ("no VM named 'x' is running")
 * and, through *peer_pid, the server's pid as the kernel reports it.  control_exchange sends one
 * request and returns 0 for any well-formed reply, ok or not ("ok" is checked by the caller). */
int control_connect(const char *name, int *fd_out, pid_t *peer_pid);
int control_exchange(int fd, const char *name, int id, const char *verb, int argc, char **argv,
		     int timeout_ms, struct json_object **reply);

/* Parse exactly one JSON value filling the line (trailing blanks allowed); NULL with a message. */
struct json_object *control_json_parse_line(const char *line, size_t len);

/* Server pieces: the verb table (thread-safe) and the handling of one request line. */
int control_server_lookup(struct control_server *srv, const char *verb, control_verb_fn *fn,
			  void **opaque);
int control_server_verb_at(struct control_server *srv, int i, char *verb, size_t verblen,
			   char *usage, size_t usagelen);
int control_builtins_register(struct control_server *srv); /* help, version */
/* Returns a malloc'd reply line ending in '\n', or NULL when out of memory. */
char *control_request_handle(struct control_server *srv, const char *line, size_t len);
char *control_reply_error(struct json_object *id, const char *msg);

/* One client of the server (control_conn.c).  Its socket is a source on the server's event loop;
 * one request at a time runs on the server's worker, so replies keep the order of requests. */
struct control_conn {
	struct control_server *owner;
	int fd; /* -1: free slot */
	struct event_source *src;
	unsigned gen; /* bumped when the slot is freed: a late reply to an old client is dropped */
	int busy;     /* a request of this connection is on the worker */
	int gone;     /* the peer hung up while busy: closed when its reply comes back */
	char *in;
	size_t in_len;
	int discarding; /* inside an over-long line: drop bytes up to the next newline */
	struct event_source *deadline; /* armed while a request line is incomplete */
	bool deadline_armed;
	int rd_closed;
	char *out;
	size_t out_len, out_off, out_cap;
};
/* Handle readiness (EPOLLIN/OUT/ERR/HUP bits; 0 to just make progress) and re-arm the source;
 * may close the connection. */
void control_conn_event(struct control_server *srv, struct control_conn *c, uint32_t events);
/* The reply to the connection's request is back from the worker (takes ownership of line). */
void control_conn_reply(struct control_server *srv, struct control_conn *c, char *line);
int control_conn_flush(struct control_conn *c);
void control_conn_close(struct control_conn *c); /* frees the buffers, marks the slot free */
int control_server_stopping(struct control_server *srv); /* a handler stopped the server */
struct event_loop *control_server_loop(struct control_server *srv);
/* Hand a request line to the worker (control_server.c); the reply comes back through
 * control_conn_reply on the loop thread. 0, or -ENOMEM. */
int control_server_dispatch(struct control_server *srv, struct control_conn *c, const char *line,
			    size_t len);

/* Human output of a result: "key: value" lines, nested keys joined with dots, arrays with commas;
 * control characters are replaced so a VM cannot drive the terminal. */
void control_print_human(FILE *out, struct json_object *result);
void control_print_clean(FILE *out, const char *s);
/* The same into a new string (free it); NULL when out of memory. */
char *control_clean(const char *s);

#endif
