/* Sample grids: many small images tiled into one JPEG, as training writes after each epoch. */
#include <stdlib.h>
#include <string.h>

#include "data_internal.h"

enum { GAP = 2 }; /* white pixels between tiles and around the edge */

ut_status ut_grid_write_jpeg(const char *path, const float *images, int n, int channels, int height, int width,
                             int cols, int quality) {
  if (!path || !images || n < 1 || (channels != 1 && channels != 3) || height < 1 || width < 1 || cols < 1)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: cannot tile %d images of %d x %d x %d in %d columns",
                   path ? path : "(null)", n, channels, height, width, cols);
  if (cols > n) cols = n;
  int rows = (n + cols - 1) / cols;
  int64_t gw = (int64_t)cols * (width + GAP) + GAP, gh = (int64_t)rows * (height + GAP) + GAP;
  if (gw > 65500 || gh > 65500)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: a grid of %d x %d tiles of %d x %d is %lld x %lld pixels, over JPEG's 65500",
                   path, rows, cols, height, width, (long long)gh, (long long)gw);
  size_t C = (size_t)channels, hw = (size_t)height * (size_t)width;
  uint8_t *canvas = malloc((size_t)gw * (size_t)gh * C);
  if (!canvas) return ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory for the grid", path);
  memset(canvas, 255, (size_t)gw * (size_t)gh * C);
  for (int i = 0; i < n; i++) {
    const float *img = images + (size_t)i * C * hw;
    size_t x0 = (size_t)(i % cols) * (size_t)(width + GAP) + GAP, y0 = (size_t)(i / cols) * (size_t)(height + GAP) + GAP;
    for (int y = 0; y < height; y++)
      for (int x = 0; x < width; x++)
        for (size_t c = 0; c < C; c++) {
          float v = img[c * hw + (size_t)y * (size_t)width + (size_t)x];
          /* NaN compares false both ways and lands on 0. */
          int b = v > 0 ? (v < 1 ? (int)(v * 255.0f + 0.5f) : 255) : 0;
          canvas[((y0 + (size_t)y) * (size_t)gw + x0 + (size_t)x) * C + c] = (uint8_t)b;
        }
  }
  ut_status s = ut_jpeg_write(path, canvas, (int)gw, (int)gh, channels, quality);
  free(canvas);
  return s;
}
