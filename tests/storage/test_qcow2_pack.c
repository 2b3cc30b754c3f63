/* qcow2 compressed clusters packed back to back into shared host clusters, against qemu-img:
 * `minivmm img convert -c` makes files within 10% of `qemu-img convert -c` (zlib and zstd, one and
 * several writers) that qemu-img reads identically and checks clean; overwriting, discarding,
 * snapshotting and rewriting packed clusters keeps `qemu-img check` clean and the contents right
 * after every step; a freed shared cluster is never written into again; a writer killed with
 * SIGKILL leaves at most leaks.
 */
#include <pthread.h>
#include <signal.h>

#include "tests/storage/qcow2_test_util.h"

#define SRC_SIZE (8 * MiB + 4096) /* a partial tail cluster */

/* Cluster-sized runs of text with a varying share of random bytes, so compressed streams have
 * many different lengths (and so straddle host clusters); one run in 16 is random, one zero. */
static void fill_compressible(uint8_t *b, uint64_t len, uint64_t seed)
{
	static const char words[] = "the quick qcow2 cluster packs compressed streams ";
	uint64_t s = seed | 1, noise = test_xorshift(&s) % 40;
	uint64_t kind = test_xorshift(&s) % 16;

	for (uint64_t i = 0; i < len; i++) {
		uint64_t r = test_xorshift(&s);
		if (kind == 0)
			b[i] = (uint8_t)r;
		else if (kind == 1)
			b[i] = 0;
		else
			b[i] = r % 100 < noise ? (uint8_t)(r >> 8) : (uint8_t)words[i % 49];
	}
}

static int setup(void **state)
{
	(void)state;
	if (test_tmpdir_setup("qcow2-pack") < 0)
		return -1;
	uint8_t *b = malloc(SRC_SIZE);
	if (!b)
		return -1;
	for (uint64_t off = 0; off < SRC_SIZE; off += 64 * KiB) {
		uint64_t n = SRC_SIZE - off < 64 * KiB ? SRC_SIZE - off : 64 * KiB;
		fill_compressible(b + off, n, 1000 + off / (64 * KiB));
	}
	test_file_write(test_path("src.raw"), b, SRC_SIZE);
	free(b);
	return 0;
}

static uint64_t file_size(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

static void convert_round(const char *ctype, const char *writers)
{
	const char *q = test_path("q.qcow2"), *m = test_path("m.qcow2");
	unlink(q);
	unlink(m);
	assert_int_equal(test_run("qemu-img convert -c -f raw -O qcow2 -o compression_type=%s "
				  "'%s' '%s'",
				  ctype, test_path("src.raw"), q),
			 0);
	assert_int_equal(test_run("./minivmm img convert -c %s -f raw -O qcow2 -o "
				  "compression_type=%s '%s' '%s' >/dev/null",
				  writers, ctype, test_path("src.raw"), m),
			 0);
	assert_int_equal(qemu_check(m), 0);
	assert_int_equal(test_run("qemu-img compare -q '%s' '%s'", test_path("src.raw"), m), 0);
	assert_image_equals_raw(m, test_path("src.raw"));
	uint64_t qs = file_size(q), ms = file_size(m);
	print_message("%s %s: qemu-img %llu bytes, minivmm %llu bytes\n", ctype, writers,
		      (unsigned long long)qs, (unsigned long long)ms);
	assert_true(ms * 10 <= qs * 11 && ms * 10 >= qs * 9);
}

static void test_convert_like_qemu(void **state)
{
	(void)state;
	convert_round("zlib", "");
	convert_round("zstd", "");
	convert_round("zlib", "-m 4");
	convert_round("zstd", "-m 4");
}

/* ---- overwrite, discard, snapshot on packed clusters ---- */

struct life {
	char img[512], raw[512]; /* copies: test_path() reuses its buffers */
	struct block_device *bs;
	uint8_t *shadow, *buf;
	uint64_t size, cs;
};

/* Close, then both qemu-img and our own reader agree with the shadow and qemu-img check is
 * clean; reopen. */
static void life_verify(struct life *l, const char *step)
{
	block_close(l->bs);
	test_file_write(l->raw, l->shadow, l->size);
	int rc = qemu_check(l->img);
	if (rc != 0) {
		print_message("after %s:\n", step);
		test_run("qemu-img check '%s'", l->img);
	}
	assert_int_equal(rc, 0);
	assert_int_equal(test_run("qemu-img compare -q '%s' '%s'", l->img, l->raw), 0);
	assert_image_equals_raw(l->img, l->raw);
	assert_int_equal(block_open(l->img, "qcow2", BLOCK_OPEN_RDWR, &l->bs), 0);
}

static void life_write(struct life *l, uint64_t c, uint64_t seed, bool compressed)
{
	uint64_t off = c * l->cs, len = l->size - off < l->cs ? l->size - off : l->cs;
	fill_compressible(l->buf, len, seed);
	if (compressed) {
		assert_int_equal(block_pwrite_compressed(l->bs, off, l->buf, len), 0);
		memcpy(l->shadow + off, l->buf, len);
	} else { /* a partial plain write: copy-on-write out of the packed cluster */
		uint64_t a = len / 4, n = len / 3;
		assert_int_equal(block_pwrite(l->bs, off + a, l->buf, n), 0);
		memcpy(l->shadow + off + a, l->buf, n);
	}
}

static void life_round(const char *opts, uint64_t cs, bool snapshot)
{
	struct life l = {.cs = cs};
	snprintf(l.img, sizeof(l.img), "%s", test_path("life.qcow2"));
	snprintf(l.raw, sizeof(l.raw), "%s", test_path("life.raw"));
	l.size = 96 * cs + 1024;
	uint64_t n = (l.size + cs - 1) / cs, s = cs;
	struct block_check_result res;
	l.shadow = calloc(1, l.size);
	l.buf = malloc(cs);
	assert_non_null(l.shadow);
	assert_non_null(l.buf);

	assert_int_equal(qcow2_create_opts(l.img, l.size, NULL, NULL, opts), 0);
	assert_int_equal(block_open(l.img, "qcow2", BLOCK_OPEN_RDWR, &l.bs), 0);
	for (uint64_t c = 0; c < n; c++)
		life_write(&l, c, 7 * c + 1, true);
	life_verify(&l, "the first compressed writes");
	/* Packed: far fewer host clusters than guest clusters. */
	assert_int_equal(block_check(l.bs, &res, 0), 0);
	assert_true(res.compressed_clusters >= n * 3 / 4);

	/* Overwrite half the clusters: compressed again, or partly with plain data. */
	for (uint64_t c = 0; c < n; c += 2)
		life_write(&l, c, test_xorshift(&s), c % 4 == 0);
	life_verify(&l, "overwriting half");

	/* Discard a few runs, within and across packed host clusters. */
	for (uint64_t c = 1; c + 3 < n; c += 11) {
		assert_int_equal(block_discard(l.bs, c * cs, 3 * cs), 0);
		memset(l.shadow + c * cs, 0, 3 * cs);
	}
	life_verify(&l, "discards");

	if (!snapshot) { /* narrow refcounts: packed clusters are already at the maximum */
		assert_int_equal(block_snapshot_create(l.bs, "s1"), -ERANGE);
		life_verify(&l, "a refused snapshot");
		goto rewrite;
	}
	/* A snapshot shares every packed cluster (refcount 2); rewrite over it. */
	int ret = block_snapshot_create(l.bs, "s1");
	if (ret < 0)
		print_message("snapshot: %s\n", error_msg());
	assert_int_equal(ret, 0);
	uint8_t *snap = malloc(l.size);
	assert_non_null(snap);
	memcpy(snap, l.shadow, l.size);
	for (uint64_t c = 0; c < n; c += 3)
		life_write(&l, c, test_xorshift(&s), c % 2 == 0);
	life_verify(&l, "writes after a snapshot");
	test_file_write(test_path("snap.raw"), snap, l.size);
	block_close(l.bs);
	assert_int_equal(test_run("qemu-img convert -l snapshot.name=s1 -O raw '%s' '%s'", l.img,
				  test_path("snapfrom.raw")),
			 0);
	assert_int_equal(
	    test_run("cmp -s '%s' '%s'", test_path("snap.raw"), test_path("snapfrom.raw")), 0);
	assert_int_equal(block_open(l.img, "qcow2", BLOCK_OPEN_RDWR, &l.bs), 0);
	free(snap);

rewrite:
	/* Rewrite everything compressed, drop the snapshot, discard the rest. */
	for (uint64_t c = 0; c < n; c++)
		life_write(&l, c, test_xorshift(&s), true);
	life_verify(&l, "rewriting all");
	if (snapshot) {
		assert_int_equal(block_snapshot_delete(l.bs, "s1"), 0);
		life_verify(&l, "deleting the snapshot");
	}
	assert_int_equal(block_discard(l.bs, 0, l.size), 0);
	memset(l.shadow, 0, l.size);
	for (uint64_t c = 5; c < n; c += 7)
		life_write(&l, c, test_xorshift(&s), true);
	life_verify(&l, "discarding all and writing again");

	/* Our own check agrees, and a full repair has nothing to do. */
	assert_int_equal(block_check(l.bs, &res, BLOCK_CHECK_FIX_LEAKS | BLOCK_CHECK_FIX_ERRORS),
			 0);
	assert_int_equal(res.corruptions, 0);
	assert_int_equal(res.leaks, 0);
	life_verify(&l, "check -r all");
	block_close(l.bs);
	free(l.shadow);
	free(l.buf);
}

static void test_overwrite_discard_snapshot(void **state)
{
	(void)state;
	life_round("cluster_size=64k,compression_type=zlib", 64 * KiB, true);
	life_round("cluster_size=4k,compression_type=zstd", 4 * KiB, true);
	life_round("cluster_size=4k,compat=0.10", 4 * KiB, true);
	life_round("cluster_size=4k,refcount_bits=1", 4 * KiB, false);
	/* As with qemu, streams fill a host cluster up to the refcount maximum (3 here), so a
	 * snapshot of it would overflow: no snapshot in this round. */
	life_round("cluster_size=512,refcount_bits=2", 512, false);
}

/* The host cluster holding the cursor is freed (its only stream overwritten) and reused for plain
 * data: the next compressed stream must not be appended into it. */
static void test_freed_cursor_cluster(void **state)
{
	(void)state;
	const char *img = test_path("cur.qcow2");
	uint64_t cs = 4 * KiB, size = 64 * cs;
	uint8_t *shadow = calloc(1, size), *buf = malloc(cs);
	struct block_device *bs;

	assert_non_null(shadow);
	assert_non_null(buf);
	assert_int_equal(qcow2_create_opts(img, size, NULL, NULL, "cluster_size=4k"), 0);
	assert_int_equal(block_open(img, "qcow2", BLOCK_OPEN_RDWR, &bs), 0);
	memset(buf, 'a', cs);
	assert_int_equal(block_pwrite_compressed(bs, 0, buf, cs), 0);
	/* Overwritten in place by plain data: the packed cluster's refcount drops to 0. */
	memset(buf, 'b', cs);
	assert_int_equal(block_pwrite(bs, 0, buf, cs), 0);
	memcpy(shadow, buf, cs);
	assert_int_equal(block_flush(bs), 0);
	for (uint64_t c = 1; c < 8; c++) { /* plain clusters reuse the freed one */
		memset(buf, (int)('c' + c), cs);
		assert_int_equal(block_pwrite(bs, c * cs, buf, cs), 0);
		memcpy(shadow + c * cs, buf, cs);
	}
	for (uint64_t c = 8; c < 16; c++) {
		fill_compressible(buf, cs, c);
		assert_int_equal(block_pwrite_compressed(bs, c * cs, buf, cs), 0);
		memcpy(shadow + c * cs, buf, cs);
	}
	block_close(bs);
	test_file_write(test_path("cur.raw"), shadow, size);
	assert_int_equal(qemu_check(img), 0);
	assert_int_equal(test_run("qemu-img compare -q '%s' '%s'", img, test_path("cur.raw")), 0);
	free(shadow);
	free(buf);
}

/* Several threads write compressed clusters into one image at once (the cursor is shared). */
struct tw {
	struct block_device *bs;
	uint64_t cs, first, step, n;
	uint8_t *shadow;
	int ret;
};

static void *thread_writer(void *arg)
{
	struct tw *t = arg;
	uint8_t *buf = malloc(t->cs);
	if (!buf) {
		t->ret = -ENOMEM;
		return NULL;
	}
	for (uint64_t c = t->first; c < t->n && t->ret == 0; c += t->step) {
		fill_compressible(buf, t->cs, 31 * c + 5);
		t->ret = block_pwrite_compressed(t->bs, c * t->cs, buf, t->cs);
		memcpy(t->shadow + c * t->cs, buf, t->cs);
	}
	free(buf);
	return NULL;
}

static void test_threads(void **state)
{
	(void)state;
	const char *img = test_path("thr.qcow2");
	uint64_t cs = 4 * KiB, n = 512, size = n * cs;
	uint8_t *shadow = calloc(1, size);
	struct block_device *bs;
	pthread_t th[4];
	struct tw t[4];

	assert_non_null(shadow);
	assert_int_equal(qcow2_create_opts(img, size, NULL, NULL, "cluster_size=4k"), 0);
	assert_int_equal(block_open(img, "qcow2", BLOCK_OPEN_RDWR, &bs), 0);
	for (int i = 0; i < 4; i++) {
		t[i] = (struct tw){
		    .bs = bs, .cs = cs, .first = (uint64_t)i, .step = 4, .n = n, .shadow = shadow};
		assert_int_equal(pthread_create(&th[i], NULL, thread_writer, &t[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(t[i].ret, 0);
	}
	block_close(bs);
	test_file_write(test_path("thr.raw"), shadow, size);
	assert_int_equal(qemu_check(img), 0);
	assert_int_equal(test_run("qemu-img compare -q '%s' '%s'", img, test_path("thr.raw")), 0);
	free(shadow);
}

/* ---- crash safety: SIGKILL at a deterministic operation leaves at most leaks ---- */

enum { K_CLUSTERS = 192, K_OPS = 400 };

struct kop {
	uint64_t kind, c, seed; /* kind: < 10 compressed write, < 12 plain, < 14 discard, flush */
};

static void kop_next(uint64_t *s, struct kop *o)
{
	o->kind = test_xorshift(s) % 16;
	o->c = test_xorshift(s) % K_CLUSTERS;
	o->seed = test_xorshift(s);
}

/* Applies op `o` to the shadow (NULL: only marks the clusters it touches in `unsure`). */
static void kop_apply(const struct kop *o, uint64_t cs, uint8_t *shadow, uint8_t *unsure,
		      uint8_t *buf)
{
	uint64_t n = o->kind >= 12 && o->kind < 14 && o->c + 1 < K_CLUSTERS ? 2 : 1;
	if (o->kind >= 14)
		return;
	if (!shadow) {
		memset(unsure + o->c, 1, n);
		return;
	}
	fill_compressible(buf, cs, o->seed);
	if (o->kind < 10)
		memcpy(shadow + o->c * cs, buf, cs);
	else if (o->kind < 12)
		memcpy(shadow + o->c * cs + 512, buf, cs / 2);
	else
		memset(shadow + o->c * cs, 0, n * cs);
}

static void kill_child(const char *img, const char *log, uint64_t cs, uint64_t seed, int kill_at)
{
	struct block_device *bs;
	uint8_t *buf = malloc(cs);
	uint64_t s = seed;
	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (!buf || fd < 0 || block_open(img, "qcow2", BLOCK_OPEN_RDWR, &bs) < 0)
		_exit(2);
	for (int i = 0; i < K_OPS; i++) {
		struct kop o;
		int ret = 0;
		kop_next(&s, &o);
		if (i == kill_at)
			kill(getpid(), SIGKILL);
		fill_compressible(buf, cs, o.seed);
		if (o.kind < 10) {
			ret = block_pwrite_compressed(bs, o.c * cs, buf, cs);
		} else if (o.kind < 12) {
			ret = block_pwrite(bs, o.c * cs + 512, buf, cs / 2);
		} else if (o.kind < 14) {
			ret = block_discard(bs, o.c * cs, (o.c + 1 < K_CLUSTERS ? 2 : 1) * cs);
		} else {
			ret = block_flush(bs);
			if (ret == 0 && (write(fd, &i, sizeof(i)) != sizeof(i) || fsync(fd) < 0))
				_exit(3);
		}
		if (ret < 0)
			_exit(4);
	}
	_exit(0);
}

/* Index of the last flush the writer logged, or -1. */
static int kill_last_flush(const char *log)
{
	int fd = open(log, O_RDONLY), v = -1, x;
	if (fd < 0)
		return -1;
	while (read(fd, &x, sizeof(x)) == sizeof(x))
		v = x;
	close(fd);
	return v;
}

static void test_kill9(void **state)
{
	(void)state;
	char img[512], log[512], raw[512]; /* copies: test_path() reuses its buffers */
	uint64_t s = 99;
	static const struct {
		const char *opts;
		uint64_t cs;
	} cfg[] = {{"cluster_size=4k", 4096}, {"cluster_size=64k,compression_type=zstd", 65536}};

	snprintf(img, sizeof(img), "%s", test_path("kill.qcow2"));
	snprintf(log, sizeof(log), "%s", test_path("kill.log"));
	snprintf(raw, sizeof(raw), "%s", test_path("kill.raw"));
	for (int i = 0; i < 8; i++) {
		uint64_t cs = cfg[i % 2].cs, size = K_CLUSTERS * cs, ks = 500 + (uint64_t)i;
		int kill_at = 10 + (int)(test_xorshift(&s) % (K_OPS - 10)), st;
		assert_int_equal(qcow2_create_opts(img, size, NULL, NULL, cfg[i % 2].opts), 0);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			kill_child(img, log, cs, ks, kill_at);
		assert_int_equal(waitpid(pid, &st, 0), pid);
		if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) {
			print_message("writer exited with status %d before the kill\n",
				      WIFEXITED(st) ? WEXITSTATUS(st) : -1);
			fail();
		}
		int rc = qemu_check(img), lf = kill_last_flush(log);
		print_message("kill at %d, last flush %d: qemu-img check exit %d\n", kill_at, lf,
			      rc);
		if (rc != 0 && rc != 3) { /* leaks are harmless; corruption is not */
			test_run("qemu-img check '%s'", img);
			fail();
		}
		/* Everything up to the last flush reads back; clusters touched later are either. */
		uint8_t *shadow = calloc(1, size), *unsure = calloc(1, K_CLUSTERS),
			*buf = malloc(cs), *got = NULL;
		size_t len;
		assert_true(shadow && unsure && buf);
		uint64_t r = ks;
		for (int j = 0; j < kill_at; j++) {
			struct kop o;
			kop_next(&r, &o);
			kop_apply(&o, cs, j <= lf ? shadow : NULL, unsure, buf);
		}
		unlink(raw);
		assert_int_equal(test_run("qemu-img convert -O raw '%s' '%s'", img, raw), 0);
		got = read_file(raw, &len);
		assert_int_equal(len, size);
		for (uint64_t c = 0; c < K_CLUSTERS; c++) {
			if (!unsure[c] && memcmp(got + c * cs, shadow + c * cs, cs)) {
				print_message("kill at %d: cluster %llu differs\n", kill_at,
					      (unsigned long long)c);
				fail();
			}
		}
		/* Leaks, if any, are repaired by our check and the image stays usable. */
		struct block_device *bs;
		struct block_check_result res;
		assert_int_equal(block_open(img, "qcow2", BLOCK_OPEN_RDWR, &bs), 0);
		assert_int_equal(block_check(bs, &res, BLOCK_CHECK_FIX_LEAKS), 0);
		assert_int_equal(res.corruptions, 0);
		block_close(bs);
		assert_int_equal(qemu_check(img), 0);
		assert_image_equals_raw(img, raw);
		free(shadow);
		free(unsure);
		free(buf);
		free(got);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_convert_like_qemu),
	    cmocka_unit_test(test_overwrite_discard_snapshot),
	    cmocka_unit_test(test_freed_cursor_cluster),
	    cmocka_unit_test(test_threads),
	    cmocka_unit_test(test_kill9),
	};
	return cmocka_run_group_tests(tests, setup, test_tmpdir_teardown);
}
