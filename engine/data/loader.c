/* Splits (which images train, which are held out), per-domain index lists and the batch
 * loader.
 *
 * The loader holds two batch slots. The caller owns the slot it was last given; a worker
 * thread fills the other one with the batch the caller will ask for next. A slot remembers
 * the (epoch, batch) it holds, so after a seek a batch prepared for the old position is simply
 * refilled. The order of an epoch is a Fisher-Yates permutation drawn from splitmix64 seeded
 * by (seed, epoch) alone, and an image's crop offset and mirroring come from a splitmix64
 * stream seeded by (seed, epoch, position in the epoch): any batch can be rebuilt from its
 * position, which is what resuming needs.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "data_internal.h"

/* Distinct streams for splits and epoch orders, so a seed shared by both gives unrelated draws. */
#define SPLIT_STREAM 0x73706c6974ull /* "split" */
#define EPOCH_STREAM 0x65706f6368ull /* "epoch" */
#define AUG_STREAM 0x6175676d656eull  /* "augmen" */

static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

void ut_dataset_split_free(ut_dataset_split *s) {
  if (!s) return;
  free(s->train);
  free(s->test_class);
  free(s->test_sample);
  free(s->test_classes);
  memset(s, 0, sizeof *s);
}

ut_status ut_dataset_split_compute(const ut_dataset *ds, int test_classes, double test_ratio, uint64_t seed,
                                   ut_dataset_split *split) {
  memset(split, 0, sizeof *split);
  int k = ut_dataset_n_classes(ds);
  int32_t n = ut_dataset_count(ds);
  if (test_classes < 0 || test_classes >= k)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: cannot hold out %d of %d classes (at least one must train)",
                   ut_dataset_path(ds), test_classes, k);
  if (!(test_ratio >= 0 && test_ratio < 1))
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: held-out share %g, expected 0 <= share < 1", ut_dataset_path(ds),
                   test_ratio);
  uint64_t state = seed ^ SPLIT_STREAM;
  int32_t *classes = malloc((size_t)k * sizeof *classes);
  uint8_t *held = calloc((size_t)k, 1);
  int32_t *rest = malloc((size_t)n * sizeof *rest);
  split->test_classes = malloc((size_t)(test_classes ? test_classes : 1) * sizeof *split->test_classes);
  split->train = malloc((size_t)n * sizeof *split->train);
  split->test_class = malloc((size_t)n * sizeof *split->test_class);
  split->test_sample = malloc((size_t)n * sizeof *split->test_sample);
  if (!classes || !held || !rest || !split->test_classes || !split->train || !split->test_class || !split->test_sample) {
    free(classes);
    free(held);
    free(rest);
    ut_dataset_split_free(split);
    return ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory for a split", ut_dataset_path(ds));
  }
  /* Partial Fisher-Yates: the first test_classes entries are a uniform choice. */
  for (int i = 0; i < k; i++) classes[i] = i;
  for (int i = 0; i < test_classes; i++) {
    int j = i + (int)ut_splitmix_below(&state, (uint32_t)(k - i));
    int32_t t = classes[i];
    classes[i] = classes[j];
    classes[j] = t;
    held[classes[i]] = 1;
  }
  qsort(classes, (size_t)test_classes, sizeof *classes, cmp_i32);
  for (int i = 0; i < test_classes; i++) split->test_classes[i] = classes[i];
  split->n_test_classes = test_classes;

  int32_t m = 0;
  for (int32_t i = 0; i < n; i++) {
    if (held[ut_dataset_class(ds, i)])
      split->test_class[split->n_test_class++] = i;
    else
      rest[m++] = i;
  }
  /* lord.py's split-samples takes int(m * ratio) images without replacement. */
  int32_t n_out = (int32_t)((double)m * test_ratio);
  for (int32_t i = 0; i < n_out; i++) {
    int32_t j = i + (int32_t)ut_splitmix_below(&state, (uint32_t)(m - i));
    int32_t t = rest[i];
    rest[i] = rest[j];
    rest[j] = t;
  }
  memcpy(split->test_sample, rest, (size_t)n_out * sizeof *rest);
  split->n_test_sample = n_out;
  qsort(split->test_sample, (size_t)n_out, sizeof *rest, cmp_i32);
  memcpy(split->train, rest + n_out, (size_t)(m - n_out) * sizeof *rest);
  split->n_train = m - n_out;
  qsort(split->train, (size_t)split->n_train, sizeof *rest, cmp_i32);
  free(classes);
  free(held);
  free(rest);
  return UT_OK;
}

ut_status ut_dataset_domain_indices(const ut_dataset *ds, int domain, int32_t **indices, int32_t *n) {
  if (!indices || !n) return ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_dataset_domain_indices: no output");
  *indices = NULL;
  *n = 0;
  if (!ds) return ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_dataset_domain_indices: no data set");
  int k = ut_dataset_n_domains(ds);
  if (domain < 0 || domain >= k)
    return k > 0 ? ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: domain %d, expected 0 .. %d", ut_dataset_path(ds), domain, k - 1)
                 : ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: domain %d, but the set has no domain labels", ut_dataset_path(ds),
                           domain);
  int32_t count = ut_dataset_count(ds), m = 0;
  for (int32_t i = 0; i < count; i++) m += ut_dataset_domain(ds, i) == domain;
  int32_t *list = malloc((size_t)(m ? m : 1) * sizeof *list);
  if (!list) return ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory for %d indices", ut_dataset_path(ds), m);
  m = 0;
  for (int32_t i = 0; i < count; i++)
    if (ut_dataset_domain(ds, i) == domain) list[m++] = i;
  *indices = list;
  *n = m;
  return UT_OK;
}

/* ------------------------------------------------------------------------------------------ */

enum { SLOT_EMPTY, SLOT_FILLING, SLOT_READY };

typedef struct {
  int state;
  int64_t epoch, batch; /* the position it holds or is being filled with */
  float *images, *attributes, *masks;
  int32_t *indices, *classes, *contents, *domains;
  ut_batch view;
} slot;

struct ut_loader {
  const ut_dataset *ds;
  ut_loader_cfg cfg;
  int32_t *list;     /* cfg.indices copied */
  int64_t per_epoch; /* batches per epoch */
  int side;          /* output side when cropping (cfg.crop), else 0 */
  slot slots[2];
  int held;                   /* slot the caller owns, -1 for none */
  int64_t next_epoch, next_batch; /* what ut_loader_next returns next */
  int stop;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t thread;
  /* Worker-only: the permutation of perm_epoch. */
  int32_t *perm;
  int64_t perm_epoch;
};

static void make_permutation(ut_loader *l, int64_t epoch) {
  int32_t n = l->cfg.n_indices;
  memcpy(l->perm, l->list, (size_t)n * sizeof *l->perm);
  l->perm_epoch = epoch;
  if (l->cfg.in_order) return;
  uint64_t state = l->cfg.seed ^ EPOCH_STREAM;
  state = ut_splitmix64(&state) ^ (uint64_t)epoch;
  for (int32_t i = n - 1; i > 0; i--) {
    int32_t j = (int32_t)ut_splitmix_below(&state, (uint32_t)i + 1);
    int32_t t = l->perm[i];
    l->perm[i] = l->perm[j];
    l->perm[j] = t;
  }
}

/* The h x w crop of image `hwc` (rows of W pixels of C bytes) at (y0, x0), mirrored left-right
 * when `flip`, as CHW floats: v / 255 as ut_image_bytes_to_chw computes it, then 2 v - 1 when
 * signed. Masks take the same path with C = 1, never signed. */
static void crop_to_chw(const uint8_t *hwc, int W, int C, int y0, int x0, int h, int w, int flip, int signed_range,
                        float *chw) {
  for (int c = 0; c < C; c++)
    for (int y = 0; y < h; y++) {
      const uint8_t *row = hwc + ((size_t)(y0 + y) * (size_t)W + (size_t)x0) * (size_t)C + (size_t)c;
      float *out = chw + ((size_t)c * (size_t)h + (size_t)y) * (size_t)w;
      for (int x = 0; x < w; x++) {
        float v = (float)row[(size_t)(flip ? w - 1 - x : x) * (size_t)C] * (1.0f / 255.0f);
        out[x] = signed_range ? 2.0f * v - 1.0f : v;
      }
    }
}

/* Builds batch (epoch, b) into s; runs on the worker without the lock. */
static void fill_slot(ut_loader *l, slot *s, int64_t epoch, int64_t b) {
  if (l->perm_epoch != epoch) make_permutation(l, epoch);
  const ut_dataset *ds = l->ds;
  const ut_loader_cfg *cfg = &l->cfg;
  int C = ut_dataset_channels(ds), H = ut_dataset_height(ds), W = ut_dataset_width(ds);
  int n_attr = ut_dataset_n_attributes(ds);
  size_t hw = (size_t)H * (size_t)W;
  int plain = !cfg->crop && !cfg->flip && !cfg->signed_range;
  int side_h = cfg->crop ? cfg->crop : H, side_w = cfg->crop ? cfg->crop : W;
  size_t out_px = (size_t)side_h * (size_t)side_w;
  int64_t first = b * cfg->batch;
  int n = (int)(cfg->n_indices - first < cfg->batch ? cfg->n_indices - first : cfg->batch);
  for (int i = 0; i < n; i++) {
    int32_t idx = l->perm[first + i];
    s->indices[i] = idx;
    s->classes[i] = ut_dataset_class(ds, idx);
    s->contents[i] = ut_dataset_content(ds, idx);
    s->domains[i] = ut_dataset_domain(ds, idx);
    for (int a = 0; a < n_attr; a++) s->attributes[(size_t)i * (size_t)n_attr + (size_t)a] = ut_dataset_attribute(ds, idx, a);
    float *dst = s->images + (size_t)i * (size_t)C * out_px;
    float *mask_dst = s->masks ? s->masks + (size_t)i * out_px : NULL;
    if (plain) {
      ut_image_bytes_to_chw(ut_dataset_image(ds, idx), hw, C, dst);
      if (mask_dst) ut_image_bytes_to_chw(ut_dataset_mask(ds, idx), hw, 1, mask_dst);
      continue;
    }
    /* Centred when in order (evaluation); else drawn from (seed, epoch, position) only. */
    int y0 = (H - side_h) / 2, x0 = (W - side_w) / 2, flip = 0;
    if (!cfg->in_order) {
      uint64_t state = cfg->seed ^ AUG_STREAM;
      state = ut_splitmix64(&state) ^ (uint64_t)epoch;
      state = ut_splitmix64(&state) ^ (uint64_t)(first + i);
      if (cfg->crop) {
        y0 = (int)ut_splitmix_below(&state, (uint32_t)(H - side_h + 1));
        x0 = (int)ut_splitmix_below(&state, (uint32_t)(W - side_w + 1));
      }
      if (cfg->flip) flip = (int)(ut_splitmix64(&state) >> 63);
    }
    crop_to_chw(ut_dataset_image(ds, idx), W, C, y0, x0, side_h, side_w, flip, cfg->signed_range, dst);
    if (mask_dst) crop_to_chw(ut_dataset_mask(ds, idx), W, 1, y0, x0, side_h, side_w, flip, 0, mask_dst);
  }
  s->view = (ut_batch){ .images = s->images, .indices = s->indices, .classes = s->classes, .contents = s->contents,
                        .domains = s->domains, .attributes = n_attr ? s->attributes : NULL, .n_attributes = n_attr,
                        .masks = s->masks, .n = n, .epoch = epoch, .batch = b };
}

static int slot_wanted(const ut_loader *l, const slot *s) {
  return s->state != SLOT_EMPTY && s->epoch == l->next_epoch && s->batch == l->next_batch;
}

static void *worker(void *arg) {
  ut_loader *l = arg;
  pthread_mutex_lock(&l->mu);
  while (!l->stop) {
    /* Nothing to do while a free slot already holds (or is getting) the next batch. */
    int target = -1, covered = 0;
    for (int i = 0; i < 2; i++) {
      if (i == l->held) continue;
      if (slot_wanted(l, &l->slots[i])) covered = 1;
      else if (target < 0) target = i;
    }
    if (covered || target < 0) {
      pthread_cond_wait(&l->cv, &l->mu);
      continue;
    }
    slot *s = &l->slots[target];
    int64_t epoch = l->next_epoch, b = l->next_batch;
    s->state = SLOT_FILLING;
    s->epoch = epoch;
    s->batch = b;
    pthread_mutex_unlock(&l->mu);
    fill_slot(l, s, epoch, b);
    pthread_mutex_lock(&l->mu);
    s->state = SLOT_READY;
    pthread_cond_broadcast(&l->cv);
  }
  pthread_mutex_unlock(&l->mu);
  return NULL;
}

static void free_slots(ut_loader *l) {
  for (int i = 0; i < 2; i++) {
    free(l->slots[i].images);
    free(l->slots[i].indices);
    free(l->slots[i].classes);
    free(l->slots[i].contents);
    free(l->slots[i].domains);
    free(l->slots[i].attributes);
    free(l->slots[i].masks);
  }
  free(l->list);
  free(l->perm);
  free(l);
}

ut_loader *ut_loader_new(const ut_dataset *ds, const ut_loader_cfg *cfg) {
  if (!ds || !cfg) {
    ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_loader_new: no data set or configuration");
    return NULL;
  }
  int32_t count = ut_dataset_count(ds);
  int32_t n = cfg->indices ? cfg->n_indices : count;
  if (n < 1 || cfg->batch < 1) {
    ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: a loader over %d images in batches of %d", ut_dataset_path(ds), n, cfg->batch);
    return NULL;
  }
  int64_t per_epoch = cfg->drop_last ? n / cfg->batch : (n + cfg->batch - 1) / cfg->batch;
  if (per_epoch < 1) {
    ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: %d images make no full batch of %d (drop_last)", ut_dataset_path(ds), n,
            cfg->batch);
    return NULL;
  }
  int H = ut_dataset_height(ds), W = ut_dataset_width(ds);
  if (cfg->crop < 0 || cfg->crop > H || cfg->crop > W) {
    ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: crop %d x %d %s the images (%d x %d)", ut_dataset_path(ds), cfg->crop,
            cfg->crop, cfg->crop < 0 ? "is negative, expected 0 (none) or up to" : "is larger than", H, W);
    return NULL;
  }
  ut_loader *l = calloc(1, sizeof *l);
  if (!l) goto oom;
  l->ds = ds;
  l->side = cfg->crop;
  l->cfg = *cfg;
  l->cfg.n_indices = n;
  l->per_epoch = per_epoch;
  l->held = -1;
  l->perm_epoch = -1;
  l->list = malloc((size_t)n * sizeof *l->list);
  l->perm = malloc((size_t)n * sizeof *l->perm);
  if (!l->list || !l->perm) goto oom;
  for (int32_t i = 0; i < n; i++) {
    l->list[i] = cfg->indices ? cfg->indices[i] : i;
    if (l->list[i] < 0 || l->list[i] >= count) {
      ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: loader index list entry %d is %d, expected 0 .. %d", ut_dataset_path(ds), i,
              l->list[i], count - 1);
      free_slots(l);
      return NULL;
    }
  }
  l->cfg.indices = l->list;
  size_t px = cfg->crop ? (size_t)cfg->crop * (size_t)cfg->crop : (size_t)H * (size_t)W;
  size_t img = (size_t)ut_dataset_channels(ds) * px;
  size_t n_attr = (size_t)ut_dataset_n_attributes(ds);
  for (int i = 0; i < 2; i++) {
    slot *s = &l->slots[i];
    if (n_attr && !(s->attributes = malloc((size_t)cfg->batch * n_attr * sizeof *s->attributes))) goto oom;
    if (ut_dataset_has_masks(ds) && !(s->masks = malloc((size_t)cfg->batch * px * sizeof *s->masks))) goto oom;
    s->images = malloc((size_t)cfg->batch * img * sizeof *s->images);
    s->indices = malloc((size_t)cfg->batch * sizeof *s->indices);
    s->classes = malloc((size_t)cfg->batch * sizeof *s->classes);
    s->contents = malloc((size_t)cfg->batch * sizeof *s->contents);
    s->domains = malloc((size_t)cfg->batch * sizeof *s->domains);
    if (!s->images || !s->indices || !s->classes || !s->contents || !s->domains) goto oom;
  }
  if (pthread_mutex_init(&l->mu, NULL) != 0) goto oom;
  if (pthread_cond_init(&l->cv, NULL) != 0) {
    pthread_mutex_destroy(&l->mu);
    goto oom;
  }
  if (pthread_create(&l->thread, NULL, worker, l) != 0) {
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    ut_fail(UT_ERR_HOST_MEMORY, "%s: cannot start the loader thread", ut_dataset_path(ds));
    free_slots(l);
    return NULL;
  }
  return l;
oom:
  ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory for batches of %d", ut_dataset_path(ds), cfg->batch);
  if (l) free_slots(l);
  return NULL;
}

int64_t ut_loader_batches_per_epoch(const ut_loader *l) { return l->per_epoch; }

int ut_loader_image_side(const ut_loader *l) {
  if (l->side) return l->side;
  int h = ut_dataset_height(l->ds);
  return h == ut_dataset_width(l->ds) ? h : 0;
}

ut_status ut_loader_seek(ut_loader *l, int64_t epoch, int64_t batch) {
  if (!l || epoch < 0 || batch < 0 || batch >= l->per_epoch)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_loader_seek: epoch %lld batch %lld, expected batch 0 .. %lld",
                   (long long)epoch, (long long)batch, l ? (long long)l->per_epoch - 1 : 0LL);
  pthread_mutex_lock(&l->mu);
  l->next_epoch = epoch;
  l->next_batch = batch;
  l->held = -1; /* the caller's batch is no longer valid: both slots may be refilled */
  pthread_cond_broadcast(&l->cv);
  pthread_mutex_unlock(&l->mu);
  return UT_OK;
}

ut_status ut_loader_next(ut_loader *l, const ut_batch **out) {
  if (!l || !out) return ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_loader_next: no loader");
  pthread_mutex_lock(&l->mu);
  int got = -1;
  for (;;) {
    for (int i = 0; i < 2 && got < 0; i++)
      if (i != l->held && l->slots[i].state == SLOT_READY && slot_wanted(l, &l->slots[i])) got = i;
    if (got >= 0) break;
    pthread_cond_wait(&l->cv, &l->mu);
  }
  l->held = got;
  if (++l->next_batch == l->per_epoch) {
    l->next_batch = 0;
    l->next_epoch++;
  }
  pthread_cond_broadcast(&l->cv);
  pthread_mutex_unlock(&l->mu);
  *out = &l->slots[got].view;
  return UT_OK;
}

void ut_loader_free(ut_loader *l) {
  if (!l) return;
  pthread_mutex_lock(&l->mu);
  l->stop = 1;
  pthread_cond_broadcast(&l->cv);
  pthread_mutex_unlock(&l->mu);
  pthread_join(l->thread, NULL);
  pthread_cond_destroy(&l->cv);
  pthread_mutex_destroy(&l->mu);
  free_slots(l);
}
