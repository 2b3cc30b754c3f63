/* `minivmm img snapshot -c NAME | -l | -a NAME | -d NAME FILE`: internal snapshots (qcow2). */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>

#include "tools/img.h"

static int img_snapshot_list(struct block_device *bs)
{
	struct block_snapshot *list;
	int count;

	if (block_snapshot_list(bs, &list, &count) < 0)
		return -1;
	if (count <= 0) {
		free(list);
		return 0;
	}
	/* Print through the same table code as `info`. */
	struct json_object *arr = json_object_new_array();
	for (int i = 0; i < count; i++) {
		struct json_object *s = json_object_new_object();
		json_object_object_add(s, "id", json_object_new_string(list[i].id));
		json_object_object_add(s, "name", json_object_new_string(list[i].name));
		json_object_object_add(s, "vm-state-size",
				       json_object_new_int64((int64_t)list[i].vm_state_size));
		json_object_object_add(s, "date-sec",
				       json_object_new_int64((int64_t)list[i].date_sec));
		json_object_object_add(
		    s, "vm-clock-sec",
		    json_object_new_int64((int64_t)(list[i].vm_clock_nsec / 1000000000)));
		json_object_object_add(
		    s, "vm-clock-nsec",
		    json_object_new_int64((int64_t)(list[i].vm_clock_nsec % 1000000000)));
		json_object_object_add(s, "icount", json_object_new_int64(0));
		json_object_array_add(arr, s);
	}
	free(list);
	printf("Snapshot list:\n");
	img_info_print_snapshots(arr);
	json_object_put(arr);
	return 0;
}

int img_snapshot_main(int argc, char **argv)
{
	static const struct option longopts[] = {{"force-share", no_argument, NULL, 'U'}, {0}};
	const char *fmt = NULL, *name = NULL;
	int c, action = 0, share = 0;

	img_getopt_reset();
	while ((c = getopt_long(argc, argv, "c:la:d:f:qU", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
		case 'a':
		case 'd':
		case 'l':
			if (action)
				return img_usage_fail("snapshot",
						      "give exactly one of -c, -l, -a, -d");
			action = c;
			name = c == 'l' ? NULL : optarg;
			break;
		case 'f':
			fmt = optarg;
			break;
		case 'U':
			share = IMG_OPEN_SHARE; /* refused by img_open unless listing */
			break;
		case 'q':
			break;
		default:
			return img_bad_option("snapshot", argc, argv);
		}
	}
	if (!action)
		return img_usage_fail("snapshot", "give one of -c, -l, -a, -d");
	if (argc - optind != 1)
		return img_usage_fail("snapshot", "expects one FILE");
	const char *file = argv[optind];
	if (name && !name[0])
		return img_fail(file, "empty snapshot name");

	struct block_device *bs;
	int flags = BLOCK_OPEN_NO_BACKING | (action == 'l' ? 0 : BLOCK_OPEN_RDWR) | share;
	if (img_open(file, fmt, flags, &bs))
		return 1;
	int ret;
	switch (action) {
	case 'c':
		ret = block_snapshot_create(bs, name);
		break;
	case 'a':
		ret = block_snapshot_apply(bs, name);
		break;
	case 'd':
		ret = block_snapshot_delete(bs, name);
		break;
	default:
		ret = img_snapshot_list(bs);
		break;
	}
	if (ret == 0 && action != 'l')
		ret = block_flush(bs);
	if (ret < 0)
		img_block_fail(file);
	block_close(bs);
	return ret < 0 ? 1 : 0;
}
