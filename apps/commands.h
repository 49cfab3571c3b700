/* The subcommands of the `untangle` program. Each takes its own argument vector (argv[0] is
 * the command's name), returns an exit status (cli.h), and has a help text. */
#ifndef UNTANGLE_APPS_COMMANDS_H
#define UNTANGLE_APPS_COMMANDS_H

#include <stdio.h>

int cmd_devices(int argc, char **argv);
void help_devices(FILE *out);

int cmd_train(int argc, char **argv);
void help_train(FILE *out);

/* `untangle data import|idx|synth|info ...`; argv[0] is "data". */
int cmd_data(int argc, char **argv);
void help_data(FILE *out);

/* `untangle data cluster ...`; argv[0] is "cluster" (data_cluster.c). */
int data_cluster(int argc, char **argv);
void help_data_cluster(FILE *out);

/* `untangle train spirals ...`; argv[0] is "spirals". */
int train_spirals(int argc, char **argv);
void help_train_spirals(FILE *out);

/* One-shot translation with a trained LORD run (cmd_translate.c). */
int cmd_translate(int argc, char **argv);
void help_translate(FILE *out);
int cmd_grid(int argc, char **argv);
void help_grid(FILE *out);

/* `untangle eval RUN --data FILE`: LORD's evaluation (cmd_eval.c). */
int cmd_eval(int argc, char **argv);
void help_eval(FILE *out);

/* `untangle train lord ...`; argv[0] is "lord". */
int train_lord(int argc, char **argv);
void help_train_lord(FILE *out);

/* `untangle bench ...` and `untangle bench report ...` (cmd_bench.c, benchmarks/bench.h). */
int cmd_bench(int argc, char **argv);
void help_bench(FILE *out);

#endif
