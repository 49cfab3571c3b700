/* A model's configuration in its checkpoint's metadata: written beside the parameters, read
 * back so a run can resume or be evaluated without being told its settings again. */
#ifndef UNTANGLE_MODELS_CHECKPOINT_CONFIG_H
#define UNTANGLE_MODELS_CHECKPOINT_CONFIG_H

#include "untangle.h"

/* The metadata key naming the model that wrote a checkpoint ("lord", "spirals"). Its
 * configuration (JSON) sits under "<model>.config". */
#define CHECKPOINT_MODEL_KEY "model"

/* Writes the store `st` to `path` (atomically, as ut_store_save does) with the metadata naming
 * `model` and its configuration `json`, which this call frees; a NULL `json` (the caller's
 * allocation failed) is reported as out of host memory and writes nothing. */
ut_status checkpoint_config_save(ut_store *st, const char *path, const char *model, char *json);

/* *json gets a malloc'd copy of the configuration of the checkpoint at `path`, which must have
 * been written by `model`; UT_ERR_FORMAT, naming the file and its model, when it was not. */
ut_status checkpoint_config_json(ut_runtime *rt, const char *path, const char *model, char **json);

#endif
