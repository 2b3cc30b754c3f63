/* The registry of top-level verbs (see command.h). */
#include <string.h>

#include "vmm/command.h"

#define MAX_COMMANDS 32

static const struct command *commands[MAX_COMMANDS];
static int command_count;

void command_register(const struct command *cmd)
{
	if (command_count < MAX_COMMANDS)
		commands[command_count++] = cmd;
}

const struct command *command_find(const char *name)
{
	for (int i = 0; i < command_count; i++)
		if (strcmp(commands[i]->name, name) == 0)
			return commands[i];
	return NULL;
}

const struct command *command_at(int i)
{
	return i >= 0 && i < command_count ? commands[i] : NULL;
}
