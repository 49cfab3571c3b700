/* DMIT's run: the domains, the split, the grid and training with the kit's trainer
 * (dmit_train.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dmit_train.h"
#include "kit_random.h"

#define GRID_PER_DOMAIN 2
#define GRID_STYLES 3
#define GRID_STYLE_SEED 1234

ut_status dmit_resolve_domains(const ut_dataset *ds, dmit_cfg *cfg) {
  const char *path = ut_dataset_path(ds);
  int n = ut_dataset_n_domains(ds);
  if (n < 2)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s has %s; DMIT needs 2 to %d (make one with 'untangle data synth "
                   "--domains day,night,dusk' or 'untangle data import DIR --domains')", path,
                   n ? "one domain" : "no domains", DMIT_MAX_DOMAINS);
  if (n > DMIT_MAX_DOMAINS)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s has %d domains; DMIT trains on at most %d", path, n, DMIT_MAX_DOMAINS);
  char names[KIT_STRING_MAX * DMIT_MAX_DOMAINS] = "";
  for (int d = 0; d < n; d++) {
    if (d) strcat(names, ",");
    strncat(names, ut_dataset_domain_name(ds, d), KIT_STRING_MAX - 1);
  }
  if (!cfg->domains[0]) {
    if (strlen(names) >= KIT_STRING_MAX)
      return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: the domain names '%s' are longer than %d bytes together", path, names,
                     KIT_STRING_MAX - 1);
    snprintf(cfg->domains, KIT_STRING_MAX, "%s", names);
    cfg->n_domains = n;
  } else if (cfg->n_domains != n || strcmp(cfg->domains, names)) {
    return ut_fail(UT_ERR_MISMATCH, "%s has %d domains (%s); the DMIT model has %d (%s)", path, n, names,
                   cfg->n_domains, cfg->domains);
  }
  if (ut_dataset_channels(ds) != cfg->channels)
    return ut_fail(UT_ERR_MISMATCH, "%s holds images with %d channels; the model has %d", path,
                   ut_dataset_channels(ds), cfg->channels);
  if (ut_dataset_height(ds) < cfg->size || ut_dataset_width(ds) != ut_dataset_height(ds))
    return ut_fail(UT_ERR_MISMATCH, "%s holds %dx%d images; the model needs square images of at least %d pixels",
                   path, ut_dataset_width(ds), ut_dataset_height(ds), cfg->size);
  return dmit_cfg_check(cfg);
}

void dmit_split_free(dmit_split *sp) {
  for (int d = 0; d < DMIT_MAX_DOMAINS; d++) {
    free(sp->train[d]);
    free(sp->test[d]);
  }
  *sp = (dmit_split){ 0 };
}

ut_status dmit_run_split(const ut_dataset *ds, const dmit_cfg *cfg, dmit_split *sp) {
  *sp = (dmit_split){ .n_domains = cfg->n_domains };
  int32_t n = ut_dataset_count(ds);
  int64_t nc = ut_dataset_n_contents(ds), keys = nc > 0 ? (int64_t)ut_dataset_n_classes(ds) * nc : 0;
  uint8_t *held = calloc((size_t)(n > 0 ? n : 1), 1), *key_held = NULL;
  ut_status st = held ? UT_OK : ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the split");
  if (st == UT_OK && keys > 0) {
    if (!(key_held = malloc((size_t)keys))) st = ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the split");
    if (st == UT_OK) st = kit_draw_held_out(keys, cfg->test_ratio, cfg->seed ^ 0x646d6974ull, key_held);
    for (int32_t i = 0; st == UT_OK && i < n; i++)
      held[i] = key_held[(int64_t)ut_dataset_class(ds, i) * nc + ut_dataset_content(ds, i)];
  } else {
    for (int d = 0; st == UT_OK && d < cfg->n_domains; d++) {
      int32_t *idx = NULL, m = 0;
      st = ut_dataset_domain_indices(ds, d, &idx, &m);
      uint8_t *h = st == UT_OK ? malloc((size_t)(m > 0 ? m : 1)) : NULL;
      if (st == UT_OK && !h) st = ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the split");
      if (st == UT_OK) st = kit_draw_held_out(m, cfg->test_ratio, cfg->seed ^ (0x646d6974ull + (uint64_t)d + 1), h);
      for (int32_t i = 0; st == UT_OK && i < m; i++) held[idx[i]] = h[i];
      free(idx);
      free(h);
    }
  }
  free(key_held);
  for (int d = 0; st == UT_OK && d < cfg->n_domains; d++) {
    sp->train[d] = malloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t));
    sp->test[d] = malloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t));
    if (!sp->train[d] || !sp->test[d]) st = ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the split");
    for (int32_t i = 0; st == UT_OK && i < n; i++)
      if (ut_dataset_domain(ds, i) == d) {
        if (held[i]) sp->test[d][sp->n_test[d]++] = i;
        else sp->train[d][sp->n_train[d]++] = i;
      }
  }
  free(held);
  if (st != UT_OK) dmit_split_free(sp);
  return st;
}

float dmit_lr_factor(const dmit_cfg *c, int64_t epoch) {
  int64_t constant = c->epochs - c->decay_epochs, past = epoch + 1 - constant;
  return past <= 0 ? 1.0f : 1.0f - (float)past / (float)(c->decay_epochs + 1);
}

ut_status dmit_load_images(const ut_dataset *ds, const int32_t *ids, int n, int size, float *out) {
  int side = ut_dataset_height(ds), ch = ut_dataset_channels(ds), off = (side - size) / 2;
  float *full = malloc((size_t)ch * side * side * sizeof *full);
  if (!full) return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the images");
  ut_status st = UT_OK;
  for (int i = 0; i < n; i++) {
    ut_dataset_image_chw(ds, ids[i], full);
    for (int c = 0; c < ch; c++)
      for (int y = 0; y < size; y++)
        memcpy(out + (((int64_t)i * ch + c) * size + y) * size, full + ((int64_t)c * side + y + off) * side + off,
               (size_t)size * sizeof *out);
  }
  free(full);
  return st;
}

ut_status dmit_write_grid(dmit_model *m, const float *images, int n, int n_styles, uint64_t style_seed, const char *path) {
  const dmit_cfg *c = dmit_config(m);
  int64_t per = (int64_t)c->channels * c->size * c->size, cols = 1 + (int64_t)c->n_domains * n_styles;
  float *tiles = malloc((size_t)(n * cols * per) * sizeof *tiles), *styles = malloc((size_t)n * c->n_style * sizeof *styles);
  float *row = malloc((size_t)(n * per) * sizeof *row), *one = malloc((size_t)c->n_style * n_styles * sizeof *one);
  ut_status st = tiles && styles && row && one ? UT_OK : ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the grid");
  if (st == UT_OK) dmit_prior_styles(c, style_seed, n_styles, one);
  for (int i = 0; st == UT_OK && i < n; i++) memcpy(tiles + i * cols * per, images + i * per, (size_t)per * sizeof *tiles);
  /* Column 1 + d n_styles + k: every row in domain d with style k. */
  for (int d = 0; st == UT_OK && d < c->n_domains; d++)
    for (int k = 0; st == UT_OK && k < n_styles; k++) {
      for (int i = 0; i < n; i++) memcpy(styles + i * c->n_style, one + k * c->n_style, (size_t)c->n_style * sizeof *styles);
      st = dmit_translate(m, images, n, d, styles, row);
      for (int i = 0; st == UT_OK && i < n; i++)
        memcpy(tiles + (i * cols + 1 + d * n_styles + k) * per, row + i * per, (size_t)per * sizeof *tiles);
    }
  if (st == UT_OK) st = ut_grid_write_jpeg(path, tiles, (int)(n * cols), c->channels, c->size, c->size, (int)cols, 92);
  free(tiles);
  free(styles);
  free(row);
  free(one);
  return st;
}

dmit_model *dmit_open_run(ut_runtime *rt, const char *run_dir) {
  char *path = kit_path(run_dir, DMIT_CHECKPOINT);
  if (!path) return NULL;
  dmit_cfg cfg = dmit_preset(DMIT_PRESET_SMALL, 3, 2);
  dmit_model *m = NULL;
  if (dmit_read_config(rt, path, &cfg) == UT_OK && (m = dmit_new(rt, &cfg)) && dmit_load(m, path) != UT_OK) {
    dmit_free(m);
    m = NULL;
  }
  free(path);
  return m;
}

typedef struct {
  dmit_model *m;
  float *grid_images; /* held-out images of every domain, GRID_PER_DOMAIN each */
  int grid_n;
  float *batch;       /* the step's images, domain after domain */
  int64_t per_epoch;
  int columns[DMIT_LOSS_COUNT]; /* which of dmit_loss_names losses.tsv holds, in order */
  const char *names[DMIT_LOSS_COUNT];
  int n_columns;
} run_ctx;

_Static_assert(DMIT_LOSS_COUNT <= KIT_MAX_LOSSES, "every DMIT loss column must fit the kit trainer's losses.tsv");

/* The 8 columns of every run, then those of the terms that are on: a run without them keeps the
 * columns it had before they existed, so resuming such a run appends rows that match its header. */
static void choose_columns(const dmit_cfg *c, run_ctx *r) {
  int on[DMIT_LOSS_COUNT] = { 1, 1, 1, 1, 1, 1, 1, 1, c->w_content_invariance > 0, c->w_domain_confusion > 0,
                              c->w_domain_confusion > 0, c->w_domain_confusion > 0 };
  r->n_columns = 0;
  for (int i = 0; i < DMIT_LOSS_COUNT; i++)
    if (on[i]) {
      r->columns[r->n_columns] = i;
      r->names[r->n_columns++] = dmit_loss_names[i];
    }
}

static ut_status step(void *user, const ut_batch *const *batches, int64_t at, int64_t steps, float *losses) {
  (void)steps;
  run_ctx *r = user;
  const dmit_cfg *c = dmit_config(r->m);
  /* The batch's rows of each domain: cfg->batch, or on a team the rank's share of them. */
  int64_t per = (int64_t)c->channels * c->size * c->size * batches[0]->n;
  for (int d = 0; d < c->n_domains; d++) memcpy(r->batch + d * per, batches[d]->images, (size_t)per * sizeof *r->batch);
  /* Every ordered pair of domains in turn: the step picks the target shift. */
  dmit_batch b = { .images = r->batch, .shift = 1 + (int)(at % (c->n_domains - 1)) };
  dmit_losses l;
  ut_status st = dmit_train_step(r->m, &b, dmit_lr_factor(c, at / r->per_epoch), &l);
  const float v[DMIT_LOSS_COUNT] = { l.dis,     l.dis_content,        l.adv,              l.rec,
                                     l.cyc,     l.kl,                 l.latent,           l.content,
                                     l.content_invariance, l.domain_confusion, l.domain_cls, l.domain_cls_accuracy };
  for (int i = 0; i < r->n_columns; i++) losses[i] = v[r->columns[i]];
  return st;
}

static ut_status save(void *user, const char *path) { return dmit_save(((run_ctx *)user)->m, path); }

static ut_status grid(void *user, const char *path) {
  run_ctx *r = user;
  return dmit_write_grid(r->m, r->grid_images, r->grid_n, GRID_STYLES, GRID_STYLE_SEED, path);
}

ut_status dmit_train(dmit_model *m, const ut_dataset *ds, const dmit_train_opts *o) {
  const dmit_cfg *c = dmit_config(m);
  dmit_cfg resolved = *c;
  if (!c->domains[0])
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "dmit_train: the model's configuration names no domains (fill them with "
                   "dmit_resolve_domains before dmit_new)");
  ut_status st = dmit_resolve_domains(ds, &resolved);
  if (st != UT_OK) return st;
  dmit_split sp;
  if ((st = dmit_run_split(ds, c, &sp)) != UT_OK) return st;
  char name[KIT_STRING_MAX];
  for (int d = 0; st == UT_OK && d < c->n_domains; d++)
    if (sp.n_train[d] < c->batch)
      st = ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: domain '%s' has %d training images, fewer than one batch of %d",
                   ut_dataset_path(ds), dmit_domain_name(c, d, name), sp.n_train[d], c->batch);
  if (st == UT_OK && mkdir(o->run_dir, 0777) != 0 && errno != EEXIST)
    st = ut_fail(UT_ERR_IO, "cannot create the run folder %s: %s", o->run_dir, strerror(errno));
  int64_t per = (int64_t)c->channels * c->size * c->size;
  run_ctx ctx = { .m = m };
  if (st == UT_OK) {
    ctx.grid_images = malloc((size_t)(c->n_domains * GRID_PER_DOMAIN * per) * sizeof(float));
    ctx.batch = malloc((size_t)(c->n_domains * c->batch * per) * sizeof(float));
    if (!ctx.grid_images || !ctx.batch) st = ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the run");
  }
  for (int d = 0; st == UT_OK && d < c->n_domains; d++) {
    const int32_t *list = sp.n_test[d] ? sp.test[d] : sp.train[d];
    int32_t avail = sp.n_test[d] ? sp.n_test[d] : sp.n_train[d], ids[GRID_PER_DOMAIN];
    int take = avail < GRID_PER_DOMAIN ? avail : GRID_PER_DOMAIN;
    for (int k = 0; k < take; k++) ids[k] = list[(int64_t)k * avail / take];
    st = dmit_load_images(ds, ids, take, c->size, ctx.grid_images + ctx.grid_n * per);
    ctx.grid_n += take;
  }
  choose_columns(c, &ctx);
  kit_model km = { .name = "DMIT", .model = &ctx, .store = dmit_store(m), .n_losses = ctx.n_columns,
                   .loss_names = ctx.names, .step = step, .save = save, .write_grid = grid };
  kit_train_opts to = { .run_dir = o->run_dir, .ds = ds, .n_streams = c->n_domains, .epochs = c->epochs,
                        .save_every = o->save_every, .on_step = o->on_step, .on_epoch = o->on_epoch, .user = o->user,
                        .team = o->team };
  int crop = ut_dataset_height(ds) > c->size ? c->size : 0;
  int32_t shortest = INT32_MAX;
  for (int d = 0; d < c->n_domains; d++) {
    to.streams[d] = (ut_loader_cfg){ .indices = sp.train[d], .n_indices = sp.n_train[d], .batch = c->batch,
                                     .seed = c->seed * 2654435761u + 29 + (uint64_t)d, .drop_last = 1,
                                     .crop = crop, .flip = c->flip, .signed_range = 1 };
    if (sp.n_train[d] < shortest) shortest = sp.n_train[d];
  }
  ctx.per_epoch = shortest / c->batch > 0 ? shortest / c->batch : 1;
  if (st == UT_OK) st = kit_train(&km, &to);
  free(ctx.grid_images);
  free(ctx.batch);
  dmit_split_free(&sp);
  return st;
}
