/* `minivmm control NAME VERB [ARGS...] [--json] [--timeout=MS]`: ask a running VM something.
 *
 * Generic over verbs: the words after VERB go to the VM as "args", so a module that adds a verb
 * needs no change here.  Exit codes: 0 done, 1 the VM refused or could not be reached, 2 usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "vmm/command.h"
#include "vmm/control_internal.h"
#include "lib/error.h"
#include "lib/log.h"

#define DEFAULT_TIMEOUT_MS 30000

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: minivmm control NAME VERB [ARGS...] [--json] [--timeout=MS]\n"
	    "  Sends VERB to the running VM NAME and prints the result as \"key: value\" lines.\n"
	    "  --json        print the reply line as the VM sent it\n"
	    "  --timeout=MS  give up after MS milliseconds (default %d)\n"
	    "  --            end of options: what follows goes to the VM as is\n"
	    "  'minivmm control NAME help' lists the verbs NAME understands.\n",
	    DEFAULT_TIMEOUT_MS);
}

static int parse_timeout(const char *s, int *ms)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v <= 0 || v > 3600000)
		return -EINVAL;
	*ms = (int)v;
	return 0;
}

static int run_control(int argc, char **argv)
{
	char **pos = calloc(argc + 1, sizeof(*pos));
	int npos = 0, json = 0, timeout = DEFAULT_TIMEOUT_MS, opts = 1, ret;
	struct json_object *reply = NULL, *v;
	int fd;

	if (!pos) {
		log_error("control", "out of memory");
		return 1;
	}
	for (int i = 1; i < argc; i++) {
		if (opts && !strcmp(argv[i], "--")) {
			opts = 0;
		} else if (opts && !strcmp(argv[i], "--json")) {
			json = 1;
		} else if (opts && !strncmp(argv[i], "--timeout=", 10)) {
			if (parse_timeout(argv[i] + 10, &timeout) < 0) {
				log_error("control", "bad --timeout '%s' (1..3600000 ms)",
					  argv[i] + 10);
				free(pos);
				return 2;
			}
		} else if (opts && (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))) {
			usage(stdout);
			free(pos);
			return 0;
		} else {
			pos[npos++] = argv[i];
		}
	}
	if (npos < 2) {
		usage(stderr);
		free(pos);
		return 2;
	}
	if (!control_name_valid(pos[0]) || !control_verb_valid(pos[1])) {
		char *clean = control_clean(control_name_valid(pos[0]) ? pos[1] : pos[0]);
		log_error("control", "invalid %s '%s'",
			  control_name_valid(pos[0]) ? "verb" : "VM name", clean ? clean : "");
		free(clean);
		free(pos);
		return 2;
	}

	ret = control_connect(pos[0], &fd, NULL);
	if (!ret) {
		ret = control_exchange(fd, pos[0], 1, pos[1], npos - 2, pos + 2, timeout, &reply);
		close(fd);
	}
	if (ret < 0) {
		log_error("control", "%s: %s", pos[0], error_msg());
		free(pos);
		return 1;
	}
	json_object_object_get_ex(reply, "ok", &v);
	ret = json_object_get_boolean(v) ? 0 : 1;
	if (json) {
		printf("%s\n", json_object_to_json_string_ext(
				   reply, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	} else if (!ret) {
		json_object_object_get_ex(reply, "result", &v);
		control_print_human(stdout, v);
	}
	if (ret) {
		json_object_object_get_ex(reply, "error", &v);
		char *clean = control_clean(json_object_get_string(v));
		log_error("control", "%s: %s", pos[0], clean ? clean : "");
		free(clean);
	}
	json_object_put(reply);
	free(pos);
	if (fflush(stdout) != 0) {
		log_error("control", "writing output: %s", strerror(errno));
		return 1;
	}
	return ret;
}

static const struct command cmd_control = {
    .name = "control",
    .summary = "send a verb to a running VM (minivmm control NAME help)",
    .run = run_control,
};
COMMAND(cmd_control)
