/* The kit's training loop (kit_trainer.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "kit_trainer.h"

#define LOSSES_FILE "losses.tsv"

char *kit_path(const char *dir, const char *name) {
  size_t len = strlen(dir) + strlen(name) + 2;
  char *p = malloc(len);
  if (p) snprintf(p, len, "%s/%s", dir, name);
  else ut_fail(UT_ERR_HOST_MEMORY, "out of host memory");
  return p;
}

int64_t kit_steps_done(ut_store *st, const char *key) {
  const char *v = ut_store_get_meta(st, key ? key : KIT_STEP_KEY);
  return v ? strtoll(v, NULL, 10) : 0;
}

ut_status kit_set_steps_done(ut_store *st, const char *key, int64_t steps) {
  char v[24];
  snprintf(v, sizeof v, "%lld", (long long)steps);
  return ut_store_set_meta(st, key ? key : KIT_STEP_KEY, v);
}

/* Every tensor of the store finite, or an error naming the first that is not. */
static ut_status check_finite(const kit_model *m, int64_t step) {
  ut_status st = UT_OK;
  float *buf = NULL;
  size_t cap = 0;
  for (int i = 0; st == UT_OK && i < ut_store_count(m->store); i++) {
    ut_store_tensor *t = ut_store_at(m->store, i);
    size_t n = (size_t)ut_shape_numel(ut_store_tensor_shape(t));
    if (n > cap) {
      float *grown = realloc(buf, n * sizeof *buf);
      if (!grown) {
        st = ut_fail(UT_ERR_HOST_MEMORY, "out of host memory checking the parameters");
        break;
      }
      buf = grown;
      cap = n;
    }
    if ((st = ut_store_tensor_read(m->store, t, buf)) != UT_OK) break;
    for (size_t k = 0; k < n; k++)
      if (!isfinite(buf[k])) {
        st = ut_fail(UT_ERR_STATE, "%s: '%s' holds %g at element %zu after step %lld; the checkpoint of the last "
                     "good state is kept (try a lower learning rate)", m->name, ut_store_tensor_name(t),
                     (double)buf[k], k, (long long)step);
        break;
      }
  }
  free(buf);
  return st;
}

/* FNV-1a over the bytes of every tensor of the store (parameters, embeddings, optimiser
 * state): ranks of a team that applied the same updates hold the same bytes. */
static ut_status store_checksum(ut_store *st, uint64_t *sum) {
  uint64_t h = 1469598103934665603ull;
  float *buf = NULL;
  size_t cap = 0;
  ut_status s = UT_OK;
  for (int i = 0; s == UT_OK && i < ut_store_count(st); i++) {
    ut_store_tensor *t = ut_store_at(st, i);
    size_t n = (size_t)ut_shape_numel(ut_store_tensor_shape(t));
    if (n > cap) {
      float *grown = realloc(buf, n * sizeof *buf);
      if (!grown) {
        s = ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the parameter checksum");
        break;
      }
      buf = grown;
      cap = n;
    }
    if ((s = ut_store_tensor_read(st, t, buf)) != UT_OK) break;
    const unsigned char *b = (const unsigned char *)buf;
    for (size_t k = 0; k < n * sizeof *buf; k++) h = (h ^ b[k]) * 1099511628211ull;
  }
  free(buf);
  *sum = h;
  return s;
}

/* On a team: whether every rank holds the same store after `steps` steps. */
static ut_status check_agreement(const kit_model *m, const kit_team *team, int64_t steps) {
  uint64_t sum = 0;
  ut_status st = store_checksum(m->store, &sum);
  if (st == UT_OK) st = team->agree(team->user, sum, steps);
  if (st != UT_OK) ut_error_prefix("%s", m->name);
  return st;
}

/* This rank's share of a whole batch: rows [rank n / size, (rank + 1) n / size) of every field. */
static ut_batch share_of(const ut_batch *b, const kit_team *team, int channels, int side) {
  int rows = b->n / team->size;
  int64_t first = (int64_t)team->rank * rows, pixels = (int64_t)side * side;
  ut_batch s = *b;
  s.n = rows;
  s.images = b->images + first * channels * pixels;
  s.indices = b->indices ? b->indices + first : NULL;
  s.classes = b->classes ? b->classes + first : NULL;
  s.contents = b->contents ? b->contents + first : NULL;
  s.domains = b->domains ? b->domains + first : NULL;
  s.attributes = b->attributes ? b->attributes + first * b->n_attributes : NULL;
  s.masks = b->masks ? b->masks + first * pixels : NULL;
  return s;
}

/* Rewrites losses.tsv with a fresh header and the lines worth keeping: other phases' lines,
 * and this phase's lines of steps before `steps` (a run resumed after a crash may have logged
 * past its checkpoint). A first line that does not start with a digit is the old header. */
static ut_status prepare_losses(const kit_model *m, const kit_train_opts *o, const char *path, int64_t steps) {
  FILE *f = fopen(path, "r");
  char *kept = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&kept, &len);
  if (!mem) {
    if (f) fclose(f);
    return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory");
  }
  if (o->phase_column) fprintf(mem, "%s\t", o->phase_column);
  fprintf(mem, "epoch\tstep");
  for (int i = 0; i < m->n_losses; i++) fprintf(mem, "\t%s", m->loss_names[i]);
  fprintf(mem, "\n");
  char line[1024];
  for (int first = 1; f && fgets(line, sizeof line, f); first = 0) {
    if (first && !(line[0] >= '0' && line[0] <= '9')) continue;
    char phase[64] = "";
    long long step = -1;
    int ok = o->phase_column ? sscanf(line, "%63[^\t]\t%*d\t%lld", phase, &step) == 2
                             : sscanf(line, "%*d\t%lld", &step) == 1;
    if (ok && ((o->phase_column && strcmp(phase, o->phase) != 0) || step < steps)) fputs(line, mem);
  }
  if (f) fclose(f);
  fclose(mem);
  ut_status st = ut_data_write_atomic(path, kept, len);
  free(kept);
  return st;
}

static ut_status append_losses(const char *path, const char *phase, const float *losses, int n_losses,
                               int64_t first_step, int64_t n_steps, int64_t per_epoch) {
  FILE *f = fopen(path, "a");
  if (!f) return ut_fail(UT_ERR_IO, "cannot append to %s: %s", path, strerror(errno));
  for (int64_t s = 0; s < n_steps; s++) {
    int64_t step = first_step + s;
    if (phase) fprintf(f, "%s\t", phase);
    fprintf(f, "%lld\t%lld", (long long)(step / per_epoch), (long long)step);
    for (int i = 0; i < n_losses; i++) fprintf(f, "\t%.7g", (double)losses[s * n_losses + i]);
    fprintf(f, "\n");
  }
  if (fclose(f) != 0) return ut_fail(UT_ERR_IO, "cannot write %s: %s", path, strerror(errno));
  return UT_OK;
}

typedef struct {
  ut_loader *loaders[KIT_MAX_STREAMS];
  float *pending;         /* losses of the steps since the last checkpoint */
  int64_t pending_from;   /* the step of pending's first row */
  char *ckpt, *losses, *grid, *samples;
} trainer;

static ut_status checkpoint(const kit_model *m, const kit_train_opts *o, trainer *t, int64_t steps, int64_t per_epoch) {
  /* The losses go to disk before the checkpoint: a crash between the two then leaves lines past
   * the checkpoint, which the resumed run drops (prepare_losses), never a gap. */
  ut_status st = check_finite(m, steps);
  if (st == UT_OK)
    st = append_losses(t->losses, o->phase_column ? o->phase : NULL, t->pending, m->n_losses, t->pending_from,
                       steps - t->pending_from, per_epoch);
  if (st == UT_OK) st = kit_set_steps_done(m->store, o->step_key, steps);
  if (st == UT_OK) st = m->save(m->model, t->ckpt);
  t->pending_from = steps;
  return st;
}

static void trainer_free(trainer *t, int n) {
  for (int i = 0; i < n; i++) ut_loader_free(t->loaders[i]);
  free(t->pending);
  free(t->ckpt);
  free(t->losses);
  free(t->grid);
  free(t->samples);
}

ut_status kit_train(const kit_model *m, const kit_train_opts *o) {
  if (!m || !o || (o->phase_column && !o->phase) || o->n_streams < 1 || o->n_streams > KIT_MAX_STREAMS || m->n_losses < 1 || m->n_losses > KIT_MAX_LOSSES)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "kit_train: bad model or options");
  const kit_team *team = o->team && o->team->size > 1 ? o->team : NULL;
  int writer = !team || team->rank == 0; /* the one process that writes files and reports */
  for (int i = 0; team && i < o->n_streams; i++)
    if (o->streams[i].batch % team->size != 0)
      return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: batch %d does not split into %d equal shares, one per process; use "
                     "a batch that is a multiple of %d", m->name, o->streams[i].batch, team->size, team->size);
  int64_t check_every = o->check_every > 0 ? o->check_every : 100;
  trainer t = { 0 };
  ut_status st = UT_OK;
  int64_t per_epoch = INT64_MAX;
  for (int i = 0; st == UT_OK && i < o->n_streams; i++) {
    if (!(t.loaders[i] = ut_loader_new(o->ds, &o->streams[i]))) st = UT_ERR_INVALID_ARGUMENT;
    else if (ut_loader_batches_per_epoch(t.loaders[i]) < per_epoch) per_epoch = ut_loader_batches_per_epoch(t.loaders[i]);
  }
  int64_t save_every = o->save_every > 0 ? o->save_every : per_epoch;
  if (st == UT_OK) {
    t.pending = malloc((size_t)((save_every < per_epoch ? save_every : per_epoch) + 1) * m->n_losses * sizeof(float));
    t.ckpt = kit_path(o->run_dir, KIT_CHECKPOINT);
    t.losses = kit_path(o->run_dir, LOSSES_FILE);
    t.grid = kit_path(o->run_dir, "grid.jpg");
    t.samples = kit_path(o->run_dir, "samples");
    if (!t.pending || !t.ckpt || !t.losses || !t.grid || !t.samples) st = ut_fail(UT_ERR_HOST_MEMORY, "out of host memory");
  }
  if (st == UT_OK && writer && mkdir(t.samples, 0777) != 0 && errno != EEXIST)
    st = ut_fail(UT_ERR_IO, "cannot create %s: %s", t.samples, strerror(errno));
  int64_t done = kit_steps_done(m->store, o->step_key), total = o->epochs * per_epoch;
  if (st == UT_OK && writer) st = prepare_losses(m, o, t.losses, done);
  /* Every rank starts from the same store (the same checkpoint, or the same seed). */
  if (st == UT_OK && team && done < total) st = check_agreement(m, team, done);
  t.pending_from = done;
  kit_progress pr = { .epochs = o->epochs, .steps = total };
  for (int64_t step = done; st == UT_OK && step < total; step++) {
    const ut_batch *batches[KIT_MAX_STREAMS];
    ut_batch shares[KIT_MAX_STREAMS];
    double t0 = ut_seconds(), comm0 = team ? team->comm_seconds(team->user) : 0;
    int images = 0;
    /* A stream with more batches per epoch than the shortest would run on into its own epoch;
     * every epoch starts each stream at its (epoch, 0), so a resumed run sees the same. */
    if (step == done || step % per_epoch == 0)
      for (int i = 0; st == UT_OK && i < o->n_streams; i++)
        st = ut_loader_seek(t.loaders[i], step / per_epoch, step % per_epoch);
    for (int i = 0; st == UT_OK && i < o->n_streams; i++) {
      st = ut_loader_next(t.loaders[i], &batches[i]);
      if (st == UT_OK) images += batches[i]->n;
    }
    /* On a team every rank draws the whole batch and trains on its share of it. */
    if (st == UT_OK && team) {
      st = team->begin_step(team->user, batches, o->n_streams);
      for (int i = 0; i < o->n_streams; i++) {
        shares[i] = share_of(batches[i], team, ut_dataset_channels(o->ds), ut_loader_image_side(t.loaders[i]));
        batches[i] = &shares[i];
      }
    }
    float *losses = t.pending + (step - t.pending_from) * m->n_losses;
    if (st == UT_OK) st = m->step(m->model, batches, step, total, losses);
    if (st == UT_OK && team && (st = team->sum(team->user, losses, m->n_losses)) == UT_OK)
      for (int i = 0; i < m->n_losses; i++) losses[i] /= (float)team->size;
    for (int i = 0; st == UT_OK && i < m->n_losses; i++)
      if (!isfinite(losses[i]))
        st = ut_fail(UT_ERR_STATE, "%s: loss '%s' became %g at step %lld (epoch %lld); the checkpoint of step %lld is "
                     "kept (try a lower learning rate)", m->name, m->loss_names[i], (double)losses[i],
                     (long long)step, (long long)(step / per_epoch), (long long)t.pending_from);
    if (st != UT_OK) break;
    double seconds = ut_seconds() - t0;
    pr = (kit_progress){ .epoch = step / per_epoch, .epochs = o->epochs, .step = step + 1, .steps = total,
                         .losses = losses, .images_per_second = images / seconds,
                         .comm_share = team ? (team->comm_seconds(team->user) - comm0) / seconds : 0 };
    if (o->on_step && writer) o->on_step(o->user, &pr);
    int epoch_end = (step + 1) % per_epoch == 0, save = epoch_end || (step + 1 - t.pending_from) >= save_every;
    if (team && (save || (step + 1) % check_every == 0)) st = check_agreement(m, team, step + 1);
    if (st == UT_OK && save) {
      if (writer) st = checkpoint(m, o, &t, step + 1, per_epoch);
      else t.pending_from = step + 1;
      /* A rank that could not write stops the others too, at the same step. */
      float failed = st != UT_OK;
      if (team && team->sum(team->user, &failed, 1) == UT_OK && failed > 0 && st == UT_OK)
        st = ut_fail(UT_ERR_IO, "%s: rank 0 could not write the checkpoint of step %lld (its message says why)",
                     m->name, (long long)(step + 1));
    }
    if (st == UT_OK && epoch_end && m->write_grid && writer) {
      char name[128];
      snprintf(name, sizeof name, "%.64sepoch%04lld.jpg", o->sample_prefix ? o->sample_prefix : "",
               (long long)((step + 1) / per_epoch));
      char *sample = kit_path(t.samples, name);
      st = sample ? m->write_grid(m->model, sample) : UT_ERR_HOST_MEMORY;
      if (st == UT_OK) st = m->write_grid(m->model, t.grid);
      free(sample);
      if (st == UT_OK && o->on_epoch) o->on_epoch(o->user, &pr, t.grid);
    }
  }
  /* A fresh run given no steps to take (0 epochs) still leaves the model as initialised and its
   * grid, so the run folder holds what the command's last line names, and eval can read it. */
  if (st == UT_OK && writer && done >= total && access(t.ckpt, F_OK) != 0) {
    st = checkpoint(m, o, &t, done, per_epoch);
    if (st == UT_OK && m->write_grid) st = m->write_grid(m->model, t.grid);
  }
  trainer_free(&t, o->n_streams);
  return st;
}
