/* The main thread while the VM runs: console input into COM1 (with ^A x to quit on a terminal),
 * SIGINT/SIGTERM/SIGHUP, and the end requests of vCPUs and the control socket. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "devices/serial.h"
#include "vmm/console_tty.h"
#include "vmm/vm.h"
#include "vmm/vm_internal.h"

#define ESCAPE_CHAR 0x01 /* ^A, as in QEMU */

struct input {
	bool open; /* stdin still readable */
	bool tty;
	bool escape; /* the previous byte was ^A */
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
static size_t filter_escapes(struct vm *vm, struct input *in, size_t n)
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

static void read_input(struct vm *vm, struct input *in)
{
	ssize_t n = read(STDIN_FILENO, in->buf, sizeof(in->buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) { /* EOF or error: the guest keeps running without input */
		in->open = false;
		return;
	}
	in->pos = 0;
	in->len = in->tty ? filter_escapes(vm, in, n) : (size_t)n;
}

void vm_main_loop(struct vm *vm)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		fprintf(stderr, "minivmm: signalfd: %s (signals end the VM abruptly)\n",
			strerror(errno));
	struct input in = {.open = vm->cfg->console == VM_CONSOLE_STDIO};
	in.tty = in.open && console_tty_raw(STDIN_FILENO) == 0;
	int room_fd = serial_room_fd(vm->serial);

	for (;;) {
		pthread_mutex_lock(&vm->lock);
		bool done = vm->end != VM_END_NONE;
		pthread_mutex_unlock(&vm->lock);
		if (done)
			break;
		struct pollfd p[4] = {{.fd = vm->event_fd, .events = POLLIN},
				      {.fd = sfd, .events = POLLIN},
				      {.fd = -1, .events = POLLIN},
				      {.fd = -1, .events = POLLIN}};
		if (in.open && in.pos == in.len)
			p[2].fd = STDIN_FILENO;
		if (in.pos < in.len)
			p[3].fd = room_fd;
		if (poll(p, 4, -1) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "minivmm: poll: %s\n", strerror(errno));
			vm_request_end(vm, VM_END_ERROR);
			break;
		}
		if (p[0].revents)
			drain(vm->event_fd);
		if (p[1].revents) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				pthread_mutex_lock(&vm->lock);
				vm->end_signal = si.ssi_signo;
				pthread_mutex_unlock(&vm->lock);
				vm_request_end(vm, VM_END_SIGNAL);
			}
		}
		if (p[3].revents)
			drain(room_fd);
		if (p[2].revents)
			read_input(vm, &in);
		if (in.pos < in.len)
			in.pos += serial_receive(vm->serial, in.buf + in.pos, in.len - in.pos);
	}
	if (in.tty)
		console_tty_restore();
	if (sfd >= 0)
		close(sfd);
}
