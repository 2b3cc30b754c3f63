/* The jail (lib/jail.h): "UID[:GID]" parsing, jail_prepare's refusals, and, when run as root, a
 * real jail entered in a child: its root is the directory, the host's files are gone (also by
 * "..", and for a thread started before the jail), the ids are the user's and no capability is
 * left. */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/error.h"
#include "lib/jail.h"

static void test_parse_user(void **state)
{
	(void)state;
	uid_t u;
	gid_t g;
	assert_int_equal(jail_parse_user("1000", &u, &g), 0);
	assert_int_equal(u, 1000);
	assert_int_equal(g, 1000);
	assert_int_equal(jail_parse_user("65534:65533", &u, &g), 0);
	assert_int_equal(u, 65534);
	assert_int_equal(g, 65533);
	const char *bad[] = {
	    "",	    "0",  "0:5", "5:0", ":5",	      "5:",	      "x",
	    "5x",   "-1", "+5",	 " 5",	"4294967295", "5:4294967295", "18446744073709551621",
	    "1:2:3"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (jail_parse_user(bad[i], &u, &g) != -EINVAL)
			fail_msg("'%s' accepted", bad[i]);
}

/* Runs fn in a child (a jail cannot be left); its exit status is the result, 0 for success. */
static int in_child(int (*fn)(const char *), const char *arg)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0)
		_exit(fn(arg));
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

static int prepare_refused(const char *dir)
{
	struct jail_config c = {.chroot_dir = dir};
	int r = jail_prepare(&c);
	fprintf(stderr, "jail_prepare(%s): %d %s\n", dir, r, error_msg());
	return r < 0 && !jail_chrooted() ? 0 : 1;
}

static void test_prepare_refusals(void **state)
{
	(void)state;
	struct jail_config none = {0};
	assert_int_equal(jail_prepare(&none), 0); /* nothing asked: nothing done */
	if (geteuid() != 0) {
		struct jail_config c = {.set_user = true, .uid = 1, .gid = 1};
		assert_int_equal(jail_prepare(&c), -EPERM);
		assert_non_null(strstr(error_msg(), "--user needs root"));
		return;
	}
	assert_int_equal(in_child(prepare_refused, "/"), 0);
	assert_int_equal(in_child(prepare_refused, "/nonexistent-jail-dir"), 0);
	assert_int_equal(in_child(prepare_refused, "/proc/self/status"), 0); /* not a directory */
}

static char jail_dir[64];
static volatile int thread_saw_jail = -1;
static volatile int thread_go;

/* A thread started before the jail, as the VM's worker and I/O threads are. */
static void *early_thread(void *arg)
{
	(void)arg;
	while (!thread_go)
		usleep(1000);
	thread_saw_jail = access("/inside", F_OK) == 0 && access(jail_dir, F_OK) < 0;
	return NULL;
}

static int jail_child(const char *dir)
{
	struct jail_config c = {.chroot_dir = dir, .set_user = true, .uid = 4321, .gid = 4322};
	pthread_t t;
	if (jail_prepare(&c) < 0 || pthread_create(&t, NULL, early_thread, NULL))
		return 2;
	int fd = open("/", O_RDONLY | O_DIRECTORY); /* the host's root would be reachable via fd */
	if (fd < 0)
		return 3;
	close(fd);
	if (jail_enter(&c) < 0) {
		fprintf(stderr, "jail_enter: %s\n", error_msg());
		return 4;
	}
	if (!jail_chrooted() || access("/inside", F_OK) < 0 || access(dir, F_OK) == 0 ||
	    access("/../../inside", F_OK) < 0 || access("/proc/self", F_OK) == 0)
		return 5;
	char cwd[64];
	if (!getcwd(cwd, sizeof(cwd)) || strcmp(cwd, "/"))
		return 6;
	if (getuid() != 4321 || geteuid() != 4321 || getgid() != 4322 || getegid() != 4322)
		return 7;
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct cap[2];
	if (syscall(SYS_capget, &hdr, cap) < 0 || cap[0].effective || cap[0].permitted ||
	    cap[1].effective || cap[1].permitted)
		return 8;
	if (setuid(0) == 0 || chroot("/") == 0) /* no way back */
		return 9;
	thread_go = 1;
	pthread_join(t, NULL);
	return thread_saw_jail == 1 ? 0 : 10;
}

static void test_jail_entered(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		skip(); /* a jail needs root; the e2e test test_jail.sh runs it as root */
		return;
	}
	snprintf(jail_dir, sizeof(jail_dir), "/tmp/test-jail.XXXXXX");
	assert_non_null(mkdtemp(jail_dir));
	assert_int_equal(chmod(jail_dir, 0755), 0); /* the user must be able to look inside */
	char marker[96];
	snprintf(marker, sizeof(marker), "%s/inside", jail_dir);
	int fd = open(marker, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	close(fd);
	int r = in_child(jail_child, jail_dir);
	unlink(marker);
	rmdir(jail_dir);
	assert_int_equal(r, 0);
	/* The parent's mounts and root are untouched (the namespace was the child's). */
	assert_int_equal(access("/proc/self", F_OK), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_user),
	    cmocka_unit_test(test_prepare_refusals),
	    cmocka_unit_test(test_jail_entered),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
