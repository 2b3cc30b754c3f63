/* Helpers shared by the cmocka test programs: see testlib.h. */
#include <setjmp.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/lib/testlib.h"

char test_tmpdir[256];

int test_tmpdir_setup(const char *tag)
{
	int n = snprintf(test_tmpdir, sizeof(test_tmpdir), "/var/tmp/minivmm-%s-XXXXXX", tag);

	if (n < 0 || (size_t)n >= sizeof(test_tmpdir))
		return -1;
	return mkdtemp(test_tmpdir) ? 0 : -1;
}

int test_tmpdir_teardown(void **state)
{
	(void)state;
	/* Never "rm -rf ''": a failed setup leaves the template, which names nothing we made. */
	if (!test_tmpdir[0])
		return 0;
	return test_run("rm -rf '%s'", test_tmpdir);
}

const char *test_path(const char *name)
{
	static char buf[8][512];
	static int i;

	i = (i + 1) % 8;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", test_tmpdir, name);
	return buf[i];
}

uint64_t test_xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

int test_run(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int n, st;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	/* A cut command could run something else: refuse it. */
	if (n < 0 || (size_t)n >= sizeof(cmd))
		return -1;
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void test_file_write(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

void test_file_poke(const char *path, uint64_t off, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, buf, len, (off_t)off), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

uint64_t test_file_hash(const char *path)
{
	static uint8_t buf[65536];
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a offset basis */
	FILE *f = fopen(path, "rb");
	size_t n;

	assert_non_null(f);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		for (size_t i = 0; i < n; i++)
			h = (h ^ buf[i]) * 1099511628211ull;
	fclose(f);
	return h;
}

char test_request_as_uid(uid_t uid, const char *path, int socktype, const char *req)
{
	int p[2];
	char r = '?';
	if (pipe(p) < 0)
		return '?';
	pid_t pid = fork();
	if (pid < 0)
		return '?';
	if (pid == 0) {
		struct sockaddr_un sun = {.sun_family = AF_UNIX};
		char buf[512] = "", res = '?';
		int fd = socket(AF_UNIX, socktype, 0);
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
		if (setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
			_exit(3);
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
			res = 'C';
		} else {
			/* The refusal may come (and the connection close) before the request goes.
			 */
			(void)!send(fd, req, strlen(req), MSG_NOSIGNAL);
			struct pollfd pf = {.fd = fd, .events = POLLIN};
			ssize_t n =
			    poll(&pf, 1, 5000) == 1 ? recv(fd, buf, sizeof(buf) - 1, 0) : -1;
			if (n > 0 && strstr(buf, "\"ok\":false") && strstr(buf, "permission"))
				res = 'E';
			else if (n > 0 && strstr(buf, "\"ok\":true"))
				res = 'O';
		}
		(void)!write(p[1], &res, 1);
		_exit(0);
	}
	close(p[1]);
	(void)!read(p[0], &r, 1);
	close(p[0]);
	waitpid(pid, NULL, 0);
	return r;
}
