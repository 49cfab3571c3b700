/* What every subcommand of the `untangle` program shares: exit codes, option errors that
 * name the option and what it expects, number parsing, folders and the clock. */
#ifndef UNTANGLE_APPS_CLI_H
#define UNTANGLE_APPS_CLI_H

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

#include "kit_config.h"
#include "untangle.h"

/* 0: done; 1: the work failed (device, file, training); 2: the command line was wrong. */
enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2 };

/* Set by the program where it started itself again with other OpenBLAS kernels
 * (apps/main.c): the kernels OpenBLAS had chosen by itself. */
#define CLI_BLAS_DETECTED_ENV "UNTANGLE_BLAS_DETECTED"

/* Prints "untangle CMD: <message>" and a pointer to the command's help on stderr, and
 * returns CLI_USAGE, so a parser reads `return cli_usage_error("train", "...", ...);`. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Explains what getopt_long (run with opterr = 0 and an optstring starting with ':') just
 * rejected: an unknown option or one missing its value. Returns CLI_USAGE. */
int cli_option_error(const char *cmd, int c, char *const argv[]);

/* Resets getopt for a new argument vector. glibc needs 0 to forget its internal state. */
void cli_getopt_reset(void);

/* Parses a whole decimal number in [min, max]; on failure prints which option wanted what and
 * returns CLI_USAGE. */
int cli_parse_i64(const char *cmd, const char *option, const char *text, int64_t min, int64_t max, int64_t *out);
int cli_parse_u64(const char *cmd, const char *option, const char *text, uint64_t max, uint64_t *out);
/* The same for a decimal number (strtod's syntax) in [min, max]. */
int cli_parse_double(const char *cmd, const char *option, const char *text, double min, double max, double *out);

/* Opens the OpenCL device `device` ("untangle CMD: cannot open the OpenCL device ..." on stderr
 * and NULL when it cannot); with `announce`, prints which device it is on stdout. */
ut_runtime *cli_open_runtime(const char *cmd, const char *device, int announce);

/* A training command's --set FIELD=VALUE, collected into sets[*n_sets] (at most max); the
 * fields are applied later with cli_apply_sets, once the preset is known. */
int cli_collect_set(const char *cmd, const char *arg, const char **sets, int *n_sets, int max);
/* Applies the collected FIELD=VALUE settings to cfg through its configuration table; the first
 * that kit_config_set refuses is a usage error naming it. */
int cli_apply_sets(const char *cmd, const kit_config_table *table, void *cfg, const char *const *sets, int n_sets);

/* Creates a folder and its missing parents (mode 0777 less the umask). 0, or -1 with errno. */
int cli_mkdirs(const char *path);

/* The device a command uses without --device: $UNTANGLE_DEVICE when set and not empty, else
 * "best". */
const char *cli_default_device(void);
/* The operands every model's `eval` takes: one run folder (*run, from argv[optind]) and `data`
 * from --data FILE. CLI_OK, or a usage error naming what is missing or extra. */
int cli_eval_operands(const char *cmd, int argc, char **argv, const char *data, const char **run);
/* Progress of an evaluation (a model's eval_cfg.on_part): each part's start on stderr with the
 * seconds since `start_seconds` (a double *). */
void cli_eval_part(void *start_seconds, const char *part);
/* The end of every model's `eval`: writes the report's JSON text atomically to `out`, or to
 * RUN/eval.json without one, and prints where and the evaluation's `seconds`. json NULL means
 * it could not be made (out of memory). CLI_OK, or CLI_FAILED with the error printed. */
int cli_write_eval_json(const char *cmd, const char *run, const char *out, const char *json, double seconds);

/* "12.5 GiB", "512 KiB", "64 B" into buf; returns buf. */
char *cli_format_bytes(uint64_t bytes, char *buf, size_t size);

#endif
