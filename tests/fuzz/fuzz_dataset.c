/* The preprocessed data set reader (engine/data/dataset.c) on any bytes, through the same
 * validation ut_dataset_open runs after mmap. Whatever it accepts must be safe to read whole:
 * every image, label, attribute, mask, class and domain name is touched, so ASan sees any access outside the
 * buffer. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data_internal.h"
#include "fuzz_support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile unsigned sink; /* keeps the reads below from being optimised away */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* A copy of exactly `size` bytes, so reading one past the end is an ASan report. */
  uint8_t *copy = malloc(size ? size : 1);
  FUZZ_CHECK(copy != NULL);
  if (size) memcpy(copy, data, size);
  ut_dataset *ds = ut_dataset_from_memory(copy, size, "fuzz.dat");
  if (!ds) {
    FUZZ_CHECK(ut_last_error()[0] != '\0');
    free(copy);
    return 0;
  }
  int32_t n = ut_dataset_count(ds);
  size_t bytes = (size_t)ut_dataset_height(ds) * (size_t)ut_dataset_width(ds) * (size_t)ut_dataset_channels(ds);
  FUZZ_CHECK(n > 0 && (uint64_t)n * bytes <= size);
  unsigned sum = 0;
  for (int32_t i = 0; i < n; i++) {
    const uint8_t *img = ut_dataset_image(ds, i);
    sum += img[0] + img[bytes - 1];
    int32_t c = ut_dataset_class(ds, i), k = ut_dataset_content(ds, i);
    FUZZ_CHECK(c >= 0 && c < ut_dataset_n_classes(ds));
    FUZZ_CHECK(ut_dataset_n_contents(ds) > 0 ? k >= 0 && k < ut_dataset_n_contents(ds) : k == -1);
    int32_t d = ut_dataset_domain(ds, i);
    FUZZ_CHECK(ut_dataset_n_domains(ds) > 0 ? d >= 0 && d < ut_dataset_n_domains(ds) : d == -1);
    for (int a = 0; a < ut_dataset_n_attributes(ds); a++) FUZZ_CHECK(isfinite(ut_dataset_attribute(ds, i, a)));
    const uint8_t *mask = ut_dataset_mask(ds, i);
    FUZZ_CHECK((mask != NULL) == ut_dataset_has_masks(ds));
    if (mask) sum += mask[0] + mask[(size_t)ut_dataset_height(ds) * (size_t)ut_dataset_width(ds) - 1];
  }
  /* Every attribute has a name that finds it again. */
  for (int a = 0; a < ut_dataset_n_attributes(ds); a++)
    FUZZ_CHECK(ut_dataset_find_attribute(ds, ut_dataset_attribute_name(ds, a)) == a);
  for (int c = 0; c < ut_dataset_n_classes(ds); c++) sum += (unsigned)strlen(ut_dataset_class_name(ds, c));
  /* Every domain has images and a name that finds it again. */
  for (int d = 0; d < ut_dataset_n_domains(ds); d++) {
    int32_t *idx = NULL, m = 0;
    FUZZ_CHECK(ut_dataset_domain_indices(ds, d, &idx, &m) == UT_OK && m > 0 && ut_dataset_domain(ds, idx[m - 1]) == d);
    free(idx);
    FUZZ_CHECK(ut_dataset_find_domain(ds, ut_dataset_domain_name(ds, d)) == d);
  }
  FUZZ_CHECK(ut_dataset_source_json(ds)[0] == '{');
  ut_dataset_close(ds);
  free(copy);
  sink = sum;
  return 0;
}
