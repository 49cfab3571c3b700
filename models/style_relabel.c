/* A data set relabelled by style clusters (style_cluster.h, style_cluster_dataset): the images
 * are read a chunk at a time, so host memory holds the style features but never all images. */
#include <stdio.h>
#include <stdlib.h>

#include "style_cluster.h"

#define CHUNK 256

ut_status style_cluster_dataset(ut_runtime *rt, const ut_dataset *ds, int k, uint64_t seed, const float *conv_w,
                                const float *conv_b, const char *out_path, style_cluster_report *report) {
  int64_t n = ut_dataset_count(ds), c = ut_dataset_channels(ds), h = ut_dataset_height(ds), w = ut_dataset_width(ds);
  if (k < 1 || k > n)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: %d clusters of %lld images; expected 1 .. %lld", ut_dataset_path(ds),
                   k, (long long)n, (long long)n);
  int64_t per = c * h * w;
  float *chunk = malloc((size_t)(CHUNK * per) * sizeof *chunk);
  float *features = malloc((size_t)(n * STYLE_FEATURES) * sizeof *features);
  float *random_w = conv_w ? NULL : malloc((size_t)(STYLE_CHANNELS * c * 9) * sizeof *random_w);
  float random_b[STYLE_CHANNELS];
  int32_t *labels = malloc((size_t)n * sizeof *labels);
  ut_status st = chunk && features && labels && (conv_w || random_w)
                     ? UT_OK
                     : ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the style features of %lld images", (long long)n);
  if (st == UT_OK && !conv_w) {
    style_random_conv(seed, c, random_w, random_b);
    conv_w = random_w;
    conv_b = random_b;
  }
  for (int64_t at = 0; st == UT_OK && at < n; at += CHUNK) {
    int64_t take = n - at < CHUNK ? n - at : CHUNK;
    for (int64_t i = 0; i < take; i++) ut_dataset_image_chw(ds, (int32_t)(at + i), chunk + i * per);
    st = style_features(rt, chunk, take, c, h, w, conv_w, conv_b, 32, features + at * STYLE_FEATURES);
  }
  style_cluster_report rep;
  if (st == UT_OK) st = style_kmeans(features, n, STYLE_FEATURES, k, seed, style_default_cfg().max_iterations, labels, &rep);
  char **names = st == UT_OK ? calloc((size_t)k, sizeof *names) : NULL;
  if (st == UT_OK && !names) st = ut_fail(UT_ERR_HOST_MEMORY, "out of host memory");
  for (int i = 0; st == UT_OK && i < k; i++)
    if (!(names[i] = malloc(16)) || snprintf(names[i], 16, "style-%03d", i) < 0)
      st = ut_fail(UT_ERR_HOST_MEMORY, "out of host memory");
  char source[1024];
  snprintf(source, sizeof source, "{\"kind\": \"style-clusters\", \"k\": %d, \"seed\": %llu, \"layer\": \"%s\"}", k,
           (unsigned long long)seed, random_w ? "random 3x3 conv" : "given 3x3 conv");
  ut_dataset_writer *wr = NULL;
  if (st == UT_OK &&
      !(wr = ut_dataset_writer_open(out_path, &(ut_dataset_desc){ .height = (int)h, .width = (int)w, .channels = (int)c,
                                                                  .n_classes = k, .class_names = (const char *const *)names,
                                                                  .n_contents = ut_dataset_n_contents(ds),
                                                                  .source_json = source })))
    st = UT_ERR_IO;
  for (int32_t i = 0; st == UT_OK && i < n; i++)
    st = ut_dataset_writer_add(wr, ut_dataset_image(ds, i), labels[i], ut_dataset_content(ds, i));
  if (wr) {
    if (st == UT_OK) st = ut_dataset_writer_finish(wr);
    else ut_dataset_writer_abort(wr);
  }
  if (st == UT_OK && report) *report = rep;
  for (int i = 0; names && i < k; i++) free(names[i]);
  free(names);
  free(chunk);
  free(features);
  free(random_w);
  free(labels);
  return st;
}
