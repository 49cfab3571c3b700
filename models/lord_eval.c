/* LORD's evaluation (lord_eval.h): content transfer against true images, leakage probes,
 * reconstruction and class transfer judged by an independent classifier. Images are handled in
 * chunks so host memory stays bounded for any data set size. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "image_classifier.h"
#include "lord_eval.h"
#include "lord_train.h"
#include "vgg.h"

#define CHUNK 128 /* images per encode / generate / compare round */
#define EVAL_VGG_PREFIX "vgg."

lord_eval_cfg lord_eval_default_cfg(void) {
  return (lord_eval_cfg){ .seed = 1, .pairs = 1000, .probe_samples = 10000, .recon_samples = 2000,
                          .classifier_images = 10000, .classifier_epochs = 5 };
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Everything one evaluation shares: the model, the data, scratch buffers for one chunk. */
typedef struct {
  lord_model *m;
  int stage;
  const ut_dataset *ds;
  const lord_cfg *c;
  int64_t per;                      /* floats per image */
  float *a, *b, *out;               /* CHUNK images each */
  float *content, *klass;           /* CHUNK codes each */
  float *new_content, *new_class;   /* CHUNK codes each, as computed before they are cached */
  int32_t *classes;                 /* CHUNK class ids */
  float *content_all, *class_all;   /* every image's codes, valid where have[i] */
  uint8_t *have;
  ut_graph *vgg_g;                  /* LORD's VGG distance of two CHUNK batches, when weights are given */
  ut_store *vgg_st;
  ut_plan *vgg_p;
  ut_tensor *vgg_a, *vgg_b, *vgg_d;
} eval_ctx;

static void load_images(const eval_ctx *x, const int32_t *ids, int64_t n, float *dst) {
  for (int64_t i = 0; i < n; i++) ut_dataset_image_chw(x->ds, ids[i], dst + i * x->per);
}

/* Codes of n <= CHUNK images with the given stage's means: the stage-2 encoders applied to the
 * images, or the stage-1 embeddings of the images and their classes. */
static ut_status compute_codes(eval_ctx *x, int stage, const int32_t *ids, int64_t n, float *content, float *klass) {
  if (stage >= 2) {
    load_images(x, ids, n, x->b);
    return lord_encode(x->m, x->b, n, content, klass);
  }
  for (int64_t i = 0; i < n; i++) x->classes[i] = ut_dataset_class(x->ds, ids[i]);
  return lord_embedded_codes(x->m, ids, x->classes, n, content, klass);
}

/* The run's codes of n images (any n) into content [n, content_dim] and klass [n, class_dim]
 * (either may be NULL). Each image's codes are computed once per evaluation and kept: the
 * measures share images, and encoding is most of their cost. */
static ut_status codes_of(eval_ctx *x, const int32_t *ids, int64_t n, float *content, float *klass) {
  int64_t cd = x->c->content_dim, kd = x->c->class_dim;
  int32_t missing[CHUNK];
  int64_t n_missing = 0;
  ut_status st = UT_OK;
  for (int64_t i = 0; st == UT_OK && i <= n; i++) {
    /* Queue uncached images (each once) and compute a chunk when it is full or at the end. */
    if (i < n && !x->have[ids[i]]) {
      x->have[ids[i]] = 1;
      missing[n_missing++] = ids[i];
    }
    if (n_missing == CHUNK || (i == n && n_missing > 0)) {
      st = compute_codes(x, x->stage, missing, n_missing, x->new_content, x->new_class);
      for (int64_t k = 0; st == UT_OK && k < n_missing; k++) {
        memcpy(x->content_all + missing[k] * cd, x->new_content + k * cd, (size_t)cd * sizeof(float));
        memcpy(x->class_all + missing[k] * kd, x->new_class + k * kd, (size_t)kd * sizeof(float));
      }
      if (st != UT_OK)
        for (int64_t k = 0; k < n_missing; k++) x->have[missing[k]] = 0;
      n_missing = 0;
    }
  }
  for (int64_t i = 0; st == UT_OK && i < n; i++) {
    if (content) memcpy(content + i * cd, x->content_all + ids[i] * cd, (size_t)cd * sizeof(float));
    if (klass) memcpy(klass + i * kd, x->class_all + ids[i] * kd, (size_t)kd * sizeof(float));
  }
  return st;
}

/* x->out gets the content of content_ids[i] drawn in the class of class_ids[i], i < n <= CHUNK. */
static ut_status translate(eval_ctx *x, const int32_t *content_ids, const int32_t *class_ids, int64_t n) {
  ut_status st = codes_of(x, content_ids, n, x->content, NULL);
  if (st == UT_OK) st = codes_of(x, class_ids, n, NULL, x->klass);
  if (st == UT_OK) st = lord_generate(x->m, x->content, x->klass, n, x->out);
  return st;
}

static double l1_sum(const float *a, const float *b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += fabs((double)a[i] - (double)b[i]);
  return s;
}

static ut_status vgg_open(eval_ctx *x, ut_runtime *rt, const char *weights) {
  if (!(x->vgg_st = ut_store_new(rt, 1))) return UT_ERR_HOST_MEMORY;
  ut_status st = ut_store_import(x->vgg_st, weights, EVAL_VGG_PREFIX);
  if (st != UT_OK) return st;
  if (!(x->vgg_g = ut_graph_new(rt, x->vgg_st))) return UT_ERR_HOST_MEMORY;
  ut_shape s = UT_SHAPE(CHUNK, x->c->channels, x->c->size, x->c->size);
  x->vgg_a = ut_input(x->vgg_g, "a", UT_F32, s);
  x->vgg_b = ut_input(x->vgg_g, "b", UT_F32, s);
  x->vgg_d = vgg16_distance(x->vgg_g, x->vgg_a, x->vgg_b, EVAL_VGG_PREFIX);
  x->vgg_p = ut_plan_compile(x->vgg_g, &(ut_plan_cfg){ .outputs = &x->vgg_d, .n_outputs = 1 });
  return x->vgg_p ? UT_OK : ut_graph_status(x->vgg_g) != UT_OK ? ut_graph_status(x->vgg_g) : UT_ERR_STATE;
}

/* The sum over n <= CHUNK pairs of their VGG distances. The batch is padded with pairs of equal
 * (zero) images, whose distance is exactly 0, so the batch mean times CHUNK is the sum. */
static ut_status vgg_sum(eval_ctx *x, float *a, float *b, int64_t n, double *sum) {
  memset(a + n * x->per, 0, (size_t)((CHUNK - n) * x->per) * sizeof(float));
  memset(b + n * x->per, 0, (size_t)((CHUNK - n) * x->per) * sizeof(float));
  float d = 0;
  ut_status st = ut_upload(x->vgg_p, x->vgg_a, a);
  if (st == UT_OK) st = ut_upload(x->vgg_p, x->vgg_b, b);
  if (st == UT_OK) st = ut_plan_run(x->vgg_p);
  if (st == UT_OK) st = ut_read(x->vgg_p, x->vgg_d, &d);
  *sum += (double)d * CHUNK;
  return st;
}

/* A seeded random element of list[0 .. n). */
static int32_t pick(const int32_t *list, int64_t n, uint64_t seed, uint64_t k) {
  return list[probe_hash(seed * 0x9E3779B97F4A7C15ull + k) % (uint64_t)n];
}

/* (a): translations of content sources (training images) into the classes of class sources from
 * `class_list`, against the data set's image of the class source's class in the content
 * source's pose. Pairs whose true image is missing are redrawn (a bounded number of times). */
static ut_status content_transfer(eval_ctx *x, const lord_eval_cfg *cfg, const int32_t *class_list, int64_t n_class,
                                  const int32_t *train, int64_t n_train, const int32_t *truth, uint64_t stream,
                                  lord_eval_transfer *r) {
  int n_contents = ut_dataset_n_contents(x->ds);
  int32_t content_ids[CHUNK], class_ids[CHUNK], truth_ids[CHUNK];
  double l1 = 0, vgg = 0;
  int64_t done = 0, k = 0, limit = cfg->pairs * 20;
  ut_status st = UT_OK;
  while (st == UT_OK && done < cfg->pairs && k < limit) {
    int64_t n = 0;
    while (n < CHUNK && done + n < cfg->pairs && k < limit) {
      int32_t ci = pick(class_list, n_class, cfg->seed + stream, (uint64_t)k * 2);
      int32_t ti = pick(train, n_train, cfg->seed + stream, (uint64_t)k * 2 + 1);
      k++;
      int cc = ut_dataset_class(x->ds, ci), tc = ut_dataset_class(x->ds, ti), v = ut_dataset_content(x->ds, ti);
      if (cc == tc || v < 0 || truth[(int64_t)cc * n_contents + v] < 0) continue;
      content_ids[n] = ti;
      class_ids[n] = ci;
      truth_ids[n] = truth[(int64_t)cc * n_contents + v];
      n++;
    }
    if (n == 0) break;
    if ((st = translate(x, content_ids, class_ids, n)) != UT_OK) break;
    load_images(x, truth_ids, n, x->a);
    l1 += l1_sum(x->out, x->a, n * x->per);
    if (x->vgg_p) st = vgg_sum(x, x->out, x->a, n, &vgg);
    done += n;
  }
  r->pairs = done;
  r->l1 = done ? l1 / ((double)done * (double)x->per) : NAN;
  r->vgg = done && x->vgg_p ? vgg / (double)done : NAN;
  return st;
}

/* (c): mean L1 between up to `max` images of `list` and their reconstructions. */
static ut_status reconstruction(eval_ctx *x, const int32_t *list, int64_t n_list, int64_t max, lord_eval_transfer *r) {
  int64_t n = n_list < max ? n_list : max;
  double l1 = 0;
  ut_status st = UT_OK;
  for (int64_t at = 0; st == UT_OK && at < n; at += CHUNK) {
    int64_t take = n - at < CHUNK ? n - at : CHUNK;
    /* Spread over the list rather than its first images (which are of few classes). */
    int32_t ids[CHUNK];
    for (int64_t i = 0; i < take; i++) ids[i] = list[(at + i) * n_list / n];
    st = codes_of(x, ids, take, x->content, x->klass);
    if (st == UT_OK) st = lord_generate(x->m, x->content, x->klass, take, x->out);
    if (st == UT_OK) {
      load_images(x, ids, take, x->a);
      l1 += l1_sum(x->out, x->a, take * x->per);
    }
  }
  r->pairs = n;
  r->l1 = n ? l1 / ((double)n * (double)x->per) : NAN;
  r->vgg = NAN;
  return st;
}

/* (b): probes on the codes of up to cfg->probe_samples training images, with the stage's
 * codes (stage_codes) or the stage-1 embeddings. */
static ut_status probes(eval_ctx *x, ut_runtime *rt, const lord_eval_cfg *cfg, const int32_t *train, int64_t n_train,
                        int stage_codes, lord_eval_probe *class_from_content, lord_eval_probe *content_from_class) {
  int64_t n = n_train < cfg->probe_samples ? n_train : cfg->probe_samples;
  int64_t *perm = malloc((size_t)n_train * sizeof *perm);
  int32_t *ids = malloc((size_t)n * sizeof *ids), *class_of = malloc((size_t)n * sizeof *class_of);
  int32_t *content_of = malloc((size_t)n * sizeof *content_of);
  float *content = malloc((size_t)(n * x->c->content_dim) * sizeof *content);
  float *klass = malloc((size_t)(n * x->c->class_dim) * sizeof *klass);
  ut_status st = perm && ids && class_of && content_of && content && klass
                     ? UT_OK
                     : ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for %lld codes", (long long)n);
  if (st == UT_OK) {
    probe_permutation(cfg->seed + 11, n_train, perm);
    for (int64_t i = 0; i < n; i++) {
      ids[i] = train[perm[i]];
      class_of[i] = ut_dataset_class(x->ds, ids[i]);
      content_of[i] = ut_dataset_content(x->ds, ids[i]);
    }
  }
  if (st == UT_OK && stage_codes == x->stage) st = codes_of(x, ids, n, content, klass);
  for (int64_t at = 0; st == UT_OK && stage_codes != x->stage && at < n; at += CHUNK)
    st = compute_codes(x, stage_codes, ids + at, n - at < CHUNK ? n - at : CHUNK, content + at * x->c->content_dim,
                       klass + at * x->c->class_dim);
  if (st == UT_OK) {
    st = probe_accuracy(rt, content, n, x->c->content_dim, class_of, ut_dataset_n_classes(x->ds), cfg->seed,
                        &class_from_content->result);
    class_from_content->measured = st == UT_OK;
  }
  if (st == UT_OK && ut_dataset_n_contents(x->ds) >= 2) {
    st = probe_accuracy(rt, klass, n, x->c->class_dim, content_of, ut_dataset_n_contents(x->ds), cfg->seed,
                        &content_from_class->result);
    content_from_class->measured = st == UT_OK;
  }
  free(perm);
  free(ids);
  free(class_of);
  free(content_of);
  free(content);
  free(klass);
  return st;
}

/* (d): the judge, trained on up to cfg->classifier_images real images, scores translations of
 * training images into other training classes. */
static ut_status class_transfer(eval_ctx *x, ut_runtime *rt, const lord_eval_cfg *cfg, const int32_t *train,
                                int64_t n_train, lord_eval_report *r) {
  const ut_dataset *ds = x->ds;
  int k = ut_dataset_n_classes(ds);
  int64_t total = ut_dataset_count(ds), n = total < cfg->classifier_images ? total : cfg->classifier_images;
  int64_t *perm = malloc((size_t)total * sizeof *perm);
  float *images = malloc((size_t)(n * x->per) * sizeof *images);
  int32_t *labels = malloc((size_t)n * sizeof *labels);
  /* Training images grouped by class: by_class[start[c] .. start[c + 1]). */
  int32_t *by_class = malloc((size_t)n_train * sizeof *by_class);
  int64_t *start = calloc((size_t)k + 1, sizeof *start), *fill = malloc((size_t)(k + 1) * sizeof *fill);
  image_classifier *clf = NULL;
  ut_status st = perm && images && labels && by_class && start && fill ? UT_OK : ut_fail(UT_ERR_HOST_MEMORY, "out of host memory");
  if (st == UT_OK) {
    probe_permutation(cfg->seed + 23, total, perm);
    for (int64_t i = 0; i < n; i++) {
      ut_dataset_image_chw(ds, (int32_t)perm[i], images + i * x->per);
      labels[i] = ut_dataset_class(ds, (int32_t)perm[i]);
    }
    st = image_classifier_train(rt, images, n, x->c->channels, x->c->size, x->c->size, labels, k, cfg->seed,
                                cfg->classifier_epochs, &clf);
  }
  if (st == UT_OK) {
    for (int64_t i = 0; i < n_train; i++) start[ut_dataset_class(ds, train[i]) + 1]++;
    for (int c = 0; c < k; c++) start[c + 1] += start[c];
    for (int c = 0; c <= k; c++) fill[c] = start[c];
    for (int64_t i = 0; i < n_train; i++) by_class[fill[ut_dataset_class(ds, train[i])]++] = train[i];
  }
  int trained_classes = 0;
  for (int c = 0; st == UT_OK && c < k; c++) trained_classes += start[c + 1] > start[c];
  if (st == UT_OK && trained_classes < 2) st = ut_fail(UT_ERR_INVALID_ARGUMENT, "class transfer needs two training classes");
  int64_t target_hits = 0, content_hits = 0, done = 0, draw = 0;
  while (st == UT_OK && done < cfg->pairs) {
    int32_t content_ids[CHUNK], class_ids[CHUNK], target[CHUNK], own[CHUNK], judged[CHUNK];
    int64_t m = 0;
    for (; m < CHUNK && done + m < cfg->pairs; draw++) {
      int32_t ti = pick(train, n_train, cfg->seed + 31, (uint64_t)draw * 2);
      int t = (int)(probe_hash(cfg->seed * 0x9E3779B97F4A7C15ull + 977 + (uint64_t)draw * 2 + 1) % (uint64_t)k);
      if (t == ut_dataset_class(ds, ti) || start[t + 1] == start[t]) continue;
      content_ids[m] = ti;
      class_ids[m] = pick(by_class + start[t], start[t + 1] - start[t], cfg->seed + 37, (uint64_t)draw);
      target[m] = t;
      own[m] = ut_dataset_class(ds, ti);
      m++;
    }
    if ((st = translate(x, content_ids, class_ids, m)) != UT_OK) break;
    if ((st = image_classifier_predict(clf, x->out, m, judged)) != UT_OK) break;
    for (int64_t i = 0; i < m; i++) {
      target_hits += judged[i] == target[i];
      content_hits += judged[i] == own[i];
    }
    done += m;
  }
  if (st == UT_OK) {
    r->judged = done;
    r->judged_target = (double)target_hits / (double)done;
    r->judged_content_class = (double)content_hits / (double)done;
    r->judge_chance = 1.0 / trained_classes;
    r->judge_heldout_accuracy = image_classifier_get_report(clf)->heldout_accuracy;
  }
  image_classifier_free(clf);
  free(perm);
  free(images);
  free(labels);
  free(by_class);
  free(start);
  free(fill);
  return st;
}

/* truth[class * n_contents + content]: an image of that class in that pose, or -1. */
static int32_t *truth_table(const ut_dataset *ds) {
  int64_t k = ut_dataset_n_classes(ds), v = ut_dataset_n_contents(ds);
  int32_t *t = malloc((size_t)(k * v) * sizeof *t);
  if (!t) return NULL;
  for (int64_t i = 0; i < k * v; i++) t[i] = -1;
  for (int32_t i = ut_dataset_count(ds) - 1; i >= 0; i--)
    if (ut_dataset_content(ds, i) >= 0) t[(int64_t)ut_dataset_class(ds, i) * v + ut_dataset_content(ds, i)] = i;
  return t;
}

static void part(const lord_eval_cfg *cfg, const char *name) {
  if (cfg->on_part) cfg->on_part(cfg->user, name);
}

static ut_status evaluate(eval_ctx *x, ut_runtime *rt, const lord_eval_cfg *cfg, const ut_dataset_split *sp,
                          lord_eval_report *r) {
  ut_status st = UT_OK;
  int32_t *truth = NULL;
  if (ut_dataset_n_contents(x->ds) < 1)
    snprintf(r->why_no_transfer, sizeof r->why_no_transfer,
             "%s has no content labels, so the true translations are unknown", ut_dataset_path(x->ds));
  else if (!(truth = truth_table(x->ds)))
    return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory");
  if (truth) {
    part(cfg, "content transfer");
    if (sp->n_test_class > 0 && x->stage >= 2)
      st = content_transfer(x, cfg, sp->test_class, sp->n_test_class, sp->train, sp->n_train, truth, 1, &r->transfer_unseen);
    else
      snprintf(r->why_no_transfer, sizeof r->why_no_transfer, "%s",
               x->stage < 2 ? "held-out classes need the stage-2 encoders" : "the run holds out no classes");
    if (st == UT_OK)
      st = content_transfer(x, cfg, sp->train, sp->n_train, sp->train, sp->n_train, truth, 2, &r->transfer_seen);
    free(truth);
  }
  if (st == UT_OK) {
    part(cfg, "probes");
    st = probes(x, rt, cfg, sp->train, sp->n_train, x->stage, &r->class_from_content, &r->content_from_class);
  }
  if (st == UT_OK && x->stage >= 2)
    st = probes(x, rt, cfg, sp->train, sp->n_train, 1, &r->class_from_content_embedded, &r->content_from_class_embedded);
  if (st == UT_OK) {
    part(cfg, "reconstruction");
    st = reconstruction(x, sp->train, sp->n_train, cfg->recon_samples, &r->recon_train);
  }
  if (st == UT_OK && x->stage >= 2 && sp->n_test_class > 0)
    st = reconstruction(x, sp->test_class, sp->n_test_class, cfg->recon_samples, &r->recon_unseen);
  if (st == UT_OK) {
    part(cfg, "class transfer");
    st = class_transfer(x, rt, cfg, sp->train, sp->n_train, r);
  }
  return st;
}

ut_status lord_evaluate(ut_runtime *rt, lord_model *m, int stage, const ut_dataset *ds, int test_classes, double test_ratio,
                        const lord_eval_cfg *cfg_in, lord_eval_report *r) {
  lord_eval_cfg cfg = cfg_in ? *cfg_in : lord_eval_default_cfg();
  const lord_cfg *c = lord_config(m);
  if (ut_dataset_channels(ds) != c->channels || ut_dataset_height(ds) != c->size || ut_dataset_width(ds) != c->size ||
      ut_dataset_count(ds) != c->n_images || ut_dataset_n_classes(ds) != c->n_classes)
    return ut_fail(UT_ERR_MISMATCH,
                   "%s holds %d images of %d classes at %dx%d with %d channels; the run was trained on %lld images of "
                   "%lld classes at %dx%d with %d: evaluate it on the data set it was trained on",
                   ut_dataset_path(ds), ut_dataset_count(ds), ut_dataset_n_classes(ds), ut_dataset_width(ds),
                   ut_dataset_height(ds), ut_dataset_channels(ds), (long long)c->n_images, (long long)c->n_classes,
                   c->size, c->size, c->channels);
  if (cfg.pairs < 1 || cfg.probe_samples < 2 || cfg.recon_samples < 1 || cfg.classifier_images < 2 ||
      cfg.classifier_epochs < 1)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "lord_evaluate: pairs, samples and epochs must be positive");
  double t0 = now_seconds();
  *r = (lord_eval_report){ .stage = stage };
  r->transfer_unseen.l1 = r->transfer_unseen.vgg = r->transfer_seen.l1 = r->transfer_seen.vgg = NAN;
  r->recon_unseen.l1 = r->recon_unseen.vgg = NAN;
  ut_dataset_split sp;
  ut_status st = lord_run_split(ds, c, test_classes, test_ratio, &sp);
  if (st != UT_OK) return st;
  r->n_test_classes = sp.n_test_classes;
  r->n_train = sp.n_train;
  r->n_unseen = sp.n_test_class;
  eval_ctx x = { .m = m, .stage = stage, .ds = ds, .c = c, .per = (int64_t)c->channels * c->size * c->size };
  x.a = malloc((size_t)(CHUNK * x.per) * sizeof(float));
  x.b = malloc((size_t)(CHUNK * x.per) * sizeof(float));
  x.out = malloc((size_t)(CHUNK * x.per) * sizeof(float));
  x.content = malloc((size_t)CHUNK * c->content_dim * sizeof(float));
  x.klass = malloc((size_t)CHUNK * c->class_dim * sizeof(float));
  x.new_content = malloc((size_t)CHUNK * c->content_dim * sizeof(float));
  x.new_class = malloc((size_t)CHUNK * c->class_dim * sizeof(float));
  x.classes = malloc(CHUNK * sizeof(int32_t));
  x.content_all = malloc((size_t)(c->n_images * c->content_dim) * sizeof(float));
  x.class_all = malloc((size_t)(c->n_images * c->class_dim) * sizeof(float));
  x.have = calloc((size_t)c->n_images, 1);
  if (!x.a || !x.b || !x.out || !x.content || !x.klass || !x.new_content || !x.new_class || !x.classes || !x.content_all || !x.class_all || !x.have)
    st = ut_fail(UT_ERR_HOST_MEMORY, "out of host memory");
  if (st == UT_OK && cfg.vgg_weights) {
    if (c->size < 32) st = ut_fail(UT_ERR_INVALID_ARGUMENT, "the VGG distance needs images of at least 32x32, not %d", c->size);
    else st = vgg_open(&x, rt, cfg.vgg_weights);
  }
  if (st == UT_OK) st = evaluate(&x, rt, &cfg, &sp, r);
  r->seconds = now_seconds() - t0;
  ut_plan_free(x.vgg_p);
  ut_graph_free(x.vgg_g);
  ut_store_free(x.vgg_st);
  free(x.a);
  free(x.b);
  free(x.out);
  free(x.content);
  free(x.klass);
  free(x.new_content);
  free(x.new_class);
  free(x.classes);
  free(x.content_all);
  free(x.class_all);
  free(x.have);
  ut_dataset_split_free(&sp);
  return st;
}
