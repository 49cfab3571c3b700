/* A model's configuration in its checkpoint (checkpoint_config.h). */
#include "checkpoint_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "<model>.config" into key[size]; 0 when the name does not fit. */
static int config_key(const char *model, char *key, size_t size) {
  int n = snprintf(key, size, "%s.config", model);
  return n > 0 && (size_t)n < size;
}

ut_status checkpoint_config_save(ut_store *st, const char *path, const char *model, char *json) {
  if (!json) return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the %s configuration", model ? model : "model's");
  char key[64];
  ut_status s = UT_OK;
  if (!st || !path || !model || !config_key(model, key, sizeof key))
    s = ut_fail(UT_ERR_INVALID_ARGUMENT, "checkpoint_config_save: bad arguments");
  if (s == UT_OK) s = ut_store_set_meta(st, CHECKPOINT_MODEL_KEY, model);
  if (s == UT_OK) s = ut_store_set_meta(st, key, json);
  free(json);
  return s == UT_OK ? ut_store_save(st, path) : s;
}

ut_status checkpoint_config_json(ut_runtime *rt, const char *path, const char *model, char **json) {
  char key[64];
  if (!rt || !path || !model || !json || !config_key(model, key, sizeof key))
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "checkpoint_config_json: bad arguments");
  /* A scratch store reads the file through the same checks as a real load, and leaves the
   * caller's store untouched if the file turns out to belong to another run. */
  ut_store *scratch = ut_store_new(rt, 0);
  if (!scratch) return UT_ERR_HOST_MEMORY;
  ut_status s = ut_store_load(scratch, path);
  if (s == UT_OK) {
    const char *saved_model = ut_store_get_meta(scratch, CHECKPOINT_MODEL_KEY), *value = ut_store_get_meta(scratch, key);
    if (!saved_model || strcmp(saved_model, model) != 0 || !value)
      s = ut_fail(UT_ERR_FORMAT, "%s is not a %s checkpoint (its metadata has model = %s)", path, model,
                  saved_model ? saved_model : "nothing");
    else if (!(*json = strdup(value)))
      s = ut_fail(UT_ERR_HOST_MEMORY, "out of host memory");
  }
  ut_store_free(scratch);
  return s;
}
