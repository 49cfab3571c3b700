/* Reading a model's configuration from a checkpoint (checkpoint_config.h). */
#include "checkpoint_config.h"

#include <stdlib.h>
#include <string.h>

ut_status checkpoint_config_json(ut_runtime *rt, const char *path, const char *model, const char *key, char **json) {
  if (!rt || !path || !model || !key || !json)
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
