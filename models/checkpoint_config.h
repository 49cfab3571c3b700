/* The configuration a model wrote into a checkpoint's metadata, read back so a run can resume
 * or be evaluated without being told its settings again. */
#ifndef UNTANGLE_MODELS_CHECKPOINT_CONFIG_H
#define UNTANGLE_MODELS_CHECKPOINT_CONFIG_H

#include "untangle.h"

/* The metadata key naming the model that wrote a checkpoint ("lord", "spirals"). */
#define CHECKPOINT_MODEL_KEY "model"

/* *json gets a malloc'd copy of metadata `key` of the checkpoint at `path`, which must have
 * CHECKPOINT_MODEL_KEY = `model`; UT_ERR_FORMAT, naming the file and its model, when it does not. */
ut_status checkpoint_config_json(ut_runtime *rt, const char *path, const char *model, const char *key, char **json);

#endif
