/* The built-in rendered data set as a data set file: every class in every view, class-major,
 * rendered by ut_synth_render (engine/data/synth.c) on a few threads and written in order; with
 * a list of looks, the whole set once per look (domain-major), labelled with the domain. */
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "data_internal.h"

enum { MAX_THREADS = 16, CHUNK_PER_THREAD = 8 };

typedef struct {
  const ut_synth_cfg *cfg;
  const int *looks; /* per domain, or NULL: cfg->domain for every image */
  uint8_t *out;     /* chunk images, size * size * 3 each */
  int64_t first, n; /* image range of this chunk */
  int thread, threads;
  ut_status status;
  char error[512];
} job;

/* Image i of the set is class (i % per) / views in view i % views of domain i / per, where per
 * = classes x views. */
static void *render_part(void *arg) {
  job *j = arg;
  ut_synth_cfg cfg = *j->cfg;
  size_t bytes = (size_t)cfg.size * (size_t)cfg.size * 3;
  int64_t per = (int64_t)cfg.classes * cfg.views;
  for (int64_t k = j->thread; k < j->n && j->status == UT_OK; k += j->threads) {
    int64_t i = j->first + k;
    if (j->looks) cfg.domain = j->looks[i / per];
    i %= per;
    j->status = ut_synth_render(&cfg, (int)(i / cfg.views), (int)(i % cfg.views), j->out + (size_t)k * bytes);
    if (j->status != UT_OK) snprintf(j->error, sizeof j->error, "%s", ut_last_error()); /* errors are per thread */
  }
  return NULL;
}

/* Both entry points: looks == NULL renders cfg->domain without domain labels. */
static ut_status write_set(const ut_synth_cfg *cfg, const int *looks, const char *const *domain_names, int n_looks,
                           const char *out_path, int threads,
                           void (*progress)(void *user, int64_t done, int64_t total), void *user) {
  int n_sets = looks ? n_looks : 1;
  if (!cfg || !out_path || cfg->classes < 1 || cfg->views < 1 || cfg->size < 1 || cfg->size > 4096 ||
      (int64_t)cfg->classes * cfg->views * n_sets > INT32_MAX)
    return ut_fail(UT_ERR_INVALID_ARGUMENT,
                   "ut_synth_write_dataset: needs classes, views >= 1, size 1..4096 and at most 2^31 - 1 images");
  if (!looks && !ut_synth_domain_name(cfg->domain))
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: look %d, expected 0 .. %d", out_path, cfg->domain,
                   ut_synth_domain_count() - 1);
  for (int d = 0; looks && d < n_looks; d++)
    if (!ut_synth_domain_name(looks[d]))
      return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: domain %d is look %d, expected 0 .. %d", out_path, d, looks[d],
                     ut_synth_domain_count() - 1);
  if (threads < 1) threads = 2;
  if (threads > MAX_THREADS) threads = MAX_THREADS;
  char **names = calloc((size_t)cfg->classes, sizeof *names);
  if (!names) return ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", out_path);
  ut_status s = UT_OK;
  for (int c = 0; c < cfg->classes && s == UT_OK; c++) {
    names[c] = malloc(24);
    if (!names[c])
      s = ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", out_path);
    else
      snprintf(names[c], 24, "object-%03d", c);
  }
  json_t *src = json_pack("{s:s, s:i, s:i, s:i, s:I}", "kind", "synth", "classes", cfg->classes, "views", cfg->views,
                          "size", cfg->size, "seed", (json_int_t)cfg->seed);
  /* A seed past 2^63 does not fit a JSON integer; the string form keeps it exact. */
  if (src && cfg->seed > (uint64_t)INT64_MAX) {
    char buf[32];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)cfg->seed);
    json_object_set_new(src, "seed", json_string(buf));
  }
  /* The look goes into the source so evaluation can re-render; day sets stay as before. */
  if (src && looks) {
    json_t *arr = json_array();
    for (int d = 0; d < n_looks; d++) json_array_append_new(arr, json_string(ut_synth_domain_name(looks[d])));
    json_object_set_new(src, "domains", arr);
  } else if (src && cfg->domain != UT_SYNTH_DAY) {
    json_object_set_new(src, "domain", json_string(ut_synth_domain_name(cfg->domain)));
  }
  const char **dnames = looks ? calloc((size_t)n_looks, sizeof *dnames) : NULL;
  if (looks && !dnames) s = ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", out_path);
  for (int d = 0; dnames && d < n_looks; d++)
    dnames[d] = domain_names && domain_names[d] ? domain_names[d] : ut_synth_domain_name(looks[d]);
  char *source = src ? json_dumps(src, JSON_COMPACT) : NULL;
  json_decref(src);
  if (s == UT_OK && !source) s = ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", out_path);
  ut_dataset_writer *w = NULL;
  if (s == UT_OK) {
    ut_dataset_desc desc = { .height = cfg->size, .width = cfg->size, .channels = 3, .n_classes = cfg->classes,
                             .class_names = (const char *const *)names, .n_contents = cfg->views,
                             .source_json = source, .n_domains = looks ? n_looks : 0, .domain_names = dnames };
    if (!(w = ut_dataset_writer_open(out_path, &desc))) s = UT_ERR_IO;
  }
  int64_t per = (int64_t)cfg->classes * cfg->views, total = per * n_sets, chunk = (int64_t)threads * CHUNK_PER_THREAD;
  size_t bytes = (size_t)cfg->size * (size_t)cfg->size * 3;
  uint8_t *buf = s == UT_OK ? malloc((size_t)chunk * bytes) : NULL;
  if (s == UT_OK && !buf) s = ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", out_path);
  job jobs[MAX_THREADS];
  pthread_t tids[MAX_THREADS];
  for (int64_t first = 0; s == UT_OK && first < total; first += chunk) {
    int64_t n = total - first < chunk ? total - first : chunk;
    int started[MAX_THREADS] = { 0 };
    for (int t = 0; t < threads; t++) {
      jobs[t] = (job){ .cfg = cfg, .looks = looks, .out = buf, .first = first, .n = n, .thread = t, .threads = threads };
      if (t > 0) started[t] = pthread_create(&tids[t], NULL, render_part, &jobs[t]) == 0;
    }
    /* Thread 0's share runs here, and so does the share of a thread that could not start. */
    render_part(&jobs[0]);
    for (int t = 1; t < threads; t++) {
      if (started[t])
        pthread_join(tids[t], NULL);
      else
        render_part(&jobs[t]);
    }
    for (int t = 0; t < threads && s == UT_OK; t++)
      if (jobs[t].status != UT_OK) s = ut_fail(jobs[t].status, "%s: rendering failed: %s", out_path, jobs[t].error);
    for (int64_t k = 0; s == UT_OK && k < n; k++) {
      int64_t i = (first + k) % per;
      s = ut_dataset_writer_add_domain(w, buf + (size_t)k * bytes, (int)(i / cfg->views), (int)(i % cfg->views),
                                       looks ? (int)((first + k) / per) : -1);
    }
    if (s == UT_OK && progress) progress(user, first + n, total);
  }
  if (w) {
    if (s == UT_OK)
      s = ut_dataset_writer_finish(w);
    else
      ut_dataset_writer_abort(w);
  }
  for (int c = 0; c < cfg->classes; c++) free(names[c]);
  free(names);
  free(dnames);
  free(source);
  free(buf);
  return s;
}

ut_status ut_synth_write_dataset(const ut_synth_cfg *cfg, const char *out_path, int threads,
                                 void (*progress)(void *user, int64_t done, int64_t total), void *user) {
  return write_set(cfg, NULL, NULL, 0, out_path, threads, progress, user);
}

ut_status ut_synth_write_domains(const ut_synth_cfg *cfg, const int *domains, const char *const *domain_names,
                                 int n_domains, const char *out_path, int threads,
                                 void (*progress)(void *user, int64_t done, int64_t total), void *user) {
  if (!domains || n_domains < 1)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_synth_write_domains: %s: needs at least one look",
                   out_path ? out_path : "(no path)");
  return write_set(cfg, domains, domain_names, n_domains, out_path, threads, progress, user);
}
