/* minivmm: dispatch the first argument to a registered verb (vmm/command.h). */
#include <stdio.h>
#include <string.h>

#include "lib/log.h"
#include "vmm/command.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: minivmm [--log-level LEVEL] [--trace LIST] VERB [ARGS...]\n\nverbs:\n");
	for (int i = 0; command_at(i); i++)
		if (!command_at(i)->testing)
			fprintf(out, "  %-10s %s\n", command_at(i)->name, command_at(i)->summary);
	fprintf(out,
		"\n'minivmm VERB --help' describes a verb.\n"
		"LEVEL: error, warn (default), info, debug; LIST: all or some of %s\n"
		"(also MINIVMM_LOG=LEVEL[,trace=A+B])\n",
		trace_category_names());
}

/* The options every verb shares come before the verb; returns how many arguments they took, or
 * -1 after a message for a bad one. */
static int global_options(int argc, char **argv)
{
	int i = 1;
	while (i + 1 < argc) {
		int r;
		if (!strcmp(argv[i], "--log-level"))
			r = log_set_level(argv[i + 1]);
		else if (!strcmp(argv[i], "--trace"))
			r = trace_enable(argv[i + 1]);
		else
			break;
		if (r < 0) {
			log_error(NULL, "%s '%s': unknown (try 'minivmm help')", argv[i],
				  argv[i + 1]);
			return -1;
		}
		i += 2;
	}
	return i - 1;
}

int main(int argc, char **argv)
{
	log_init_from_env();
	int shift = global_options(argc, argv);
	if (shift < 0)
		return 2;
	argc -= shift;
	argv += shift;
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	const struct command *cmd = command_find(argv[1]);
	if (!cmd) {
		log_error(NULL, "unknown verb '%s' (try 'minivmm help')", argv[1]);
		return 2;
	}
	return cmd->run(argc - 1, argv + 1);
}
