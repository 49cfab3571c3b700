/* DMIT on tiny data: reconstruction and cycle losses fall, each of the four updates changes
 * only the networks it names, a checkpoint keeps the spectral norms' vectors and reproduces
 * translations and later steps bit for bit, and bad configurations are refused by name. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmit.h"
#include "dmit_tiny.h"
#include "dmit_eval.h"
#include "dmit_internal.h"
#include "gradcheck.h"
#include "test_support.h"

enum { DOMAINS = DMIT_TINY_DOMAINS, BATCH = DMIT_TINY_BATCH, SIZE = DMIT_TINY_SIZE, NB = DOMAINS * BATCH };

/* Domain d: ramps of a few brightnesses, tinted towards channel d, so translating is a colour
 * map per domain and reconstruction is learnable. */
static void tiny_batch(int step, float *x) {
  for (int i = 0; i < NB; i++) {
    int d = i / BATCH, b = i % BATCH;
    for (int ch = 0; ch < 3; ch++)
      for (int y = 0; y < SIZE; y++)
        for (int xx = 0; xx < SIZE; xx++) {
          float ramp = (float)(((step + b) % 2) ? y : xx) / (SIZE - 1) * (0.5f + 0.25f * (float)((step + b) % 3));
          float v = ch == d ? 0.3f + 0.7f * ramp : 0.5f * ramp;
          x[(((int64_t)i * 3 + ch) * SIZE + y) * SIZE + xx] = 2 * v - 1;
        }
  }
}

static void run_steps(dmit_model *m, int first, int n, dmit_losses *out) {
  float *x = malloc((size_t)NB * 3 * SIZE * SIZE * sizeof *x);
  for (int s = first; s < first + n; s++) {
    tiny_batch(s, x);
    dmit_batch b = { .images = x, .shift = 1 + s % (DOMAINS - 1) };
    ck_assert_ut_ok(dmit_train_step(m, &b, 1.0f, &out[s - first]));
    ck_assert_msg(isfinite(out[s - first].gen) && isfinite(out[s - first].dis), "step %d: D %g G %g", s,
                  (double)out[s - first].dis, (double)out[s - first].gen);
  }
  free(x);
}

START_TEST(reconstruction_losses_fall) {
  dmit_cfg c = dmit_tiny_cfg();
  dmit_model *m = dmit_new(test_runtime(), &c);
  ck_assert_ut_ptr(m);
  enum { STEPS = 40 };
  dmit_losses l[STEPS];
  run_steps(m, 0, STEPS, l);
  double first = 0, last = 0;
  for (int i = 0; i < STEPS; i++)
    if (getenv("DMIT_TEST_VERBOSE"))
      printf("%d D %.4f G %.4f adv %.4f rec %.4f cyc %.4f kl %.4f latent %.4f content %.4f\n", i, l[i].dis, l[i].gen,
             l[i].adv, l[i].rec, l[i].cyc, l[i].kl, l[i].latent, l[i].content);
  for (int i = 0; i < STEPS / 5; i++) {
    first += l[i].rec + l[i].cyc;
    last += l[STEPS - STEPS / 5 + i].rec + l[STEPS - STEPS / 5 + i].cyc;
  }
  ck_assert_msg(last < 0.7 * first, "rec + cyc over the first %d steps %g, the last %d %g", STEPS / 5,
                first / (STEPS / 5), STEPS / 5, last / (STEPS / 5));
  dmit_free(m);
}
END_TEST

/* Parameters only: optimiser moments and the spectral norms' vectors (which every forward pass
 * in training advances, as PyTorch's do) are left out. */
static int is_param(const char *name) {
  size_t n = strlen(name);
  return !strstr(name, "adam") && !(n > 2 && name[n - 2] == '.' && (name[n - 1] == 'u' || name[n - 1] == 'v'));
}

static int params_changed(ut_store *st, float **before, const char *prefix) {
  int changed = 0;
  for (int i = 0; i < ut_store_count(st); i++) {
    ut_store_tensor *t = ut_store_at(st, i);
    const char *name = ut_store_tensor_name(t);
    if (strncmp(name, prefix, strlen(prefix)) != 0 || !is_param(name) || !before[i]) continue;
    int64_t n = ut_shape_numel(ut_store_tensor_shape(t));
    float *now = malloc((size_t)n * sizeof *now);
    ck_assert_ut_ok(ut_store_tensor_read(st, t, now));
    changed += memcmp(now, before[i], (size_t)n * sizeof *now) != 0;
    free(now);
  }
  return changed;
}

static float **snapshot(ut_store *st) {
  float **s = calloc((size_t)ut_store_count(st) + 64, sizeof *s);
  for (int i = 0; i < ut_store_count(st); i++) {
    ut_store_tensor *t = ut_store_at(st, i);
    s[i] = malloc((size_t)ut_shape_numel(ut_store_tensor_shape(t)) * sizeof(float));
    ck_assert_ut_ok(ut_store_tensor_read(st, t, s[i]));
  }
  return s;
}

static void snapshot_free(float **s, int n) {
  for (int i = 0; i < n; i++) free(s[i]);
  free(s);
}

START_TEST(each_update_changes_only_its_networks) {
  static const char *const nets[] = { DMIT_ENC_CONTENT, DMIT_ENC_STYLE, DMIT_DEC, DMIT_DIS_CONTENT, DMIT_DIS_PRIOR,
                                      DMIT_DIS_ENC };
  /* Which of nets[] each update trains (the fifth: the extra content-discriminator update). */
  static const int trains[5][6] = { { 0, 0, 0, 1, 1, 1 }, { 1, 1, 1, 0, 0, 0 }, { 0, 0, 1, 0, 0, 0 },
                                    { 1, 0, 0, 0, 0, 0 }, { 0, 0, 0, 1, 0, 0 } };
  dmit_cfg c = dmit_tiny_cfg();
  dmit_model *m = dmit_new(test_runtime(), &c);
  float *x = malloc((size_t)NB * 3 * SIZE * SIZE * sizeof *x), out[DMIT_UPDATE_LOSSES_MAX];
  tiny_batch(0, x);
  dmit_batch b = { .images = x, .shift = 2 };
  /* One full step first, so every parameter exists before the snapshots. */
  dmit_losses l;
  ck_assert_ut_ok(dmit_train_step(m, &b, 1.0f, &l));
  ut_store *st = dmit_store(m);
  for (int u = 0; u < 5; u++) {
    int n = ut_store_count(st);
    float **before = snapshot(st);
    ck_assert_ut_ok(dmit_update(m, u, &b, 1.0f, out));
    for (int k = 0; k < 6; k++) {
      int changed = params_changed(st, before, nets[k]);
      if (trains[u][k]) ck_assert_msg(changed > 0, "update %d left %s unchanged", u, nets[k]);
      else ck_assert_msg(changed == 0, "update %d changed %d tensors of %s", u, changed, nets[k]);
    }
    snapshot_free(before, n);
  }
  free(x);
  dmit_free(m);
}
END_TEST

static void read_tensor(ut_store *st, const char *name, float *out, int64_t n) {
  ut_store_tensor *t = ut_store_find(st, name);
  ck_assert_msg(t != NULL, "no store tensor %s", name);
  ck_assert_int_eq(ut_shape_numel(ut_store_tensor_shape(t)), n);
  ck_assert_ut_ok(ut_store_tensor_read(st, t, out));
}

START_TEST(checkpoint_round_trip_is_exact) {
  dmit_cfg c = dmit_tiny_cfg();
  dmit_model *m = dmit_new(test_runtime(), &c);
  dmit_losses l[3], again[3];
  run_steps(m, 0, 3, l);
  const char *path = test_tmp_path("dmit-roundtrip.safetensors");
  ck_assert_ut_ok(dmit_save(m, path));
  dmit_cfg read = dmit_preset(DMIT_PRESET_DEFAULT, 1, 2);
  ck_assert_ut_ok(dmit_read_config(test_runtime(), path, &read));
  char why[256];
  ck_assert_msg(!kit_config_differs(dmit_cfg_table(), &read, &c, why, sizeof why), "config read back differs: %s", why);
  dmit_model *m2 = dmit_new(test_runtime(), &read);
  ck_assert_ut_ok(dmit_load(m2, path));
  /* The spectral norms' vectors, which are not parameters, come back too (and were trained:
   * they are no longer unit vectors of the first draw only if they moved, so compare to the
   * saving model's). */
  static const char *const vectors[] = { DMIT_DEC "res.0.0.u", DMIT_DEC "up.0.v", DMIT_ENC_STYLE "mu.u",
                                         DMIT_DIS_PRIOR "0.head.u", DMIT_DEC "res.0.cbin0.u" };
  for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
    ut_store_tensor *t = ut_store_find(dmit_store(m), vectors[i]);
    ck_assert_msg(t != NULL, "no %s", vectors[i]);
    int64_t n = ut_shape_numel(ut_store_tensor_shape(t));
    float *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b);
    read_tensor(dmit_store(m), vectors[i], a, n);
    read_tensor(dmit_store(m2), vectors[i], b, n);
    ck_assert_msg(!memcmp(a, b, (size_t)n * sizeof *a), "%s differs after loading", vectors[i]);
    free(a);
    free(b);
  }
  int64_t per = 3 * SIZE * SIZE;
  float *in = malloc(3 * per * sizeof *in), *o1 = malloc(3 * per * sizeof *o1), *o2 = malloc(3 * per * sizeof *o2);
  float styles[3 * 2], s1[3 * 2], s2[3 * 2];
  uint64_t rng = 9;
  test_fill_uniform(&rng, in, 3 * per, 0, 1);
  dmit_prior_styles(&c, 5, 3, styles);
  for (int to = 0; to < DOMAINS; to++) {
    ck_assert_ut_ok(dmit_translate(m, in, 3, to, styles, o1));
    ck_assert_ut_ok(dmit_translate(m2, in, 3, to, styles, o2));
    ck_assert_msg(!memcmp(o1, o2, 3 * per * sizeof *o1), "translation into %d differs after loading", to);
  }
  ck_assert_ut_ok(dmit_encode_style(m, in, 3, s1));
  ck_assert_ut_ok(dmit_encode_style(m2, in, 3, s2));
  ck_assert(!memcmp(s1, s2, sizeof s1));
  /* Inference leaves the store alone: translating again gives the same bits. */
  ck_assert_ut_ok(dmit_translate(m, in, 3, 0, styles, o2));
  ck_assert_ut_ok(dmit_translate(m, in, 3, 0, styles, o1));
  ck_assert(!memcmp(o1, o2, 3 * per * sizeof *o1));
  /* Later steps, every random draw included, continue identically. */
  run_steps(m, 3, 3, l);
  run_steps(m2, 3, 3, again);
  ck_assert_msg(!memcmp(l, again, sizeof l), "losses after loading differ: G %.9g vs %.9g", (double)l[2].gen,
                (double)again[2].gen);
  /* Another configuration refuses the checkpoint and names the field. */
  dmit_cfg other = c;
  other.n_style = 3;
  dmit_model *m3 = dmit_new(test_runtime(), &other);
  ck_assert_int_ne(dmit_load(m3, path), UT_OK);
  ck_assert_msg(strstr(ut_last_error(), "n_style") != NULL, "%s", ut_last_error());
  dmit_free(m3);
  free(in);
  free(o1);
  free(o2);
  dmit_free(m);
  dmit_free(m2);
}
END_TEST

/* The content adversarial weight scales that term alone: two models from one seed see the same
 * first generator update's forward pass, so w_adv_content 3 gives three times the term and the
 * other losses unchanged; the content discriminator's loss is part of the discriminators'.
 * Extra content-discriminator updates lower its loss on the batch. A configuration written
 * before these fields existed reads back with the official weight 1 and no extra updates. */
START_TEST(content_adversarial_weight) {
  dmit_cfg c = dmit_tiny_cfg(), c3 = dmit_tiny_cfg();
  c3.w_adv_content = 3.0f;
  dmit_model *m = dmit_new(test_runtime(), &c), *m3 = dmit_new(test_runtime(), &c3);
  float *x = malloc((size_t)NB * 3 * SIZE * SIZE * sizeof *x), d[2], d3[2];
  float g[DMIT_UPDATE_LOSSES_MAX], g3[DMIT_UPDATE_LOSSES_MAX];
  tiny_batch(0, x);
  dmit_batch b = { .images = x, .shift = 1 };
  ck_assert_ut_ok(dmit_update(m, 0, &b, 1.0f, d));
  ck_assert_ut_ok(dmit_update(m3, 0, &b, 1.0f, d3));
  ck_assert(d[0] == d3[0] && d[1] == d3[1]);
  ck_assert_msg(d[1] > 0 && d[1] < d[0], "content discriminator %g of all %g", (double)d[1], (double)d[0]);
  ck_assert_ut_ok(dmit_update(m, 1, &b, 1.0f, g));
  ck_assert_ut_ok(dmit_update(m3, 1, &b, 1.0f, g3));
  ck_assert_msg(g[5] > 0 && fabsf(g3[5] - 3 * g[5]) <= 1e-6f * g3[5], "content term %g, weighted by 3: %g", (double)g[5],
                (double)g3[5]);
  ck_assert(g[2] == g3[2] && g[3] == g3[3] && g[4] == g3[4]);
  ck_assert_msg(fabsf((g3[1] - g[1]) - 2 * g[5]) <= 1e-5f, "adv %g vs %g", (double)g[1], (double)g3[1]);
  dmit_free(m);
  dmit_free(m3);

  /* Extra content-discriminator updates run before the four, on the same batch: the
   * discriminators' update then finds the content discriminator's loss lower than without. */
  dmit_cfg c2 = dmit_tiny_cfg();
  c2.dis_content_steps = 2;
  dmit_model *m0 = dmit_new(test_runtime(), &c), *m2 = dmit_new(test_runtime(), &c2);
  dmit_losses l0, l2;
  ck_assert_ut_ok(dmit_train_step(m0, &b, 1.0f, &l0));
  ck_assert_ut_ok(dmit_train_step(m2, &b, 1.0f, &l2));
  ck_assert_msg(l2.dis_content < l0.dis_content, "content discriminator after 2 extra updates %g, without %g",
                (double)l2.dis_content, (double)l0.dis_content);
  dmit_free(m0);
  dmit_free(m2);
  free(x);

  c3.dis_content_steps = 4;
  char *json = kit_config_to_json(dmit_cfg_table(), &c3);
  ck_assert_ptr_nonnull(json);
  for (int k = 0; k < 2; k++) {
    char *at = strstr(json, k ? "\"dis_content_steps\":" : "\"w_adv_content\":");
    ck_assert_ptr_nonnull(at);
    char *end = strchr(at, ',');
    memmove(at, end + 1, strlen(end + 1) + 1);
  }
  dmit_cfg read = dmit_preset(DMIT_PRESET_SMALL, 3, DOMAINS);
  ck_assert_ut_ok(kit_config_from_json(dmit_cfg_table(), json, &read));
  ck_assert_float_eq(read.w_adv_content, 1.0f);
  ck_assert_int_eq(read.dis_content_steps, 0);
  ck_assert_int_eq(read.nef, 4);
  free(json);
}
END_TEST

/* The domains' moment gap of content codes [n, D] whose domain is row / per, on the host: the
 * mean over rows and dimensions of the squared gap between the row's domain mean and the mean
 * of all rows, for the codes and for their squares (kit_group_moment_gap). */
static double domain_moment_gap(const float *codes, int n, int64_t dim, int per) {
  double total = 0;
  for (int power = 1; power <= 2; power++)
    for (int64_t k = 0; k < dim; k++) {
      double all = 0, sum[DOMAINS] = { 0 };
      for (int i = 0; i < n; i++) {
        double v = codes[i * dim + k];
        v = power == 1 ? v : v * v;
        all += v;
        sum[i / per] += v;
      }
      for (int i = 0; i < n; i++) {
        double gap = sum[i / per] / per - all / n;
        total += gap * gap;
      }
    }
  return total / ((double)n * dim);
}

/* tiny_batch with a texture of each domain's own (stripes, vertical, horizontal or diagonal)
 * over the ramps: instance normalisation takes tiny_batch's tints out of the content codes,
 * these stay in them. */
static void textured_batch(int step, float *x) {
  tiny_batch(step, x);
  for (int i = 0; i < NB; i++)
    for (int ch = 0; ch < 3; ch++)
      for (int y = 0; y < SIZE; y++)
        for (int xx = 0; xx < SIZE; xx++) {
          int d = i / BATCH, along = d == 0 ? xx : d == 1 ? y : xx + y;
          x[(((int64_t)i * 3 + ch) * SIZE + y) * SIZE + xx] += (along / 2) % 2 ? 0.4f : -0.4f;
        }
}

static void train_textured(dmit_model *m, int steps, float *x, dmit_losses *l) {
  for (int s = 0; s < steps; s++) {
    textured_batch(s, x);
    ck_assert_ut_ok(dmit_train_step(m, &(dmit_batch){ .images = x, .shift = 1 + s % (DOMAINS - 1) }, 1.0f, &l[s]));
    ck_assert(isfinite(l[s].gen));
  }
}

/* The content invariance weight adds its term to the encoders' update alone: from one seed the
 * discriminators' losses and the generator's other terms are the same bits with it off, at 1
 * and at 3, the term triples with the weight and the total grows by it; off, no term is
 * computed (0). Trained with it, the content codes of every domain's images are closer in
 * their moments than trained without. A configuration written before the field reads as 0. */
START_TEST(content_invariance_term) {
  dmit_cfg c0 = dmit_tiny_cfg(), c1 = dmit_tiny_cfg(), c3 = dmit_tiny_cfg();
  c1.w_content_invariance = 1.0f;
  c3.w_content_invariance = 3.0f;
  dmit_model *m[3] = { dmit_new(test_runtime(), &c0), dmit_new(test_runtime(), &c1), dmit_new(test_runtime(), &c3) };
  float *x = malloc((size_t)NB * 3 * SIZE * SIZE * sizeof *x), d[3][2], g[3][DMIT_UPDATE_LOSSES_MAX];
  tiny_batch(0, x);
  dmit_batch b = { .images = x, .shift = 1 };
  for (int k = 0; k < 3; k++) {
    ck_assert_ut_ok(dmit_update(m[k], 0, &b, 1.0f, d[k]));
    ck_assert_ut_ok(dmit_update(m[k], 1, &b, 1.0f, g[k]));
  }
  printf("content invariance term at weight 1: %g (total %g without)\n", (double)g[1][6], (double)g[0][0]);
  ck_assert(g[0][6] == 0);
  ck_assert_msg(g[1][6] > 0 && fabsf(g[2][6] - 3 * g[1][6]) <= 1e-6f * g[2][6], "term %g, weighted by 3: %g",
                (double)g[1][6], (double)g[2][6]);
  for (int k = 1; k < 3; k++) {
    ck_assert(!memcmp(d[k], d[0], sizeof d[0]));
    ck_assert(!memcmp(&g[k][1], &g[0][1], 5 * sizeof(float)));
    ck_assert_msg(fabsf(g[k][0] - g[0][0] - g[k][6]) <= 1e-5f * g[k][0], "total %g, without %g, term %g",
                  (double)g[k][0], (double)g[0][0], (double)g[k][6]);
  }
  /* On a team of two the term is refused, before the team is used. */
  kit_team team = { .rank = 0, .size = 2 };
  dmit_model *fresh = dmit_new(test_runtime(), &c1);
  ck_assert_int_eq(dmit_set_team(fresh, &team), UT_ERR_INVALID_ARGUMENT);
  ck_assert_msg(strstr(ut_last_error(), "w_content_invariance") && strstr(ut_last_error(), "data-parallel"), "%s",
                ut_last_error());
  dmit_free(fresh);
  for (int k = 0; k < 3; k++) dmit_free(m[k]);

  /* Training: 30 steps without and with a weight that makes the term count. */
  enum { STEPS = 30, PER = 4 };
  dmit_cfg on = dmit_tiny_cfg();
  on.w_content_invariance = 100.0f;
  dmit_model *off_m = dmit_new(test_runtime(), &c0), *on_m = dmit_new(test_runtime(), &on);
  dmit_losses l[STEPS];
  train_textured(off_m, STEPS, x, l);
  train_textured(on_m, STEPS, x, l);
  printf("content invariance term (weight 100) at the first step %g, the last %g\n", (double)l[0].content_invariance,
         (double)l[STEPS - 1].content_invariance);
  /* PER images of each domain from two batches, in inference's [0, 1] scale (the textures reach
   * a little past it, as they did in training). */
  int64_t dim = dmit_content_size(&c0);
  float *images = malloc((size_t)DOMAINS * PER * 3 * SIZE * SIZE * sizeof *images), *codes = malloc((size_t)DOMAINS * PER * dim * sizeof *codes);
  int64_t per_image = 3 * SIZE * SIZE;
  for (int s = 0; s < 2; s++) {
    textured_batch(100 + s, x);
    for (int i = 0; i < NB; i++)
      for (int64_t p = 0; p < per_image; p++)
        images[((i / BATCH) * PER + s * BATCH + i % BATCH) * per_image + p] = 0.5f * (x[i * per_image + p] + 1);
  }
  double gap[2];
  for (int k = 0; k < 2; k++) {
    ck_assert_ut_ok(dmit_encode_content(k ? on_m : off_m, images, DOMAINS * PER, codes));
    gap[k] = domain_moment_gap(codes, DOMAINS * PER, dim, PER);
  }
  printf("domains' moment gap of the content codes: trained without %g, with %g\n", gap[0], gap[1]);
  ck_assert_msg(gap[1] < 0.5 * gap[0], "the term left the gap at %g, without it %g", gap[1], gap[0]);
  dmit_free(off_m);
  dmit_free(on_m);
  free(images);
  free(codes);
  free(x);

  dmit_cfg read = dmit_read_without(&on, "w_content_invariance");
  ck_assert_float_eq(read.w_content_invariance, 0);
  ck_assert_float_eq(read.w_adv_content, 1);
}
END_TEST

/* content_norm 1: every channel of every content code has mean 0 and variance 1 over its
 * positions (up to the norm's epsilon); without it they do not. An older configuration reads
 * as 0. */
START_TEST(content_norm_standardises_channels) {
  dmit_cfg c[2] = { dmit_tiny_cfg(), dmit_tiny_cfg() };
  c[1].content_norm = 1;
  int64_t dim = dmit_content_size(&c[0]), side = SIZE >> c[0].down_blocks, plane = side * side, ch = dim / plane;
  float *x = malloc((size_t)NB * 3 * SIZE * SIZE * sizeof *x), *codes = malloc((size_t)NB * dim * sizeof *codes);
  tiny_batch(0, x);
  for (int64_t i = 0; i < (int64_t)NB * 3 * SIZE * SIZE; i++) x[i] = 0.5f * (x[i] + 1);
  for (int k = 0; k < 2; k++) {
    dmit_model *m = dmit_new(test_runtime(), &c[k]);
    ck_assert_ut_ptr(m);
    ck_assert_ut_ok(dmit_encode_content(m, x, NB, codes));
    double worst = 0;
    for (int64_t p = 0; p < NB * ch; p++) {
      double mean = 0, var = 0;
      for (int64_t q = 0; q < plane; q++) mean += codes[p * plane + q];
      mean /= (double)plane;
      for (int64_t q = 0; q < plane; q++) var += (codes[p * plane + q] - mean) * (codes[p * plane + q] - mean);
      var /= (double)plane;
      worst = fmax(worst, fmax(fabs(mean), fabs(var - 1)));
    }
    if (k) ck_assert_msg(worst < 1e-3, "a standardised channel is off by %g", worst);
    else ck_assert_msg(worst > 0.1, "channels without the norm are standardised already (off by %g): nothing tested", worst);
    dmit_free(m);
  }
  free(x);
  free(codes);
  ck_assert_int_eq(dmit_read_without(&c[1], "content_norm").content_norm, 0);
}
END_TEST

/* The eval's variance share on codes whose parts are known: dimension 0 is the domain's value
 * (domain means 0, 2, 4: between-domain variance 8/3 of the total 8/3), dimension 1 varies
 * within every domain alike (+-1: between 0, total 1), so the share is (8/3) / (8/3 + 1). */
START_TEST(domain_variance_share) {
  enum { N = 6 };
  float codes[N * 2];
  int32_t domain[N];
  for (int i = 0; i < N; i++) {
    domain[i] = i / 2;
    codes[i * 2] = 2.0f * (float)domain[i];
    codes[i * 2 + 1] = i % 2 ? 1.0f : -1.0f;
  }
  ck_assert_double_eq_tol(dmit_domain_variance_share(codes, N, 2, domain, DOMAINS, 1), (8.0 / 3) / (8.0 / 3 + 1), 1e-12);
  /* Squares: dimension 0 takes 0, 4, 16 (means 0, 4, 16: between = total), dimension 1 is 1. */
  ck_assert_double_eq_tol(dmit_domain_variance_share(codes, N, 2, domain, DOMAINS, 2), 1.0, 1e-12);
  for (int i = 0; i < N; i++) codes[i * 2] = 3;
  ck_assert_double_eq_tol(dmit_domain_variance_share(codes, N, 2, domain, DOMAINS, 1), 0.0, 1e-12);
}
END_TEST

/* The evaluation's grouped folds: features that only name their group (a random point per
 * group) predict a per-group random label for groups seen in training, so a split that let one
 * group's samples fall on both sides would score near 1; held out whole, unseen groups score
 * near chance. A label that follows the features across groups is learnt. Every sample is
 * scored once and chance is the majority share of all of them. */
START_TEST(probe_folds_keep_groups_apart) {
  enum { GROUPS = 40, PER = 3, N = GROUPS * PER, D = 4, K = 3 };
  static float x[N * D];
  int32_t group_label[GROUPS], by_group[N], by_feature[N];
  int64_t groups[N];
  float centre[GROUPS * D];
  uint64_t rng = 3;
  test_fill_uniform(&rng, centre, GROUPS * D, -1, 1);
  for (int g = 0; g < GROUPS; g++) {
    float u;
    test_fill_uniform(&rng, &u, 1, 0, K);
    group_label[g] = (int32_t)u < K ? (int32_t)u : K - 1;
  }
  int64_t count[K] = { 0 }, most = 0;
  for (int i = 0; i < N; i++) {
    int g = (i * 7) % GROUPS; /* a group's samples spread through the set (7 is prime to 40) */
    groups[i] = 1000 + g;
    float noise[D];
    test_fill_uniform(&rng, noise, D, -0.05f, 0.05f);
    for (int k = 0; k < D; k++) x[i * D + k] = centre[g * D + k] + noise[k];
    by_group[i] = group_label[g];
    if (++count[by_group[i]] > most) most = count[by_group[i]];
    int best = 0;
    for (int k = 1; k < K; k++)
      if (x[i * D + k] > x[i * D + best]) best = k;
    by_feature[i] = best;
  }
  dmit_eval_probe p;
  ck_assert_ut_ok(dmit_probe_folds(test_runtime(), x, N, D, by_group, K, groups, 3, 5, &p));
  printf("grouped folds, label per group: linear %.3f mlp %.3f chance %.3f\n", p.linear, p.mlp, p.chance);
  ck_assert(p.measured && p.folds == 3 && p.n_scored == N);
  ck_assert_double_eq_tol(p.chance, (double)most / N, 1e-12);
  ck_assert_msg(p.n_train >= N / 2 && p.n_train < N, "trained on %lld", (long long)p.n_train);
  ck_assert_msg(p.linear < 0.7 && p.mlp < 0.7, "unseen groups' labels predicted: linear %.3f mlp %.3f", p.linear, p.mlp);
  ck_assert_ut_ok(dmit_probe_folds(test_runtime(), x, N, D, by_feature, K, groups, 3, 5, &p));
  ck_assert_msg(p.linear > 0.8, "a label the features carry: linear %.3f", p.linear);
  /* One class, or fewer groups than folds: not measured. */
  ck_assert_ut_ok(dmit_probe_folds(test_runtime(), x, N, D, by_group, 1, groups, 3, 5, &p));
  ck_assert(!p.measured);
  for (int i = 0; i < N; i++) groups[i] = i % 2;
  ck_assert_ut_ok(dmit_probe_folds(test_runtime(), x, N, D, by_group, K, groups, 3, 5, &p));
  ck_assert(!p.measured);
}
END_TEST

/* The diversity term through a tiny decoder (spectral norms frozen, so every run of the
 * checker's plans computes the same function): its gradient in the content and in both styles
 * against central finite differences; then the term alone in its four inputs. The styles lie
 * far apart, so the L1 in the denominator is away from its kink at 0, where finite differences
 * say nothing. The decoder's parameters are left out: through ReLUs after normalisations of so
 * few values, and the steep 1 / L1 of two close translations, central differences of a
 * weight jump across kinks (the layers' parameter gradients are checked alone in
 * test_ops_dmit and test_ops). */
static ut_tensor *build_diversity(ut_graph *g, ut_tensor **in, void *ctx) {
  const dmit_net *n = ctx;
  static const float attr[2 * DOMAINS] = { 0, 1, 0, 0, 0, 1 };
  ut_tensor *a = ut_constant(g, UT_SHAPE(2, DOMAINS), attr);
  ut_tensor *f1 = dmit_decoder(g, n, in[0], ut_concat(g, a, in[1]), NULL);
  ut_tensor *f2 = dmit_decoder(g, n, in[0], ut_concat(g, a, in[2]), NULL);
  return dmit_diversity_term(g, NULL, in[1], in[2], f1, f2);
}

static ut_tensor *build_term(ut_graph *g, ut_tensor **in, void *ctx) {
  (void)ctx;
  return dmit_diversity_term(g, NULL, in[0], in[1], in[2], in[3]);
}

START_TEST(diversity_gradient_matches_finite_differences) {
  dmit_cfg c = dmit_tiny_cfg();
  c.down_blocks = 0;
  dmit_net n = { .c = &c, .frozen = 1 };
  float *content = gc_random_values(3, 2 * 4 * 8 * 8, -1, 1), *s1 = gc_random_values(4, 4, -3, -1),
        *s2 = gc_random_values(5, 4, 1, 3);
  ut_store *st = ut_store_new(test_runtime(), 11);
  /* Power iterations first (training mode), so the frozen sigma is the weights' spectral norm
   * and not u . W v of the first random vectors, which can be near 0. */
  ut_graph *g = ut_graph_new(test_runtime(), st);
  dmit_net train = { .c = &c, .frozen = 0 };
  ut_tensor *in[3] = { ut_input(g, "content", UT_F32, UT_SHAPE(2, 4, 8, 8)), ut_input(g, "s1", UT_F32, UT_SHAPE(2, 2)),
                       ut_input(g, "s2", UT_F32, UT_SHAPE(2, 2)) };
  ut_tensor *out = build_diversity(g, in, &train);
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = &out, .n_outputs = 1 });
  ck_assert_ut_ptr(p);
  ck_assert_ut_ok(ut_upload(p, in[0], content));
  ck_assert_ut_ok(ut_upload(p, in[1], s1));
  ck_assert_ut_ok(ut_upload(p, in[2], s2));
  for (int i = 0; i < 30; i++) ck_assert_ut_ok(ut_plan_run(p));
  ut_plan_free(p);
  ut_graph_free(g);
  gc_assert_gradcheck(&(gc_case){ .label = "dmit diversity", .n_inputs = 3,
                                  .shapes = (ut_shape[]){ UT_SHAPE(2, 4, 8, 8), UT_SHAPE(2, 2), UT_SHAPE(2, 2) },
                                  .values = (const float *[]){ content, s1, s2 }, .build = build_diversity, .ctx = &n,
                                  .store = st, .max_samples = 24, .h = 1e-3 });
  float *f1 = gc_random_values(6, 2 * 3 * 4 * 4, -1, 0), *f2 = gc_random_values(7, 2 * 3 * 4 * 4, 0.2f, 1);
  gc_assert_gradcheck(&(gc_case){ .label = "dmit diversity term", .n_inputs = 4,
                                  .shapes = (ut_shape[]){ UT_SHAPE(2, 2), UT_SHAPE(2, 2), UT_SHAPE(2, 3, 4, 4),
                                                          UT_SHAPE(2, 3, 4, 4) },
                                  .values = (const float *[]){ s1, s2, f1, f2 }, .build = build_term });
  free(f1);
  free(f2);
  ut_store_free(st);
  free(content);
  free(s1);
  free(s2);
}
END_TEST

START_TEST(bad_configurations_are_named) {
  struct { const char *field, *value, *says; } cases[] = {
    { "n_domains", "5", "n_domains" },         { "channels", "2", "channels" },
    { "style_blocks", "5", "style_blocks" },   { "image_dis_blocks", "4", "image_dis_blocks" },
    { "content_dis_blocks", "4", "content_dis_blocks" }, { "dropout", "1", "dropout" },
    { "decay_epochs", "99", "decay_epochs" },  { "domains", "red,green", "names 2 domains" },
    { "domains", "red,red,blue", "twice" },    { "lr", "0", "lr" },
    { "w_content_invariance", "-1", "loss weights" },  { "content_norm", "2", "content_norm" },
    { "w_domain_confusion", "-1", "loss weights" },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    dmit_cfg c = dmit_tiny_cfg();
    ck_assert_ut_ok(kit_config_set(dmit_cfg_table(), &c, cases[i].field, cases[i].value));
    ck_assert_int_eq(dmit_cfg_check(&c), UT_ERR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(ut_last_error(), cases[i].says), "%s=%s: '%s'", cases[i].field, cases[i].value, ut_last_error());
    ck_assert_ptr_null(dmit_new(test_runtime(), &c));
  }
  dmit_cfg c = dmit_tiny_cfg();
  char buf[KIT_STRING_MAX];
  ck_assert_str_eq(dmit_domain_name(&c, 2, buf), "blue");
  ck_assert_int_eq(dmit_find_domain(&c, "green"), 1);
  ck_assert_int_eq(dmit_find_domain(&c, "gree"), -1);
  float x[NB * 3 * SIZE * SIZE] = { 0 }, out[DMIT_UPDATE_LOSSES_MAX];
  dmit_model *m = dmit_new(test_runtime(), &c);
  ck_assert_int_eq(dmit_update(m, 0, &(dmit_batch){ .images = x, .shift = 3 }, 1.0f, out), UT_ERR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "shift 3"));
  dmit_free(m);
}
END_TEST

int main(void) {
  Suite *s = suite_create("dmit");
  TCase *tc = tcase_create("dmit");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, bad_configurations_are_named);
  tcase_add_test(tc, content_adversarial_weight);
  tcase_add_test(tc, content_invariance_term);
  tcase_add_test(tc, domain_variance_share);
  tcase_add_test(tc, content_norm_standardises_channels);
  tcase_add_test(tc, probe_folds_keep_groups_apart);
  tcase_add_test(tc, diversity_gradient_matches_finite_differences);
  tcase_add_test(tc, each_update_changes_only_its_networks);
  tcase_add_test(tc, checkpoint_round_trip_is_exact);
  tcase_add_test(tc, reconstruction_losses_fall);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
