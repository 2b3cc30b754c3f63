/* `minivmm img map [--output=human|json] [-f FMT] FILE`: where the data of each range lives.
 *
 * Same entries and merging rules as qemu-img map, so scripts written for one read the other.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "tools/img.h"

struct img_map_entry {
	uint64_t start, length, offset;
	int depth;
	bool present, zero, data, has_offset;
	const char *file;
};

static bool img_map_mergeable(const struct img_map_entry *a, const struct img_map_entry *b)
{
	if (a->start + a->length != b->start || a->depth != b->depth || a->present != b->present ||
	    a->zero != b->zero || a->data != b->data || a->has_offset != b->has_offset ||
	    strcmp(a->file, b->file))
		return false;
	return !a->has_offset || a->offset + a->length == b->offset;
}

static int img_map_print(const struct img_map_entry *e, bool json, bool first)
{
	if (json) {
		printf("%s{ \"start\": %llu, \"length\": %llu, \"depth\": %d, \"present\": %s, "
		       "\"zero\": %s, \"data\": %s",
		       first ? "" : ",\n", (unsigned long long)e->start,
		       (unsigned long long)e->length, e->depth, e->present ? "true" : "false",
		       e->zero ? "true" : "false", e->data ? "true" : "false");
		if (e->has_offset)
			printf(", \"offset\": %llu", (unsigned long long)e->offset);
		printf("}");
		return 0;
	}
	if (e->data && !e->has_offset)
		return img_fail(e->file,
				"contains compressed or external data that has no host offset");
	if (e->data && !e->zero)
		printf("%#-16llx%#-16llx%#-16llx%s\n", (unsigned long long)e->start,
		       (unsigned long long)e->length, (unsigned long long)e->offset, e->file);
	return 0;
}

int img_map_main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"output", required_argument, NULL, 'O'}, {"force-share", no_argument, NULL, 'U'}, {0}};
	const char *fmt = NULL, *output = "human";
	int c, share = 0;

	img_getopt_reset();
	while ((c = getopt_long(argc, argv, "f:U", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			fmt = optarg;
			break;
		case 'O':
			output = optarg;
			break;
		case 'U':
			share = IMG_OPEN_SHARE;
			break;
		default:
			return img_bad_option("map", argc, argv);
		}
	}
	if (strcmp(output, "human") && strcmp(output, "json"))
		return img_usage_fail("map", "--output must be human or json");
	if (argc - optind != 1)
		return img_usage_fail("map", "expects one FILE");
	const char *file = argv[optind];
	bool json = !strcmp(output, "json");
	struct block_device *bs;
	if (img_open(file, fmt, share, &bs))
		return 1;

	struct img_map_entry cur = {0};
	bool have = false, first = true;
	int ret = 0;
	if (json)
		printf("[");
	else
		printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File");
	for (uint64_t offset = 0; offset < bs->size && ret == 0;) {
		uint64_t len = bs->size - offset, pnum, map;
		int st, depth;
		struct block_device *owner;
		if (len > (1u << 30))
			len = 1u << 30;
		if (img_status(bs, offset, len, &pnum, &st, &map, &depth, &owner) < 0) {
			ret = img_block_fail(file);
			break;
		}
		struct img_map_entry e = {
		    .start = offset,
		    .length = pnum,
		    .offset = map,
		    .depth = depth,
		    .present = st & BLOCK_STATUS_ALLOCATED,
		    .zero = st & BLOCK_STATUS_ZERO,
		    .data = st & BLOCK_STATUS_DATA,
		    .has_offset = st & BLOCK_STATUS_OFFSET_VALID,
		    .file = owner == bs ? file : owner->filename,
		};
		if (have && img_map_mergeable(&cur, &e)) {
			cur.length += e.length;
		} else {
			if (have) {
				ret = img_map_print(&cur, json, first);
				first = false;
			}
			cur = e;
			have = true;
		}
		offset += pnum;
	}
	if (ret == 0 && have)
		ret = img_map_print(&cur, json, first);
	if (json)
		printf("]\n");
	block_close(bs);
	return ret;
}
