/* The copy engine behind `img convert`, `clonemedium` and `convertfromraw` (tools/img_convert.c).
 */
#ifndef MINIVMM_TOOLS_IMG_CONVERT_H
#define MINIVMM_TOOLS_IMG_CONVERT_H

#include <stdbool.h>
#include <stdint.h>

struct block_opts;

struct img_convert_args {
	const char *in_name, *in_fmt; /* in_fmt NULL: probe */
	const char *out_name, *out_fmt;
	struct block_opts *opts; /* creation options of the output */
	uint64_t sparse;	 /* -S: shortest zero run left unwritten; 0 writes everything */
	int workers;		 /* -m: requests in flight */
	int in_flags, out_flags; /* BLOCK_OPEN_CACHE_* */
	const char *backing, *backing_fmt; /* -B, -F: the output's backing file */
	bool no_create;			   /* -n: the output exists already */
	bool compress, progress;
	bool new_uuid; /* clonemedium: give the copy its own UUID when the format has one */
	/* -l snapshot.id=ID,snapshot.name=NAME: copy that internal snapshot of the input; -l WORD
	 * and -s WORD: snapshot_any, an ID or else a name. */
	const char *snapshot_id, *snapshot_name, *snapshot_any;
};

int img_convert_run(const struct img_convert_args *args);

/* A random (version 4) UUID. */
int img_uuid_random(uint8_t uuid[16]);

#endif
