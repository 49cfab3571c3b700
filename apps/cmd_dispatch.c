/* `untangle translate`, `grid` and `eval`: each is done by the model that wrote the run
 * folder's checkpoint (model_registry.h). */
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "model_registry.h"

static void intro(FILE *out, const char *cmd) {
  fprintf(out, "untangle %s RUN ...: what RUN's model does; the options depend on the model that wrote\n"
               "RUN/checkpoint.safetensors.\n\n", cmd);
}

void help_translate(FILE *out) {
  intro(out, "translate");
  registry_help(MODEL_TRANSLATE, out);
}

void help_grid(FILE *out) {
  intro(out, "grid");
  registry_help(MODEL_GRID, out);
}

void help_eval(FILE *out) {
  intro(out, "eval");
  registry_help(MODEL_EVAL, out);
}

/* `untangle CMD --help` alone shows every model's options; with a run folder, its model's. */
static int dispatch(const char *cmd, model_command command, void (*help)(FILE *), int argc, char **argv) {
  if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    help(stdout);
    return CLI_OK;
  }
  return registry_dispatch(cmd, command, argc, argv);
}

int cmd_translate(int argc, char **argv) { return dispatch("translate", MODEL_TRANSLATE, help_translate, argc, argv); }
int cmd_grid(int argc, char **argv) { return dispatch("grid", MODEL_GRID, help_grid, argc, argv); }
int cmd_eval(int argc, char **argv) { return dispatch("eval", MODEL_EVAL, help_eval, argc, argv); }
