/* minivmm: dispatch the first argument to a registered verb (vmm/command.h). */
#include <stdio.h>
#include <string.h>

#include "vmm/command.h"


static void usage(FILE *out)
{
	fprintf(out, "usage: minivmm VERB [ARGS...]\n\nverbs:\n");
	for (int i = 0; command_at(i); i++)
		if (!command_at(i)->testing)
			fprintf(out, "  %-10s %s\n", command_at(i)->name, command_at(i)->summary);
	fprintf(out, "\n'minivmm VERB --help' describes a verb.\n");
}

int main(int argc, char **argv)
{
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
		fprintf(stderr, "minivmm: unknown verb '%s' (try 'minivmm help')\n", argv[1]);
		return 2;
	}
	return cmd->run(argc - 1, argv + 1);
}
