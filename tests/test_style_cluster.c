/* Style clustering (models/style_cluster.h): the device's Gram features equal a host
 * reference (convolution, ReLU, F F^T / (H W), upper triangle), k-means finds planted blobs and
 * survives degenerate inputs, and the whole pipeline recovers three planted image styles
 * whatever the stripes' positions, the same way from the same seed with the layer given or
 * drawn. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "style_cluster.h"
#include "test_support.h"

/* Host reference of one image's feature: zero-padded 3x3 convolution, ReLU, Gram / (H W). */
static void host_feature(const float *img, int c, int h, int w, const float *cw, const float *cb, double *out) {
  enum { CH = STYLE_CHANNELS };
  double *f = calloc((size_t)(CH * h * w), sizeof(double));
  for (int o = 0; o < CH; o++)
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        double s = cb ? cb[o] : 0;
        for (int i = 0; i < c; i++)
          for (int ky = 0; ky < 3; ky++)
            for (int kx = 0; kx < 3; kx++) {
              int yy = y + ky - 1, xx = x + kx - 1;
              if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
              s += (double)cw[((o * c + i) * 3 + ky) * 3 + kx] * img[(i * h + yy) * w + xx];
            }
        f[(o * h + y) * w + x] = s > 0 ? s : 0;
      }
  int k = 0;
  for (int i = 0; i < CH; i++)
    for (int j = i; j < CH; j++) {
      double s = 0;
      for (int p = 0; p < h * w; p++) s += f[i * h * w + p] * f[j * h * w + p];
      out[k++] = s / (h * w);
    }
  free(f);
}

START_TEST(test_features_match_host) {
  /* Odd sizes, channels not a multiple of 4, and 3 images in batches of 2 (the last padded);
   * then a 1x1 image, where only the kernel's centre sees the pixel. */
  static const int shapes[2][4] = { { 3, 2, 5, 7 }, { 2, 3, 1, 1 } };
  for (int s = 0; s < 2; s++) {
    int n = shapes[s][0], c = shapes[s][1], h = shapes[s][2], w = shapes[s][3];
    float *img = malloc((size_t)(n * c * h * w) * sizeof(float));
    float *cw = malloc((size_t)(STYLE_CHANNELS * c * 9) * sizeof(float)), cb[STYLE_CHANNELS];
    float *got = malloc((size_t)(n * STYLE_FEATURES) * sizeof(float));
    double want[STYLE_FEATURES];
    uint64_t st = 40 + (uint64_t)s;
    test_fill_uniform(&st, img, n * c * h * w, 0, 1);
    style_random_conv(17, c, cw, cb);
    ck_assert_ut_ok(style_features(test_runtime(), img, n, c, h, w, cw, s ? NULL : cb, 2, got));
    double worst = 0, scale = 0;
    for (int i = 0; i < n; i++) {
      host_feature(img + i * c * h * w, c, h, w, cw, s ? NULL : cb, want);
      for (int k = 0; k < STYLE_FEATURES; k++) {
        scale = fmax(scale, fabs(want[k]));
        worst = fmax(worst, fabs(got[i * STYLE_FEATURES + k] - want[k]));
      }
    }
    ck_assert_msg(scale > 1e-3, "shape %d: the reference is all zeros, the test would prove nothing", s);
    ck_assert_msg(worst <= 1e-5 + 1e-4 * scale, "shape %d: worst difference %g at scale %g", s, worst, scale);
    free(img);
    free(cw);
    free(got);
  }
}
END_TEST

/* Share of points whose cluster's most common true group is their own. */
static double purity(const int32_t *cluster, const int *truth, int n, int k, int groups) {
  int *count = calloc((size_t)(k * groups), sizeof(int));
  for (int i = 0; i < n; i++) count[cluster[i] * groups + truth[i]]++;
  int right = 0;
  for (int j = 0; j < k; j++) {
    int best = 0;
    for (int g = 0; g < groups; g++)
      if (count[j * groups + g] > best) best = count[j * groups + g];
    right += best;
  }
  free(count);
  return (double)right / n;
}

START_TEST(test_kmeans) {
  enum { N = 90, D = 5, K = 3 };
  static float x[N * D];
  static int truth[N];
  static int32_t a[N], b[N];
  uint64_t st = 5;
  test_fill_uniform(&st, x, N * D, -0.5f, 0.5f);
  for (int i = 0; i < N; i++) {
    truth[i] = (i * 7) % K; /* interleaved, so order says nothing */
    x[i * D + truth[i]] += 4.0f;
  }
  style_cluster_report r, r2;
  ck_assert_ut_ok(style_kmeans(x, N, D, K, 1, 100, a, &r));
  ck_assert_msg(purity(a, truth, N, K, K) == 1.0, "blobs 4 apart with spread 0.5: purity %.3f", purity(a, truth, N, K, K));
  ck_assert_msg(r.converged && r.iterations >= 2, "converged %d after %d iterations", r.converged, r.iterations);
  ck_assert_int_eq(r.feature_dim, D);
  /* Inertia: each coordinate uniform on +-0.5 has variance 1/12, so about N * D / 12. */
  ck_assert_msg(r.inertia > 0.5 * N * D / 12.0 && r.inertia < 1.5 * N * D / 12.0, "inertia %g", r.inertia);
  ck_assert_ut_ok(style_kmeans(x, N, D, K, 1, 100, b, &r2));
  ck_assert_msg(memcmp(a, b, sizeof a) == 0 && r.iterations == r2.iterations && r.inertia == r2.inertia,
                "the same seed must give the same clusters");

  /* One iteration only: capped, not converged. */
  ck_assert_ut_ok(style_kmeans(x, N, D, K, 1, 1, b, &r2));
  ck_assert_int_eq(r2.iterations, 1);
  ck_assert_int_eq(r2.converged, 0);

  /* k = n: every point its own cluster, no error left. */
  ck_assert_ut_ok(style_kmeans(x, 6, D, 6, 2, 100, b, &r2));
  int seen[6] = { 0 };
  for (int i = 0; i < 6; i++) seen[b[i]]++;
  for (int j = 0; j < 6; j++) ck_assert_int_eq(seen[j], 1);
  ck_assert(r2.inertia == 0);

  /* Identical points: seeding and Lloyd meet empty clusters and must still give k clusters
   * (each refilled with a point) rather than fail or divide by zero. */
  float same[8 * 2];
  for (int i = 0; i < 16; i++) same[i] = 1.5f;
  ck_assert_ut_ok(style_kmeans(same, 8, 2, 3, 4, 50, b, &r2));
  int used[3] = { 0 };
  for (int i = 0; i < 8; i++) {
    ck_assert(b[i] >= 0 && b[i] < 3);
    used[b[i]]++;
  }
  ck_assert_msg(used[0] && used[1] && used[2], "clusters of %d, %d, %d points", used[0], used[1], used[2]);
  ck_assert(r2.empty_refills > 0 && r2.inertia == 0);

  ck_assert_int_eq(style_kmeans(x, 4, D, 5, 1, 10, b, &r2), UT_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(style_kmeans(x, 4, D, 0, 1, 10, b, &r2), UT_ERR_INVALID_ARGUMENT);
}
END_TEST

/* Three styles of 16x16 RGB images: red and black horizontal stripes of period 2, green and
 * grey vertical stripes of period 8, blue and yellow diagonal stripes of period 4. Each image
 * gets its own phase (the stripes' position) and a brightness jitter. */
static void make_styles(int n, int h, int w, float *img, int *style) {
  static const float colours[3][2][3] = {
    { { 0.9f, 0.1f, 0.1f }, { 0.05f, 0.05f, 0.05f } },
    { { 0.1f, 0.8f, 0.2f }, { 0.5f, 0.5f, 0.5f } },
    { { 0.1f, 0.2f, 0.9f }, { 0.9f, 0.9f, 0.2f } },
  };
  static const int period[3] = { 2, 8, 4 };
  uint64_t st = 77;
  for (int i = 0; i < n; i++) {
    int s = (i * 5) % 3;
    float r[2];
    test_fill_uniform(&st, r, 2, 0, 1);
    int phase = (int)(r[0] * (float)period[s]);
    float gain = 0.85f + 0.15f * r[1];
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        int t = (s == 0 ? y : s == 1 ? x : x + y) + phase;
        int on = (t % period[s]) < period[s] / 2;
        for (int ch = 0; ch < 3; ch++) img[((i * 3 + ch) * h + y) * w + x] = gain * colours[s][on ? 0 : 1][ch];
      }
    style[i] = s;
  }
}

START_TEST(test_planted_styles) {
  enum { N = 60, H = 16, W = 16, K = 3 };
  static float img[N * 3 * H * W];
  static int style[N];
  static int32_t a[N], b[N];
  make_styles(N, H, W, img, style);
  style_cluster_report r, r2;
  ck_assert_ut_ok(style_cluster(test_runtime(), img, N, 3, H, W, K, 8, NULL, NULL, a, &r));
  double p = purity(a, style, N, K, 3);
  printf("planted styles: purity %.3f after %d iterations (inertia %g)\n", p, r.iterations, r.inertia);
  /* The styles differ in colour and frequency, both of which the Gram matrix keeps while the
   * phase drops out, so every image should land with its own style. */
  ck_assert_msg(p >= 0.95, "purity %.3f", p);
  ck_assert_int_eq(r.feature_dim, STYLE_FEATURES);
  ck_assert(r.converged);

  /* The layer drawn from the seed, passed explicitly and in other batch sizes, clusters the
   * same way. */
  float cw[STYLE_CHANNELS * 3 * 9], cb[STYLE_CHANNELS];
  style_random_conv(8, 3, cw, cb);
  style_cfg cfg = style_default_cfg();
  cfg.batch = 7;
  ck_assert_ut_ok(style_cluster_cfg(test_runtime(), img, N, 3, H, W, K, 8, cw, cb, &cfg, b, &r2));
  ck_assert_msg(memcmp(a, b, sizeof a) == 0, "the explicit layer clusters differently");
  ck_assert_int_eq(r.iterations, r2.iterations);
  ck_assert_msg(fabs(r.inertia - r2.inertia) <= 1e-4 * r.inertia, "inertia %g vs %g", r.inertia, r2.inertia);

  ck_assert_int_eq(style_cluster(test_runtime(), img, 2, 3, H, W, 3, 8, NULL, NULL, b, &r2), UT_ERR_INVALID_ARGUMENT);
}
END_TEST

/* A data set relabelled by clusters: the same images and content labels, and the labels that
 * style_cluster gives the same images with the same seed and random layer. */
START_TEST(test_relabelled_dataset) {
  const char *src = test_tmp_path("style-src.dat"), *dst = test_tmp_path("style-dst.dat");
  ut_synth_cfg sc = { .classes = 3, .views = 5, .size = 8, .seed = 2 };
  ck_assert_ut_ok(ut_synth_write_dataset(&sc, src, 1, NULL, NULL));
  ut_dataset *in = ut_dataset_open(src);
  ck_assert_ut_ptr(in);
  style_cluster_report rep;
  ck_assert_ut_ok(style_cluster_dataset(test_runtime(), in, 3, 4, NULL, NULL, dst, &rep));
  ut_dataset *out = ut_dataset_open(dst);
  ck_assert_ut_ptr(out);
  int32_t n = ut_dataset_count(in);
  ck_assert_int_eq(ut_dataset_count(out), n);
  ck_assert_int_eq(ut_dataset_n_classes(out), 3);
  ck_assert_str_eq(ut_dataset_class_name(out, 2), "style-002");
  float *images = malloc((size_t)n * 3 * 64 * sizeof *images);
  int32_t *expected = malloc((size_t)n * sizeof *expected);
  for (int32_t i = 0; i < n; i++) {
    ck_assert(memcmp(ut_dataset_image(in, i), ut_dataset_image(out, i), 3 * 64) == 0);
    ck_assert_int_eq(ut_dataset_content(out, i), ut_dataset_content(in, i));
    ut_dataset_image_chw(in, i, images + (int64_t)i * 3 * 64);
  }
  ck_assert_ut_ok(style_cluster(test_runtime(), images, n, 3, 8, 8, 3, 4, NULL, NULL, expected, NULL));
  for (int32_t i = 0; i < n; i++) ck_assert_int_eq(ut_dataset_class(out, i), expected[i]);
  ck_assert_int_eq(style_cluster_dataset(test_runtime(), in, 16, 4, NULL, NULL, dst, NULL), UT_ERR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "16 clusters"));
  free(images);
  free(expected);
  ut_dataset_close(in);
  ut_dataset_close(out);
}
END_TEST

static Suite *style_suite(void) {
  Suite *s = suite_create("style_cluster");
  TCase *tc = tcase_create("style_cluster");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_features_match_host);
  tcase_add_test(tc, test_kmeans);
  tcase_add_test(tc, test_planted_styles);
  tcase_add_test(tc, test_relabelled_dataset);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(style_suite()); }
