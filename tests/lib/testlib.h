/* Helpers shared by the cmocka test programs: a per-program temporary directory, paths inside it,
 * a seeded xorshift PRNG, running a shell command, and a checksum of a file's bytes.  tests/lib is
 * linked into every test binary and is not a test itself (no file here is named test_*).
 */
#ifndef MINIVMM_TESTS_LIB_TESTLIB_H
#define MINIVMM_TESTS_LIB_TESTLIB_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The directory made by test_tmpdir_setup() ("" before). */
extern char test_tmpdir[256];

/* Make /var/tmp/minivmm-<tag>-XXXXXX (on disk, not tmpfs: O_DIRECT works there); 0 or -1. */
int test_tmpdir_setup(const char *tag);

/* Remove the directory and everything in it; a cmocka group teardown. 0 or the rm status. */
int test_tmpdir_teardown(void **state);

/* "<test_tmpdir>/<name>" in one of 8 rotating buffers, so up to 8 results can be used at once. */
const char *test_path(const char *name);

/* Marsaglia xorshift64 (13, 7, 17) with caller-held state: the same seed gives the same run. */
uint64_t test_xorshift(uint64_t *state);

/* Run a printf-formatted shell command; its exit code, or -1 if it did not exit normally or the
 * command does not fit (4 KiB). */
int test_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Write a whole file (created or truncated); fails the test on any error. */
void test_file_write(const char *path, const void *buf, size_t len);

/* Overwrite len bytes at off in an existing file; fails the test on any error. */
void test_file_poke(const char *path, uint64_t off, const void *buf, size_t len);

/* 64-bit FNV-1a of a file's bytes (fails the test if the file cannot be read). */
uint64_t test_file_hash(const char *path);

/* From a child running as `uid`, connect to the UNIX socket at `path` (SOCK_STREAM or
 * SOCK_SEQPACKET), send `req` and read the reply: 'C' when the connect is refused, 'E' for an
 * "ok":false reply naming a permission error, 'O' for an "ok":true reply, '?' otherwise. */
char test_request_as_uid(uid_t uid, const char *path, int socktype, const char *req);

#endif
