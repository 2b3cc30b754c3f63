/* The VM's event loop on the main thread: console input into COM1 (with ^A x to quit on a
 * terminal), SIGINT/SIGTERM/SIGHUP through a signalfd, and the end requests of vCPUs, devices and
 * the control socket (vm->event_fd).  The control socket and the disks add their own sources.
 *
 * Input flows one buffer at a time: stdin is watched while the buffer is empty, the serial's room
 * eventfd while the guest has not taken all of it, so a guest that never reads stops the reading
 * of stdin instead of losing bytes.  A stdin epoll cannot watch (a regular file, /dev/null) is read
 * whenever the buffer empties. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "devices/serial.h"
#include "lib/event_loop.h"
#include "lib/worker.h"
#include "vmm/console_tty.h"
#include "vmm/vm.h"
#include "vmm/vm_internal.h"
#include "lib/log.h"

#define ESCAPE_CHAR 0x01 /* ^A, as in QEMU */

struct console_input {
	struct vm *vm;
	struct serial *serial;
	bool open; /* stdin still readable */
	bool tty;
	bool escape;   /* the previous byte was ^A */
	bool pollable; /* stdin works with epoll */
	struct event_source *stdin_src, *room_src;
	uint8_t buf[256];
	size_t len, pos;
};

static void drain(int fd)
{
	uint64_t v;
	if (read(fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing to drain */
	}
}

/* Handle the ^A escapes of a terminal in place; returns the bytes left for the guest. */
static size_t filter_escapes(struct vm *vm, struct console_input *in, size_t n)
{
	size_t out = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = in->buf[i];
		if (in->escape) {
			in->escape = false;
			if (c == 'x' || c == 'X') {
				vm_request_end(vm, VM_END_STOP);
				return out;
			}
			if (c != ESCAPE_CHAR)
				in->buf[out++] = ESCAPE_CHAR;
			in->buf[out++] = c;
		} else if (c == ESCAPE_CHAR) {
			in->escape = true;
		} else {
			in->buf[out++] = c;
		}
	}
	return out;
}

static void input_step(struct console_input *in);

static void read_unpollable(void *opaque)
{
	input_step(opaque);
}

/* Watch what the input waits for next: room in the guest, or more input. */
static void input_arm(struct console_input *in)
{
	bool pending = in->pos < in->len;
	if (in->room_src)
		event_source_set_events(in->room_src, pending ? EPOLLIN : 0);
	if (in->stdin_src)
		event_source_set_events(in->stdin_src, !pending && in->open ? EPOLLIN : 0);
	if (!pending && in->open && !in->pollable)
		event_loop_call(in->vm->loop, read_unpollable, in);
}

static void input_step(struct console_input *in)
{
	if (in->pos == in->len && in->open) {
		ssize_t n = read(STDIN_FILENO, in->buf, sizeof(in->buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
			input_arm(in);
			return;
		}
		if (n <= 0) { /* EOF or error: the guest keeps running without input */
			in->open = false;
			event_source_remove(in->stdin_src);
			in->stdin_src = NULL;
		} else {
			in->pos = 0;
			in->len = in->tty ? filter_escapes(in->vm, in, n) : (size_t)n;
		}
	}
	if (in->pos < in->len)
		in->pos += serial_receive(in->serial, in->buf + in->pos, in->len - in->pos);
	input_arm(in);
}

static void stdin_ready(void *opaque, uint32_t events)
{
	struct console_input *in = opaque;
	if ((events & (EPOLLHUP | EPOLLERR)) && in->pos < in->len) {
		/* epoll reports a hang-up even while unwatched: stop watching, and read what is
		 * left (up to EOF) as for an unpollable stdin once the guest took the buffer. */
		event_source_remove(in->stdin_src);
		in->stdin_src = NULL;
		in->pollable = false;
	}
	input_step(in);
}

static void room_ready(void *opaque, uint32_t events)
{
	struct console_input *in = opaque;
	(void)events;
	drain(serial_room_fd(in->serial));
	input_step(in);
}

struct signals {
	struct vm *vm;
	int fd;
};

static void signal_ready(void *opaque, uint32_t events)
{
	struct signals *sig = opaque;
	struct signalfd_siginfo si;
	(void)events;
	if (read(sig->fd, &si, sizeof(si)) == sizeof(si)) {
		pthread_mutex_lock(&sig->vm->lock);
		if (sig->vm->end == VM_END_NONE)
			sig->vm->end_signal = si.ssi_signo;
		pthread_mutex_unlock(&sig->vm->lock);
		vm_request_end(sig->vm, VM_END_SIGNAL);
	}
}

/* An end request: stopping the vCPUs waits for their threads, so it runs on the worker while
 * the loop goes on (a vCPU may be waiting for a disk completion); the job stops the loop. */
static void end_requested(void *opaque, uint32_t events)
{
	struct vm *vm = opaque;
	(void)events;
	drain(vm->event_fd);
	pthread_mutex_lock(&vm->lock);
	bool start = vm->end != VM_END_NONE && !vm->shutdown_queued;
	if (start)
		vm->shutdown_queued = true;
	pthread_mutex_unlock(&vm->lock);
	if (start && worker_submit(vm->worker, vm_shutdown_job, vm) < 0) {
		log_error(NULL, "cannot queue the shutdown: stopping here");
		vm_shutdown_job(vm);
	}
}

void vm_main_loop(struct vm *vm)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	struct signals sig = {.vm = vm, .fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)};
	struct event_source *sig_src = NULL, *end_src = NULL;
	if (sig.fd < 0 ||
	    event_loop_add_fd(vm->loop, sig.fd, EPOLLIN, signal_ready, &sig, &sig_src) < 0)
		log_error("signalfd", "%s (signals end the VM abruptly)", strerror(errno));
	int r = event_loop_add_fd(vm->loop, vm->event_fd, EPOLLIN, end_requested, vm, &end_src);
	if (r < 0) {
		log_error(NULL, "event loop: %s", strerror(-r));
		vm_request_end(vm, VM_END_ERROR);
		vm_shutdown_job(vm); /* nothing would ever end the loop */
	}

	struct console_input in = {.vm = vm, .serial = devices_find(vm->devices, "serial")};
	in.open = in.serial && vm->cfg->console == VM_CONSOLE_STDIO;
	in.tty = in.open && console_tty_raw(STDIN_FILENO) == 0;
	if (in.open) {
		r = event_loop_add_fd(vm->loop, STDIN_FILENO, EPOLLIN, stdin_ready, &in,
				      &in.stdin_src);
		in.pollable = r == 0;
		if (r < 0 && r != -EPERM) {
			log_error(NULL, "console input: %s", strerror(-r));
			in.open = false;
		}
		if (event_loop_add_fd(vm->loop, serial_room_fd(in.serial), 0, room_ready, &in,
				      &in.room_src) < 0) {
			log_error(NULL, "console input: out of memory");
			in.open = false;
		}
		input_arm(&in);
	}
	/* An end requested before the loop started (a vCPU that failed at once) is seen now. */
	end_requested(vm, 0);

	r = event_loop_run(vm->loop);
	if (r < 0)
		log_error(NULL, "event loop: %s", strerror(-r));

	event_source_remove(in.stdin_src);
	event_source_remove(in.room_src);
	event_source_remove(end_src);
	event_source_remove(sig_src);
	if (in.tty)
		console_tty_restore();
	if (sig.fd >= 0)
		close(sig.fd);
}
