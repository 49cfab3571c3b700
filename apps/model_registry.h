/* The models the program knows, keyed by the name a checkpoint stores ("model" metadata): what
 * each can do (train, translate, grid, eval) and its help. `untangle train MODEL` looks a model
 * up by name; translate, grid and eval by the run folder's checkpoint. */
#ifndef UNTANGLE_APPS_MODEL_REGISTRY_H
#define UNTANGLE_APPS_MODEL_REGISTRY_H

#include <stdio.h>

typedef int (*model_command_fn)(int argc, char **argv);
typedef void (*model_help_fn)(FILE *out);

typedef enum { MODEL_TRAIN = 0, MODEL_TRANSLATE, MODEL_GRID, MODEL_EVAL, MODEL_COMMANDS } model_command;

typedef struct {
  const char *name;
  const char *summary;
  model_command_fn run[MODEL_COMMANDS]; /* NULL: the model cannot */
  model_help_fn help[MODEL_COMMANDS];
} model_entry;

int registry_count(void);
const model_entry *registry_at(int i);
const model_entry *registry_find(const char *name);
/* "lord, spirals, unit": the models that can do `command`, into buf; returns buf. */
char *registry_names(model_command command, char *buf, size_t size);

/* The command line of translate, grid or eval (argv[0] the command) handed to the model whose
 * checkpoint is in its run folder: the first argument that is a folder holding one. Without
 * such a folder the first model that has the command takes it (its parser then reports what
 * is missing). A model that cannot do the command is an error naming both. */
int registry_dispatch(const char *cmd, model_command command, int argc, char **argv);

/* Every model's help for `command`, one after another. */
void registry_help(model_command command, FILE *out);

#endif
