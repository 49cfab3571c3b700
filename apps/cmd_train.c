/* `untangle train MODEL`: picks the model's trainer from the registry. Each model's options
 * live with it. */
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "kit_team.h"
#include "model_registry.h"

/* Data-parallel training (--mpi) is built for LORD, UNIT, CMI-VAE, OverLORD and DMIT; the other
 * trainers do not take a team, so under mpirun they are refused rather than run as N copies that
 * overwrite one another's files. */
static int refuse_parallel(const char *model, int argc, char **argv) {
  if (!strcmp(model, "lord") || !strcmp(model, "unit") || !strcmp(model, "cmivae") ||
      !strcmp(model, "overlord") || !strcmp(model, "dmit"))
    return 0;
  int asked = 0;
  for (int i = 1; i < argc; i++) asked |= !strcmp(argv[i], "--mpi");
  int launched = kit_team_launched_size();
  if (!asked && launched <= 1) return 0;
  fprintf(stderr, "untangle train %s: data-parallel training (--mpi, mpirun) is built for lord, unit, cmivae, overlord "
          "and dmit only; %s's trainer does not take a share of the batch and a gradient reduction, so %s\n", model,
          model, launched > 1 ? "run it as one process" : "leave out --mpi");
  return 1;
}

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
  if (e && refuse_parallel(argv[1], argc - 1, argv + 1)) return CLI_USAGE;
  if (e) return e->run[MODEL_TRAIN](argc - 1, argv + 1);
  if (argv[1][0] == '-') return cli_usage_error("train", "expects a model name (%s) before the options, not '%s'", list, argv[1]);
  return cli_usage_error("train", "unknown model '%s' (models: %s)", argv[1], list);
}
