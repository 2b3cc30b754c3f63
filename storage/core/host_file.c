/* Host files under disk images: the only code that issues system calls on image files.
 *
 * Everything is positional (preadv/pwritev/fallocate/lseek with SEEK_DATA) so any number of threads
 * may use one host_file at once.  With O_DIRECT the kernel wants offset, length and buffer address
 * aligned to the device's logical block; requests that are not go through an aligned bounce buffer
 * (read-modify-write for writes).  A read-modify-write can lose a concurrent write to the other
 * bytes of the same block, so bounce writes take a stripe lock exclusively while aligned direct
 * writes take it shared.  Reads past end-of-file return zeroes, which is what every format wants
 * for a file that was not (yet) extended.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/core/host_file.h"

#define HOST_FILE_MAX_ALIGN 4096
#define HOST_FILE_BOUNCE_MAX (1u << 20) /* bounce buffers never exceed 1 MiB per step */
#define HOST_FILE_STACK_IOV 32
#define HOST_FILE_STRIPES 64

static pthread_rwlock_t host_file_stripes[HOST_FILE_STRIPES];
static pthread_once_t host_file_stripes_once = PTHREAD_ONCE_INIT;

static void host_file_stripes_init(void)
{
	for (int i = 0; i < HOST_FILE_STRIPES; i++)
		pthread_rwlock_init(&host_file_stripes[i], NULL);
}

static pthread_rwlock_t *host_file_stripe(const struct host_file *f)
{
	pthread_once(&host_file_stripes_once, host_file_stripes_init);
	return &host_file_stripes[(unsigned)f->fd % HOST_FILE_STRIPES];
}

/* O_DIRECT alignment: the kernel says so where it can (statx STATX_DIOALIGN on regular files since
 * Linux 6.1, the logical sector size of a block device); otherwise a 512-byte read at offset 0
 * works on 512-byte-sector devices only.  A short file cannot tell (the kernel answers 0 at EOF
 * before checking alignment), so it gets the safe 4096. */
static uint32_t host_file_detect_align(int fd)
{
	struct statx stx;
	struct stat st;
	void *buf;
	uint32_t align = HOST_FILE_MAX_ALIGN;
	int sector;

	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align) {
		uint32_t a = stx.stx_dio_offset_align > stx.stx_dio_mem_align
				 ? stx.stx_dio_offset_align
				 : stx.stx_dio_mem_align;
		if (a <= HOST_FILE_MAX_ALIGN && (a & (a - 1)) == 0)
			return a;
	}
	if (fstat(fd, &st) < 0)
		return HOST_FILE_MAX_ALIGN;
	if (S_ISBLK(st.st_mode) && ioctl(fd, BLKSSZGET, &sector) == 0 && sector > 0 &&
	    sector <= HOST_FILE_MAX_ALIGN && (sector & (sector - 1)) == 0)
		return (uint32_t)sector;
	if (S_ISREG(st.st_mode) && st.st_size < HOST_FILE_MAX_ALIGN)
		return HOST_FILE_MAX_ALIGN;
	if (posix_memalign(&buf, HOST_FILE_MAX_ALIGN, HOST_FILE_MAX_ALIGN))
		return HOST_FILE_MAX_ALIGN;
	for (uint32_t a = 512; a <= HOST_FILE_MAX_ALIGN; a *= 8) {
		ssize_t r;
		do
			r = pread(fd, buf, a, 0);
		while (r < 0 && errno == EINTR);
		if (r >= 0) {
			align = a;
			break;
		}
	}
	free(buf);
	return align;
}

/* Image files come from command lines and from names recorded in other images (backing files,
 * extents), so they may be anything.  Opening a FIFO blocks until a writer appears and opening a
 * tty could make it our controlling terminal: open non-blocking and without a ctty, refuse
 * whatever is not a regular file or a block device, then make I/O blocking again.  -ENODEV says
 * "not a disk" (a UNIX socket cannot be opened at all: ENXIO, reported the same way). */
int host_file_open(struct host_file *f, const char *path, int flags)
{
	int oflags = O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
	struct stat st;
	int fd, fl;

	memset(f, 0, sizeof(*f));
	f->fd = -1;
	oflags |= (flags & (HOST_FILE_RDWR | HOST_FILE_CREATE)) ? O_RDWR : O_RDONLY;
	if (flags & HOST_FILE_CREATE)
		oflags |= O_CREAT | O_EXCL;
	if (flags & HOST_FILE_DIRECT)
		oflags |= O_DIRECT;
	if (flags & HOST_FILE_DSYNC)
		oflags |= O_DSYNC;

	fd = open(path, oflags, 0644);
	if (fd < 0) {
		int err = -errno;
		if (err == -ENXIO && stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
			return -ENODEV;
		return err;
	}
	if (fstat(fd, &st) < 0)
		goto fail_errno;
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		close(fd);
		return S_ISDIR(st.st_mode) ? -EISDIR : -ENODEV;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
		goto fail_errno;
	f->fd = fd;
	f->read_only = !(oflags & O_RDWR);
	f->cache_unsafe = flags & HOST_FILE_UNSAFE;
	f->direct = flags & HOST_FILE_DIRECT;
	f->align = f->direct ? host_file_detect_align(fd) : 1;
	return 0;

fail_errno:;
	int err = -errno;
	close(fd);
	return err;
}

void host_file_close(struct host_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

/* Copy iov into a scratch array we may advance; *heap is set when it had to be allocated. */
static struct iovec *host_file_iov_copy(const struct iovec *iov, int iovcnt, struct iovec *stack,
					struct iovec **heap)
{
	struct iovec *v = stack;

	*heap = NULL;
	if (iovcnt > HOST_FILE_STACK_IOV) {
		v = malloc(sizeof(*v) * iovcnt);
		if (!v)
			return NULL;
		*heap = v;
	}
	memcpy(v, iov, sizeof(*v) * iovcnt);
	return v;
}

static void host_file_iov_advance(struct iovec **v, int *cnt, size_t n)
{
	while (n && *cnt) {
		if (n < (*v)->iov_len) {
			(*v)->iov_base = (char *)(*v)->iov_base + n;
			(*v)->iov_len -= n;
			return;
		}
		n -= (*v)->iov_len;
		(*v)++;
		(*cnt)--;
	}
	while (*cnt && (*v)->iov_len == 0) {
		(*v)++;
		(*cnt)--;
	}
}

static void host_file_iov_zero(struct iovec *v, int cnt)
{
	for (int i = 0; i < cnt; i++)
		memset(v[i].iov_base, 0, v[i].iov_len);
}

/* The plain loop: retry EINTR and short transfers; a read hitting EOF zero-fills the rest. */
static int host_file_rw_loop(int fd, uint64_t offset, const struct iovec *iov, int iovcnt,
			     bool write)
{
	struct iovec stack[HOST_FILE_STACK_IOV], *heap, *v;
	int cnt = iovcnt, ret = 0;

	if (iovcnt <= 0)
		return iovcnt < 0 ? -EINVAL : 0;
	v = host_file_iov_copy(iov, iovcnt, stack, &heap);
	if (!v)
		return -ENOMEM;
	host_file_iov_advance(&v, &cnt, 0);
	while (cnt > 0) {
		int n = cnt > IOV_MAX ? IOV_MAX : cnt;
		ssize_t r =
		    write ? pwritev(fd, v, n, (off_t)offset) : preadv(fd, v, n, (off_t)offset);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		if (r == 0) {
			if (write) {
				ret = -EIO;
				break;
			}
			host_file_iov_zero(v, cnt);
			break;
		}
		offset += (uint64_t)r;
		host_file_iov_advance(&v, &cnt, (size_t)r);
	}
	free(heap);
	return ret;
}

static bool host_file_aligned(const struct host_file *f, uint64_t offset, const struct iovec *iov,
			      int iovcnt)
{
	uint64_t mask = f->align - 1;

	if (offset & mask)
		return false;
	for (int i = 0; i < iovcnt; i++)
		if (((uintptr_t)iov[i].iov_base | iov[i].iov_len) & mask)
			return false;
	return true;
}

static size_t host_file_iov_size(const struct iovec *iov, int iovcnt)
{
	size_t n = 0;
	for (int i = 0; i < iovcnt; i++)
		n += iov[i].iov_len;
	return n;
}

/* Copy between iov (starting at byte `skip`) and a flat buffer. */
static void host_file_iov_copy_data(const struct iovec *iov, int iovcnt, size_t skip, void *buf,
				    size_t len, bool to_buf)
{
	char *p = buf;
	for (int i = 0; i < iovcnt && len; i++) {
		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		size_t n = iov[i].iov_len - skip;
		if (n > len)
			n = len;
		if (to_buf)
			memcpy(p, (char *)iov[i].iov_base + skip, n);
		else
			memcpy((char *)iov[i].iov_base + skip, p, n);
		p += n;
		len -= n;
		skip = 0;
	}
}

static int host_file_flat(int fd, uint64_t offset, void *buf, size_t len, bool write)
{
	struct iovec v = {buf, len};
	return host_file_rw_loop(fd, offset, &v, 1, write);
}

/* One step of an unaligned O_DIRECT transfer at pos with `left` bytes to go: its next n bytes (at
 * most a bounce buffer's worth) lie at head in the aligned span [start, start + span). */
struct host_file_step {
	uint64_t start;
	size_t head, n, span;
};

static struct host_file_step host_file_bounce_step(uint64_t a, uint64_t pos, size_t left)
{
	struct host_file_step st = {.start = pos & ~(a - 1)};

	st.head = pos - st.start;
	st.n = left < HOST_FILE_BOUNCE_MAX - st.head ? left : HOST_FILE_BOUNCE_MAX - st.head;
	st.span = (st.head + st.n + a - 1) & ~(a - 1);
	return st;
}

/* Unaligned O_DIRECT read: read the covering aligned blocks and copy out, step by step. */
static int host_file_bounce_read(struct host_file *f, uint64_t offset, const struct iovec *iov,
				 int iovcnt, size_t len)
{
	uint64_t a = f->align;
	void *buf;
	size_t done = 0;
	int ret = 0;

	if (posix_memalign(&buf, HOST_FILE_MAX_ALIGN, HOST_FILE_BOUNCE_MAX))
		return -ENOMEM;
	while (done < len) {
		struct host_file_step st = host_file_bounce_step(a, offset + done, len - done);
		uint64_t start = st.start;
		size_t head = st.head, n = st.n, span = st.span;
		ret = host_file_flat(f->fd, start, buf, span, false);
		if (ret < 0)
			break;
		host_file_iov_copy_data(iov, iovcnt, done, (char *)buf + head, n, false);
		done += n;
	}
	free(buf);
	return ret;
}

/* Unaligned O_DIRECT write: read-modify-write of the covering aligned blocks.  Writing whole blocks
 * may push the file end past offset+len; the size is put back so the file grows exactly as a
 * buffered write would make it. */
static int host_file_bounce_write(struct host_file *f, uint64_t offset, const struct iovec *iov,
				  int iovcnt, size_t len)
{
	uint64_t a = f->align, old_size;
	void *buf;
	size_t done = 0;
	int ret;

	ret = host_file_size(f, &old_size);
	if (ret < 0)
		return ret;
	if (posix_memalign(&buf, HOST_FILE_MAX_ALIGN, HOST_FILE_BOUNCE_MAX))
		return -ENOMEM;
	while (done < len) {
		struct host_file_step st = host_file_bounce_step(a, offset + done, len - done);
		uint64_t start = st.start;
		size_t head = st.head, n = st.n, span = st.span;
		/* Only the partial first and last blocks need their old contents. */
		if (head) {
			ret = host_file_flat(f->fd, start, buf, a, false);
			if (ret < 0)
				break;
		}
		if ((head + n) & (a - 1) && (span > a || !head)) {
			ret = host_file_flat(f->fd, start + span - a, (char *)buf + span - a, a,
					     false);
			if (ret < 0)
				break;
		}
		host_file_iov_copy_data(iov, iovcnt, done, (char *)buf + head, n, true);
		ret = host_file_flat(f->fd, start, buf, span, true);
		if (ret < 0)
			break;
		done += n;
	}
	free(buf);
	if (ret == 0) {
		uint64_t want = offset + len > old_size ? offset + len : old_size;
		uint64_t now;
		ret = host_file_size(f, &now);
		if (ret == 0 && now > want && ftruncate(f->fd, (off_t)want) < 0)
			ret = -errno;
	}
	return ret;
}

int host_file_preadv(struct host_file *f, uint64_t offset, const struct iovec *iov, int iovcnt)
{
	if (offset > INT64_MAX)
		return -EINVAL;
	if (!f->direct || host_file_aligned(f, offset, iov, iovcnt))
		return host_file_rw_loop(f->fd, offset, iov, iovcnt, false);
	return host_file_bounce_read(f, offset, iov, iovcnt, host_file_iov_size(iov, iovcnt));
}

int host_file_pwritev(struct host_file *f, uint64_t offset, const struct iovec *iov, int iovcnt)
{
	pthread_rwlock_t *lock;
	int ret;

	if (f->read_only)
		return -EBADF;
	if (offset > INT64_MAX)
		return -EINVAL;
	if (!f->direct)
		return host_file_rw_loop(f->fd, offset, iov, iovcnt, true);
	lock = host_file_stripe(f);
	if (host_file_aligned(f, offset, iov, iovcnt)) {
		pthread_rwlock_rdlock(lock);
		ret = host_file_rw_loop(f->fd, offset, iov, iovcnt, true);
	} else {
		pthread_rwlock_wrlock(lock);
		ret =
		    host_file_bounce_write(f, offset, iov, iovcnt, host_file_iov_size(iov, iovcnt));
	}
	pthread_rwlock_unlock(lock);
	return ret;
}

int host_file_pread(struct host_file *f, uint64_t offset, void *buf, size_t len)
{
	struct iovec v = {buf, len};
	return host_file_preadv(f, offset, &v, 1);
}

int host_file_pwrite(struct host_file *f, uint64_t offset, const void *buf, size_t len)
{
	struct iovec v = {(void *)buf, len};
	return host_file_pwritev(f, offset, &v, 1);
}

int host_file_flush(struct host_file *f)
{
	if (f->cache_unsafe || f->read_only)
		return 0;
	while (fdatasync(f->fd) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

int host_file_size(struct host_file *f, uint64_t *size)
{
	struct stat st;

	if (fstat(f->fd, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode)) {
		uint64_t bytes;
		if (ioctl(f->fd, BLKGETSIZE64, &bytes) < 0)
			return -errno;
		*size = bytes;
		return 0;
	}
	*size = (uint64_t)st.st_size;
	return 0;
}

int host_file_allocated(struct host_file *f, uint64_t *bytes)
{
	struct stat st;

	if (fstat(f->fd, &st) < 0)
		return -errno;
	*bytes = (uint64_t)st.st_blocks * 512;
	return 0;
}

int host_file_truncate(struct host_file *f, uint64_t size)
{
	if (f->read_only)
		return -EBADF;
	if (size > INT64_MAX)
		return -EFBIG;
	while (ftruncate(f->fd, (off_t)size) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

static int host_file_fallocate(struct host_file *f, int mode, uint64_t offset, uint64_t len)
{
	if (f->read_only)
		return -EBADF;
	if (offset > INT64_MAX || len > INT64_MAX - offset)
		return -EINVAL;
	if (len == 0)
		return 0;
	while (fallocate(f->fd, mode, (off_t)offset, (off_t)len) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

int host_file_allocate(struct host_file *f, uint64_t offset, uint64_t len)
{
	return host_file_fallocate(f, FALLOC_FL_KEEP_SIZE, offset, len);
}

static bool host_file_unsupported(int err)
{
	return err == -EOPNOTSUPP || err == -ENOSYS || err == -EINVAL;
}

/* The last-resort fallback of write_zeroes, and what preallocation=full asks for. */
int host_file_fill_zeroes(struct host_file *f, uint64_t offset, uint64_t len)
{
	size_t chunk = len < HOST_FILE_BOUNCE_MAX ? (size_t)len : HOST_FILE_BOUNCE_MAX;
	void *buf;
	int ret = 0;

	if (posix_memalign(&buf, HOST_FILE_MAX_ALIGN, chunk ? chunk : 1))
		return -ENOMEM;
	memset(buf, 0, chunk);
	while (len && ret == 0) {
		size_t n = len < chunk ? (size_t)len : chunk;
		ret = host_file_pwrite(f, offset, buf, n);
		offset += n;
		len -= n;
	}
	free(buf);
	return ret;
}

int host_file_punch_hole(struct host_file *f, uint64_t offset, uint64_t len)
{
	uint64_t size;
	int ret;

	if (f->read_only)
		return -EBADF;
	if (offset > INT64_MAX || len > INT64_MAX - offset)
		return -EINVAL;
	ret = host_file_fallocate(f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, len);
	if (ret == 0 || !host_file_unsupported(ret))
		return ret;
	/* Past the end reads return zeroes already: only the part inside the file matters. */
	ret = host_file_size(f, &size);
	if (ret < 0)
		return ret;
	if (offset >= size)
		return 0;
	if (len > size - offset)
		len = size - offset;
	ret = host_file_fallocate(f, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, offset, len);
	if (ret == 0 || !host_file_unsupported(ret))
		return ret;
	return host_file_fill_zeroes(f, offset, len);
}

int host_file_write_zeroes(struct host_file *f, uint64_t offset, uint64_t len)
{
	uint64_t size;
	int ret;

	if (f->read_only)
		return -EBADF;
	if (offset > INT64_MAX || len > INT64_MAX - offset)
		return -EINVAL;
	/* Like a write of zeroes: the file grows to cover the range. */
	ret = host_file_fallocate(f, FALLOC_FL_ZERO_RANGE, offset, len);
	if (ret == 0 || !host_file_unsupported(ret))
		return ret;
	ret = host_file_size(f, &size);
	if (ret < 0)
		return ret;
	if (offset + len > size) {
		ret = host_file_truncate(f, offset + len);
		if (ret < 0)
			return ret;
		if (offset >= size)
			return 0;
		len = size - offset;
	}
	return host_file_punch_hole(f, offset, len);
}

int host_file_extent(struct host_file *f, uint64_t offset, uint64_t len, bool *is_data,
		     uint64_t *pnum)
{
	off_t data, hole;

	if (len == 0 || offset > INT64_MAX)
		return -EINVAL;
	data = lseek(f->fd, (off_t)offset, SEEK_DATA);
	if (data < 0) {
		if (errno == ENXIO) { /* a hole up to (or we are past) the end of the file */
			*is_data = false;
			*pnum = len;
			return 0;
		}
		/* No SEEK_DATA here (block device, old file system): everything is data. */
		*is_data = true;
		*pnum = len;
		return 0;
	}
	if ((uint64_t)data > offset) {
		*is_data = false;
		*pnum = (uint64_t)data - offset < len ? (uint64_t)data - offset : len;
		return 0;
	}
	hole = lseek(f->fd, (off_t)offset, SEEK_HOLE);
	*is_data = true;
	/* A concurrent punch can make the answers disagree: data is always a safe answer. */
	if (hole < 0 || (uint64_t)hole <= offset)
		*pnum = len;
	else
		*pnum = (uint64_t)hole - offset < len ? (uint64_t)hole - offset : len;
	return 0;
}
