/* `minivmm img info [--output=human|json] [--backing-chain] [-f FMT] FILE`
 *
 * One json-c object per image is built first (field names as qemu-img's) and the human text is
 * printed from it, so the two outputs can never disagree.
 */
#include <getopt.h>
#include <json-c/json.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/img.h"
#include "tools/size.h"

/* The backing name is relative to the directory of the image that records it. */
static char *img_info_backing_path(const char *image, const char *backing)
{
	char *dir_copy = strdup(image), *out = NULL;

	if (!dir_copy)
		return NULL;
	if (backing[0] == '/' || !strchr(image, '/'))
		out = strdup(backing);
	else if (asprintf(&out, "%s/%s", dirname(dir_copy), backing) < 0)
		out = NULL;
	free(dir_copy);
	return out;
}

static struct json_object *img_info_snapshots(struct block_device *bs)
{
	struct block_snapshot *list;
	int count;

	/* A format without internal snapshots (-ENOTSUP) simply lists none. */
	if (block_snapshot_list(bs, &list, &count) < 0 || count <= 0) {
		free(list);
		return NULL;
	}
	struct json_object *arr = json_object_new_array();
	for (int i = 0; i < count; i++) {
		struct json_object *s = json_object_new_object();
		json_object_object_add(s, "icount", json_object_new_int64(0));
		json_object_object_add(s, "vm-clock-nsec",
				       json_object_new_int64(list[i].vm_clock_nsec % 1000000000));
		json_object_object_add(s, "name", json_object_new_string(list[i].name));
		json_object_object_add(s, "date-sec", json_object_new_int64(list[i].date_sec));
		json_object_object_add(s, "date-nsec", json_object_new_int64(list[i].date_nsec));
		json_object_object_add(s, "vm-clock-sec",
				       json_object_new_int64(list[i].vm_clock_nsec / 1000000000));
		json_object_object_add(s, "id", json_object_new_string(list[i].id));
		json_object_object_add(s, "vm-state-size",
				       json_object_new_int64(list[i].vm_state_size));
		json_object_array_add(arr, s);
	}
	free(list);
	return arr;
}

/* Build the qemu-img-shaped description of one image; returns 0 or 1 (error printed). */
static int img_info_build(struct block_device *bs, const char *name, struct json_object **out)
{
	struct json_object *o = json_object_new_object();
	uint64_t actual = 0;

	json_object_object_add(o, "virtual-size", json_object_new_int64((int64_t)bs->size));
	json_object_object_add(o, "filename", json_object_new_string(name));
	uint32_t cs;
	if (block_cluster_size(bs, &cs) == 0 && cs)
		json_object_object_add(o, "cluster-size", json_object_new_int64(cs));
	json_object_object_add(o, "format", json_object_new_string(bs->drv->name));
	if (host_file_allocated(&bs->file, &actual) == 0)
		json_object_object_add(o, "actual-size", json_object_new_int64((int64_t)actual));
	if (bs->backing_name) {
		char *full = bs->backing ? strdup(bs->backing->filename)
					 : img_info_backing_path(name, bs->backing_name);
		json_object_object_add(o, "backing-filename",
				       json_object_new_string(bs->backing_name));
		if (full)
			json_object_object_add(o, "full-backing-filename",
					       json_object_new_string(full));
		free(full);
		if (bs->backing_fmt)
			json_object_object_add(o, "backing-filename-format",
					       json_object_new_string(bs->backing_fmt));
	}
	struct json_object *snaps = img_info_snapshots(bs);
	if (snaps)
		json_object_object_add(o, "snapshots", snaps);

	struct json_object *data = json_object_new_object();
	int ret = block_info(bs, data);
	if (ret < 0 && ret != -ENOTSUP) { /* -ENOTSUP: nothing format-specific (raw) */
		json_object_put(data);
		json_object_put(o);
		return img_block_fail(name);
	}
	/* A driver may report the dirty flag among its fields; qemu-img lists it at the top. */
	struct json_object *dirty = NULL;
	bool is_dirty =
	    json_object_object_get_ex(data, "dirty-flag", &dirty) && json_object_get_boolean(dirty);
	if (dirty)
		json_object_object_del(data, "dirty-flag");
	if (json_object_object_length(data) > 0) {
		struct json_object *fs = NULL, *type = NULL;
		/* Accept either the bare fields or an already wrapped {"type", "data"}. */
		if (json_object_object_get_ex(data, "type", &type) &&
		    json_object_object_get_ex(data, "data", &fs)) {
			fs = json_object_get(data);
		} else {
			fs = json_object_new_object();
			json_object_object_add(fs, "type", json_object_new_string(bs->drv->name));
			json_object_object_add(fs, "data", json_object_get(data));
		}
		json_object_object_add(o, "format-specific", fs);
	}
	json_object_put(data);
	json_object_object_add(o, "dirty-flag", json_object_new_boolean(is_dirty));
	*out = o;
	return 0;
}

static void img_info_print_value(struct json_object *v, int indent);

static void img_info_print_fields(struct json_object *obj, int indent)
{
	json_object_object_foreach(obj, key, val)
	{
		char label[128];
		snprintf(label, sizeof(label), "%s", key);
		for (char *p = label; *p; p++)
			if (*p == '-')
				*p = ' ';
		enum json_type t = json_object_get_type(val);
		if (t == json_type_object || t == json_type_array) {
			printf("%*s%s:\n", indent, "", label);
			img_info_print_value(val, indent + 4);
		} else {
			printf("%*s%s: %s\n", indent, "", label, json_object_get_string(val));
		}
	}
}

static void img_info_print_value(struct json_object *v, int indent)
{
	if (json_object_get_type(v) == json_type_array) {
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			struct json_object *e = json_object_array_get_idx(v, i);
			if (json_object_get_type(e) == json_type_object) {
				printf("%*s[%zu]:\n", indent, "", i);
				img_info_print_fields(e, indent + 4);
			} else {
				printf("%*s[%zu]: %s\n", indent, "", i, json_object_get_string(e));
			}
		}
	} else {
		img_info_print_fields(v, indent);
	}
}

static int64_t img_info_int(struct json_object *o, const char *key)
{
	struct json_object *v;
	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : -1;
}

static const char *img_info_str(struct json_object *o, const char *key)
{
	struct json_object *v;
	return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

/* The snapshot table as qemu-img prints it (also used by `snapshot -l`). */
void img_info_print_snapshots(struct json_object *snaps)
{
	char size[32], date[32], clock[96];

	printf("%-10s%-17s%8s%20s%13s%11s\n", "ID", "TAG", "VM SIZE", "DATE", "VM CLOCK", "ICOUNT");
	for (size_t i = 0; i < json_object_array_length(snaps); i++) {
		struct json_object *s = json_object_array_get_idx(snaps, i);
		time_t t = (time_t)img_info_int(s, "date-sec");
		struct tm tm;
		localtime_r(&t, &tm);
		strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
		int64_t sec = img_info_int(s, "vm-clock-sec");
		int64_t nsec = img_info_int(s, "vm-clock-nsec");
		snprintf(clock, sizeof(clock), "%02lld:%02lld:%02lld.%03lld",
			 (long long)(sec / 3600), (long long)(sec / 60 % 60), (long long)(sec % 60),
			 (long long)(nsec / 1000000));
		printf("%-9s %-16s %8s%20s%13s%11lld\n", img_info_str(s, "id"),
		       img_info_str(s, "name"),
		       size_format((uint64_t)img_info_int(s, "vm-state-size"), size, sizeof(size)),
		       date, clock, (long long)img_info_int(s, "icount"));
	}
}

static void img_info_print_human(struct json_object *o)
{
	char human[32];
	struct json_object *v;
	int64_t vsize = img_info_int(o, "virtual-size");

	printf("image: %s\n", img_info_str(o, "filename"));
	printf("file format: %s\n", img_info_str(o, "format"));
	printf("virtual size: %s (%lld bytes)\n",
	       size_format((uint64_t)vsize, human, sizeof(human)), (long long)vsize);
	if (img_info_int(o, "actual-size") >= 0)
		printf("disk size: %s\n",
		       size_format((uint64_t)img_info_int(o, "actual-size"), human, sizeof(human)));
	if (img_info_int(o, "cluster-size") > 0)
		printf("cluster_size: %lld\n", (long long)img_info_int(o, "cluster-size"));
	const char *b = img_info_str(o, "backing-filename");
	if (b) {
		const char *full = img_info_str(o, "full-backing-filename");
		if (full && strcmp(full, b))
			printf("backing file: %s (actual path: %s)\n", b, full);
		else
			printf("backing file: %s\n", b);
		if (img_info_str(o, "backing-filename-format"))
			printf("backing file format: %s\n",
			       img_info_str(o, "backing-filename-format"));
	}
	if (json_object_object_get_ex(o, "snapshots", &v)) {
		printf("Snapshot list:\n");
		img_info_print_snapshots(v);
	}
	struct json_object *fs, *data;
	if (json_object_object_get_ex(o, "format-specific", &fs) &&
	    json_object_object_get_ex(fs, "data", &data)) {
		printf("Format specific information:\n");
		img_info_print_value(data, 4);
	}
}

int img_info_main(int argc, char **argv)
{
	static const struct option longopts[] = {{"output", required_argument, NULL, 'O'},
						 {"backing-chain", no_argument, NULL, 'B'},
						 {"force-share", no_argument, NULL, 'U'},
						 {0}};
	const char *fmt = NULL, *output = "human";
	bool chain = false;
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
		case 'B':
			chain = true;
			break;
		case 'U':
			share = IMG_OPEN_SHARE;
			break;
		default:
			return img_bad_option("info", argc, argv);
		}
	}
	if (strcmp(output, "human") && strcmp(output, "json"))
		return img_usage_fail("info", "--output must be human or json");
	if (argc - optind != 1)
		return img_usage_fail("info", "expects one FILE");
	const char *file = argv[optind];
	struct block_device *top;
	if (img_open(file, fmt, share | (chain ? 0 : BLOCK_OPEN_NO_BACKING), &top))
		return 1;

	struct json_object *all = json_object_new_array();
	int ret = 0;
	for (struct block_device *bs = top; bs; bs = chain ? bs->backing : NULL) {
		struct json_object *o = NULL;
		ret = img_info_build(bs, bs == top ? file : bs->filename, &o);
		if (ret)
			break;
		json_object_array_add(all, o);
	}
	if (!ret) {
		size_t n = json_object_array_length(all);
		if (!strcmp(output, "json")) {
			struct json_object *what = chain ? all : json_object_array_get_idx(all, 0);
			printf("%s\n", json_object_to_json_string_ext(
					   what, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						     JSON_C_TO_STRING_NOSLASHESCAPE));
		} else {
			for (size_t i = 0; i < n; i++) {
				if (i)
					printf("\n");
				img_info_print_human(json_object_array_get_idx(all, i));
			}
		}
	}
	json_object_put(all);
	block_close(top);
	return ret;
}
