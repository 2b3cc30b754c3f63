/* `minivmm img resize [-f FMT] [--shrink] [--preallocation=MODE] FILE [+|-]SIZE`
 *
 * A leading '-' on SIZE would look like an option to getopt, so the size argument is taken off the
 * end of the command line before options are parsed (qemu-img does the same).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "tools/img.h"
#include "tools/size.h"

static int img_resize_prealloc(const char *s, enum block_prealloc *out)
{
	static const struct {
		const char *name;
		enum block_prealloc mode;
	} modes[] = {{"off", BLOCK_PREALLOC_OFF},
		     {"metadata", BLOCK_PREALLOC_METADATA},
		     {"falloc", BLOCK_PREALLOC_FALLOC},
		     {"full", BLOCK_PREALLOC_FULL}};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (!strcmp(s, modes[i].name)) {
			*out = modes[i].mode;
			return 0;
		}
	return img_usage_fail("resize", "--preallocation takes off, metadata, falloc or full");
}

int img_resize_main(int argc, char **argv)
{
	static const struct option longopts[] = {{"shrink", no_argument, NULL, 'S'},
						 {"preallocation", required_argument, NULL, 'P'},
						 {0}};
	enum block_prealloc prealloc = BLOCK_PREALLOC_OFF;
	const char *fmt = NULL;
	bool shrink = false;
	int c;

	if (argc < 3)
		return img_usage_fail("resize", "expects FILE and SIZE");
	const char *size_arg = argv[argc - 1];
	argc--;
	img_getopt_reset();
	while ((c = getopt_long(argc, argv, "f:q", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			fmt = optarg;
			break;
		case 'S':
			shrink = true;
			break;
		case 'P':
			if (img_resize_prealloc(optarg, &prealloc))
				return 1;
			break;
		case 'q':
			break;
		default:
			return img_bad_option("resize", argc, argv);
		}
	}
	if (argc - optind != 1)
		return img_usage_fail("resize", "expects FILE and SIZE");
	const char *file = argv[optind];

	int sign = 0;
	if (size_arg[0] == '+' || size_arg[0] == '-')
		sign = size_arg[0] == '+' ? 1 : -1;
	uint64_t amount, new_size;
	int perr = size_parse(size_arg + (sign ? 1 : 0), &amount);
	if (perr == -ERANGE)
		return img_fail(file, "size '%s' is too large", size_arg);
	if (perr < 0)
		return img_fail(
		    file, "invalid size '%s' (want [+|-]NUMBER with an optional k, M, G or T)",
		    size_arg);

	struct block_device *bs;
	if (img_open(file, fmt, BLOCK_OPEN_RDWR | BLOCK_OPEN_NO_BACKING, &bs))
		return 1;
	int ret = 1;
	if (sign > 0) {
		if (amount > (uint64_t)INT64_MAX - bs->size) {
			img_fail(file, "new size overflows");
			goto out;
		}
		new_size = bs->size + amount;
	} else if (sign < 0) {
		if (amount > bs->size) {
			img_fail(file, "cannot shrink by %s: the image is only %llu bytes",
				 size_arg + 1, (unsigned long long)bs->size);
			goto out;
		}
		new_size = bs->size - amount;
	} else {
		new_size = amount;
	}
	if (new_size < bs->size && !shrink) {
		img_fail(file, "use the --shrink option to perform a shrink operation");
		goto out;
	}
	if (new_size < bs->size && prealloc != BLOCK_PREALLOC_OFF) {
		img_fail(file, "preallocation cannot be used when shrinking");
		goto out;
	}
	if (block_truncate(bs, new_size, prealloc, shrink) < 0 || block_flush(bs) < 0) {
		img_block_fail(file);
		goto out;
	}
	printf("Image resized.\n");
	ret = 0;
out:
	block_close(bs);
	return ret;
}
