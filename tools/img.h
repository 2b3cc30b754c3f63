/* `minivmm img`: the image tool's internal interface.
 *
 * Each sub-verb (create, info, convert, ...) lives in its own tools/img_<verb>.c and is listed in
 * the table in tools/img.c.  Every sub-verb returns the process exit code, prints its errors as ONE
 * line "minivmm img: FILE: problem" (img_fail, img_block_fail) and reaches images only through
 * block_*() functions.
 */
#ifndef MINIVMM_TOOLS_IMG_H
#define MINIVMM_TOOLS_IMG_H

#include <stdbool.h>
#include <stdint.h>

#include "storage/core/block.h"

struct json_object;

struct img_verb {
	const char *name;
	const char *usage; /* the argument synopsis, printed by `minivmm img help` */
	int (*run)(int argc, char **argv); /* argv[0] is the sub-verb */
	bool hidden;			   /* testing and benchmarking verbs */
};

int img_create_main(int argc, char **argv);
int img_info_main(int argc, char **argv);
int img_convert_main(int argc, char **argv);
int img_clonemedium_main(int argc, char **argv);
int img_convertfromraw_main(int argc, char **argv);
int img_check_main(int argc, char **argv);
int img_compare_main(int argc, char **argv);
int img_resize_main(int argc, char **argv);
int img_snapshot_main(int argc, char **argv);
int img_map_main(int argc, char **argv);
int img_rebase_main(int argc, char **argv);
int img_commit_main(int argc, char **argv);
int img_bench_main(int argc, char **argv);

/* Print a snapshot table (a JSON array as in `info --output=json`) as qemu-img does. */
void img_info_print_snapshots(struct json_object *snaps);

/* ---- Messages (tools/img.c) ---- */
/* Print "minivmm img: WHAT: problem" on stderr; returns 1 (qemu-img's error exit code). */
int img_fail(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print the block layer's last error for `file` (naming the file once); returns 1. */
int img_block_fail(const char *file);
/* The usage line of a sub-verb as an error; returns 1. */
int img_usage_fail(const char *verb, const char *problem);
/* getopt_long set up for a sub-verb: resets the parser and silences its own messages. */
void img_getopt_reset(void);
/* The error for an option getopt refused (opt is getopt's return: '?' or ':'). */
int img_bad_option(const char *verb, int argc, char **argv);

/* Parse a size argument; prints the error; returns 0 or 1. */
int img_parse_size(const char *what, const char *text, uint64_t *out);
/* Open with one-line error reporting; returns 0 or 1.  Every image the tool opens is locked as a
 * running VM locks it (BLOCK_OPEN_LOCK: write lock when RDWR, read locks on the rest of the
 * chain), so an image a VM holds is refused at once, naming the VM.  IMG_OPEN_SHARE (the -U,
 * --force-share option) opens without locks, at the user's risk; only read-only opens take it. */
#define IMG_OPEN_SHARE (1 << 30) /* the tool's own flag, never passed to block_open */
int img_open(const char *file, const char *fmt, int flags, struct block_device **out);

/* Status of [offset, offset+len) resolved through the backing chain: *status holds the DATA/ZERO
 * (and COMPRESSED, OFFSET_VALID) bits of the layer that decides the content, ALLOCATED when some
 * layer does; *depth is that layer's index (0 = bs), or the chain length - 1 when none does;
 * *owner is that layer.  Ranges past a backing file's end read as zeroes. */
int img_status(struct block_device *bs, uint64_t offset, uint64_t len, uint64_t *pnum, int *status,
	       uint64_t *map_offset, int *depth, struct block_device **owner);

/* Map VirtualBox format names (VDI, VMDK, VHD, RAW, QCOW2, any case) to block driver names. */
const char *img_vbox_format(const char *name);

/* True when all len bytes of buf are zero. */
bool img_is_zero(const void *buf, size_t len);

#endif
