/* The safetensors checkpoint reader (engine/safetensors.c) on any bytes: it must refuse what
 * it cannot use with a message, and whatever it accepts must be what safetensors.h promises. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_support.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_write("checkpoint.safetensors", data, size);
  ut_st_file f;
  if (ut_st_read(path, &f) != UT_OK) {
    FUZZ_CHECK(ut_last_error()[0] != '\0');
    return 0;
  }
  /* Accepted: the tensors tile the data section, and each one's bytes match its F32 shape. */
  uint64_t covered = 0;
  for (int i = 0; i < f.n_tensors; i++) {
    const ut_st_entry *e = &f.tensors[i];
    FUZZ_CHECK(e->name && e->name[0]);
    FUZZ_CHECK(e->begin <= e->end && e->end <= f.data_len);
    uint64_t numel = 1;
    for (int k = 0; k < e->shape.rank; k++) numel *= (uint64_t)e->shape.d[k];
    FUZZ_CHECK(numel * 4 == e->end - e->begin);
    float *v = malloc(numel ? numel * sizeof *v : 1);
    FUZZ_CHECK(v != NULL);
    ut_st_decode_f32(f.data + e->begin, v, numel);
    free(v);
    covered += e->end - e->begin;
  }
  FUZZ_CHECK(covered == f.data_len);
  for (int i = 0; i < f.n_meta; i++) FUZZ_CHECK(f.meta[i].key && f.meta[i].value);
  ut_st_file_free(&f);
  return 0;
}
