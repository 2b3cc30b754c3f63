/* The verbs every control server answers, whatever the VM registers: help and version. */
#include <errno.h>
#include <stdio.h>

#include <json-c/json.h>

#include "vmm/control_internal.h"
#include "lib/error.h"

/* Result: {"VERB": "usage line", ...} in registration order. */
static int verb_help(void *opaque, struct json_object *args, struct json_object *result)
{
	struct control_server *srv = opaque;
	char verb[CONTROL_VERB_MAX + 1], usage[512];

	(void)args;
	for (int i = 0;
	     control_server_verb_at(srv, i, verb, sizeof(verb), usage, sizeof(usage)) == 0; i++) {
		struct json_object *u = json_object_new_string(usage);
		if (!u || json_object_object_add(result, verb, u) < 0) {
			json_object_put(u);
			return error_set(-ENOMEM, "out of memory");
		}
	}
	return 0;
}

static int add(struct json_object *obj, const char *key, struct json_object *val)
{
	if (!val || json_object_object_add(obj, key, val) < 0) {
		json_object_put(val);
		return -ENOMEM;
	}
	return 0;
}

/* Result: {"protocol": 1, "minivmm": "x.y.z"}. */
static int verb_version(void *opaque, struct json_object *args, struct json_object *result)
{
	(void)opaque;
	(void)args;
	if (add(result, "protocol", json_object_new_int(CONTROL_PROTOCOL_VERSION)) < 0 ||
	    add(result, "minivmm", json_object_new_string(MINIVMM_VERSION)) < 0)
		return error_set(-ENOMEM, "out of memory");
	return 0;
}

int control_builtins_register(struct control_server *srv)
{
	int ret = control_register_verb(srv, "help", "help", verb_help, srv);

	return ret ? ret : control_register_verb(srv, "version", "version", verb_version, NULL);
}
