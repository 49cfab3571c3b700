/* The check of PoCL program binaries (engine/pocl_binary_check.c) on any bytes: it reads
 * lengths from the input and must never step outside it, whatever they say. Inputs are taken
 * as they are, and once more with PoCL's magic and each known format version written over
 * their start, so mutations reach the walk instead of stopping at the magic. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_support.h"
#include "runtime_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FUZZ_CHECK(ut_pocl_binary_whole(data, size) <= 1);
  if (size < 20) return 0;
  /* An exact-size copy, so reading one byte past the input is caught. */
  unsigned char *copy = malloc(size);
  FUZZ_CHECK(copy != NULL);
  for (uint32_t version = 9; version <= 11; version++) {
    memcpy(copy, data, size);
    memcpy(copy, "poclbin", 8);
    memcpy(copy + 16, &version, 4);
    FUZZ_CHECK(ut_pocl_binary_whole(copy, size) <= 1);
  }
  free(copy);
  return 0;
}
