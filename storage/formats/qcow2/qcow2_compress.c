/* qcow2: compressed clusters (raw deflate via zlib, or zstd), read and write.
 *
 * A compressed cluster is described by its host byte offset and a count of 512-byte sectors; the
 * stored stream may be followed by unrelated bytes, so decompression stops when the cluster is
 * full. New streams are packed back to back at byte granularity into shared host clusters (see
 * compressed_alloc); the cursor lives in the open image's state, so a reopen starts a new cluster.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "storage/formats/qcow2/qcow2.h"

static int inflate_raw(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len)
{
	z_stream z;
	int ret;

	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, -12) != Z_OK)
		return -ENOMEM;
	z.next_in = (Bytef *)src;
	z.avail_in = (uInt)src_len;
	z.next_out = dst;
	z.avail_out = (uInt)dst_len;
	ret = inflate(&z, Z_FINISH);
	inflateEnd(&z);
	/* Stream end, or the output filled with input to spare: both are a complete cluster. */
	if ((ret == Z_STREAM_END || ret == Z_BUF_ERROR || ret == Z_OK) && z.avail_out == 0)
		return 0;
	return -EIO;
}

static int unzstd(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len)
{
	ZSTD_DCtx *d = ZSTD_createDCtx();
	ZSTD_inBuffer in = {src, src_len, 0};
	ZSTD_outBuffer out = {dst, dst_len, 0};
	int ret = -EIO;

	if (!d)
		return -ENOMEM;
	while (out.pos < out.size) {
		size_t r = ZSTD_decompressStream(d, &out, &in);
		if (ZSTD_isError(r))
			break;
		if (r == 0 && out.pos < out.size)
			break; /* frame ended before the cluster was full */
		if (in.pos == in.size && out.pos < out.size)
			break;
	}
	if (out.pos == out.size)
		ret = 0;
	ZSTD_freeDCtx(d);
	return ret;
}

int qcow2_decompress(const struct qcow2_state *s, const uint8_t *src, size_t src_len, uint8_t *dst,
		     size_t dst_len)
{
	if (s->compression_type == QCOW2_COMPRESS_ZSTD)
		return unzstd(src, src_len, dst, dst_len);
	return inflate_raw(src, src_len, dst, dst_len);
}

ssize_t qcow2_compress(const struct qcow2_state *s, const uint8_t *src, size_t src_len,
		       uint8_t *dst, size_t max)
{
	if (s->compression_type == QCOW2_COMPRESS_ZSTD) {
		size_t r = ZSTD_compress(dst, max, src, src_len, ZSTD_CLEVEL_DEFAULT);
		if (ZSTD_isError(r))
			return -ENOSPC;
		return (ssize_t)r;
	}
	z_stream z;
	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	z.next_in = (Bytef *)src;
	z.avail_in = (uInt)src_len;
	z.next_out = dst;
	z.avail_out = (uInt)max;
	int ret = deflate(&z, Z_FINISH);
	ssize_t out = (ssize_t)(max - z.avail_out);
	deflateEnd(&z);
	return ret == Z_STREAM_END ? out : -ENOSPC;
}

int qcow2_read_compressed(struct block_device *bs, uint64_t entry, uint8_t *cluster)
{
	struct qcow2_state *s = qcow2_state(bs);
	uint64_t off = entry & s->cluster_offset_mask;
	uint64_t sectors = ((entry >> s->csize_shift) & s->csize_mask) + 1;
	size_t len = (size_t)(sectors * 512 - (off & 511));
	uint8_t *src = malloc(len);
	int ret;

	if (!src)
		return -ENOMEM;
	ret = host_file_pread(&bs->file, off, src, len);
	if (ret < 0) {
		free(src);
		return error_set(ret, "%s: cannot read compressed cluster at %#llx", bs->filename,
				 (unsigned long long)off);
	}
	ret = qcow2_decompress(s, src, len, cluster, s->cluster_size);
	free(src);
	if (ret < 0)
		return error_set(-EIO, "%s: corrupt compressed cluster at %#llx", bs->filename,
				 (unsigned long long)off);
	return 0;
}

/* Place a compressed stream of `len` bytes: right after the previous one while its host cluster
 * can take another reference, straddling into the next host cluster when the allocator hands out
 * the adjacent one (as qemu does). Every host cluster the stream touches gets one reference, so
 * the refcount of a shared host cluster is the number of streams in it. Lock held. */
static int compressed_alloc(struct block_device *bs, uint64_t len, uint64_t *out)
{
	struct qcow2_state *s = qcow2_state(bs);
	uint64_t cs = s->cluster_size, off = s->compress_next, host, rc = 0, room = 0;
	int ret;

	if (off) {
		ret = qcow2_refcount_get(bs, off >> s->cluster_bits, &rc);
		if (ret < 0)
			return ret;
		/* rc == 0 cannot happen (a freed cluster resets the cursor); never trust it. */
		if (rc == 0 || rc >= s->refcount_max)
			off = 0;
		room = off ? cs - (off & (cs - 1)) : 0;
	}
	s->compress_next = 0;
	if (off && len <= room) {
		ret = qcow2_refcount_update(bs, off >> s->cluster_bits, 1);
		if (ret < 0)
			return ret;
	} else {
		ret = qcow2_alloc_clusters(bs, 1, &host);
		if (ret < 0)
			return ret;
		if (off && host == off + room) {
			ret = qcow2_refcount_update(bs, off >> s->cluster_bits, 1);
			if (ret < 0) {
				qcow2_free_now(bs, host, cs);
				return ret;
			}
		} else {
			off = host;
		}
	}
	if (off + len > s->cluster_offset_mask) {
		qcow2_free_deferred(bs, off & ~511ull, len + (off & 511));
		return error_set(-ENOSPC, "%s: compressed cluster beyond the addressable range",
				 bs->filename);
	}
	if ((off + len) & (cs - 1))
		s->compress_next = off + len;
	*out = off;
	return 0;
}

/* Write one whole guest cluster (or the disk's tail) compressed; falls back to a plain write when
 * the data does not compress. Compression runs outside the lock so that several writers
 * (`convert -m N`) compress in parallel; placement and the stream write are serialised. */
int qcow2_pwrite_compressed(struct block_device *bs, uint64_t offset, const void *buf, size_t len)
{
	struct qcow2_state *s = qcow2_state(bs);
	uint64_t cs = s->cluster_size, host = 0, old = 0;
	uint8_t *in = NULL, *out = NULL;
	ssize_t clen;
	int ret = qcow2_data_file_refuse(bs, "compressed clusters");

	if (ret < 0)
		return ret;
	if (s->read_only)
		return error_set(-EROFS, "%s: image is read-only", bs->filename);
	if ((offset & (cs - 1)) || len == 0 || len > cs || (len < cs && offset + len != bs->size) ||
	    offset + len > bs->size)
		return error_set(-EINVAL, "%s: compressed write must cover one whole cluster",
				 bs->filename);
	in = calloc(1, cs);
	out = malloc(cs);
	if (!in || !out) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(in, buf, len);
	clen = qcow2_compress(s, in, cs, out, cs - 1);
	if (clen < 0) {
		struct iovec v = {.iov_base = (void *)buf, .iov_len = len};
		ret = qcow2_pwritev(bs, offset, &v, 1);
		goto out;
	}
	pthread_mutex_lock(&s->lock);
	qcow2_wait_allocation(s, offset >> s->cluster_bits);
	ret = compressed_alloc(bs, (uint64_t)clen, &host);
	if (ret == 0) {
		/* Exactly the stream: the bytes around it belong to neighbouring streams. */
		ret = host_file_pwrite(&bs->file, host, out, (size_t)clen);
		if (ret < 0) {
			ret = error_set(ret, "%s: write error at %#llx", bs->filename,
					(unsigned long long)host);
			s->compress_next = 0;
			qcow2_free_deferred(bs, host & ~511ull, (uint64_t)clen + (host & 511));
		}
	}
	if (ret == 0)
		ret = qcow2_l2_lookup(bs, offset, &old);
	if (ret == 0) {
		/* The sector count covers every 512-byte sector the stream touches, minus one. */
		uint64_t nsect = ((host + (uint64_t)clen - 1) >> 9) - (host >> 9);
		ret = qcow2_l2_set(bs, offset,
				   QCOW2_OFLAG_COMPRESSED | host | (nsect << s->csize_shift));
	}
	if (ret == 0)
		ret = qcow2_entry_free(bs, old);
	pthread_mutex_unlock(&s->lock);
out:
	free(in);
	free(out);
	return ret;
}
