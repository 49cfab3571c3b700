/* The coloured copy of a grey data set (cmivae_data.h). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "cmivae_colour.h"
#include "kit_random.h"
#include "cmivae_data.h"

float cmivae_uniform_hue(uint64_t seed, int64_t i) {
  uint64_t r = kit_hash64(kit_hash64(seed) ^ (uint64_t)i);
  /* 24 random bits, so the float holds the value exactly and stays below 360. */
  return (float)(r >> 40) * (360.0f / 16777216.0f);
}

ut_status cmivae_colorize(const ut_dataset *in, uint64_t seed, const char *out_path) {
  const char *path = ut_dataset_path(in);
  if (ut_dataset_channels(in) != 1)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s holds colour images (%d channels); colorize paints grey (1-channel) images",
                   path, ut_dataset_channels(in));
  if (ut_dataset_n_attributes(in) > 0)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s already has per-image attributes (first: '%s'); colorize expects a plain grey set",
                   path, ut_dataset_attribute_name(in, 0));
  int h = ut_dataset_height(in), w = ut_dataset_width(in), nc = ut_dataset_n_classes(in), nd = ut_dataset_n_domains(in);
  const char **classes = malloc((size_t)nc * sizeof *classes), **domains = malloc((size_t)(nd > 0 ? nd : 1) * sizeof *domains);
  uint8_t *rgb = malloc((size_t)h * w * 3);
  if (!classes || !domains || !rgb) {
    free(classes);
    free(domains);
    free(rgb);
    return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory");
  }
  for (int c = 0; c < nc; c++) classes[c] = ut_dataset_class_name(in, c);
  for (int d = 0; d < nd; d++) domains[d] = ut_dataset_domain_name(in, d);
  char seed_text[24]; /* seeds travel as decimal strings, as in model configurations */
  snprintf(seed_text, sizeof seed_text, "%llu", (unsigned long long)seed);
  json_t *src = json_pack("{s:s, s:s, s:s, s:s}", "kind", "colorized", "from", path, "hue", "uniform", "seed", seed_text);
  char *source = src ? json_dumps(src, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  json_decref(src);
  static const char *const attribute_names[] = { CMIVAE_HUE_ATTRIBUTE };
  ut_dataset_writer *wr = ut_dataset_writer_open(out_path, &(ut_dataset_desc){
    .height = h, .width = w, .channels = 3, .n_classes = nc, .class_names = classes,
    .n_contents = ut_dataset_n_contents(in), .source_json = source, .n_domains = nd, .domain_names = nd ? domains : NULL,
    .n_attributes = 1, .attribute_names = attribute_names });
  ut_status st = wr ? UT_OK : UT_ERR_IO;
  for (int32_t i = 0; st == UT_OK && i < ut_dataset_count(in); i++) {
    float hue = cmivae_uniform_hue(seed, i);
    cmivae_paint(ut_dataset_image(in, i), (int64_t)h * w, hue, rgb);
    st = ut_dataset_writer_add_labels(wr, rgb, &(ut_image_labels){ .class_id = ut_dataset_class(in, i),
                                                                   .content_id = ut_dataset_content(in, i),
                                                                   .domain_id = ut_dataset_domain(in, i),
                                                                   .attributes = &hue });
  }
  if (wr) {
    if (st == UT_OK) st = ut_dataset_writer_finish(wr);
    else ut_dataset_writer_abort(wr);
  }
  free(classes);
  free(domains);
  free(rgb);
  free(source);
  return st;
}
