/* `minivmm img check [-r leaks|all] [--output=human|json] [-f FMT] FILE`
 *
 * Exit codes as qemu-img's: 0 clean, 1 check not completed (also when the image or a file of its
 * backing chain cannot be opened), 2 corruptions, 3 leaks only, 63 when the format has no check.
 * After a repair the image is checked again and that result decides.
 */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "tools/img.h"

static void img_check_json(const char *file, struct block_device *bs,
			   const struct block_check_result *r)
{
	struct json_object *o = json_object_new_object();

	if (r->image_end_offset)
		json_object_object_add(o, "image-end-offset",
				       json_object_new_int64((int64_t)r->image_end_offset));
	if (r->total_clusters)
		json_object_object_add(o, "total-clusters",
				       json_object_new_int64((int64_t)r->total_clusters));
	if (r->allocated_clusters)
		json_object_object_add(o, "allocated-clusters",
				       json_object_new_int64((int64_t)r->allocated_clusters));
	if (r->fragmented_clusters)
		json_object_object_add(o, "fragmented-clusters",
				       json_object_new_int64((int64_t)r->fragmented_clusters));
	if (r->compressed_clusters)
		json_object_object_add(o, "compressed-clusters",
				       json_object_new_int64((int64_t)r->compressed_clusters));
	json_object_object_add(o, "check-errors", json_object_new_int64((int64_t)r->check_errors));
	if (r->corruptions)
		json_object_object_add(o, "corruptions",
				       json_object_new_int64((int64_t)r->corruptions));
	if (r->leaks)
		json_object_object_add(o, "leaks", json_object_new_int64((int64_t)r->leaks));
	if (r->corruptions_fixed)
		json_object_object_add(o, "corruptions-fixed",
				       json_object_new_int64((int64_t)r->corruptions_fixed));
	if (r->leaks_fixed)
		json_object_object_add(o, "leaks-fixed",
				       json_object_new_int64((int64_t)r->leaks_fixed));
	json_object_object_add(o, "filename", json_object_new_string(file));
	json_object_object_add(o, "format", json_object_new_string(bs->drv->name));
	printf("%s\n",
	       json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						     JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

static void img_check_human(const struct block_check_result *r)
{
	if (r->corruptions == 0 && r->leaks == 0 && r->check_errors == 0)
		printf("No errors were found on the image.\n");
	if (r->corruptions)
		printf("\n%llu errors were found on the image.\n"
		       "Data may be corrupted, or further writes to the image may corrupt it.\n",
		       (unsigned long long)r->corruptions);
	if (r->leaks)
		printf("\n%llu leaked clusters were found on the image.\n"
		       "This means waste of disk space, but no harm to data.\n",
		       (unsigned long long)r->leaks);
	if (r->check_errors)
		printf("\n%llu internal errors have occurred during the check.\n",
		       (unsigned long long)r->check_errors);
	if (r->total_clusters && r->allocated_clusters)
		printf("%llu/%llu = %0.2f%% allocated, %0.2f%% fragmented, %0.2f%% compressed "
		       "clusters\n",
		       (unsigned long long)r->allocated_clusters,
		       (unsigned long long)r->total_clusters,
		       r->allocated_clusters * 100.0 / r->total_clusters,
		       r->fragmented_clusters * 100.0 / r->allocated_clusters,
		       r->compressed_clusters * 100.0 / r->allocated_clusters);
	if (r->image_end_offset)
		printf("Image end offset: %llu\n", (unsigned long long)r->image_end_offset);
}

static int img_check_exit(const struct block_check_result *r)
{
	if (r->check_errors)
		return 1;
	if (r->corruptions)
		return 2;
	if (r->leaks)
		return 3;
	return 0;
}

int img_check_main(int argc, char **argv)
{
	static const struct option longopts[] = {{"output", required_argument, NULL, 'O'},
						 {"repair", required_argument, NULL, 'r'},
						 {"force-share", no_argument, NULL, 'U'},
						 {0}};
	const char *fmt = NULL, *output = "human";
	int c, fix = 0, share = 0;

	img_getopt_reset();
	while ((c = getopt_long(argc, argv, "f:r:qU", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			fmt = optarg;
			break;
		case 'O':
			output = optarg;
			break;
		case 'r':
			if (!strcmp(optarg, "leaks"))
				fix = BLOCK_CHECK_FIX_LEAKS;
			else if (!strcmp(optarg, "all"))
				fix = BLOCK_CHECK_FIX_LEAKS | BLOCK_CHECK_FIX_ERRORS;
			else
				return img_usage_fail("check", "-r takes leaks or all");
			break;
		case 'U':
			share = IMG_OPEN_SHARE;
			break;
		case 'q':
			break;
		default:
			return img_bad_option("check", argc, argv);
		}
	}
	if (strcmp(output, "human") && strcmp(output, "json"))
		return img_usage_fail("check", "--output must be human or json");
	if (argc - optind != 1)
		return img_usage_fail("check", "expects one FILE");
	const char *file = argv[optind];
	struct block_device *bs;
	/* The whole backing chain is opened, as `info --backing-chain` and qemu-img do: a missing
	 * backing file, one that is the image itself or a loop fails the check (exit 1, as
	 * qemu-img's "Could not open backing file"), and only the top image is checked. */
	int flags = BLOCK_OPEN_CHECK | (fix ? BLOCK_OPEN_RDWR : 0) | share;
	if (img_open(file, fmt, flags, &bs))
		return 1;
	struct block_check_result r, fixed = {0};
	int ret = block_check(bs, &r, fix);
	if (ret == -ENOTSUP) {
		img_block_fail(file);
		block_close(bs);
		return 63;
	}
	if (ret == 0 && fix && (r.corruptions_fixed || r.leaks_fixed)) {
		/* Report what was repaired, then what a fresh check finds. */
		fixed = r;
		if (!strcmp(output, "human"))
			printf("The following inconsistencies were found and repaired:\n\n"
			       "    %llu leaked clusters\n    %llu corruptions\n\n"
			       "Double checking the fixed image now...\n",
			       (unsigned long long)r.leaks_fixed,
			       (unsigned long long)r.corruptions_fixed);
		ret = block_check(bs, &r, 0);
		r.leaks_fixed = fixed.leaks_fixed;
		r.corruptions_fixed = fixed.corruptions_fixed;
	}
	if (ret < 0) {
		img_block_fail(file);
		block_close(bs);
		return 1;
	}
	if (!strcmp(output, "json"))
		img_check_json(file, bs, &r);
	else
		img_check_human(&r);
	if (fix && block_flush(bs) < 0) {
		img_block_fail(file);
		block_close(bs);
		return 1;
	}
	block_close(bs);
	return img_check_exit(&r);
}
