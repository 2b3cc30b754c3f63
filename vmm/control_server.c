/* The control socket server (see control.h): the socket's life (lock, stale check, bind, unlink),
 * the verb table, and the sockets (listener and at most CONTROL_MAX_CONNECTIONS clients, each
 * one's buffers in control_conn.c) as non-blocking sources on an event loop: the VM's, or one of
 * the server's own on its own thread.  Verb handlers run on a worker (the VM's, or the server's
 * own), one at a time: a verb may wait (pause waits for the vCPUs, a snapshot for the disks)
 * while the loop goes on serving the console, the disks and the other clients.  Replies come
 * back to the loop through an eventfd.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/event_loop.h"
#include "lib/peer_cred.h"
#include "lib/worker.h"
#include "vmm/control_internal.h"
#include "lib/error.h"

struct control_verb {
	char name[CONTROL_VERB_MAX + 1];
	char *usage;
	control_verb_fn fn;
	void *opaque;
};

/* A request on its way through the worker and back. */
struct control_job {
	struct control_server *srv;
	int slot;
	unsigned gen;
	char *line; /* the request; then the reply */
	size_t len;
	struct control_job *next;
};

/* When accept() runs out of descriptors or memory: wait this long before trying again, rather
 * than spin on a listener that stays readable. */
#define ACCEPT_BACKOFF_NS (100 * 1000000ull)

struct control_server {
	char name[CONTROL_NAME_MAX + 1];
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char lock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	ino_t sock_ino;
	dev_t sock_dev;
	int listen_fd, done_fd, lock_fd;
	struct event_loop *loop;
	struct worker *worker;
	bool own_loop, own_worker;
	pthread_t thread; /* own loop only */
	bool thread_started;
	struct event_source *listen_src, *backoff_src, *done_src;
	pthread_mutex_t lock; /* guards the verb table and the job accounting */
	pthread_cond_t jobs_cond;
	unsigned jobs_running; /* on the worker, reply not yet handed back */
	struct control_job *done;
	int self_stop; /* control_server_stop called by a verb handler */
	struct control_verb *verbs;
	int nverbs, verbs_cap;
	struct control_conn conns[CONTROL_MAX_CONNECTIONS];
};

int control_register_verb(struct control_server *srv, const char *verb, const char *usage,
			  control_verb_fn fn, void *opaque)
{
	int ret = 0;

	if (!srv || !fn || !control_verb_valid(verb))
		return -EINVAL;
	pthread_mutex_lock(&srv->lock);
	for (int i = 0; i < srv->nverbs; i++)
		if (!strcmp(srv->verbs[i].name, verb))
			ret = -EEXIST;
	if (!ret && srv->nverbs == srv->verbs_cap) {
		int cap = srv->verbs_cap ? srv->verbs_cap * 2 : 16;
		struct control_verb *v = realloc(srv->verbs, cap * sizeof(*v));
		if (v) {
			srv->verbs = v;
			srv->verbs_cap = cap;
		} else {
			ret = -ENOMEM;
		}
	}
	if (!ret) {
		struct control_verb *v = &srv->verbs[srv->nverbs];
		v->usage = strdup(usage && usage[0] ? usage : verb);
		if (!v->usage) {
			ret = -ENOMEM;
		} else {
			/* A usage line goes into one-line replies: no control characters. */
			for (char *p = v->usage; *p; p++)
				if ((unsigned char)*p < 0x20)
					*p = ' ';
			snprintf(v->name, sizeof(v->name), "%s", verb);
			v->fn = fn;
			v->opaque = opaque;
			srv->nverbs++;
		}
	}
	pthread_mutex_unlock(&srv->lock);
	return ret;
}

int control_server_lookup(struct control_server *srv, const char *verb, control_verb_fn *fn,
			  void **opaque)
{
	int ret = -ENOENT;

	pthread_mutex_lock(&srv->lock);
	for (int i = 0; i < srv->nverbs; i++) {
		if (!strcmp(srv->verbs[i].name, verb)) {
			*fn = srv->verbs[i].fn;
			*opaque = srv->verbs[i].opaque;
			ret = 0;
			break;
		}
	}
	pthread_mutex_unlock(&srv->lock);
	return ret;
}

int control_server_verb_at(struct control_server *srv, int i, char *verb, size_t verblen,
			   char *usage, size_t usagelen)
{
	int ret = -ENOENT;

	pthread_mutex_lock(&srv->lock);
	if (i >= 0 && i < srv->nverbs) {
		snprintf(verb, verblen, "%s", srv->verbs[i].name);
		snprintf(usage, usagelen, "%s", srv->verbs[i].usage);
		ret = 0;
	}
	pthread_mutex_unlock(&srv->lock);
	return ret;
}

static void refuse(int fd, const char *msg)
{
	char *line = control_reply_error(NULL, msg);

	if (line)
		(void)!send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);
	free(line);
	close(fd);
}

static void conn_ready(void *opaque, uint32_t events);

/* Returns -errno only for resource exhaustion, when the caller should back off. */
static int accept_all(struct control_server *srv)
{
	for (;;) {
		int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct control_conn *slot = NULL;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				return -errno;
			return 0; /* EAGAIN, or an aborted connection */
		}
		if (!peer_is_owner_or_root(fd)) { /* the 0700 directory already keeps others out */
			refuse(fd, "permission denied");
			continue;
		}
		for (int i = 0; i < CONTROL_MAX_CONNECTIONS && !slot; i++)
			if (srv->conns[i].fd < 0)
				slot = &srv->conns[i];
		if (!slot) {
			refuse(fd, "too many control connections");
			continue;
		}
		slot->fd = fd;
		if (event_loop_add_fd(srv->loop, fd, EPOLLIN, conn_ready, slot, &slot->src) < 0) {
			slot->src = NULL;
			control_conn_close(slot);
			return -ENOMEM;
		}
	}
}

static void server_free(struct control_server *srv);

static void listen_ready(void *opaque, uint32_t events)
{
	struct control_server *srv = opaque;
	(void)events;
	if (accept_all(srv) < 0) {
		/* out of descriptors: retry in a while, do not spin */
		event_source_set_events(srv->listen_src, 0);
		event_timer_arm(srv->backoff_src, ACCEPT_BACKOFF_NS, 0);
	}
}

static void backoff_over(void *opaque, uint32_t events)
{
	struct control_server *srv = opaque;
	(void)events;
	event_source_set_events(srv->listen_src, EPOLLIN);
}

/* The server stopped itself from a verb: the replies already queued (that verb's among them) are
 * sent if the sockets take them, then everything goes, on the loop thread. */
static void self_stop_finish(struct control_server *srv)
{
	for (int i = 0; i < CONTROL_MAX_CONNECTIONS; i++)
		if (srv->conns[i].fd >= 0)
			control_conn_flush(&srv->conns[i]);
	if (srv->own_loop) {
		event_loop_stop(srv->loop); /* the thread frees the server when the loop ends */
		return;
	}
	server_free(srv);
}

static void replies_ready(void *opaque, uint32_t events)
{
	struct control_server *srv = opaque;
	uint64_t v;
	(void)events;
	(void)!read(srv->done_fd, &v, sizeof(v));
	pthread_mutex_lock(&srv->lock);
	struct control_job *j = srv->done;
	srv->done = NULL;
	int self_stop = srv->self_stop;
	pthread_mutex_unlock(&srv->lock);
	/* The list is newest first: reverse it so that replies keep their order. */
	struct control_job *rev = NULL;
	while (j) {
		struct control_job *next = j->next;
		j->next = rev;
		rev = j;
		j = next;
	}
	while (rev) {
		struct control_job *next = rev->next;
		struct control_conn *c = &srv->conns[rev->slot];
		if (c->fd >= 0 && c->gen == rev->gen && c->busy)
			control_conn_reply(srv, c, rev->line);
		else
			free(rev->line);
		free(rev);
		rev = next;
	}
	if (self_stop)
		self_stop_finish(srv);
}

static void conn_ready(void *opaque, uint32_t events)
{
	struct control_conn *c = opaque;
	control_conn_event(c->owner, c, events);
}

static void job_run(void *opaque)
{
	struct control_job *j = opaque;
	struct control_server *srv = j->srv;
	char *reply = control_request_handle(srv, j->line, j->len);
	free(j->line);
	j->line = reply ? reply : control_reply_error(NULL, "out of memory");
	pthread_mutex_lock(&srv->lock);
	j->next = srv->done;
	srv->done = j;
	srv->jobs_running--;
	/* Under the lock: the loop may free the server as soon as it is released. */
	uint64_t one = 1;
	(void)!write(srv->done_fd, &one, sizeof(one));
	pthread_cond_broadcast(&srv->jobs_cond);
	pthread_mutex_unlock(&srv->lock);
}

int control_server_dispatch(struct control_server *srv, struct control_conn *c, const char *line,
			    size_t len)
{
	struct control_job *j = calloc(1, sizeof(*j));
	if (!j || !(j->line = malloc(len + 1))) {
		free(j);
		return -ENOMEM;
	}
	memcpy(j->line, line, len);
	j->line[len] = 0;
	j->len = len;
	j->srv = srv;
	j->slot = (int)(c - srv->conns);
	j->gen = c->gen;
	pthread_mutex_lock(&srv->lock);
	srv->jobs_running++;
	pthread_mutex_unlock(&srv->lock);
	int ret = worker_submit(srv->worker, job_run, j);
	if (ret < 0) {
		pthread_mutex_lock(&srv->lock);
		srv->jobs_running--;
		pthread_mutex_unlock(&srv->lock);
		free(j->line);
		free(j);
	}
	return ret;
}

static void *server_thread(void *arg)
{
	struct control_server *srv = arg;
	event_loop_run(srv->loop);
	if (srv->self_stop) {
		/* Stopped from a handler: nobody will join us, so we clean up. */
		pthread_detach(pthread_self());
		server_free(srv);
	}
	return NULL;
}

/* Refuse a live socket, and anything that is not a socket; a stale one is replaced later. */
static int check_existing(struct control_server *srv)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, ret;

	if (lstat(srv->path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return error_set(-EEXIST, "%s exists and is not a socket (refusing to replace it)",
				 srv->path);
	/* Non-blocking: EAGAIN (a full backlog) means a live but busy VM, and must not hang us. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	memcpy(sun.sun_path, srv->path, strlen(srv->path) + 1);
	ret = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0 ? 0 : -errno;
	close(fd);
	if (ret == 0 || ret == -EAGAIN)
		return error_set(-EADDRINUSE, "a VM named '%s' is already running (%s)", srv->name,
				 srv->path);
	return 0; /* ECONNREFUSED: nobody listens, the socket is stale */
}

/* Bind under a temporary name and rename into place: the socket appears already listening, so a
 * client never sees a socket that refuses connections while its VM is alive. */
static int open_listener(struct control_server *srv)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct stat st;
	int ret;

	/* control_path_for left room for the suffix; checked again all the same. */
	if (snprintf(sun.sun_path, sizeof(sun.sun_path), "%s.new", srv->path) >=
	    (int)sizeof(sun.sun_path))
		return error_set(-ENAMETOOLONG, "%s: path too long for a UNIX socket", srv->path);
	unlink(sun.sun_path); /* left by a crash; we hold the name's lock */
	srv->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (srv->listen_fd < 0) {
		ret = -errno;
		return error_set(ret, "control socket: %s", strerror(-ret));
	}
	if (bind(srv->listen_fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    chmod(sun.sun_path, 0600) < 0 || listen(srv->listen_fd, 16) < 0 ||
	    rename(sun.sun_path, srv->path) < 0 || stat(srv->path, &st) < 0) {
		ret = -errno;
		error_set(ret, "%s: %s", srv->path, strerror(-ret));
		unlink(sun.sun_path);
		return ret;
	}
	srv->sock_ino = st.st_ino;
	srv->sock_dev = st.st_dev;
	return 0;
}

/* The name is given up before clients are hung up on: a client that sees its connection close
 * can start a VM of the same name at once.  Runs where no loop callback can run at the same time:
 * on the loop thread, or with the loop stopped. */
static void server_free(struct control_server *srv)
{
	if (srv->listen_fd >= 0) {
		struct stat st;
		event_source_remove(srv->listen_src);
		close(srv->listen_fd);
		/* Unlink only the socket we created, never a successor's. */
		if (stat(srv->path, &st) == 0 && st.st_ino == srv->sock_ino &&
		    st.st_dev == srv->sock_dev)
			unlink(srv->path);
	}
	control_lock_release(srv->lock_path, srv->lock_fd);
	for (int i = 0; i < CONTROL_MAX_CONNECTIONS; i++)
		if (srv->conns[i].fd >= 0)
			control_conn_close(&srv->conns[i]);
	/* Requests still on the worker finish (their replies are dropped): wait for them, since
	 * they use the verb table and post to done_fd. */
	pthread_mutex_lock(&srv->lock);
	while (srv->jobs_running && !(srv->worker && worker_on_thread(srv->worker)))
		pthread_cond_wait(&srv->jobs_cond, &srv->lock);
	pthread_mutex_unlock(&srv->lock);
	if (srv->own_worker)
		worker_destroy(srv->worker);
	while (srv->done) {
		struct control_job *j = srv->done;
		srv->done = j->next;
		free(j->line);
		free(j);
	}
	event_source_remove(srv->done_src);
	event_source_remove(srv->backoff_src);
	if (srv->done_fd >= 0)
		close(srv->done_fd);
	if (srv->own_loop)
		event_loop_destroy(srv->loop);
	for (int i = 0; i < srv->nverbs; i++)
		free(srv->verbs[i].usage);
	free(srv->verbs);
	pthread_cond_destroy(&srv->jobs_cond);
	pthread_mutex_destroy(&srv->lock);
	free(srv);
}

int control_server_start_on(const char *name, struct event_loop *loop, struct worker *worker,
			    struct control_server **out)
{
	struct control_server *srv;
	int ret;

	*out = NULL;
	error_clear();
	if (control_name_check(name) < 0)
		return -EINVAL;
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return error_set(-ENOMEM, "out of memory");
	pthread_mutex_init(&srv->lock, NULL);
	pthread_cond_init(&srv->jobs_cond, NULL);
	srv->listen_fd = srv->done_fd = srv->lock_fd = -1;
	for (int i = 0; i < CONTROL_MAX_CONNECTIONS; i++) {
		srv->conns[i].fd = -1;
		srv->conns[i].owner = srv;
	}
	snprintf(srv->name, sizeof(srv->name), "%s", name);
	srv->loop = loop;
	srv->worker = worker;

	ret = control_path_for(name, ".sock", srv->path, sizeof(srv->path));
	if (!ret)
		ret = control_lock_acquire(name, &srv->lock_fd, srv->lock_path,
					   sizeof(srv->lock_path));
	if (!ret)
		ret = check_existing(srv);
	if (!ret && !srv->loop) {
		ret = event_loop_create(&srv->loop);
		srv->own_loop = !ret;
	}
	if (!ret && !srv->worker) {
		ret = worker_create("control", &srv->worker);
		srv->own_worker = !ret;
	}
	if (!ret)
		ret = open_listener(srv);
	if (!ret && (srv->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		ret = -errno;
	if (!ret)
		ret = event_loop_add_fd(srv->loop, srv->listen_fd, EPOLLIN, listen_ready, srv,
					&srv->listen_src);
	if (!ret)
		ret = event_loop_add_fd(srv->loop, srv->done_fd, EPOLLIN, replies_ready, srv,
					&srv->done_src);
	if (!ret)
		ret = event_loop_add_timer(srv->loop, 0, 0, backoff_over, srv, &srv->backoff_src);
	if (!ret)
		ret = control_builtins_register(srv);
	if (!ret && srv->own_loop) {
		/* The control thread takes no signals: they belong to the VM's own threads. */
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		ret = -pthread_create(&srv->thread, NULL, server_thread, srv);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		srv->thread_started = !ret;
	}
	if (ret < 0) {
		if (!error_recorded())
			error_set(ret, "control socket for '%s': %s", name, strerror(-ret));
		server_free(srv);
		return ret;
	}
	*out = srv;
	return 0;
}

int control_server_start(const char *name, struct control_server **out)
{
	return control_server_start_on(name, NULL, NULL, out);
}

struct event_loop *control_server_loop(struct control_server *srv)
{
	return srv->loop;
}

int control_server_stopping(struct control_server *srv)
{
	pthread_mutex_lock(&srv->lock);
	int stopping = srv->self_stop;
	pthread_mutex_unlock(&srv->lock);
	return stopping;
}

void control_server_stop(struct control_server *srv)
{
	if (!srv)
		return;
	if (worker_on_thread(srv->worker)) {
		/* From a verb handler: the loop finishes the stop once this reply is queued. */
		pthread_mutex_lock(&srv->lock);
		srv->self_stop = 1;
		pthread_mutex_unlock(&srv->lock);
		return;
	}
	if (srv->thread_started) {
		event_loop_stop(srv->loop);
		pthread_join(srv->thread, NULL);
	}
	server_free(srv);
}
