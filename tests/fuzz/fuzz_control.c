/* The control protocol parser: one request line (any bytes) through control_request_handle, as
 * the server's worker runs it, against a server with the built-in verbs and an echo verb.  The
 * reply must be one JSON line ending in a newline, whatever came in. */
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/control.h"
#include "vmm/control_internal.h"
#include "lib/error.h"

static struct control_server *srv;

static int echo(void *opaque, struct json_object *args, struct json_object *result)
{
	(void)opaque;
	json_object_object_add(result, "args", json_object_get(args));
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char dir[] = "/tmp/minivmm-fuzz-control-XXXXXX";
	(void)argc;
	(void)argv;
	if (!mkdtemp(dir))
		abort();
	setenv("XDG_RUNTIME_DIR", dir, 1);
	if (control_server_start("fuzz", &srv) < 0 ||
	    control_register_verb(srv, "echo", "echo [ARGS...]", echo, NULL) < 0) {
		fprintf(stderr, "fuzz_control: %s\n", error_msg());
		abort();
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > CONTROL_LINE_MAX)
		return 0; /* the connection layer refuses longer lines before parsing */
	char *reply = control_request_handle(srv, (const char *)data, size);
	if (!reply)
		abort();
	size_t n = strlen(reply);
	if (n == 0 || reply[n - 1] != '\n' || memchr(reply, '\n', n - 1))
		abort(); /* exactly one line */
	struct json_object *o = control_json_parse_line(reply, n - 1);
	if (!o)
		abort(); /* and it is JSON */
	json_object_put(o);
	free(reply);
	return 0;
}
