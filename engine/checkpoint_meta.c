/* One metadata entry of a checkpoint, read without a device (ut_checkpoint_meta in untangle.h):
 * the program asks which model wrote a run before it knows which device to open. */
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"

ut_status ut_checkpoint_meta(const char *path, const char *key, char **value) {
  if (!path || !key || !value) return ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_checkpoint_meta: bad arguments");
  *value = NULL;
  ut_st_file f;
  ut_status st = ut_st_read(path, &f);
  if (st != UT_OK) return st;
  for (int i = 0; i < f.n_meta; i++)
    if (!strcmp(f.meta[i].key, key) && !(*value = strdup(f.meta[i].value)))
      st = ut_fail(UT_ERR_HOST_MEMORY, "out of host memory");
  ut_st_file_free(&f);
  return st;
}
