/* qcow2: the image file grows ahead of cluster allocation, and gives the unused tail back at close.
 *
 * Each allocating write at the end of the file would otherwise be a file-extending write, which
 * the host file system serialises (ext4 takes the inode lock exclusively and updates the size for
 * every O_DIRECT write past the end), so parallel allocating writes ran one at a time.  Growing
 * the file in steps (a sparse tail, ftruncate) turns them into writes inside the file.  The tail
 * holds no cluster with a refcount, so the image stays consistent (qemu-img check clean) even if
 * the process dies before the trim; at close the file is cut back to its last referenced cluster,
 * never below its size at open.
 */
#include "storage/formats/qcow2/qcow2.h"

#define QCOW2_GROW_MIN (8ull << 20)
#define QCOW2_GROW_MAX (64ull << 20)

/* The file will receive guest data up to byte `end` (lock held, after allocation).  Only guest
 * data allocations grow it: metadata and compressed streams keep the file's exact end. */
void qcow2_file_grow(struct block_device *bs, uint64_t end)
{
	struct qcow2_state *s = qcow2_state(bs);
	uint64_t size, step, want;

	if (s->read_only || s->no_grow || end <= s->file_len)
		return;
	/* Other writers (a new refcount table) may have extended it: never cut, re-read the size.
	 */
	if (host_file_size(&bs->file, &size) < 0)
		return;
	if (!s->file_len_known) {
		s->open_len = size;
		s->file_len_known = true;
	}
	s->file_len = size;
	if (end <= size)
		return;
	step = size / 8;
	step = step < QCOW2_GROW_MIN   ? QCOW2_GROW_MIN
	       : step > QCOW2_GROW_MAX ? QCOW2_GROW_MAX
				       : step;
	want = (end + step + s->cluster_size - 1) & ~(s->cluster_size - 1);
	/* Without the step the write extends the file itself: slower, still correct. */
	if (host_file_truncate(&bs->file, want) == 0) {
		s->file_len = want;
		s->grown = true;
	}
}

/* Cut the grown tail back to the end of the last cluster with a refcount (close, lock not needed).
 */
void qcow2_file_trim(struct block_device *bs)
{
	struct qcow2_state *s = qcow2_state(bs);
	uint64_t size, rc = 0, c;

	if (!s->grown || s->read_only || host_file_size(&bs->file, &size) < 0)
		return;
	uint64_t floor = (s->open_len + s->cluster_size - 1) >> s->cluster_bits;
	for (c = (size + s->cluster_size - 1) >> s->cluster_bits; c > floor; c--) {
		if (qcow2_refcount_get(bs, c - 1, &rc) < 0)
			return; /* unreadable refcounts: keep everything */
		if (rc)
			break;
	}
	uint64_t end = c << s->cluster_bits;
	if (end < s->open_len)
		end = s->open_len;
	if (end < size)
		host_file_truncate(&bs->file, end);
	s->grown = false;
}
