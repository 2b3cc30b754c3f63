/* The seccomp sandbox (see sandbox.h): allow-lists per role built with libseccomp, exported as
 * BPF once at preparation, loaded with the raw seccomp() call (no allocation then), and a SIGSYS
 * handler that names the forbidden call. */
#include "lib/sandbox.h"
#include "lib/error.h"
#include "lib/log.h"

#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Role bits: which roles may make a call. */
#define R_VCPU (1u << SANDBOX_VCPU)
#define R_IO (1u << SANDBOX_IO)
#define R_LOOP (1u << SANDBOX_LOOP)
#define R_WORKER (1u << SANDBOX_WORKER)
#define R_ALL (R_VCPU | R_IO | R_LOOP | R_WORKER)
#define R_CPU_UP (R_VCPU | R_LOOP | R_WORKER) /* a vCPU's calls, and its creators' */
#define R_FILES (R_LOOP | R_WORKER)

/* Plain calls, any arguments. */
static const struct {
	const char *name;
	unsigned roles;
} plain[] = {
    /* I/O on descriptors already open */
    {"read", R_ALL},
    {"write", R_ALL},
    {"readv", R_ALL},
    {"writev", R_ALL},
    {"pread64", R_ALL},
    {"pwrite64", R_ALL},
    {"preadv", R_ALL},
    {"pwritev", R_ALL},
    {"preadv2", R_ALL},
    {"pwritev2", R_ALL},
    {"lseek", R_ALL},
    {"close", R_ALL},
    {"fstat", R_ALL},
    {"newfstatat", R_ALL}, /* glibc's fstat() */
    {"fsync", R_ALL},
    {"fdatasync", R_ALL},
    {"fallocate", R_ALL},
    {"ftruncate", R_ALL},
    {"fadvise64", R_ALL},
    {"sync_file_range", R_ALL},
    {"copy_file_range", R_ALL},
    {"fcntl", R_ALL}, /* flags, OFD locks */
    {"flock",
     R_ALL}, /* the probe-window guard across processes (storage/core/block_probe_guard.c) */
    {"dup", R_CPU_UP},
    {"dup3", R_CPU_UP},
    /* memory (mmap and mprotect below: never executable) */
    {"munmap", R_ALL},
    {"madvise", R_ALL}, /* the balloon, KSM, free() */
    {"mremap", R_ALL},
    {"brk", R_ALL},
    {"msync", R_CPU_UP},   /* a firmware flash mapped from its file */
    {"mincore", R_CPU_UP}, /* balloon statistics */
    /* threads and their synchronisation */
    {"futex", R_ALL},
    {"set_robust_list", R_ALL},
    {"rseq", R_ALL},
    {"membarrier", R_CPU_UP},
    {"exit", R_ALL},
    {"exit_group", R_ALL},
    {"gettid", R_ALL},
    {"getpid", R_ALL},
    {"sched_yield", R_ALL},
    {"sched_getaffinity", R_ALL},
    {"sched_setaffinity", R_CPU_UP},
    {"getcpu", R_CPU_UP},
    {"getrusage", R_CPU_UP}, /* execution cap accounting */
    {"getpriority", R_CPU_UP},
    {"setpriority", R_CPU_UP},
    {"sched_getscheduler", R_CPU_UP},
    {"sched_setscheduler", R_CPU_UP},
    {"sched_getparam", R_CPU_UP},
    {"sched_setparam", R_CPU_UP},
    {"sched_getattr", R_CPU_UP},
    {"sched_setattr", R_CPU_UP},
    /* signals within the process (tgkill is limited to our pid below) */
    {"rt_sigreturn", R_ALL},
    {"rt_sigprocmask", R_ALL},
    {"rt_sigtimedwait", R_CPU_UP},
    {"rt_sigpending", R_CPU_UP},
    {"sigaltstack", R_ALL},
    {"restart_syscall", R_ALL},
    {"signalfd4", R_CPU_UP},
    /* time */
    {"clock_gettime", R_ALL},
    {"clock_getres", R_ALL},
    {"clock_nanosleep", R_ALL},
    {"nanosleep", R_ALL},
    {"gettimeofday", R_ALL},
    {"time", R_ALL},
    {"getrandom", R_ALL},
    {"timerfd_create", R_CPU_UP},
    {"timerfd_settime", R_CPU_UP},
    {"timerfd_gettime", R_CPU_UP},
    {"timer_create", R_CPU_UP},
    {"timer_settime", R_CPU_UP},
    {"timer_gettime", R_CPU_UP},
    {"timer_getoverrun", R_CPU_UP},
    {"timer_delete", R_CPU_UP},
    {"setitimer", R_CPU_UP},
    {"getitimer", R_CPU_UP},
    /* event plumbing: eventfds (doorbells, irqfds, completions), epoll, io_uring */
    {"eventfd2", R_CPU_UP},
    {"epoll_create1", R_CPU_UP},
    {"epoll_ctl", R_CPU_UP},
    {"epoll_wait", R_CPU_UP},
    {"epoll_pwait", R_CPU_UP},
    {"poll", R_CPU_UP},
    {"ppoll", R_CPU_UP},
    {"pipe2", R_CPU_UP},
    {"io_uring_setup", R_CPU_UP},
    {"io_uring_enter", R_CPU_UP},
    {"io_uring_register", R_CPU_UP},
    /* sockets already connected (the control socket, the switch) */
    {"sendmsg", R_CPU_UP},
    {"recvmsg", R_CPU_UP},
    {"sendto", R_CPU_UP},
    {"recvfrom", R_CPU_UP},
    {"sendmmsg", R_CPU_UP},
    {"recvmmsg", R_CPU_UP},
    {"shutdown", R_CPU_UP},
    {"getsockopt", R_CPU_UP},
    {"setsockopt", R_CPU_UP},
    {"getsockname", R_CPU_UP},
    {"getpeername", R_CPU_UP},
    /* identity, read only */
    {"getuid", R_CPU_UP},
    {"geteuid", R_CPU_UP},
    {"getgid", R_CPU_UP},
    {"getegid", R_CPU_UP},
    {"capget", R_ALL},
    {"capset", R_ALL}, /* dropping them on entering a role (never gains any) */
    {"uname", R_CPU_UP},
    {"sysinfo", R_ALL}, /* glibc qsort asks for the memory size */
    /* the file system: control verbs (media change, snapshots) and teardown */
    {"openat", R_FILES},
    {"mkdir", R_FILES},
    {"mkdirat", R_FILES},
    {"unlink", R_FILES},
    {"unlinkat", R_FILES},
    {"rename", R_FILES},
    {"renameat", R_FILES},
    {"renameat2", R_FILES},
    {"link", R_FILES},
    {"linkat", R_FILES},
    {"readlink", R_FILES},
    {"readlinkat", R_FILES},
    {"getdents64", R_FILES},
    {"statx", R_FILES},
    {"statfs", R_FILES},
    {"fstatfs", R_FILES},
    {"access", R_FILES},
    {"faccessat", R_FILES},
    {"faccessat2", R_FILES},
    {"fchmod", R_FILES},
    {"chmod", R_FILES},
    {"fchmodat", R_FILES},
    {"truncate", R_FILES},
    {"utimensat", R_FILES},
    {"getcwd", R_FILES},
    {"memfd_create", R_FILES},
    {"connect", R_FILES},
    {"accept4", R_FILES},
    {"bind", R_FILES},
    {"listen", R_FILES},
};

struct bpf {
	struct sock_filter *insns;
	unsigned short len;
};

#define ROLE_PROCESS SANDBOX_ROLES /* the union, installed on every thread */
#define NAMES_MAX 512

static struct bpf filters[SANDBOX_ROLES + 1];
static const char *names[NAMES_MAX]; /* resolved before any filter runs: the handler allocates
					nothing */
static atomic_bool started;
static __thread int thread_role = -1;

static const char *const role_names[] = {
    [SANDBOX_VCPU] = "vcpu",
    [SANDBOX_IO] = "io",
    [SANDBOX_LOOP] = "loop",
    [SANDBOX_WORKER] = "worker",
};

const char *sandbox_role_name(enum sandbox_role role)
{
	return (unsigned)role < SANDBOX_ROLES ? role_names[role] : "process";
}

bool sandbox_started(void)
{
	return atomic_load(&started);
}

/* ---- The SIGSYS handler: async-signal-safe string building only ---- */

static size_t put(char *buf, size_t at, size_t cap, const char *s)
{
	while (*s && at + 1 < cap)
		buf[at++] = *s++;
	buf[at] = 0;
	return at;
}

static size_t put_num(char *buf, size_t at, size_t cap, long v)
{
	char tmp[24];
	int n = 0;
	unsigned long u = v < 0 ? -(unsigned long)v : (unsigned long)v;
	do
		tmp[n++] = (char)('0' + u % 10);
	while ((u /= 10) && n < 23);
	if (v < 0)
		tmp[n++] = '-';
	while (n && at + 1 < cap)
		buf[at++] = tmp[--n];
	buf[at] = 0;
	return at;
}

static void sigsys_handler(int sig, siginfo_t *si, void *uctx)
{
	char msg[256], tname[17] = "?";
	int nr = si->si_syscall;
	size_t n = 0;

	(void)sig;
	(void)uctx;
	prctl(PR_GET_NAME, tname, 0, 0, 0);
	/* Where it came from (for addr2line -e minivmm), innermost caller first, without this
	 * handler and the signal frame: the unwinder was loaded by sandbox_prepare, and
	 * backtrace_symbols_fd writes without allocating.  The message comes last. */
	void *frames[10];
	int nf = backtrace(frames, 10);
	if (nf > 2) {
		(void)!write(STDERR_FILENO, "minivmm: sandbox: call stack:\n", 30);
		backtrace_symbols_fd(frames + 2, nf - 2, STDERR_FILENO);
	}
	n = put(msg, n, sizeof(msg), "minivmm: sandbox: forbidden system call ");
	n = put(msg, n, sizeof(msg), nr >= 0 && nr < NAMES_MAX && names[nr] ? names[nr] : "?");
	n = put(msg, n, sizeof(msg), " (");
	n = put_num(msg, n, sizeof(msg), nr);
	n = put(msg, n, sizeof(msg), ") on thread ");
	n = put(msg, n, sizeof(msg), tname);
	/* A thread that has not entered a role runs under its creator's filters. */
	n = put(msg, n, sizeof(msg), thread_role >= 0 ? " (role " : " (");
	n = put(msg, n, sizeof(msg),
		thread_role >= 0 ? role_names[thread_role] : "its creator's filters");
	n = put(msg, n, sizeof(msg), "): stopping the VM\n");
	(void)!write(STDERR_FILENO, msg, n);
	syscall(SYS_exit_group, 128 + SIGSYS);
}

/* ---- Building the filters ---- */

static int add(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned nargs,
	       const struct scmp_arg_cmp *args)
{
	int nr = seccomp_syscall_resolve_name(name);
	if (nr == __NR_SCMP_ERROR)
		return 0; /* a call this libseccomp does not know cannot be made through it either
			   */
	return seccomp_rule_add_array(ctx, action, nr, nargs, args);
}

#define ADD(ctx, name, ...)                                                                        \
	({                                                                                         \
		const struct scmp_arg_cmp a_[] = {__VA_ARGS__};                                    \
		add(ctx, SCMP_ACT_ALLOW, name, sizeof(a_) / sizeof(a_[0]), a_);                    \
	})

/* Calls allowed only with some arguments. */
static int add_conditional(scmp_filter_ctx ctx, unsigned roles)
{
	int r = 0;
	/* Threads, never processes; clone3 hides its flags in memory, so glibc must fall back. */
	r |= ADD(ctx, "clone", SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
	r |= add(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL);
	/* No executable memory after set-up. */
	r |= ADD(ctx, "mmap", SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	r |= ADD(ctx, "mprotect", SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	/* Signals only to our own threads, and the SIGSYS handler stays. */
	r |= ADD(ctx, "tgkill", SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid(), 0));
	r |= ADD(ctx, "rt_tgsigqueueinfo", SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid(), 0));
	r |= ADD(ctx, "rt_sigqueueinfo", SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid(), 0));
	r |= ADD(ctx, "rt_sigaction", SCMP_A0(SCMP_CMP_NE, SIGSYS, 0));
	/* Thread names; stacking a stricter filter (a thread entering its role). */
	r |= ADD(ctx, "prctl", SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME, 0));
	r |= ADD(ctx, "prctl", SCMP_A0(SCMP_CMP_EQ, PR_GET_NAME, 0));
	r |= ADD(ctx, "seccomp", SCMP_A0(SCMP_CMP_EQ, SECCOMP_SET_MODE_FILTER, 0));
	/* ioctl by type: block devices (BLKGETSIZE64, BLKDISCARD, ...) for every role; KVM and
	 * the terminal/tun ('T': TCGETS, TIOCGWINSZ, TUNSETIFF, FIONBIO) beyond I/O threads. */
	r |= ADD(ctx, "ioctl", SCMP_A1(SCMP_CMP_MASKED_EQ, 0xff00, 0x1200));
	if (roles & R_CPU_UP) {
		r |= ADD(ctx, "ioctl", SCMP_A1(SCMP_CMP_MASKED_EQ, 0xff00, 0xAE00));
		r |= ADD(ctx, "ioctl", SCMP_A1(SCMP_CMP_MASKED_EQ, 0xff00, 0x5400));
	}
	if (roles & R_FILES) {
		r |= ADD(ctx, "socket", SCMP_A0(SCMP_CMP_EQ, AF_UNIX, 0));
		r |= ADD(ctx, "socketpair", SCMP_A0(SCMP_CMP_EQ, AF_UNIX, 0));
	}
	return r;
}

static int export_bpf(scmp_filter_ctx ctx, struct bpf *out)
{
	int fd = memfd_create("minivmm-seccomp", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = seccomp_export_bpf(ctx, fd);
	off_t size = r < 0 ? -1 : lseek(fd, 0, SEEK_END);
	if (r == 0 && (size <= 0 || size % sizeof(struct sock_filter) ||
		       size / sizeof(struct sock_filter) > BPF_MAXINSNS))
		r = -E2BIG;
	if (r == 0 && !(out->insns = malloc(size)))
		r = -ENOMEM;
	if (r == 0 && pread(fd, out->insns, size, 0) != size)
		r = -EIO;
	if (r == 0)
		out->len = (unsigned short)(size / sizeof(struct sock_filter));
	close(fd);
	return r;
}

static int build(unsigned roles, struct bpf *out)
{
	/* Anything not listed traps into the handler, which names it and ends the VMM. */
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
	int r = 0;
	if (!ctx)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]) && !r; i++)
		if (plain[i].roles & roles)
			r = add(ctx, SCMP_ACT_ALLOW, plain[i].name, 0, NULL);
	if (!r)
		r = add_conditional(ctx, roles);
	if (!r)
		r = export_bpf(ctx, out);
	seccomp_release(ctx);
	return r < 0 ? r : (r ? -EINVAL : 0);
}

int sandbox_prepare(void)
{
	int r;
	for (int nr = 0; nr < NAMES_MAX; nr++)
		if (!names[nr])
			names[nr] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
	/* (kept for the process's life: the handler may need them at any moment) */
	for (int role = 0; role <= SANDBOX_ROLES; role++) {
		if (filters[role].insns)
			continue;
		r = build(role == ROLE_PROCESS ? R_ALL : 1u << role, &filters[role]);
		if (r < 0)
			return error_set(r, "sandbox: cannot build the %s filter: %s",
					 sandbox_role_name(role), strerror(-r));
	}
	/* glibc opens some files lazily, on the first call of a function: do those calls now,
	 * while files may be opened (found under the e2e tests).  gmtime_r (the RTC, on a vCPU)
	 * reads /etc/localtime once;
	 * backtrace (the SIGSYS handler) loads the unwinder. */
	tzset();
	/* malloc asks get_nprocs() (which opens /sys/devices/system/cpu/online) the first time a
	 * thread needs a new arena past the 8th: give it the limit it would compute (8 per CPU). */
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	mallopt(M_ARENA_MAX, (int)(ncpu > 0 && ncpu < 4096 ? ncpu : 1) * 8);
	void *frame[1];
	backtrace(frame, 1);
	struct sigaction sa = {.sa_sigaction = sigsys_handler, .sa_flags = SA_SIGINFO};
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return error_set(-errno, "sandbox: %s", strerror(errno));
	return 0;
}

/* The kernel resets a blocked SIGSYS to its default action before delivering it (the VMM would
 * die without the message), and the worker and vCPU threads block every signal: unblock it. */
static void unblock_sigsys(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGSYS);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

static int load(const struct bpf *f, unsigned flags)
{
	struct sock_fprog prog = {.len = f->len, .filter = f->insns};
	long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
	/* TSYNC returns the id of a thread it could not synchronise. */
	return r == 0 ? 0 : (r > 0 ? -EBUSY : -errno);
}

int sandbox_start(void)
{
	if (!filters[ROLE_PROCESS].insns)
		return error_set(-EINVAL, "sandbox: not prepared");
	unblock_sigsys();
	int r = load(&filters[ROLE_PROCESS], SECCOMP_FILTER_FLAG_TSYNC);
	if (r < 0)
		return error_set(r, "sandbox: cannot install the seccomp filter: %s", strerror(-r));
	atomic_store(&started, true);
	return 0;
}

/* Capabilities are per thread: each drops its own as it enters its role. */
static void drop_capabilities(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2] = {0};

	if (syscall(SYS_capget, &hdr, data) < 0)
		return;
	if (!(data[0].effective | data[0].permitted | data[1].effective | data[1].permitted |
	      data[0].inheritable | data[1].inheritable))
		return;
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capset, &hdr, data) < 0) {
		log_error("sandbox", "cannot drop capabilities: %s", strerror(errno));
		syscall(SYS_exit_group, 1);
	}
}

void sandbox_enter(enum sandbox_role role)
{
	if (thread_role >= 0 || !atomic_load(&started) || (unsigned)role >= SANDBOX_ROLES)
		return;
	unblock_sigsys();
	drop_capabilities();
	int r = load(&filters[role], 0);
	if (r < 0) {
		/* Running on unfiltered by the role's list would be a silent hole. */
		log_error("sandbox", "cannot enter the %s role: %s", role_names[role],
			  strerror(-r));
		syscall(SYS_exit_group, 1);
	}
	thread_role = role;
}
