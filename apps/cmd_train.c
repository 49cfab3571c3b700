/* `untangle train MODEL`: picks the model's trainer from the registry. Each model's options
 * live with it. */
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "model_registry.h"

void help_train(FILE *out) {
  fprintf(out, "Usage: untangle train MODEL [OPTIONS]\n\nModels:\n");
  for (int i = 0; i < registry_count(); i++) fprintf(out, "  %-9s %s\n", registry_at(i)->name, registry_at(i)->summary);
  for (int i = 0; i < registry_count(); i++) {
    fprintf(out, "\n");
    registry_at(i)->help[MODEL_TRAIN](out);
  }
}

int cmd_train(int argc, char **argv) {
  char list[256];
  registry_names(MODEL_TRAIN, list, sizeof list);
  if (argc < 2) return cli_usage_error("train", "expects a model name first (%s)", list);
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    help_train(stdout);
    return CLI_OK;
  }
  const model_entry *e = registry_find(argv[1]);
  if (e) return e->run[MODEL_TRAIN](argc - 1, argv + 1);
  if (argv[1][0] == '-') return cli_usage_error("train", "expects a model name (%s) before the options, not '%s'", list, argv[1]);
  return cli_usage_error("train", "unknown model '%s' (models: %s)", argv[1], list);
}
