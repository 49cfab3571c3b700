/* The `untangle` program: global options, then one subcommand per file (commands.h). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"

#ifndef UNTANGLE_VERSION
#define UNTANGLE_VERSION "unknown"
#endif

typedef struct {
  const char *name;
  const char *summary;
  int (*run)(int argc, char **argv);
  void (*help)(FILE *out);
} command;

static const command commands[] = {
  { "devices", "list the OpenCL devices this machine offers", cmd_devices, help_devices },
  { "train", "train a model (lord, unit, or spirals: the two-spirals toy MLP)", cmd_train, help_train },
  { "translate", "translate images with a trained run (LORD: content into a class; UNIT: into a domain)", cmd_translate, help_translate },
  { "grid", "a translation grid of given images with a trained LORD or UNIT run", cmd_grid, help_grid },
  { "eval", "measure a trained LORD or UNIT run (writes RUN/eval.json)", cmd_eval, help_eval },
  { "data", "make data set files (image folders, IDX, rendered) and describe them", cmd_data, help_data },
  { "bench", "time peak FMA/bandwidth, GEMM, ops and training steps per device; report", cmd_bench, help_bench },
};
enum { command_count = (int)(sizeof commands / sizeof commands[0]) };

static void print_usage(FILE *out) {
  fprintf(out,
          "untangle %s: trains models on any OpenCL device (GPUs, and CPUs through PoCL).\n"
          "\n"
          "Usage: untangle COMMAND [OPTIONS]\n"
          "       untangle help COMMAND\n"
          "       untangle --help | --version\n"
          "\n"
          "Commands:\n",
          UNTANGLE_VERSION);
  for (int i = 0; i < command_count; i++) fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
  fprintf(out, "  %-9s %s\n", "help", "show a command's options: untangle help COMMAND [MODEL]");
  fprintf(out,
          "\n"
          "Environment:\n"
          "  UNTANGLE_DEVICE  the device to use when a command is given no --device\n"
          "  XDG_CACHE_HOME   compiled OpenCL programs are cached in $XDG_CACHE_HOME/untangle\n"
          "                   (default ~/.cache/untangle)\n"
          "\n"
          "Exit status: 0 done, 1 the work failed, 2 the command line was wrong.\n");
}

static const command *find_command(const char *name) {
  for (int i = 0; i < command_count; i++)
    if (strcmp(commands[i].name, name) == 0) return &commands[i];
  return NULL;
}

static int unknown_command(const char *name) {
  fprintf(stderr, "untangle: unknown command '%s'. Commands:", name);
  for (int i = 0; i < command_count; i++) fprintf(stderr, " %s", commands[i].name);
  fprintf(stderr, " help.\nTry 'untangle --help'.\n");
  return CLI_USAGE;
}

/* `untangle help CMD [MODEL]`: the command's own --help, so the two can never disagree. */
static int run_help(int argc, char **argv) {
  if (argc < 2) {
    print_usage(stdout);
    return CLI_OK;
  }
  if (strcmp(argv[1], "help") == 0) {
    printf("Usage: untangle help COMMAND [MODEL]\n\nShows the options of COMMAND (of 'train MODEL').\n");
    return CLI_OK;
  }
  const command *c = find_command(argv[1]);
  if (!c) return unknown_command(argv[1]);
  if (argc == 2) {
    c->help(stdout);
    return CLI_OK;
  }
  if (argc > 3 || strcmp(c->name, "train") != 0)
    return cli_usage_error("help", "expects a command name (and a model after train), got %d words", argc - 1);
  char help[] = "--help";
  char *sub[] = { argv[1], argv[2], help, NULL };
  return c->run(3, sub);
}

int untangle_main(int argc, char **argv) {
  if (argc < 2) {
    print_usage(stderr);
    return CLI_USAGE;
  }
  const char *first = argv[1];
  if (strcmp(first, "--help") == 0 || strcmp(first, "-h") == 0) {
    print_usage(stdout);
    return CLI_OK;
  }
  if (strcmp(first, "--version") == 0 || strcmp(first, "-V") == 0) {
    printf("untangle %s\n", UNTANGLE_VERSION);
    return CLI_OK;
  }
  if (first[0] == '-') {
    fprintf(stderr, "untangle: unknown option '%s' before the command. Try 'untangle --help'.\n", first);
    return CLI_USAGE;
  }
  if (strcmp(first, "help") == 0) return run_help(argc - 1, argv + 1);
  const command *c = find_command(first);
  if (!c) return unknown_command(first);
  return c->run(argc - 1, argv + 1);
}
