/* The kit's trainer with a stand-in model: one parameter that a step moves by the batch's mean
 * pixel, so every step's effect is known. Checkpoints come at every epoch and every
 * save_every steps, losses.tsv holds one line per step, a resumed run ends where an
 * uninterrupted one does, and a non-finite loss or parameter stops the run with the last good
 * checkpoint untouched. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kit_trainer.h"
#include "test_support.h"

enum { N_IMAGES = 12, SIDE = 4, BATCH = 3 };

typedef struct {
  ut_store *st;
  ut_store_tensor *w;
  int64_t start;     /* steps done when opened */
  int64_t steps;     /* steps taken since */
  int64_t nan_at;    /* the step (counted from the run's start) whose loss is NaN; -1: none */
  int64_t inf_param_at; /* the step after which the parameter becomes infinite; -1: none */
  int64_t crash_after_save_at; /* the steps done whose checkpoint is written and then reported lost, as
                                * if the process died right after writing it; -1: none */
  int grids;
} fake;

static ut_status fake_step(void *user, const ut_batch *const *batches, int64_t step, int64_t steps, float *losses) {
  fake *f = user;
  float w[2];
  ut_status st = ut_store_tensor_read(f->st, f->w, w);
  double mean[2] = { 0, 0 };
  for (int s = 0; s < 2; s++) {
    for (int i = 0; i < batches[s]->n * SIDE * SIDE; i++) mean[s] += batches[s]->images[i];
    mean[s] /= batches[s]->n * SIDE * SIDE;
  }
  ck_assert_int_eq(step, f->start + f->steps);
  ck_assert_int_eq(steps % 3, 0);
  w[0] = 0.5f * w[0] + (float)mean[0];
  w[1] = 0.5f * w[1] + (float)mean[1];
  if (step == f->inf_param_at) w[1] = INFINITY;
  losses[0] = step == f->nan_at ? NAN : w[0];
  losses[1] = isfinite(w[1]) ? w[1] : 0; /* an infinite parameter shows only at the checkpoint */
  f->steps++;
  return st == UT_OK ? ut_store_tensor_write(f->st, f->w, w) : st;
}

static ut_status fake_save(void *user, const char *path) {
  fake *f = user;
  ut_status st = ut_store_save(f->st, path);
  if (st == UT_OK && kit_steps_done(f->st, NULL) == f->crash_after_save_at)
    return ut_fail(UT_ERR_IO, "the process died after the checkpoint of step %lld", (long long)f->crash_after_save_at);
  return st;
}

static ut_status fake_grid(void *user, const char *path) {
  fake *f = user;
  f->grids++;
  float white[SIDE * SIDE];
  for (int i = 0; i < SIDE * SIDE; i++) white[i] = 1;
  return ut_grid_write_jpeg(path, white, 1, 1, SIDE, SIDE, 1, 90);
}

static const char *loss_names[] = { "first", "second" };

/* A gray data set of N_IMAGES images, image i all at i / N_IMAGES. */
static const char *tiny_set(void) {
  const char *path = test_tmp_path("trainer-set.dat");
  ut_dataset_writer *w = ut_dataset_writer_open(path, &(ut_dataset_desc){ .height = SIDE, .width = SIDE, .channels = 1,
                                                                          .n_classes = 1 });
  ck_assert_ut_ptr(w);
  for (int i = 0; i < N_IMAGES; i++) {
    uint8_t px[SIDE * SIDE];
    memset(px, i * 255 / N_IMAGES, sizeof px);
    ck_assert_ut_ok(ut_dataset_writer_add(w, px, 0, -1));
  }
  ck_assert_ut_ok(ut_dataset_writer_finish(w));
  return path;
}

static void fake_open(fake *f, const char *ckpt) {
  *f = (fake){ .st = ut_store_new(test_runtime(), 1), .nan_at = -1, .inf_param_at = -1, .crash_after_save_at = -1 };
  f->w = ut_store_tensor_get(f->st, "w", UT_SHAPE(2), (ut_init){ UT_INIT_ZERO, 0, 0 });
  if (ckpt) ck_assert_ut_ok(ut_store_load(f->st, ckpt));
  f->start = kit_steps_done(f->st, NULL);
}

static ut_status train(fake *f, const ut_dataset *ds, const char *dir, int64_t epochs, int64_t save_every) {
  mkdir(dir, 0777);
  kit_model km = { .name = "fake", .model = f, .store = f->st, .n_losses = 2, .loss_names = loss_names,
                   .step = fake_step, .save = fake_save, .write_grid = fake_grid };
  kit_train_opts o = { .run_dir = dir, .ds = ds, .n_streams = 2, .epochs = epochs, .save_every = save_every };
  /* Two streams of different lengths: 4 and 3 batches per epoch, so an epoch is 3 steps. */
  static const int32_t evens[] = { 0, 2, 4, 6, 8, 10, 1, 3, 5, 7, 9, 11 };
  o.streams[0] = (ut_loader_cfg){ .indices = evens, .n_indices = 12, .batch = BATCH, .seed = 1, .drop_last = 1 };
  o.streams[1] = (ut_loader_cfg){ .indices = evens, .n_indices = 10, .batch = BATCH, .seed = 2, .drop_last = 1 };
  return kit_train(&km, &o);
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  *len = (size_t)ftell(f);
  rewind(f);
  char *s = malloc(*len + 1);
  ck_assert_uint_eq(fread(s, 1, *len, f), *len);
  s[*len] = 0;
  fclose(f);
  return s;
}

static int count_lines(const char *s) {
  int n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

static char *run_path(const char *dir, const char *name) {
  static char buf[4][512];
  static int at;
  at = (at + 1) % 4;
  snprintf(buf[at], sizeof buf[at], "%s/%s", dir, name);
  return buf[at];
}

START_TEST(checkpoints_losses_and_resume) {
  ut_dataset *ds = ut_dataset_open(tiny_set());
  ck_assert_ut_ptr(ds);
  /* Uninterrupted: 3 epochs of 3 steps. */
  const char *whole = test_tmp_path("trainer-whole");
  fake f;
  fake_open(&f, NULL);
  ck_assert_ut_ok(train(&f, ds, whole, 3, 0));
  ck_assert_int_eq(f.steps, 9);
  ck_assert_int_eq(f.grids, 6); /* samples/epochN.jpg and grid.jpg per epoch */
  ck_assert_int_eq(kit_steps_done(f.st, NULL), 9);
  size_t len;
  char *log_whole = slurp(run_path(whole, "losses.tsv"), &len);
  ck_assert_ptr_nonnull(log_whole);
  ck_assert_int_eq(count_lines(log_whole), 10);
  ck_assert_msg(!strncmp(log_whole, "epoch\tstep\tfirst\tsecond\n", 24), "header: %.40s", log_whole);
  struct stat sb;
  ck_assert_int_eq(stat(run_path(whole, "samples/epoch0003.jpg"), &sb), 0);
  float w_whole[2];
  ck_assert_ut_ok(ut_store_tensor_read(f.st, f.w, w_whole));
  ut_store_free(f.st);

  /* 2 epochs with a checkpoint every 2 steps, then resumed from the checkpoint for a third. */
  const char *parts = test_tmp_path("trainer-parts");
  fake_open(&f, NULL);
  ck_assert_ut_ok(train(&f, ds, parts, 2, 2));
  ut_store_free(f.st);
  fake_open(&f, run_path(parts, KIT_CHECKPOINT));
  ck_assert_int_eq(kit_steps_done(f.st, NULL), 6);
  ck_assert_ut_ok(train(&f, ds, parts, 3, 2));
  ck_assert_int_eq(f.steps, 3);
  float w_parts[2];
  ck_assert_ut_ok(ut_store_tensor_read(f.st, f.w, w_parts));
  ck_assert_msg(!memcmp(w_whole, w_parts, sizeof w_whole), "resumed run ends at %g %g, uninterrupted at %g %g",
                (double)w_parts[0], (double)w_parts[1], (double)w_whole[0], (double)w_whole[1]);
  char *log_parts = slurp(run_path(parts, "losses.tsv"), &len);
  ck_assert_str_eq(log_parts, log_whole);
  ut_store_free(f.st);

  /* Stopped by a NaN at step 5 of 9 (checkpoints after 2, 3 and 5 steps), then resumed from the
   * mid-epoch checkpoint: the same end and the same log. */
  const char *mid = test_tmp_path("trainer-mid");
  fake_open(&f, NULL);
  f.nan_at = 5;
  ck_assert_int_eq(train(&f, ds, mid, 3, 2), UT_ERR_STATE);
  ut_store_free(f.st);
  fake_open(&f, run_path(mid, KIT_CHECKPOINT));
  ck_assert_int_eq(kit_steps_done(f.st, NULL), 5);
  ck_assert_ut_ok(train(&f, ds, mid, 3, 0));
  char *log_mid = slurp(run_path(mid, "losses.tsv"), &len);
  ck_assert_str_eq(log_mid, log_whole);
  ut_store_free(f.st);

  /* Stopped right after the checkpoint of step 6 was written: the log already holds every step
   * up to it (the losses go to disk first), so the resumed run's log has no gap. */
  const char *died = test_tmp_path("trainer-died");
  fake_open(&f, NULL);
  f.crash_after_save_at = 6;
  ck_assert_int_eq(train(&f, ds, died, 3, 2), UT_ERR_IO);
  ut_store_free(f.st);
  fake_open(&f, run_path(died, KIT_CHECKPOINT));
  ck_assert_int_eq(kit_steps_done(f.st, NULL), 6);
  ck_assert_ut_ok(train(&f, ds, died, 3, 2));
  char *log_died = slurp(run_path(died, "losses.tsv"), &len);
  ck_assert_str_eq(log_died, log_whole);
  free(log_died);
  ut_store_free(f.st);
  free(log_whole);
  free(log_parts);
  free(log_mid);
  ut_dataset_close(ds);
}
END_TEST

START_TEST(non_finite_values_keep_the_last_good_checkpoint) {
  ut_dataset *ds = ut_dataset_open(tiny_set());
  const char *dir = test_tmp_path("trainer-nan");
  fake f;
  fake_open(&f, NULL);
  f.nan_at = 4;
  ck_assert_int_eq(train(&f, ds, dir, 3, 0), UT_ERR_STATE);
  ck_assert_msg(strstr(ut_last_error(), "loss 'first'") && strstr(ut_last_error(), "step 4"), "%s", ut_last_error());
  ut_store_free(f.st);
  fake_open(&f, run_path(dir, KIT_CHECKPOINT));
  ck_assert_int_eq(kit_steps_done(f.st, NULL), 3);
  size_t len;
  char *log = slurp(run_path(dir, "losses.tsv"), &len);
  ck_assert_int_eq(count_lines(log), 4);
  free(log);
  ut_store_free(f.st);

  const char *dir2 = test_tmp_path("trainer-inf");
  fake_open(&f, NULL);
  f.inf_param_at = 4;
  ck_assert_int_eq(train(&f, ds, dir2, 3, 0), UT_ERR_STATE);
  ck_assert_msg(strstr(ut_last_error(), "'w'"), "%s", ut_last_error());
  ut_store_free(f.st);
  fake_open(&f, run_path(dir2, KIT_CHECKPOINT));
  ck_assert_int_eq(kit_steps_done(f.st, NULL), 3);
  ut_store_free(f.st);
  ut_dataset_close(ds);
}
END_TEST

/* A fresh run of 0 epochs writes the initialised model and its grid, which the train commands'
 * last line names; a finished run given no more epochs leaves its checkpoint as it was. */
START_TEST(zero_epochs_write_the_initial_model) {
  ut_dataset *ds = ut_dataset_open(tiny_set());
  const char *dir = test_tmp_path("trainer-zero");
  fake f;
  fake_open(&f, NULL);
  ck_assert_ut_ok(train(&f, ds, dir, 0, 0));
  ck_assert_int_eq(f.steps, 0);
  ck_assert_int_eq(f.grids, 1);
  size_t len;
  char *grid = slurp(run_path(dir, "grid.jpg"), &len);
  ck_assert_msg(grid && len > 2, "no grid.jpg after 0 epochs");
  free(grid);
  ut_store_free(f.st);
  fake_open(&f, run_path(dir, KIT_CHECKPOINT));
  ck_assert_int_eq(kit_steps_done(f.st, NULL), 0);
  ut_store_free(f.st);

  const char *dir2 = test_tmp_path("trainer-zero-more");
  fake_open(&f, NULL);
  ck_assert_ut_ok(train(&f, ds, dir2, 1, 0));
  ut_store_free(f.st);
  struct stat before, after;
  ck_assert_int_eq(stat(run_path(dir2, KIT_CHECKPOINT), &before), 0);
  fake_open(&f, run_path(dir2, KIT_CHECKPOINT));
  ck_assert_ut_ok(train(&f, ds, dir2, 1, 0));
  ck_assert_int_eq(f.steps + f.grids, 0);
  ck_assert_int_eq(stat(run_path(dir2, KIT_CHECKPOINT), &after), 0);
  ck_assert(before.st_mtim.tv_sec == after.st_mtim.tv_sec && before.st_mtim.tv_nsec == after.st_mtim.tv_nsec);
  ut_store_free(f.st);
  ut_dataset_close(ds);
}
END_TEST

int main(void) {
  Suite *s = suite_create("kit_trainer");
  TCase *tc = tcase_create("kit_trainer");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, checkpoints_losses_and_resume);
  tcase_add_test(tc, non_finite_values_keep_the_last_good_checkpoint);
  tcase_add_test(tc, zero_epochs_write_the_initial_model);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
