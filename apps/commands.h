/* The subcommands of the `untangle` program. Each takes its own argument vector (argv[0] is
 * the command's name), returns an exit status (cli.h), and has a help text. */
#ifndef UNTANGLE_APPS_COMMANDS_H
#define UNTANGLE_APPS_COMMANDS_H

#include <stdio.h>

int cmd_devices(int argc, char **argv);
void help_devices(FILE *out);

int cmd_train(int argc, char **argv);
void help_train(FILE *out);

/* `untangle train spirals ...`; argv[0] is "spirals". */
int train_spirals(int argc, char **argv);
void help_train_spirals(FILE *out);

#endif
