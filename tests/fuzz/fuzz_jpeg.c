/* The JPEG import path (engine/data/jpeg.c) on any bytes. The first byte picks the way in:
 * bit 7 set decodes from memory at full scale (ut_jpeg_decode, then the square crop and
 * resize), clear reads the file as an importer does (ut_jpeg_load_square, which may lower the
 * DCT scale); bit 6 asks for gray instead of RGB; the low 6 bits + 1 are the target size. */
#include <stdlib.h>

#include "fuzz_support.h"
#include "untangle_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  int from_memory = data[0] >> 7, channels = (data[0] >> 6 & 1) ? 1 : 3, side = (data[0] & 63) + 1;
  data++;
  size--;
  uint8_t *out = malloc((size_t)side * (size_t)side * (size_t)channels);
  FUZZ_CHECK(out != NULL);
  ut_status s;
  if (from_memory) {
    ut_image img;
    s = ut_jpeg_decode(data, size, "fuzz.jpg", channels, &img);
    if (s == UT_OK) {
      FUZZ_CHECK(img.width > 0 && img.height > 0 && img.channels == channels && img.pixels);
      s = ut_image_square_resize(&img, side, out);
      FUZZ_CHECK(s == UT_OK);
      ut_image_free(&img);
    }
  } else {
    s = ut_jpeg_load_square(fuzz_write("image.jpg", data, size), channels, side, out);
  }
  if (s != UT_OK) FUZZ_CHECK(s == UT_ERR_FORMAT && ut_last_error()[0] != '\0');
  free(out);
  return 0;
}
