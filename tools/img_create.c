/* `minivmm img create -f FMT [-o key=value,...] [-b BACKING -F BACKING_FMT] FILE [SIZE]`
 *
 * As qemu-img: SIZE may be left out when there is a backing file (the image takes its size), and
 * every -o key must be understood by the format (block_create refuses the others); a backing file
 * needs its format (-F), as with qemu-img 7.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "tools/img.h"
#include "tools/size.h"

int img_create_main(int argc, char **argv)
{
	static const struct option longopts[] = {{"help", no_argument, NULL, 'h'}, {0}};
	const char *fmt = "raw", *backing = NULL, *backing_fmt = NULL;
	struct block_opts opts = {0};
	uint64_t size = 0;
	int c, ret = 1;

	/* getopt would take "-1G" for options: name the real problem. */
	for (int i = 1; i < argc; i++)
		if (argv[i][0] == '-' &&
		    ((argv[i][1] >= '0' && argv[i][1] <= '9') || argv[i][1] == '.'))
			return img_fail("create", "invalid size '%s': sizes cannot be negative",
					argv[i]);
	img_getopt_reset();
	while ((c = getopt_long(argc, argv, "f:o:b:F:uq", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			fmt = optarg;
			break;
		case 'o':
			if (block_opts_parse(&opts, optarg) < 0) {
				img_fail("create", "invalid option list '%s' (want key=value,...)",
					 optarg);
				goto out;
			}
			break;
		case 'b':
			backing = optarg;
			break;
		case 'F':
			backing_fmt = optarg;
			break;
		case 'u': /* qemu-img: do not open the backing file; we only open it to learn a size
			   */
		case 'q':
			break;
		default:
			img_bad_option("create", argc, argv);
			goto out;
		}
	}
	if (optind >= argc || argc - optind > 2) {
		img_usage_fail("create", "expects FILE and SIZE");
		goto out;
	}
	const char *file = argv[optind];
	if (!block_driver_find(fmt)) {
		img_fail(file, "unknown format '%s'", fmt);
		goto out;
	}
	if (backing_fmt && !block_driver_find(backing_fmt)) {
		img_fail(file, "unknown backing format '%s'", backing_fmt);
		goto out;
	}
	if (argc - optind == 2) {
		if (img_parse_size(file, argv[optind + 1], &size))
			goto out;
		/* Whole sectors, as qemu-img: a qcow2 of 1000001 bytes is 999936 to qemu. */
		if (size > (uint64_t)INT64_MAX - 511) {
			img_fail(file, "size '%s' is too large", argv[optind + 1]);
			goto out;
		}
		size = (size + 511) & ~511ULL;
	} else if (!backing) {
		img_fail(file, "a size is needed when there is no backing file");
		goto out;
	}
	if (backing && !backing[0]) {
		img_fail(file, "empty backing file name");
		goto out;
	}
	/* As qemu-img 7: a probed backing format lets a guest turn a raw base into anything. */
	if (backing && !backing_fmt) {
		img_fail(file, "backing file specified without backing format (add -F FMT)");
		goto out;
	}

	struct block_create_args args = {
	    .size = size, .backing = backing, .backing_fmt = backing_fmt, .opts = &opts};
	if (block_create(fmt, file, &args) < 0) {
		img_block_fail(file);
		goto out;
	}
	char human[32];
	printf("Formatting '%s', fmt=%s", file, fmt);
	if (argc - optind == 2)
		printf(" size=%llu (%s)", (unsigned long long)size,
		       size_format(size, human, sizeof(human)));
	if (backing)
		printf(" backing_file=%s%s%s", backing, backing_fmt ? " backing_fmt=" : "",
		       backing_fmt ? backing_fmt : "");
	printf("\n");
	ret = 0;
out:
	block_opts_free(&opts);
	return ret;
}
