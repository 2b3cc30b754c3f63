/* Human-readable control replies: a result object becomes "key: value" lines.
 *
 * Nested objects are flattened with dots ("disk.0.path: ..."), arrays are joined with commas, and
 * keys keep the order the VM sent.  All text comes from the VM, so terminal control characters
 * are replaced before printing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "vmm/control_internal.h"

void control_print_clean(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	for (; *p; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			fputc('?', out);
		} else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
			fputc('?', out); /* U+0080..U+009F: C1 controls, CSI among them */
			p++;
		} else {
			fputc(*p, out);
		}
	}
}

char *control_clean(const char *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	if (!m)
		return NULL;
	control_print_clean(m, s ? s : "");
	if (fclose(m) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static void print_scalar(FILE *out, struct json_object *v)
{
	if (json_object_is_type(v, json_type_string))
		control_print_clean(out, json_object_get_string(v));
	else
		control_print_clean(out, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
}

static void print_value(FILE *out, struct json_object *v)
{
	if (!json_object_is_type(v, json_type_array)) {
		print_scalar(out, v);
		return;
	}
	for (size_t i = 0; i < json_object_array_length(v); i++) {
		if (i)
			fputc(',', out);
		print_scalar(out, json_object_array_get_idx(v, i));
	}
}

static void print_object(FILE *out, const char *prefix, struct json_object *obj)
{
	json_object_object_foreach(obj, key, val)
	{
		char *path = NULL;

		if (prefix && asprintf(&path, "%s.%s", prefix, key) < 0)
			return;
		if (json_object_is_type(val, json_type_object) && json_object_object_length(val)) {
			print_object(out, path ? path : key, val);
		} else {
			control_print_clean(out, path ? path : key);
			fputs(": ", out);
			print_value(out, val);
			fputc('\n', out);
		}
		free(path);
	}
}

void control_print_human(FILE *out, struct json_object *result)
{
	if (json_object_is_type(result, json_type_object)) {
		print_object(out, NULL, result);
	} else if (result) {
		print_value(out, result);
		fputc('\n', out);
	}
}
