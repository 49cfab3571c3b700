/* LORD's evaluation (lord_eval.h): content transfer against true images and baselines, probes,
 * reconstruction and class transfer judged by an independent classifier, for each stage the run
 * trained. Images are handled in chunks so host memory stays bounded for any data set size. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lord_eval.h"
#include "kit_random.h"
#include "lord_eval_judge.h"
#include "lord_train.h"
#include "vgg.h"

#define CHUNK 128 /* images per encode / generate / compare round */
#define EVAL_VGG_PREFIX "vgg."

lord_eval_cfg lord_eval_default_cfg(void) {
  return (lord_eval_cfg){ .seed = 1, .pairs = 1000, .probe_samples = 10000, .recon_samples = 2000,
                          .classifier_images = 10000, .classifier_epochs = 10, .judge_min_accuracy = 0.9 };
}

/* Everything one evaluation shares: the model, the data, scratch buffers for one chunk. */
typedef struct {
  lord_model *m;
  int stage;                        /* whose codes: 1 the embeddings, 2 the encoders */
  const ut_dataset *ds;
  const lord_cfg *c;
  int64_t per;                      /* floats per image */
  float *a, *b, *out;               /* CHUNK images each */
  float *content, *klass;           /* CHUNK codes each */
  float *new_content, *new_class;   /* CHUNK codes each, as computed before they are cached */
  int32_t *classes;                 /* CHUNK class ids */
  float *guess;                     /* one baseline image */
  float *content_all, *class_all;   /* every image's codes of x->stage, valid where have[i] */
  uint8_t *have;
  ut_graph *vgg_g;                  /* LORD's VGG distance of two CHUNK batches, when weights are given */
  ut_store *vgg_st;
  ut_plan *vgg_p;
  ut_tensor *vgg_a, *vgg_b, *vgg_d;
} eval_ctx;

static void load_images(const eval_ctx *x, const int32_t *ids, int64_t n, float *dst) {
  for (int64_t i = 0; i < n; i++) ut_dataset_image_chw(x->ds, ids[i], dst + i * x->per);
}

/* Codes of n <= CHUNK images with the current stage's means: the stage-2 encoders applied to the
 * images, or the stage-1 embeddings of the images and their classes. */
static ut_status compute_codes(eval_ctx *x, const int32_t *ids, int64_t n, float *content, float *klass) {
  if (x->stage >= 2) {
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
      st = compute_codes(x, missing, n_missing, x->new_content, x->new_class);
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
  return list[kit_hash64(seed * 0x9E3779B97F4A7C15ull + k) % (uint64_t)n];
}

/* Content-transfer pairs with the object mask of each truth (masks NULL without them). */
typedef struct {
  lord_eval_pair *pairs;
  int64_t n;
  uint8_t *masks; /* [n, pixels] */
} pair_set;

static void pair_set_free(pair_set *ps) {
  free(ps->pairs);
  free(ps->masks);
}

static ut_status pair_set_draw(eval_ctx *x, const lord_eval_cfg *cfg, const lord_eval_refs *refs, const int32_t *class_list,
                               int64_t n_class, const int32_t *content_list, int64_t n_content, uint64_t stream,
                               pair_set *ps) {
  int64_t pixels = (int64_t)x->c->size * x->c->size;
  ps->pairs = malloc((size_t)cfg->pairs * sizeof *ps->pairs);
  if (!ps->pairs) return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for %lld pairs", (long long)cfg->pairs);
  ut_status st = lord_eval_draw_pairs(x->ds, class_list, n_class, content_list, n_content, cfg->pairs, cfg->seed + stream,
                                      ps->pairs, &ps->n);
  if (st != UT_OK || lord_eval_refs_why_no_mask(refs)) return st;
  if (!(ps->masks = malloc((size_t)(ps->n * pixels))))
    return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for %lld masks", (long long)ps->n);
  for (int64_t i = 0; st == UT_OK && i < ps->n; i++) st = lord_eval_refs_mask(refs, ps->pairs[i].truth, ps->masks + i * pixels);
  return st;
}

static void set_figures(const lord_eval_score *s, lord_eval_transfer *t) {
  t->pairs = s->pairs;
  lord_eval_score_means(s, &t->l1, &t->foreground_l1, &t->colour);
  t->vgg = NAN;
}

/* Every baseline's figures on the pairs of ps. */
static void score_baselines(eval_ctx *x, const lord_eval_refs *refs, const pair_set *ps, lord_eval_transfer *out) {
  int64_t pixels = (int64_t)x->c->size * x->c->size;
  for (int b = 0; b < LORD_BASELINE_COUNT; b++) {
    lord_eval_score s = { 0 };
    /* The background is known only where the object is. */
    if (b == LORD_BASELINE_BACKGROUND && !ps->masks) continue;
    for (int64_t i = 0; i < ps->n; i++) {
      const uint8_t *mask = ps->masks ? ps->masks + i * pixels : NULL;
      lord_eval_refs_baseline(refs, b, &ps->pairs[i], mask, x->guess);
      ut_dataset_image_chw(x->ds, ps->pairs[i].truth, x->a);
      lord_eval_score_add(&s, x->guess, x->a, mask, x->c->channels, pixels);
    }
    set_figures(&s, &out[b]);
  }
}

/* (a): the translations of the pairs of ps with the current stage's codes. */
static ut_status content_transfer(eval_ctx *x, const pair_set *ps, lord_eval_transfer *r) {
  int64_t pixels = (int64_t)x->c->size * x->c->size;
  int32_t content_ids[CHUNK], class_ids[CHUNK], truth_ids[CHUNK];
  lord_eval_score s = { 0 };
  double vgg = 0;
  ut_status st = UT_OK;
  for (int64_t at = 0; st == UT_OK && at < ps->n; at += CHUNK) {
    int64_t n = ps->n - at < CHUNK ? ps->n - at : CHUNK;
    for (int64_t i = 0; i < n; i++) {
      content_ids[i] = ps->pairs[at + i].content_source;
      class_ids[i] = ps->pairs[at + i].class_source;
      truth_ids[i] = ps->pairs[at + i].truth;
    }
    if ((st = translate(x, content_ids, class_ids, n)) != UT_OK) break;
    load_images(x, truth_ids, n, x->a);
    for (int64_t i = 0; i < n; i++)
      lord_eval_score_add(&s, x->out + i * x->per, x->a + i * x->per, ps->masks ? ps->masks + (at + i) * pixels : NULL,
                          x->c->channels, pixels);
    if (x->vgg_p) st = vgg_sum(x, x->out, x->a, n, &vgg);
  }
  set_figures(&s, r);
  r->vgg = s.pairs && x->vgg_p ? vgg / (double)s.pairs : NAN;
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
  r->foreground_l1 = r->colour = r->vgg = NAN;
  return st;
}

static ut_status run_probe(ut_runtime *rt, const lord_eval_cfg *cfg, const float *codes, int64_t n, int64_t d,
                           const int32_t *labels, int n_labels, lord_eval_probe *p) {
  probe_cfg pc = probe_default_cfg();
  pc.stratified = 1;
  ut_status st = probe_accuracy_cfg(rt, codes, n, d, labels, n_labels, cfg->seed, &pc, &p->result);
  p->measured = st == UT_OK;
  return st;
}

/* (b): probes on the current stage's codes of up to cfg->probe_samples training images. */
static ut_status probes(eval_ctx *x, ut_runtime *rt, const lord_eval_cfg *cfg, const int32_t *train, int64_t n_train,
                        lord_eval_stage_report *r) {
  int64_t n = n_train < cfg->probe_samples ? n_train : cfg->probe_samples;
  int64_t cd = x->c->content_dim, kd = x->c->class_dim;
  int k = ut_dataset_n_classes(x->ds), v = ut_dataset_n_contents(x->ds);
  int64_t *perm = malloc((size_t)n_train * sizeof *perm);
  int32_t *ids = malloc((size_t)n * sizeof *ids), *class_of = malloc((size_t)n * sizeof *class_of);
  int32_t *content_of = malloc((size_t)n * sizeof *content_of);
  float *content = malloc((size_t)(n * cd) * sizeof *content), *klass = malloc((size_t)(n * kd) * sizeof *klass);
  ut_status st = perm && ids && class_of && content_of && content && klass
                     ? UT_OK
                     : ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for %lld codes", (long long)n);
  if (st == UT_OK) {
    kit_permutation(cfg->seed + 11, n_train, perm);
    for (int64_t i = 0; i < n; i++) {
      ids[i] = train[perm[i]];
      class_of[i] = ut_dataset_class(x->ds, ids[i]);
      content_of[i] = ut_dataset_content(x->ds, ids[i]);
    }
    st = codes_of(x, ids, n, content, klass);
  }
  if (st == UT_OK) st = run_probe(rt, cfg, content, n, cd, class_of, k, &r->class_from_content);
  if (st == UT_OK && v >= 2) st = run_probe(rt, cfg, content, n, cd, content_of, v, &r->content_from_content);
  if (x->stage < 2) {
    /* One embedding per class: a class code says nothing of the pose and everything of the class. */
    r->content_from_class.degenerate = "one class code per class: at chance by construction";
    r->class_from_class.degenerate = "one class code per class: perfect by construction";
  } else {
    if (st == UT_OK && v >= 2) st = run_probe(rt, cfg, klass, n, kd, content_of, v, &r->content_from_class);
    if (st == UT_OK) st = run_probe(rt, cfg, klass, n, kd, class_of, k, &r->class_from_class);
  }
  free(perm);
  free(ids);
  free(class_of);
  free(content_of);
  free(content);
  free(klass);
  return st;
}

/* Class-transfer pairs: a training image's content in a random other training class, drawn
 * from the images of that class. */
typedef struct {
  int32_t *content_ids, *class_ids, *target, *own;
  int64_t n;
  int trained_classes;
} judge_pairs;

static void judge_pairs_free(judge_pairs *jp) {
  free(jp->content_ids);
  free(jp->class_ids);
  free(jp->target);
  free(jp->own);
}

static ut_status judge_pairs_draw(const ut_dataset *ds, const lord_eval_cfg *cfg, const int32_t *train, int64_t n_train,
                                  judge_pairs *jp) {
  int k = ut_dataset_n_classes(ds);
  size_t n = (size_t)cfg->pairs;
  /* Training images grouped by class: by_class[start[c] .. start[c + 1]). */
  int32_t *by_class = malloc((size_t)n_train * sizeof *by_class);
  int64_t *start = calloc((size_t)k + 1, sizeof *start), *fill = malloc((size_t)(k + 1) * sizeof *fill);
  jp->content_ids = malloc(n * sizeof(int32_t));
  jp->class_ids = malloc(n * sizeof(int32_t));
  jp->target = malloc(n * sizeof(int32_t));
  jp->own = malloc(n * sizeof(int32_t));
  ut_status st = by_class && start && fill && jp->content_ids && jp->class_ids && jp->target && jp->own
                     ? UT_OK
                     : ut_fail(UT_ERR_HOST_MEMORY, "out of host memory");
  if (st == UT_OK) {
    for (int64_t i = 0; i < n_train; i++) start[ut_dataset_class(ds, train[i]) + 1]++;
    for (int c = 0; c < k; c++) jp->trained_classes += start[c + 1] > 0;
    for (int c = 0; c < k; c++) start[c + 1] += start[c];
    for (int c = 0; c <= k; c++) fill[c] = start[c];
    for (int64_t i = 0; i < n_train; i++) by_class[fill[ut_dataset_class(ds, train[i])]++] = train[i];
    if (jp->trained_classes < 2) st = ut_fail(UT_ERR_INVALID_ARGUMENT, "class transfer needs two training classes");
  }
  for (uint64_t draw = 0; st == UT_OK && jp->n < cfg->pairs; draw++) {
    int32_t ti = pick(train, n_train, cfg->seed + 31, draw * 2);
    int t = (int)(kit_hash64(cfg->seed * 0x9E3779B97F4A7C15ull + 977 + draw * 2 + 1) % (uint64_t)k);
    if (t == ut_dataset_class(ds, ti) || start[t + 1] == start[t]) continue;
    jp->content_ids[jp->n] = ti;
    jp->class_ids[jp->n] = pick(by_class + start[t], start[t + 1] - start[t], cfg->seed + 37, draw);
    jp->target[jp->n] = t;
    jp->own[jp->n] = ut_dataset_class(ds, ti);
    jp->n++;
  }
  free(by_class);
  free(start);
  free(fill);
  return st;
}

/* (d): the judge's verdicts on the current stage's translations of jp. */
static ut_status class_transfer(eval_ctx *x, image_classifier *judge, const judge_pairs *jp, lord_eval_stage_report *r) {
  int64_t target_hits = 0, content_hits = 0;
  int32_t judged[CHUNK];
  ut_status st = UT_OK;
  for (int64_t at = 0; st == UT_OK && at < jp->n; at += CHUNK) {
    int64_t m = jp->n - at < CHUNK ? jp->n - at : CHUNK;
    st = translate(x, jp->content_ids + at, jp->class_ids + at, m);
    if (st == UT_OK) st = image_classifier_predict(judge, x->out, m, judged);
    for (int64_t i = 0; st == UT_OK && i < m; i++) {
      target_hits += judged[i] == jp->target[at + i];
      content_hits += judged[i] == jp->own[at + i];
    }
  }
  r->judged_target = (double)target_hits / (double)jp->n;
  r->judged_content_class = (double)content_hits / (double)jp->n;
  return st;
}

static void part(const lord_eval_cfg *cfg, const char *name) {
  if (cfg->on_part) cfg->on_part(cfg->user, name);
}

/* Everything measured on one stage's codes, on the pairs shared by all stages. */
static ut_status evaluate_stage(eval_ctx *x, ut_runtime *rt, const lord_eval_cfg *cfg, const ut_dataset_split *sp,
                                const pair_set *seen, const pair_set *unseen, image_classifier *judge,
                                const judge_pairs *jp, int stage, lord_eval_stage_report *r) {
  char name[64];
  x->stage = stage; /* the cached codes were another stage's */
  memset(x->have, 0, (size_t)x->c->n_images);
  r->measured = 1;
  const lord_eval_transfer none = { .l1 = NAN, .foreground_l1 = NAN, .colour = NAN, .vgg = NAN };
  r->transfer_unseen = r->transfer_seen = r->recon_train = r->recon_unseen = none;
  ut_status st = UT_OK;
  if (seen->n + unseen->n > 0) {
    snprintf(name, sizeof name, "stage %d: content transfer", stage);
    part(cfg, name);
    st = content_transfer(x, seen, &r->transfer_seen);
    if (st == UT_OK && stage >= 2 && unseen->n > 0) st = content_transfer(x, unseen, &r->transfer_unseen);
  }
  if (st == UT_OK) {
    snprintf(name, sizeof name, "stage %d: probes", stage);
    part(cfg, name);
    st = probes(x, rt, cfg, sp->train, sp->n_train, r);
  }
  if (st == UT_OK) {
    snprintf(name, sizeof name, "stage %d: reconstruction", stage);
    part(cfg, name);
    st = reconstruction(x, sp->train, sp->n_train, cfg->recon_samples, &r->recon_train);
  }
  if (st == UT_OK && stage >= 2 && sp->n_test_class > 0)
    st = reconstruction(x, sp->test_class, sp->n_test_class, cfg->recon_samples, &r->recon_unseen);
  if (st == UT_OK) {
    snprintf(name, sizeof name, "stage %d: class transfer", stage);
    part(cfg, name);
    st = class_transfer(x, judge, jp, r);
  }
  return st;
}

/* The other run of cfg->baseline on the same pairs and judged translations: the model in x is
 * swapped for it (the codes' cache cleared), then back. */
static ut_status evaluate_baseline_run(eval_ctx *x, const lord_eval_cfg *cfg, const pair_set *seen, const pair_set *unseen,
                                       image_classifier *judge, const judge_pairs *jp, lord_eval_report *r) {
  lord_model *own = x->m;
  const int own_stage = x->stage;
  x->m = cfg->baseline;
  x->stage = cfg->baseline_stage;
  memset(x->have, 0, (size_t)x->c->n_images);
  part(cfg, "baseline run: content and class transfer");
  const lord_eval_transfer none = { .l1 = NAN, .foreground_l1 = NAN, .colour = NAN, .vgg = NAN };
  r->baseline_run.measured = 1;
  r->baseline_run.stage = cfg->baseline_stage;
  r->baseline_run.transfer_seen = r->baseline_run.transfer_unseen = none;
  ut_status st = seen->n > 0 ? content_transfer(x, seen, &r->baseline_run.transfer_seen) : UT_OK;
  if (st == UT_OK && x->stage >= 2 && unseen->n > 0) st = content_transfer(x, unseen, &r->baseline_run.transfer_unseen);
  lord_eval_stage_report judged = { 0 };
  if (st == UT_OK) st = class_transfer(x, judge, jp, &judged);
  r->baseline_run.judged_target = judged.judged_target;
  r->baseline_run.judged_content_class = judged.judged_content_class;
  x->m = own;
  x->stage = own_stage;
  memset(x->have, 0, (size_t)x->c->n_images);
  return st;
}

/* Whether cfg->baseline can be scored beside m: the same data, codes' sizes, stages and split. */
static ut_status check_baseline_run(const lord_cfg *c, int stage, const ut_dataset_split *sp, const ut_dataset *ds,
                                    const lord_eval_cfg *cfg) {
  const lord_cfg *b = lord_config(cfg->baseline);
  if (b->n_images != c->n_images || b->n_classes != c->n_classes || b->size != c->size || b->channels != c->channels ||
      b->content_dim != c->content_dim || b->class_dim != c->class_dim)
    return ut_fail(UT_ERR_MISMATCH,
                   "the baseline run has %lld images of %lld classes at %dx%d, codes %d + %d; the evaluated run %lld "
                   "of %lld at %dx%d, codes %d + %d: train both on the same data with the same preset",
                   (long long)b->n_images, (long long)b->n_classes, b->size, b->size, b->content_dim, b->class_dim,
                   (long long)c->n_images, (long long)c->n_classes, c->size, c->size, c->content_dim, c->class_dim);
  if (cfg->baseline_stage < stage)
    return ut_fail(UT_ERR_MISMATCH, "the baseline run trained stage %d only; the evaluated run trained stage %d",
                   cfg->baseline_stage, stage);
  ut_dataset_split bs;
  ut_status st = lord_run_split(ds, b, cfg->baseline_test_classes, cfg->baseline_test_ratio, &bs);
  if (st != UT_OK) return st;
  int same = bs.n_test_classes == sp->n_test_classes && bs.n_train == sp->n_train &&
             !memcmp(bs.train, sp->train, (size_t)sp->n_train * sizeof *sp->train);
  ut_dataset_split_free(&bs);
  return same ? UT_OK
              : ut_fail(UT_ERR_MISMATCH,
                        "the baseline run holds out other classes or images than the evaluated run: train both with the "
                        "same --seed and --test-classes");
}

static ut_status evaluate(eval_ctx *x, ut_runtime *rt, const lord_eval_cfg *cfg, const ut_dataset_split *sp,
                          lord_eval_report *r) {
  /* The judge first: when it cannot tell real images apart, nothing else is worth the time. */
  part(cfg, "judge");
  image_classifier *judge = NULL;
  lord_eval_judge_report jr;
  lord_eval_judge_cfg jc = { .max_images = cfg->classifier_images, .epochs = cfg->classifier_epochs,
                             .min_accuracy = cfg->judge_min_accuracy, .seed = cfg->seed + 23 };
  ut_status st = lord_eval_judge_train(rt, x->ds, &jc, &judge, &jr);
  r->judge_heldout_accuracy = jr.heldout_accuracy;
  r->judge_train_images = jr.n_train;
  r->judge_heldout_images = jr.n_heldout;
  judge_pairs jp = { 0 };
  if (st == UT_OK) st = judge_pairs_draw(x->ds, cfg, sp->train, sp->n_train, &jp);
  r->judged = jp.n;
  r->judge_chance = jp.trained_classes ? 1.0 / jp.trained_classes : NAN;

  pair_set seen = { 0 }, unseen = { 0 };
  lord_eval_refs *refs = NULL;
  if (st == UT_OK && ut_dataset_n_contents(x->ds) < 1) {
    snprintf(r->why_no_transfer, sizeof r->why_no_transfer,
             "%s has no content labels, so the true translations are unknown", ut_dataset_path(x->ds));
  } else if (st == UT_OK) {
    part(cfg, "pairs and baselines");
    if (!(refs = lord_eval_refs_new(x->ds, sp->train, sp->n_train))) st = ut_fail(UT_ERR_HOST_MEMORY, "out of host memory");
    if (st == UT_OK && lord_eval_refs_why_no_mask(refs))
      snprintf(r->why_no_foreground, sizeof r->why_no_foreground, "%s", lord_eval_refs_why_no_mask(refs));
    if (st == UT_OK) st = pair_set_draw(x, cfg, refs, sp->train, sp->n_train, sp->train, sp->n_train, 2, &seen);
    if (st == UT_OK) score_baselines(x, refs, &seen, r->baseline_seen);
    if (st == UT_OK && sp->n_test_class > 0 && x->stage >= 2) {
      st = pair_set_draw(x, cfg, refs, sp->test_class, sp->n_test_class, sp->train, sp->n_train, 1, &unseen);
      if (st == UT_OK) score_baselines(x, refs, &unseen, r->baseline_unseen);
    } else {
      snprintf(r->why_no_transfer, sizeof r->why_no_transfer, "%s",
               x->stage < 2 ? "held-out classes need the stage-2 encoders" : "the run holds out no classes");
    }
  }
  int last = x->stage;
  for (int stage = 1; st == UT_OK && stage <= last; stage++)
    st = evaluate_stage(x, rt, cfg, sp, &seen, &unseen, judge, &jp, stage, &r->stages[stage - 1]);
  if (st == UT_OK && cfg->baseline) st = evaluate_baseline_run(x, cfg, &seen, &unseen, judge, &jp, r);
  pair_set_free(&seen);
  pair_set_free(&unseen);
  lord_eval_refs_free(refs);
  judge_pairs_free(&jp);
  image_classifier_free(judge);
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
      cfg.classifier_epochs < 1 || !(cfg.judge_min_accuracy >= 0 && cfg.judge_min_accuracy <= 1))
    return ut_fail(UT_ERR_INVALID_ARGUMENT,
                   "lord_evaluate: pairs, samples and epochs must be positive and the judge's minimum accuracy in [0, 1]");
  if (stage < 1 || stage > 2) return ut_fail(UT_ERR_INVALID_ARGUMENT, "lord_evaluate: stage %d is not 1 or 2", stage);
  double t0 = ut_seconds();
  *r = (lord_eval_report){ .stage = stage };
  for (int b = 0; b < LORD_BASELINE_COUNT; b++)
    r->baseline_seen[b] = r->baseline_unseen[b] = (lord_eval_transfer){ .l1 = NAN, .foreground_l1 = NAN, .colour = NAN, .vgg = NAN };
  ut_dataset_split sp;
  ut_status st = lord_run_split(ds, c, test_classes, test_ratio, &sp);
  if (st != UT_OK) return st;
  r->n_test_classes = sp.n_test_classes;
  r->n_train = sp.n_train;
  r->n_unseen = sp.n_test_class;
  if (cfg.baseline && (st = check_baseline_run(c, stage, &sp, ds, &cfg)) != UT_OK) {
    ut_dataset_split_free(&sp);
    return st;
  }
  eval_ctx x = { .m = m, .stage = stage, .ds = ds, .c = c, .per = (int64_t)c->channels * c->size * c->size };
  x.a = malloc((size_t)(CHUNK * x.per) * sizeof(float));
  x.b = malloc((size_t)(CHUNK * x.per) * sizeof(float));
  x.out = malloc((size_t)(CHUNK * x.per) * sizeof(float));
  x.guess = malloc((size_t)x.per * sizeof(float));
  x.content = malloc((size_t)CHUNK * c->content_dim * sizeof(float));
  x.klass = malloc((size_t)CHUNK * c->class_dim * sizeof(float));
  x.new_content = malloc((size_t)CHUNK * c->content_dim * sizeof(float));
  x.new_class = malloc((size_t)CHUNK * c->class_dim * sizeof(float));
  x.classes = malloc(CHUNK * sizeof(int32_t));
  x.content_all = malloc((size_t)(c->n_images * c->content_dim) * sizeof(float));
  x.class_all = malloc((size_t)(c->n_images * c->class_dim) * sizeof(float));
  x.have = calloc((size_t)c->n_images, 1);
  if (!x.a || !x.b || !x.out || !x.guess || !x.content || !x.klass || !x.new_content || !x.new_class || !x.classes ||
      !x.content_all || !x.class_all || !x.have)
    st = ut_fail(UT_ERR_HOST_MEMORY, "out of host memory");
  if (st == UT_OK && cfg.vgg_weights) {
    if (c->size < 32) st = ut_fail(UT_ERR_INVALID_ARGUMENT, "the VGG distance needs images of at least 32x32, not %d", c->size);
    else st = vgg_open(&x, rt, cfg.vgg_weights);
  }
  if (st == UT_OK) st = evaluate(&x, rt, &cfg, &sp, r);
  r->seconds = ut_seconds() - t0;
  ut_plan_free(x.vgg_p);
  ut_graph_free(x.vgg_g);
  ut_store_free(x.vgg_st);
  free(x.a);
  free(x.b);
  free(x.out);
  free(x.guess);
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
