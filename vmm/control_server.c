/* The control socket server (see control.h): the socket's life (lock, stale check, bind, unlink),
 * the verb table, and one thread with one poll() loop over at most CONTROL_MAX_CONNECTIONS
 * clients (each one's buffers are in control_conn.c).  Verb handlers run on that thread, one at
 * a time.  An eventfd wakes the loop so that stop is prompt.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmm/control_internal.h"

struct control_verb {
	char name[CONTROL_VERB_MAX + 1];
	char *usage;
	control_verb_fn fn;
	void *opaque;
};

struct control_server {
	char name[CONTROL_NAME_MAX + 1];
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char lock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	ino_t sock_ino;
	dev_t sock_dev;
	int listen_fd, wake_fd, lock_fd;
	pthread_t thread;
	int thread_started;
	int self_stop; /* control_server_stop called by a verb handler, on the control thread */
	pthread_mutex_t lock; /* guards the verb table: verbs are registered from other threads */
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

static int peer_allowed(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	/* The 0700 directory already keeps others out; this holds even if it were bypassed. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return 0;
	return cred.uid == geteuid() || cred.uid == 0;
}

static void refuse(int fd, const char *msg)
{
	char *line = control_reply_error(NULL, msg);

	if (line)
		(void)!send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);
	free(line);
	close(fd);
}

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
		if (!peer_allowed(fd)) {
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
	}
}

static void server_free(struct control_server *srv);

static void *server_thread(void *arg)
{
	struct control_server *srv = arg;
	struct pollfd pfd[2 + CONTROL_MAX_CONNECTIONS];
	int map[2 + CONTROL_MAX_CONNECTIONS];
	int backoff = 0;

	for (;;) {
		int n = 0;

		pfd[n++] = (struct pollfd){.fd = srv->wake_fd, .events = POLLIN};
		pfd[n++] = (struct pollfd){.fd = backoff ? -1 : srv->listen_fd, .events = POLLIN};
		for (int i = 0; i < CONTROL_MAX_CONNECTIONS; i++) {
			struct control_conn *c = &srv->conns[i];
			if (c->fd < 0)
				continue;
			map[n] = i;
			pfd[n++] = (struct pollfd){.fd = c->fd, .events = control_conn_events(c)};
		}
		int r = poll(pfd, n, backoff ? 100 : -1);
		if (r < 0 && errno != EINTR && errno != ENOMEM)
			break;
		if (r <= 0) {
			backoff = r < 0 && errno == ENOMEM;
			continue;
		}
		if (pfd[0].revents)
			break;
		/* Connections first: a client that hung up frees its slot for a new one. */
		for (int k = 2; k < n; k++)
			if (pfd[k].revents)
				control_conn_event(srv, &srv->conns[map[k]], pfd[k].revents);
		if (srv->self_stop)
			break;
		if (pfd[1].revents && accept_all(srv) < 0)
			backoff = 1; /* out of descriptors: retry in a while, do not spin */
	}
	if (srv->self_stop) {
		/* Stopped from a handler: nobody will join us, so we clean up.  The replies
		 * already queued (that handler's among them) are sent if the sockets take them. */
		for (int i = 0; i < CONTROL_MAX_CONNECTIONS; i++)
			if (srv->conns[i].fd >= 0)
				control_conn_flush(&srv->conns[i]);
		pthread_detach(pthread_self());
		server_free(srv);
	}
	return NULL;
}

/* Refuse a live socket, and anything that is not a socket; a stale one is replaced later. */
static int check_existing(struct control_server *srv, char *err, size_t errlen)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, ret;

	if (lstat(srv->path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a socket (refusing to replace it)",
			 srv->path);
		return -EEXIST;
	}
	/* Non-blocking: EAGAIN (a full backlog) means a live but busy VM, and must not hang us. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	memcpy(sun.sun_path, srv->path, strlen(srv->path) + 1);
	ret = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0 ? 0 : -errno;
	close(fd);
	if (ret == 0 || ret == -EAGAIN) {
		snprintf(err, errlen, "a VM named '%s' is already running (%s)", srv->name,
			 srv->path);
		return -EADDRINUSE;
	}
	return 0; /* ECONNREFUSED: nobody listens, the socket is stale */
}

/* Bind under a temporary name and rename into place: the socket appears already listening, so a
 * client never sees a socket that refuses connections while its VM is alive. */
static int open_listener(struct control_server *srv, char *err, size_t errlen)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct stat st;
	int ret;

	/* control_path_for left room for the suffix; checked again all the same. */
	if (snprintf(sun.sun_path, sizeof(sun.sun_path), "%s.new", srv->path) >=
	    (int)sizeof(sun.sun_path)) {
		snprintf(err, errlen, "%s: path too long for a UNIX socket", srv->path);
		return -ENAMETOOLONG;
	}
	unlink(sun.sun_path); /* left by a crash; we hold the name's lock */
	srv->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (srv->listen_fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "control socket: %s", strerror(-ret));
		return ret;
	}
	if (bind(srv->listen_fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    chmod(sun.sun_path, 0600) < 0 || listen(srv->listen_fd, 16) < 0 ||
	    rename(sun.sun_path, srv->path) < 0 || stat(srv->path, &st) < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", srv->path, strerror(-ret));
		unlink(sun.sun_path);
		return ret;
	}
	srv->sock_ino = st.st_ino;
	srv->sock_dev = st.st_dev;
	return 0;
}

/* The name is given up before clients are hung up on: a client that sees its connection close
 * can start a VM of the same name at once. */
static void server_free(struct control_server *srv)
{
	if (srv->listen_fd >= 0) {
		struct stat st;
		close(srv->listen_fd);
		/* Unlink only the socket we created, never a successor's. */
		if (stat(srv->path, &st) == 0 && st.st_ino == srv->sock_ino &&
		    st.st_dev == srv->sock_dev)
			unlink(srv->path);
	}
	if (srv->wake_fd >= 0)
		close(srv->wake_fd);
	control_lock_release(srv->lock_path, srv->lock_fd);
	for (int i = 0; i < CONTROL_MAX_CONNECTIONS; i++)
		if (srv->conns[i].fd >= 0)
			control_conn_close(&srv->conns[i]);
	for (int i = 0; i < srv->nverbs; i++)
		free(srv->verbs[i].usage);
	free(srv->verbs);
	pthread_mutex_destroy(&srv->lock);
	free(srv);
}

int control_server_start(const char *name, struct control_server **out, char *err, size_t errlen)
{
	struct control_server *srv;
	int ret;

	*out = NULL;
	if (errlen)
		err[0] = 0;
	if (control_name_check(name, err, errlen) < 0)
		return -EINVAL;
	srv = calloc(1, sizeof(*srv));
	if (!srv) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&srv->lock, NULL);
	srv->listen_fd = srv->wake_fd = srv->lock_fd = -1;
	for (int i = 0; i < CONTROL_MAX_CONNECTIONS; i++)
		srv->conns[i].fd = -1;
	snprintf(srv->name, sizeof(srv->name), "%s", name);

	ret = control_path_for(name, ".sock", srv->path, sizeof(srv->path), err, errlen);
	if (!ret)
		ret = control_lock_acquire(name, &srv->lock_fd, srv->lock_path,
					   sizeof(srv->lock_path), err, errlen);
	if (!ret)
		ret = check_existing(srv, err, errlen);
	if (!ret)
		ret = open_listener(srv, err, errlen);
	if (!ret && (srv->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		ret = -errno;
		snprintf(err, errlen, "eventfd: %s", strerror(-ret));
	}
	if (!ret)
		ret = control_builtins_register(srv);
	if (!ret) {
		/* The control thread takes no signals: they belong to the VM's own threads. */
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		ret = -pthread_create(&srv->thread, NULL, server_thread, srv);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		srv->thread_started = !ret;
	}
	if (ret < 0) {
		if (!err[0])
			snprintf(err, errlen, "control socket for '%s': %s", name, strerror(-ret));
		server_free(srv);
		return ret;
	}
	*out = srv;
	return 0;
}

int control_server_stopping(struct control_server *srv)
{
	return srv->self_stop;
}

void control_server_stop(struct control_server *srv)
{
	uint64_t one = 1;

	if (!srv)
		return;
	if (srv->thread_started && pthread_equal(pthread_self(), srv->thread)) {
		srv->self_stop = 1;
		return;
	}
	if (srv->thread_started) {
		(void)!write(srv->wake_fd, &one, sizeof(one));
		pthread_join(srv->thread, NULL);
	}
	server_free(srv);
}
