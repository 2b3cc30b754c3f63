/* The seccomp sandbox (lib/sandbox.h): each case runs in a child process that enters a role and
 * makes one call; the parent checks how the child ended and what it printed.  Children end with
 * a raw exit_group, so that no sanitizer runtime runs at exit under the filter.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/kvm.h>

#include <cmocka.h>

#include "lib/error.h"
#include "lib/sandbox.h"

typedef void probe_fn(void);
static void do_early_thread(void);
static void start_early_thread(void);

static void quit(int code)
{
	syscall(SYS_exit_group, code);
}

/* Runs probe in a child under role (or only the process filter when role is SANDBOX_ROLES);
 * returns the exit status and the child's stderr in out. */
static int run_child(enum sandbox_role role, probe_fn *probe, char *out, size_t outlen)
{
	int p[2], status = -1;

	assert_int_equal(pipe(p), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(p[1], STDERR_FILENO);
		close(p[0]);
		if (probe == do_early_thread)
			start_early_thread();
		if (sandbox_prepare() < 0 || sandbox_start() < 0) {
			(void)!write(STDERR_FILENO, error_msg(), strlen(error_msg()));
			quit(90);
		}
		if (role < SANDBOX_ROLES)
			sandbox_enter(role);
		probe();
		quit(0);
	}
	close(p[1]);
	size_t n = 0;
	ssize_t r;
	while (n + 1 < outlen && (r = read(p[0], out + n, outlen - 1 - n)) > 0)
		n += r;
	out[n] = 0;
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void do_nested_roles(void);
static void do_early_thread(void);

static void expect_killed(enum sandbox_role role, probe_fn *probe, const char *call)
{
	char out[1024], want[128];

	int code = run_child(role, probe, out, sizeof(out));
	snprintf(want, sizeof(want), "forbidden system call %s (", call);
	if (code != 128 + SIGSYS || !strstr(out, want))
		fail_msg("role %s, %s: exit %d, stderr '%s'", sandbox_role_name(role), call, code,
			 out);
	if (role < SANDBOX_ROLES && probe != do_nested_roles &&
	    !strstr(out, sandbox_role_name(role)))
		fail_msg("message does not name role %s: '%s'", sandbox_role_name(role), out);
}

static void expect_allowed(enum sandbox_role role, probe_fn *probe)
{
	char out[1024];

	int code = run_child(role, probe, out, sizeof(out));
	if (code != 0)
		fail_msg("role %s: exit %d, stderr '%s'", sandbox_role_name(role), code, out);
}

/* Probes: each ends the child with 0 when the call was let through and behaved. */

static void do_setuid(void)
{
	syscall(SYS_setuid, (uid_t)-1); /* EINVAL if let through */
}

static void do_execve(void)
{
	char *argv[] = {"/bin/true", NULL};
	syscall(SYS_execve, "/bin/true", argv, NULL);
}

static void do_fork(void)
{
	/* A process, not a thread: clone without CLONE_THREAD (what fork() does). */
	syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
}

static void do_open(void)
{
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	quit(fd >= 0 ? 0 : 3);
}

static void do_inet_socket(void)
{
	socket(AF_INET, SOCK_STREAM, 0);
}

static void do_unix_socket(void)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	quit(fd >= 0 ? 0 : 3);
}

static void do_exec_mmap(void)
{
	mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

static void do_rw_mmap_and_madvise(void)
{
	void *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		quit(3);
	memset(p, 1, 1 << 20);
	quit(madvise(p, 1 << 20, MADV_DONTNEED) == 0 ? 0 : 4);
}

/* The RTC converts the time on a vCPU: glibc's first gmtime_r would open /etc/localtime. */
static void do_gmtime(void)
{
	time_t t = time(NULL);
	struct tm tm;
	quit(gmtime_r(&t, &tm) && tm.tm_year > 100 ? 0 : 3);
}

static void do_kvm_ioctl(void)
{
	/* Any descriptor: the filter looks at the request only (an I/O thread gets none). */
	ioctl(STDERR_FILENO, KVM_GET_API_VERSION, 0);
}

static void do_sigsys_handler(void)
{
	struct sigaction sa = {.sa_handler = SIG_DFL};
	sigaction(SIGSYS, &sa, NULL);
}

static void do_kill_other(void)
{
	syscall(SYS_tgkill, 1, 1, 0); /* init, signal 0: harmless if let through */
}

static void *thread_body(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)(syscall(SYS_gettid) > 0 ? 7 : 8);
}

static void do_thread(void)
{
	pthread_t t;
	void *ret = NULL;
	if (pthread_create(&t, NULL, thread_body, NULL) != 0)
		quit(3);
	pthread_join(t, &ret);
	quit((intptr_t)ret == 7 ? 0 : 4);
}

/* The worker and vCPU threads block every signal; the message must come all the same. */
static void *blocked_body(void *arg)
{
	sigset_t all;
	(void)arg;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, NULL);
	sandbox_enter(SANDBOX_VCPU);
	do_setuid();
	return NULL;
}

static void do_blocked_thread(void)
{
	pthread_t t;
	if (pthread_create(&t, NULL, blocked_body, NULL) != 0)
		quit(3);
	pthread_join(t, NULL);
	quit(4);
}

/* A thread created by the worker that enters the vCPU role can no longer open files. */
static void *vcpu_from_worker(void *arg)
{
	(void)arg;
	sandbox_enter(SANDBOX_VCPU);
	do_open(); /* traps */
	return NULL;
}

static void do_nested_roles(void)
{
	pthread_t t;
	if (open("/proc/self/status", O_RDONLY | O_CLOEXEC) < 0) /* the worker may */
		quit(3);
	if (pthread_create(&t, NULL, vcpu_from_worker, NULL) != 0)
		quit(4);
	pthread_join(t, NULL);
	quit(5); /* not reached: the child was stopped */
}

/* A thread running before the sandbox starts is filtered too (TSYNC): every task of the process
 * shows "Seccomp: 2", and the old thread's forbidden call stops the process. */
static int go_pipe[2] = {-1, -1};
static pthread_t early;

static void *early_thread(void *arg)
{
	char c;
	(void)arg;
	if (read(go_pipe[0], &c, 1) != 1)
		quit(6);
	do_setuid();
	return NULL;
}

static void start_early_thread(void)
{
	if (pipe(go_pipe) < 0 || pthread_create(&early, NULL, early_thread, NULL) != 0)
		quit(7);
}

static void do_early_thread(void)
{
	char path[300], line[256];
	int tasks = 0, filtered = 0;
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;

	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/status", e->d_name);
		FILE *f = fopen(path, "r");
		tasks++;
		while (f && fgets(line, sizeof(line), f))
			if (!strcmp(line, "Seccomp:\t2\n"))
				filtered++;
		if (f)
			fclose(f);
	}
	if (tasks < 2 || filtered != tasks)
		quit(3);
	(void)!write(go_pipe[1], "x", 1);
	pthread_join(early, NULL); /* the early thread's call ends the process first */
	quit(4);
}

/* ---- Tests ---- */

static void test_forbidden_everywhere(void **state)
{
	(void)state;
	for (int role = 0; role <= SANDBOX_ROLES; role++) {
		expect_killed(role, do_setuid, "setuid");
		expect_killed(role, do_execve, "execve");
		expect_killed(role, do_fork, "clone");
		expect_killed(role, do_exec_mmap, "mmap");
		expect_killed(role, do_inet_socket, "socket");
		expect_killed(role, do_sigsys_handler, "rt_sigaction");
		expect_killed(role, do_kill_other, "tgkill");
	}
}

static void test_roles_differ(void **state)
{
	(void)state;
	/* Files: the worker and the loop, not a vCPU or an I/O thread. */
	expect_allowed(SANDBOX_WORKER, do_open);
	expect_allowed(SANDBOX_LOOP, do_open);
	expect_killed(SANDBOX_VCPU, do_open, "openat");
	expect_killed(SANDBOX_IO, do_open, "openat");
	expect_allowed(SANDBOX_WORKER, do_unix_socket);
	expect_killed(SANDBOX_VCPU, do_unix_socket, "socket");
	/* KVM ioctls: not on an I/O thread. */
	expect_allowed(SANDBOX_VCPU, do_kvm_ioctl);
	expect_killed(SANDBOX_IO, do_kvm_ioctl, "ioctl");
}

static void test_what_every_role_needs(void **state)
{
	(void)state;
	for (int role = 0; role <= SANDBOX_ROLES; role++) {
		expect_allowed(role, do_rw_mmap_and_madvise);
		expect_allowed(role, do_thread); /* clone3 refused, glibc falls back to clone */
		expect_allowed(role, do_gmtime);
	}
}

static void test_inherited_filters_stack(void **state)
{
	(void)state;
	char out[1024];
	expect_killed(SANDBOX_WORKER, do_nested_roles, "openat");
	run_child(SANDBOX_WORKER, do_nested_roles, out, sizeof(out));
	assert_non_null(strstr(out, "(role vcpu)"));
}

static void test_signals_blocked(void **state)
{
	(void)state;
	expect_killed(SANDBOX_ROLES, do_blocked_thread, "setuid");
}

static void test_threads_running_before_start(void **state)
{
	(void)state;
	expect_killed(SANDBOX_ROLES, do_early_thread, "setuid");
}

static void test_not_started_is_a_no_op(void **state)
{
	(void)state;
	assert_false(sandbox_started());
	sandbox_enter(SANDBOX_VCPU); /* must not filter this test process */
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_not_started_is_a_no_op),
	    cmocka_unit_test(test_forbidden_everywhere),
	    cmocka_unit_test(test_roles_differ),
	    cmocka_unit_test(test_what_every_role_needs),
	    cmocka_unit_test(test_inherited_filters_stack),
	    cmocka_unit_test(test_threads_running_before_start),
	    cmocka_unit_test(test_signals_blocked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
