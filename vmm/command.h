/* Top-level verbs of the minivmm command line (`minivmm run`, `minivmm img`, ...).
 *
 * Each verb lives in its own file and registers itself with COMMAND(); vmm/main.c dispatches by name,
 * so adding a verb never touches main.c.  A verb returns the process exit code.
 */
#ifndef MINIVMM_VMM_COMMAND_H
#define MINIVMM_VMM_COMMAND_H

#include <stdbool.h>

struct command {
	const char *name;
	const char *summary; /* one line for `minivmm help` */
	/* Verbs for the test suite only (tools/testing/): they work, but `minivmm help` leaves them
	 * out so users never mistake them for features. */
	bool testing;
	int (*run)(int argc, char **argv); /* argv[0] is the verb */
};

void command_register(const struct command *cmd);
const struct command *command_find(const char *name);
const struct command *command_at(int i); /* i-th registered verb, NULL past the last */

#define COMMAND(var)                                                                               \
	static void __attribute__((constructor)) var##_register(void)                              \
	{                                                                                          \
		command_register(&(var));                                                          \
	}

#endif
