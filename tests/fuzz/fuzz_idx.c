/* The IDX importer (engine/data/idx.c: ut_import_idx, the path of `untangle data idx`) on any
 * bytes. Layout of an input: byte 0 picks the options (bit 7: three class names are given;
 * bit 6: RGB; low 4 bits + 1: the image side), bytes 1-2 the length L of the label file
 * (big-endian, cut to what is there), then L bytes of label file and the rest is the image
 * file. A data set it writes must open and hold exactly the images it says it imported. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fuzz_support.h"
#include "untangle_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3) return 0;
  static const char *const names[] = { "zero", "one", "two", NULL };
  int given_names = data[0] >> 7;
  ut_import_cfg cfg = { .size = (data[0] & 15) + 1, .channels = (data[0] >> 6 & 1) ? 3 : 1 };
  size_t label_len = (size_t)data[1] << 8 | data[2];
  data += 3;
  size -= 3;
  if (label_len > size) label_len = size;
  char labels[4096], images[4096], out[4096];
  snprintf(labels, sizeof labels, "%s", fuzz_write("labels.idx", data, label_len));
  snprintf(images, sizeof images, "%s", fuzz_write("images.idx", data + label_len, size - label_len));
  snprintf(out, sizeof out, "%s", fuzz_path("out.dat"));
  ut_import_stats st;
  ut_status s = ut_import_idx(images, labels, out, given_names ? names : NULL, &cfg, &st);
  if (s != UT_OK) {
    FUZZ_CHECK(ut_last_error()[0] != '\0');
    FUZZ_CHECK(access(out, F_OK) != 0); /* a failed import leaves no file behind */
    return 0;
  }
  ut_dataset *ds = ut_dataset_open(out);
  FUZZ_CHECK(ds != NULL);
  FUZZ_CHECK(ut_dataset_count(ds) == st.imported && st.imported > 0);
  FUZZ_CHECK(ut_dataset_n_classes(ds) == st.n_classes);
  FUZZ_CHECK(ut_dataset_height(ds) == cfg.size && ut_dataset_channels(ds) == cfg.channels);
  ut_dataset_close(ds);
  unlink(out);
  return 0;
}
