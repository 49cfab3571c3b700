/* The one conversion from stored images (HWC bytes, as files hold them) to what the models take
 * (CHW floats in [0, 1]). */
#include "untangle_data.h"

void ut_image_bytes_to_chw(const uint8_t *hwc, size_t pixels, int channels, float *chw) {
  /* One pass per channel keeps the writes sequential. */
  for (int c = 0; c < channels; c++)
    for (size_t p = 0; p < pixels; p++)
      chw[(size_t)c * pixels + p] = (float)hwc[p * (size_t)channels + (size_t)c] * (1.0f / 255.0f);
}

void ut_dataset_image_chw(const ut_dataset *ds, int32_t i, float *chw) {
  size_t pixels = (size_t)ut_dataset_height(ds) * (size_t)ut_dataset_width(ds);
  ut_image_bytes_to_chw(ut_dataset_image(ds, i), pixels, ut_dataset_channels(ds), chw);
}
