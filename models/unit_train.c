/* UNIT's run: the split, the domains, the grid and training with the kit's trainer (unit_train.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "unit_train.h"
#include "kit_random.h"

#define GRID_COLUMNS 8
#define MAX_PAIR_KEYS (64 << 20) /* (class, content) keys a pairing table may hold */

ut_status unit_resolve_domains(const ut_dataset *ds, unit_cfg *cfg) {
  const char *path = ut_dataset_path(ds);
  int n = ut_dataset_n_domains(ds);
  if (n < 2)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s has %s; UNIT needs two (make one with 'untangle data synth --domains "
                   "day,night' or 'untangle data import DIR --domains')", path, n ? "one domain" : "no domains");
  char *names[2] = { cfg->domain_a, cfg->domain_b };
  for (int d = 0; d < 2; d++) {
    if (!names[d][0]) snprintf(names[d], KIT_STRING_MAX, "%s", ut_dataset_domain_name(ds, d));
    if (ut_dataset_find_domain(ds, names[d]) < 0)
      return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s has no domain '%s'", path, names[d]);
  }
  if (!strcmp(cfg->domain_a, cfg->domain_b))
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "UNIT needs two different domains, not '%s' twice", cfg->domain_a);
  if (ut_dataset_channels(ds) != cfg->channels)
    return ut_fail(UT_ERR_MISMATCH, "%s holds images with %d channels; the model has %d", path,
                   ut_dataset_channels(ds), cfg->channels);
  if (ut_dataset_height(ds) < cfg->size || ut_dataset_width(ds) != ut_dataset_height(ds))
    return ut_fail(UT_ERR_MISMATCH, "%s holds %dx%d images; the model needs square images of at least %d pixels",
                   path, ut_dataset_width(ds), ut_dataset_height(ds), cfg->size);
  return UT_OK;
}

int32_t unit_partner(const ut_dataset *ds, int32_t i, int domain) {
  int32_t klass = ut_dataset_class(ds, i), content = ut_dataset_content(ds, i);
  if (content < 0) return -1;
  for (int32_t k = 0; k < ut_dataset_count(ds); k++)
    if (ut_dataset_domain(ds, k) == domain && ut_dataset_content(ds, k) == content && ut_dataset_class(ds, k) == klass)
      return k;
  return -1;
}

void unit_split_free(unit_split *sp) {
  for (int d = 0; d < 2; d++) {
    free(sp->train[d]);
    free(sp->test[d]);
  }
  *sp = (unit_split){ 0 };
}

/* Pair keys: class * n_contents + content, the image of each key in each domain (-1: none). */
static int32_t *pair_table(const ut_dataset *ds, const int domain[2], int64_t *n_keys) {
  int64_t nc = ut_dataset_n_contents(ds), keys = (int64_t)ut_dataset_n_classes(ds) * nc;
  if (nc < 1 || keys > MAX_PAIR_KEYS) return NULL;
  int32_t *table = malloc((size_t)(2 * keys) * sizeof *table);
  if (!table) return NULL;
  for (int64_t k = 0; k < 2 * keys; k++) table[k] = -1;
  for (int32_t i = 0; i < ut_dataset_count(ds); i++)
    for (int d = 0; d < 2; d++)
      if (ut_dataset_domain(ds, i) == domain[d])
        table[2 * ((int64_t)ut_dataset_class(ds, i) * nc + ut_dataset_content(ds, i)) + d] = i;
  *n_keys = keys;
  return table;
}

ut_status unit_run_split(const ut_dataset *ds, const unit_cfg *cfg, unit_split *sp) {
  *sp = (unit_split){ 0 };
  int32_t n = ut_dataset_count(ds);
  for (int d = 0; d < 2; d++) {
    const char *name = d ? cfg->domain_b : cfg->domain_a;
    if ((sp->domain[d] = ut_dataset_find_domain(ds, name)) < 0)
      return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s has no domain '%s'", ut_dataset_path(ds), name);
  }
  uint8_t *held = calloc((size_t)n, 1);
  if (!held) return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the split");
  ut_status st = UT_OK;
  int64_t n_keys = 0;
  int32_t *table = pair_table(ds, sp->domain, &n_keys);
  /* Paired when every image of the two domains has its partner. */
  int64_t members = 0, pairs = 0;
  for (int32_t i = 0; i < n; i++) members += ut_dataset_domain(ds, i) == sp->domain[0] || ut_dataset_domain(ds, i) == sp->domain[1];
  for (int64_t k = 0; table && k < n_keys; k++) pairs += table[2 * k] >= 0 && table[2 * k + 1] >= 0;
  sp->paired = table && members == 2 * pairs;
  if (sp->paired) {
    /* Whole pairs are held out, so each held-out image has its true translation held out too. */
    int32_t *key_of = malloc((size_t)(pairs > 0 ? pairs : 1) * sizeof *key_of);
    uint8_t *key_held = malloc((size_t)(pairs > 0 ? pairs : 1));
    int64_t at = 0;
    st = key_of && key_held ? UT_OK : ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the split");
    for (int64_t k = 0; st == UT_OK && k < n_keys; k++)
      if (table[2 * k] >= 0) key_of[at++] = (int32_t)k;
    if (st == UT_OK) st = kit_draw_held_out(pairs, cfg->test_ratio, cfg->seed ^ 0x756e6974ull, key_held);
    for (int64_t p = 0; st == UT_OK && p < pairs; p++)
      if (key_held[p]) held[table[2 * (int64_t)key_of[p]]] = held[table[2 * (int64_t)key_of[p] + 1]] = 1;
    free(key_of);
    free(key_held);
  } else {
    for (int d = 0; st == UT_OK && d < 2; d++) {
      int32_t *idx = NULL, m = 0;
      st = ut_dataset_domain_indices(ds, sp->domain[d], &idx, &m);
      uint8_t *h = st == UT_OK ? malloc((size_t)(m > 0 ? m : 1)) : NULL;
      if (st == UT_OK && !h) st = ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the split");
      if (st == UT_OK) st = kit_draw_held_out(m, cfg->test_ratio, cfg->seed ^ (0x756e6974ull + (uint64_t)d + 1), h);
      for (int32_t i = 0; st == UT_OK && i < m; i++) held[idx[i]] = h[i];
      free(idx);
      free(h);
    }
  }
  free(table);
  for (int d = 0; st == UT_OK && d < 2; d++) {
    sp->train[d] = malloc((size_t)n * sizeof(int32_t));
    sp->test[d] = malloc((size_t)n * sizeof(int32_t));
    if (!sp->train[d] || !sp->test[d]) st = ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the split");
    for (int32_t i = 0; st == UT_OK && i < n; i++)
      if (ut_dataset_domain(ds, i) == sp->domain[d]) {
        if (held[i]) sp->test[d][sp->n_test[d]++] = i;
        else sp->train[d][sp->n_train[d]++] = i;
      }
  }
  free(held);
  if (st != UT_OK) unit_split_free(sp);
  return st;
}

unit_model *unit_open_run(ut_runtime *rt, const char *run_dir) {
  char *path = kit_path(run_dir, UNIT_CHECKPOINT);
  if (!path) return NULL;
  unit_cfg cfg = unit_preset(UNIT_PRESET_SMALL, 3);
  unit_model *m = NULL;
  if (unit_read_config(rt, path, &cfg) == UT_OK && (m = unit_new(rt, &cfg)) && unit_load(m, path) != UT_OK) {
    unit_free(m);
    m = NULL;
  }
  free(path);
  return m;
}

/* Centre crops of images i of ds at the model's size, in [0, 1]. */
static void load_images(const ut_dataset *ds, const int32_t *ids, int n, int size, float *out) {
  int side = ut_dataset_height(ds), ch = ut_dataset_channels(ds), off = (side - size) / 2;
  float *full = malloc((size_t)ch * side * side * sizeof *full);
  if (!full) return;
  for (int i = 0; i < n; i++) {
    ut_dataset_image_chw(ds, ids[i], full);
    for (int c = 0; c < ch; c++)
      for (int y = 0; y < size; y++)
        memcpy(out + (((int64_t)i * ch + c) * size + y) * size, full + ((int64_t)c * side + y + off) * side + off,
               (size_t)size * sizeof *out);
  }
  free(full);
}

ut_status unit_write_grid(unit_model *m, const ut_dataset *ds, const unit_split *sp, int n, const char *path) {
  const unit_cfg *c = unit_config(m);
  int64_t per = (int64_t)c->channels * c->size * c->size;
  int cols = n;
  for (int d = 0; d < 2; d++) {
    int avail = sp->n_test[d] ? sp->n_test[d] : sp->n_train[d];
    if (avail < cols) cols = avail;
  }
  if (cols < 1) return ut_fail(UT_ERR_INVALID_ARGUMENT, "no images to draw a grid from");
  float *tiles = malloc((size_t)(6 * cols * per) * sizeof *tiles);
  if (!tiles) return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the grid");
  ut_status st = UT_OK;
  for (int d = 0; st == UT_OK && d < 2; d++) {
    const int32_t *list = sp->n_test[d] ? sp->test[d] : sp->train[d];
    int32_t avail = sp->n_test[d] ? sp->n_test[d] : sp->n_train[d], ids[64];
    for (int k = 0; k < cols; k++) ids[k] = list[(int64_t)k * avail / cols];
    float *rows = tiles + (int64_t)3 * d * cols * per;
    load_images(ds, ids, cols, c->size, rows);
    st = unit_translate(m, rows, cols, d, 1 - d, rows + cols * per);
    if (st == UT_OK) st = unit_cycle(m, rows, cols, d, rows + 2 * cols * per);
  }
  if (st == UT_OK) st = ut_grid_write_jpeg(path, tiles, 6 * cols, c->channels, c->size, c->size, cols, 92);
  free(tiles);
  return st;
}

typedef struct {
  unit_model *m;
  const ut_dataset *ds;
  const unit_split *sp;
} run_ctx;

static ut_status step(void *user, const ut_batch *const *batches, int64_t at, int64_t steps, float *losses) {
  (void)at; /* UNIT's learning rate is constant */
  (void)steps;
  run_ctx *r = user;
  unit_losses l;
  ut_status st = unit_train_step(r->m, batches[0]->images, batches[1]->images, &l);
  const float v[UNIT_LOSS_COUNT] = { l.dis, l.gen, l.gan, l.recon, l.cycle, l.kl };
  memcpy(losses, v, sizeof v);
  return st;
}

static ut_status save(void *user, const char *path) { return unit_save(((run_ctx *)user)->m, path); }

static ut_status grid(void *user, const char *path) {
  run_ctx *r = user;
  return unit_write_grid(r->m, r->ds, r->sp, GRID_COLUMNS, path);
}

ut_status unit_train(unit_model *m, const ut_dataset *ds, const unit_train_opts *o) {
  const unit_cfg *c = unit_config(m);
  unit_cfg resolved = *c;
  ut_status st = unit_resolve_domains(ds, &resolved);
  if (st != UT_OK) return st;
  if (!c->domain_a[0] || !c->domain_b[0])
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "unit_train: the model's configuration names no domains (fill them with "
                   "unit_resolve_domains before unit_new)");
  if (mkdir(o->run_dir, 0777) != 0 && errno != EEXIST)
    return ut_fail(UT_ERR_IO, "cannot create the run folder %s: %s", o->run_dir, strerror(errno));
  unit_split sp;
  if ((st = unit_run_split(ds, c, &sp)) != UT_OK) return st;
  for (int d = 0; st == UT_OK && d < 2; d++)
    if (sp.n_train[d] < c->batch)
      st = ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: domain '%s' has %d training images, fewer than one batch of %d",
                   ut_dataset_path(ds), d ? c->domain_b : c->domain_a, sp.n_train[d], c->batch);
  run_ctx ctx = { m, ds, &sp };
  kit_model km = { .name = "UNIT", .model = &ctx, .store = unit_store(m), .n_losses = UNIT_LOSS_COUNT,
                   .loss_names = unit_loss_names, .step = step, .save = save, .write_grid = grid };
  kit_train_opts to = { .run_dir = o->run_dir, .ds = ds, .n_streams = 2, .epochs = c->epochs,
                        .save_every = o->save_every, .on_step = o->on_step, .on_epoch = o->on_epoch, .user = o->user,
                        .team = o->team };
  int crop = ut_dataset_height(ds) > c->size ? c->size : 0;
  for (int d = 0; d < 2; d++)
    to.streams[d] = (ut_loader_cfg){ .indices = sp.train[d], .n_indices = sp.n_train[d], .batch = c->batch,
                                     .seed = c->seed * 2654435761u + 17 + (uint64_t)d, .drop_last = 1,
                                     .crop = crop, .flip = c->flip, .signed_range = 1 };
  if (st == UT_OK) st = kit_train(&km, &to);
  unit_split_free(&sp);
  return st;
}
