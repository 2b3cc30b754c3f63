/* One control connection: its input line buffer and its queue of replies.
 *
 * Sockets are non-blocking and replies are queued, so a client that stops reading stalls only
 * itself: its requests wait while its queue is over OUT_HIGH, and its socket is not read while
 * they wait.  Its requests run on the server's worker one at a time (the next line waits for the
 * reply to the previous one), so a slow verb never holds up the event loop.  A line over
 * CONTROL_LINE_MAX gets an error reply and is skipped to its newline; the connection survives it.
 * A line left incomplete for control_request_timeout_ms (while none of the connection's requests
 * is on the worker) gets an error reply and the connection is closed.
 */
#include <errno.h>
#include <sys/epoll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmm/control_internal.h"

unsigned control_request_timeout_ms = 10000;

#define OUT_HIGH (256 * 1024)
#define IN_CAP (CONTROL_LINE_MAX + 1) /* a full line plus its newline */

void control_conn_close(struct control_conn *c)
{
	unsigned gen = c->gen + 1;
	struct control_server *owner = c->owner;
	event_source_remove(c->deadline);
	event_source_remove(c->src); /* before close: epoll forgets the fd */
	close(c->fd);
	free(c->in);
	free(c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->gen = gen;
	c->owner = owner;
}

/* Queue a reply; takes ownership of `line`.  Out of memory drops the connection, not the VM. */
static int conn_queue(struct control_conn *c, char *line)
{
	size_t n;

	if (!line)
		return -ENOMEM;
	n = strlen(line);
	/* Drop what was sent before growing: a client that reads slowly but never lets the queue
	 * empty must not make it grow without bound. */
	if (c->out_off && (c->out_off == c->out_len || c->out_len + n > c->out_cap)) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	if (c->out_len + n > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		char *p;
		while (cap < c->out_len + n)
			cap *= 2;
		p = realloc(c->out, cap);
		if (!p) {
			free(line);
			return -ENOMEM;
		}
		c->out = p;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, line, n);
	c->out_len += n;
	free(line);
	return 0;
}

int control_conn_flush(struct control_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		c->out_off += n;
	}
	c->out_off = c->out_len = 0;
	return 0;
}

static size_t pending_out(const struct control_conn *c)
{
	return c->out_len - c->out_off;
}

static uint32_t conn_events(const struct control_conn *c)
{
	uint32_t ev = 0;

	if (!c->rd_closed && pending_out(c) < OUT_HIGH && c->in_len < IN_CAP)
		ev |= EPOLLIN;
	if (pending_out(c))
		ev |= EPOLLOUT;
	return ev;
}

/* Answer the complete lines in the input buffer, one at a time through the worker, while the
 * reply queue has room. */
static int conn_process(struct control_server *srv, struct control_conn *c)
{
	while (c->in_len && !c->busy && pending_out(c) < OUT_HIGH &&
	       !control_server_stopping(srv)) {
		char *nl = memchr(c->in, '\n', c->in_len);
		size_t used, len;

		if (c->discarding) {
			if (!nl) {
				c->in_len = 0;
				break;
			}
			c->discarding = 0;
			used = nl - c->in + 1;
		} else if (nl) {
			used = nl - c->in + 1;
			len = used - 1;
			if (len && c->in[len - 1] == '\r')
				len--;
			if (control_server_dispatch(srv, c, c->in, len) < 0)
				return -ENOMEM;
			c->busy = 1;
		} else if (c->in_len == IN_CAP) {
			char msg[96];
			snprintf(msg, sizeof(msg), "request line longer than %d bytes",
				 CONTROL_LINE_MAX);
			if (conn_queue(c, control_reply_error(NULL, msg)) < 0)
				return -ENOMEM;
			c->discarding = 1;
			used = c->in_len;
		} else {
			break;
		}
		memmove(c->in, c->in + used, c->in_len - used);
		c->in_len -= used;
	}
	return 0;
}

static int conn_read(struct control_server *srv, struct control_conn *c)
{
	ssize_t n;

	if (!c->in && !(c->in = malloc(IN_CAP)))
		return -ENOMEM;
	if (c->in_len == IN_CAP) /* full of requests still waiting: a 0-byte read is no EOF */
		return conn_process(srv, c);
	n = recv(c->fd, c->in + c->in_len, IN_CAP - c->in_len, MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (n == 0)
		c->rd_closed = 1; /* the client may still be waiting for replies */
	c->in_len += n;
	return conn_process(srv, c);
}

/* Nothing more will be sent: the client closed its side, no request is on the worker, no
 * reply is queued and no complete line is left. */
static bool conn_finished(const struct control_conn *c)
{
	return c->rd_closed && !c->busy && !pending_out(c) &&
	       (c->discarding || !c->in_len || !memchr(c->in, '\n', c->in_len));
}

/* Part of a request line is waiting for the rest (not counting a line the worker will see next). */
static bool conn_partial(const struct control_conn *c)
{
	return !c->busy && !c->rd_closed &&
	       (c->discarding || (c->in_len && !memchr(c->in, '\n', c->in_len)));
}

static void deadline_expired(void *opaque, uint32_t events)
{
	struct control_conn *c = opaque;
	char msg[96];

	(void)events;
	if (!conn_partial(c)) { /* completed just as the timer fired */
		c->deadline_armed = false;
		return;
	}
	snprintf(msg, sizeof(msg), "request not completed within %u ms: closing",
		 control_request_timeout_ms);
	if (conn_queue(c, control_reply_error(NULL, msg)) == 0)
		control_conn_flush(c); /* best effort: the client may not be reading */
	control_conn_close(c);
}

/* Arm the deadline when a line starts, disarm it when none is pending; 0 or -errno. */
static int deadline_update(struct control_server *srv, struct control_conn *c)
{
	bool want = conn_partial(c);
	int ret;

	if (want == c->deadline_armed)
		return 0;
	if (!c->deadline) {
		ret = event_loop_add_timer(control_server_loop(srv), 0, 0, deadline_expired, c,
					   &c->deadline);
		if (ret < 0) {
			c->deadline = NULL;
			return ret;
		}
	}
	ret = event_timer_arm(c->deadline, want ? control_request_timeout_ms * 1000000ull : 0, 0);
	if (ret == 0)
		c->deadline_armed = want;
	return ret;
}

void control_conn_event(struct control_server *srv, struct control_conn *c, uint32_t events)
{
	int ret = 0;

	if (events & EPOLLERR)
		ret = -EIO;
	if (!ret && (events & (EPOLLIN | EPOLLHUP)) && !c->rd_closed)
		ret = conn_read(srv, c);
	if (!ret)
		ret = control_conn_flush(c);
	/* Draining the queue may let buffered requests through. */
	if (!ret && pending_out(c) < OUT_HIGH && c->in_len && (ret = conn_process(srv, c)) == 0)
		ret = control_conn_flush(c);
	if (!ret && (events & EPOLLHUP) && c->busy) {
		/* The peer is gone entirely and epoll reports HUP until the fd is closed: stop
		 * watching, and close when the reply comes back. */
		event_source_remove(c->src);
		c->src = NULL;
		c->gone = 1;
		return;
	}
	if (ret < 0 || conn_finished(c) || ((events & EPOLLHUP) && !c->busy)) {
		control_conn_close(c);
		return;
	}
	if ((c->src && event_source_set_events(c->src, conn_events(c)) < 0) ||
	    deadline_update(srv, c) < 0)
		control_conn_close(c);
}

void control_conn_reply(struct control_server *srv, struct control_conn *c, char *line)
{
	c->busy = 0;
	if (c->gone) {
		/* The client hung up: its remaining requests still run (as they would have had it
		 * waited), their replies go nowhere. */
		free(line);
		if (conn_process(srv, c) < 0 || !c->busy)
			control_conn_close(c);
		return;
	}
	if (conn_queue(c, line) < 0) {
		control_conn_close(c);
		return;
	}
	control_conn_event(srv, c, 0);
}
