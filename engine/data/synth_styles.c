/* The built-in rendered data set with styles within each domain (ut_synth_write_styles): every
 * (class, view) of every look in every style, labelled with its domain and with the attribute
 * "style", so a model that separates style from domain and content can be checked against the
 * truth of every (content, domain, style) triple. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "data_internal.h"

/* The source: what ut_synth_write_domains records, plus the style count. */
static char *styles_source(const ut_synth_cfg *cfg, const int *domains, int n_domains, int n_styles) {
  json_t *src = json_pack("{s:s, s:i, s:i, s:i, s:i}", "kind", "synth", "classes", cfg->classes, "views", cfg->views,
                          "size", cfg->size, "styles", n_styles);
  if (!src) return NULL;
  char seed[32];
  snprintf(seed, sizeof seed, "%llu", (unsigned long long)cfg->seed);
  /* A seed past 2^63 does not fit a JSON integer; the string form keeps it exact. */
  json_object_set_new(src, "seed", cfg->seed > (uint64_t)INT64_MAX ? json_string(seed) : json_integer((json_int_t)cfg->seed));
  json_t *arr = json_array();
  for (int d = 0; d < n_domains; d++) json_array_append_new(arr, json_string(ut_synth_domain_name(domains[d])));
  json_object_set_new(src, "domains", arr);
  char *text = json_dumps(src, JSON_COMPACT);
  json_decref(src);
  return text;
}

ut_status ut_synth_write_styles(const ut_synth_cfg *cfg, const int *domains, const char *const *domain_names,
                                int n_domains, int n_styles, const char *out_path,
                                void (*progress)(void *user, int64_t done, int64_t total), void *user) {
  const char *path = out_path ? out_path : "(no path)";
  if (!cfg || !out_path || !domains || n_domains < 1 || n_styles < 1 || cfg->classes < 1 || cfg->views < 1 ||
      cfg->size < 1 || cfg->size > 4096 || (int64_t)cfg->classes * cfg->views * n_domains * n_styles > INT32_MAX)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_synth_write_styles: %s: needs looks, styles, classes and views >= 1, "
                   "size 1..4096 and at most 2^31 - 1 images", path);
  for (int d = 0; d < n_domains; d++)
    if (!ut_synth_domain_name(domains[d]))
      return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: domain %d is look %d, expected 0 .. %d", path, d, domains[d],
                     ut_synth_domain_count() - 1);
  const char **dnames = calloc((size_t)n_domains, sizeof *dnames);
  char **cnames = calloc((size_t)cfg->classes, sizeof *cnames);
  size_t bytes = (size_t)cfg->size * (size_t)cfg->size * 3;
  uint8_t *rgb = malloc(bytes);
  char *source = styles_source(cfg, domains, n_domains, n_styles);
  ut_status s = dnames && cnames && rgb && source ? UT_OK : ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", path);
  for (int d = 0; s == UT_OK && d < n_domains; d++)
    dnames[d] = domain_names && domain_names[d] ? domain_names[d] : ut_synth_domain_name(domains[d]);
  for (int c = 0; s == UT_OK && c < cfg->classes; c++) {
    if (!(cnames[c] = malloc(24))) s = ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", path);
    else snprintf(cnames[c], 24, "object-%03d", c);
  }
  static const char *const attribute_names[] = { "style" };
  ut_dataset_writer *w = NULL;
  if (s == UT_OK) {
    ut_dataset_desc desc = { .height = cfg->size, .width = cfg->size, .channels = 3, .n_classes = cfg->classes,
                             .class_names = (const char *const *)cnames, .n_contents = cfg->views,
                             .source_json = source, .n_domains = n_domains, .domain_names = dnames,
                             .n_attributes = 1, .attribute_names = attribute_names };
    if (!(w = ut_dataset_writer_open(out_path, &desc))) s = UT_ERR_IO;
  }
  int64_t total = (int64_t)n_domains * cfg->classes * cfg->views * n_styles, done = 0;
  ut_synth_cfg one = *cfg;
  for (int d = 0; s == UT_OK && d < n_domains; d++)
    for (int c = 0; s == UT_OK && c < cfg->classes; c++)
      for (int v = 0; s == UT_OK && v < cfg->views; v++)
        for (int k = 0; s == UT_OK && k < n_styles; k++) {
          one.domain = domains[d];
          one.style = k;
          float style = (float)k;
          s = ut_synth_render(&one, c, v, rgb);
          if (s == UT_OK)
            s = ut_dataset_writer_add_labels(w, rgb, &(ut_image_labels){ .class_id = c, .content_id = v, .domain_id = d,
                                                                         .attributes = &style });
          if (s == UT_OK && progress && (++done % 256 == 0 || done == total)) progress(user, done, total);
        }
  if (w) {
    if (s == UT_OK) s = ut_dataset_writer_finish(w);
    else ut_dataset_writer_abort(w);
  }
  for (int c = 0; cnames && c < cfg->classes; c++) free(cnames[c]);
  free(cnames);
  free(dnames);
  free(rgb);
  free(source);
  return s;
}
