/* The subcommands of the `untangle` program. Each takes its own argument vector (argv[0] is
 * the command's name), returns an exit status (cli.h), and has a help text. */
#ifndef UNTANGLE_APPS_COMMANDS_H
#define UNTANGLE_APPS_COMMANDS_H

#include <stdio.h>

/* The whole command line (untangle.c): global options, then the command; main.c calls it. */
int untangle_main(int argc, char **argv);

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

/* `untangle data colorize ...`; argv[0] is "colorize" (data_colorize.c). */
int data_colorize(int argc, char **argv);
void help_data_colorize(FILE *out);

/* `untangle train spirals ...`; argv[0] is "spirals". */
int train_spirals(int argc, char **argv);
void help_train_spirals(FILE *out);

/* Translation with a trained run, by the model that wrote it (cmd_dispatch.c). */
int cmd_translate(int argc, char **argv);
void help_translate(FILE *out);
int cmd_grid(int argc, char **argv);
void help_grid(FILE *out);

/* `untangle eval RUN --data FILE`: the run's model's evaluation (cmd_dispatch.c). */
int cmd_eval(int argc, char **argv);
void help_eval(FILE *out);

/* `untangle train lord ...`; argv[0] is "lord". */
int train_lord(int argc, char **argv);
void help_train_lord(FILE *out);

/* LORD's translate, grid (lord_translate.c) and eval (lord_eval_cmd.c). */
int lord_cmd_translate(int argc, char **argv);
void lord_help_translate(FILE *out);
int lord_cmd_grid(int argc, char **argv);
void lord_help_grid(FILE *out);
int lord_cmd_eval(int argc, char **argv);
void lord_help_eval(FILE *out);

/* UNIT's train, translate, grid and eval (unit_cli.c). */
int unit_cmd_train(int argc, char **argv);
void unit_help_train(FILE *out);
int unit_cmd_translate(int argc, char **argv);
void unit_help_translate(FILE *out);
int unit_cmd_grid(int argc, char **argv);
void unit_help_grid(FILE *out);
int unit_cmd_eval(int argc, char **argv);
void unit_help_eval(FILE *out);

/* OverLORD's train, translate, grid and eval (overlord_cli.c). */
int overlord_cmd_train(int argc, char **argv);
void overlord_help_train(FILE *out);
int overlord_cmd_translate(int argc, char **argv);
void overlord_help_translate(FILE *out);
int overlord_cmd_grid(int argc, char **argv);
void overlord_help_grid(FILE *out);
int overlord_cmd_eval(int argc, char **argv);
void overlord_help_eval(FILE *out);
/* DMIT's train, translate, grid and eval (dmit_cli.c). */
int dmit_cmd_train(int argc, char **argv);
void dmit_help_train(FILE *out);
int dmit_cmd_translate(int argc, char **argv);
void dmit_help_translate(FILE *out);
int dmit_cmd_grid(int argc, char **argv);
void dmit_help_grid(FILE *out);
int dmit_cmd_eval(int argc, char **argv);
void dmit_help_eval(FILE *out);

/* CMI-VAE's train (cmivae_cli.c), translate and grid (cmivae_translate.c) and eval (cmivae_eval_cmd.c). */
int cmivae_cmd_train(int argc, char **argv);
void cmivae_help_train(FILE *out);
int cmivae_cmd_translate(int argc, char **argv);
void cmivae_help_translate(FILE *out);
int cmivae_cmd_grid(int argc, char **argv);
void cmivae_help_grid(FILE *out);
int cmivae_cmd_eval(int argc, char **argv);
void cmivae_help_eval(FILE *out);

/* `untangle bench ...` and `untangle bench report ...` (cmd_bench.c, benchmarks/bench.h). */
int cmd_bench(int argc, char **argv);
void help_bench(FILE *out);

#endif
