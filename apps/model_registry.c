/* The table of models (model_registry.h). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "commands.h"
#include "model_registry.h"
#include "untangle.h"

#define CHECKPOINT_FILE "checkpoint.safetensors"

static const model_entry models[] = {
  { "lord", "LORD: class and content codes by latent optimisation, then encoders (one-shot translation)",
    { train_lord, lord_cmd_translate, lord_cmd_grid, lord_cmd_eval },
    { help_train_lord, lord_help_translate, lord_help_grid, lord_help_eval } },
  { "unit", "UNIT: two domains through one shared latent space (unpaired translation, GAN + VAE)",
    { unit_cmd_train, unit_cmd_translate, unit_cmd_grid, unit_cmd_eval },
    { unit_help_train, unit_help_translate, unit_help_grid, unit_help_eval } },
  { "overlord", "OverLORD: label, correlated and uncorrelated codes in three stages (change a label, keep the rest)",
    { overlord_cmd_train, overlord_cmd_translate, overlord_cmd_grid, overlord_cmd_eval },
    { overlord_help_train, overlord_help_translate, overlord_help_grid, overlord_help_eval } },
  { "dmit", "DMIT: 2 to 4 domains, each in many styles (content, style and domain kept apart)",
    { dmit_cmd_train, dmit_cmd_translate, dmit_cmd_grid, dmit_cmd_eval },
    { dmit_help_train, dmit_help_translate, dmit_help_grid, dmit_help_eval } },
  { "cmivae", "CMI-VAE: a VAE whose second code, encoded from a chosen feature (hue, class), controls the output",
    { cmivae_cmd_train, cmivae_cmd_translate, cmivae_cmd_grid, cmivae_cmd_eval },
    { cmivae_help_train, cmivae_help_translate, cmivae_help_grid, cmivae_help_eval } },
  { "spirals", "a small MLP that tells two interleaved spirals apart (a first check of a device)",
    { train_spirals, NULL, NULL, NULL }, { help_train_spirals, NULL, NULL, NULL } },
};
enum { model_count = (int)(sizeof models / sizeof models[0]) };

int registry_count(void) { return model_count; }
const model_entry *registry_at(int i) { return i >= 0 && i < model_count ? &models[i] : NULL; }

const model_entry *registry_find(const char *name) {
  for (int i = 0; i < model_count; i++)
    if (!strcmp(models[i].name, name)) return &models[i];
  return NULL;
}

char *registry_names(model_command command, char *buf, size_t size) {
  buf[0] = 0;
  for (int i = 0; i < model_count; i++)
    if (models[i].run[command]) {
      if (buf[0]) strncat(buf, ", ", size - strlen(buf) - 1);
      strncat(buf, models[i].name, size - strlen(buf) - 1);
    }
  return buf;
}

/* The model named in RUN's checkpoint: NULL when `dir` holds no checkpoint; *unknown set when it
 * holds one whose model the table lacks (or that cannot be read). */
static const model_entry *model_of_run(const char *cmd, const char *dir, int *failed) {
  struct stat sb;
  if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) return NULL;
  size_t len = strlen(dir) + sizeof "/" CHECKPOINT_FILE;
  char *path = malloc(len), *name = NULL;
  if (!path) return NULL;
  snprintf(path, len, "%s/" CHECKPOINT_FILE, dir);
  const model_entry *e = NULL;
  if (stat(path, &sb) == 0) {
    if (ut_checkpoint_meta(path, "model", &name) != UT_OK) {
      fprintf(stderr, "untangle %s: %s\n", cmd, ut_last_error());
      *failed = 1;
    } else if (!name || !(e = registry_find(name))) {
      fprintf(stderr, "untangle %s: %s was written by %s%s%s, which this program does not know\n", cmd, path,
              name ? "model '" : "no named model", name ? name : "", name ? "'" : "");
      *failed = 1;
    }
  }
  free(name);
  free(path);
  return e;
}

int registry_dispatch(const char *cmd, model_command command, int argc, char **argv) {
  const model_entry *e = NULL;
  int failed = 0;
  for (int i = 1; i < argc && !e && !failed; i++)
    if (argv[i][0] != '-') e = model_of_run(cmd, argv[i], &failed);
  if (failed) return CLI_FAILED;
  if (!e)
    for (int i = 0; i < model_count && !e; i++)
      if (models[i].run[command]) e = &models[i];
  if (!e->run[command]) {
    char can[128];
    fprintf(stderr, "untangle %s: a %s run cannot do this (models that can: %s)\n", cmd, e->name,
            registry_names(command, can, sizeof can));
    return CLI_FAILED;
  }
  return e->run[command](argc, argv);
}

void registry_help(model_command command, FILE *out) {
  int first = 1;
  for (int i = 0; i < model_count; i++)
    if (models[i].help[command]) {
      if (!first) fprintf(out, "\n");
      fprintf(out, "---- %s ----\n", models[i].name);
      models[i].help[command](out);
      first = 0;
    }
}
