/* `untangle train MODEL`: picks the model's trainer. Each model's options live with it. */
#include <string.h>

#include "cli.h"
#include "commands.h"

typedef struct {
  const char *name;
  const char *summary;
  int (*run)(int argc, char **argv);
  void (*help)(FILE *out);
} trainer;

static const trainer trainers[] = {
  { "lord", "LORD: class and content codes by latent optimisation, then encoders (one-shot translation)",
    train_lord, help_train_lord },
  { "spirals", "a small MLP that tells two interleaved spirals apart (a first check of a device)", train_spirals,
    help_train_spirals },
};
enum { trainer_count = (int)(sizeof trainers / sizeof trainers[0]) };

void help_train(FILE *out) {
  fprintf(out, "Usage: untangle train MODEL [OPTIONS]\n\nModels:\n");
  for (int i = 0; i < trainer_count; i++) fprintf(out, "  %-9s %s\n", trainers[i].name, trainers[i].summary);
  for (int i = 0; i < trainer_count; i++) {
    fprintf(out, "\n");
    trainers[i].help(out);
  }
}

static int unknown_model(const char *name) {
  char list[256] = "";
  for (int i = 0; i < trainer_count; i++) {
    strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
    strncat(list, trainers[i].name, sizeof list - strlen(list) - 1);
  }
  if (name[0] == '-') return cli_usage_error("train", "expects a model name (%s) before the options, not '%s'", list, name);
  return cli_usage_error("train", "unknown model '%s' (models: %s)", name, list);
}

int cmd_train(int argc, char **argv) {
  if (argc < 2) return cli_usage_error("train", "expects a model name first (lord, spirals)");
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    help_train(stdout);
    return CLI_OK;
  }
  for (int i = 0; i < trainer_count; i++)
    if (strcmp(argv[1], trainers[i].name) == 0) return trainers[i].run(argc - 1, argv + 1);
  return unknown_model(argv[1]);
}
