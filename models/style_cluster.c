/* Gram-matrix style features on the device and k-means on the host.
 *
 * The engine's matmul is 2-D, so the graph computes one Gram matrix per image of the batch:
 * the batch's activations are viewed as one row, each image's [64, H*W] block is sliced out
 * and multiplied by its own transpose (one GEMM each). The 1/(H W) factor is applied as
 * 1/sqrt(H W) to the activations before the products, one launch for the whole batch. */
#include "style_cluster.h"
#include "kit_random.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probe.h"

style_cfg style_default_cfg(void) { return (style_cfg){ .batch = 32, .max_iterations = 300 }; }

static double unit(uint64_t bits) { return (double)(bits >> 11) * (1.0 / 9007199254740992.0); }

void style_random_conv(uint64_t seed, int64_t c, float *w, float *b) {
  double bound = 1.0 / sqrt(9.0 * (double)c);
  uint64_t kw = kit_hash64(seed ^ 0x636f6e76ull), kb = kit_hash64(seed ^ 0x62696173ull); /* "conv", "bias" */
  for (int64_t i = 0; i < STYLE_CHANNELS * c * 9; i++) w[i] = (float)((2 * unit(kit_hash64(kw + (uint64_t)i)) - 1) * bound);
  for (int64_t i = 0; i < STYLE_CHANNELS; i++) b[i] = (float)((2 * unit(kit_hash64(kb + (uint64_t)i)) - 1) * bound);
}

typedef struct {
  ut_store *st; /* empty, but every graph needs one */
  ut_graph *g;
  ut_plan *p;
  ut_tensor *x;
  ut_tensor **gram; /* [batch] outputs, each [64, 64] */
} gram_net;

static ut_status gram_build(gram_net *net, ut_runtime *rt, int64_t batch, int64_t c, int64_t h, int64_t w,
                            const float *conv_w, const float *conv_b) {
  const int64_t ch = STYLE_CHANNELS, hw = h * w;
  net->gram = calloc((size_t)batch, sizeof *net->gram);
  net->st = ut_store_new(rt, 0);
  net->g = net->st ? ut_graph_new(rt, net->st) : NULL;
  if (!net->gram || !net->g) return ut_fail(UT_ERR_HOST_MEMORY, "style features: out of host memory");
  ut_graph *g = net->g;
  net->x = ut_input(g, "style.x", UT_F32, UT_SHAPE(batch, c, h, w));
  ut_tensor *wt = ut_constant(g, UT_SHAPE(ch, c, 3, 3), conv_w);
  ut_tensor *bt = conv_b ? ut_constant(g, UT_SHAPE(ch), conv_b) : NULL;
  ut_tensor *f = ut_relu(g, ut_conv2d(g, net->x, wt, bt, UT_CONV(1, 1)));
  f = ut_scale(g, f, (float)(1.0 / sqrt((double)hw)));
  ut_tensor *row = f ? ut_reshape(g, f, UT_SHAPE(1, batch * ch * hw)) : NULL;
  for (int64_t b = 0; b < batch; b++) {
    ut_tensor *fb = row ? ut_slice_channels(g, row, b * ch * hw, ch * hw) : NULL;
    fb = fb ? ut_reshape(g, fb, UT_SHAPE(ch, hw)) : NULL;
    net->gram[b] = ut_matmul(g, fb, fb, 0, 1);
  }
  if (ut_graph_status(g) == UT_OK)
    net->p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = net->gram, .n_outputs = (int)batch });
  if (!net->p) {
    ut_status s = ut_graph_status(g) != UT_OK ? ut_graph_status(g) : UT_ERR_STATE;
    ut_error_prefix("style features for %lldx%lldx%lld images", (long long)c, (long long)h, (long long)w);
    return s;
  }
  return UT_OK;
}

static void gram_free(gram_net *net) {
  ut_plan_free(net->p);
  ut_graph_free(net->g);
  ut_store_free(net->st);
  free(net->gram);
}

ut_status style_features(ut_runtime *rt, const float *images, int64_t n, int64_t c, int64_t h, int64_t w,
                         const float *conv_w, const float *conv_b, int64_t batch, float *features) {
  if (!rt || !images || !conv_w || !features || n < 1 || c < 1 || h < 1 || w < 1 || batch < 0)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "style_features: needs a runtime, convolution weights, an output and at "
                                            "least one image of at least 1x1x1");
  if (batch == 0) batch = 32;
  if (batch > n) batch = n;
  const int64_t ch = STYLE_CHANNELS, sz = c * h * w;
  gram_net net = { 0 };
  float *buf = calloc((size_t)(batch * sz), sizeof(float));
  float *gram = malloc((size_t)(ch * ch) * sizeof(float));
  ut_status s = buf && gram ? gram_build(&net, rt, batch, c, h, w, conv_w, conv_b)
                            : ut_fail(UT_ERR_HOST_MEMORY, "style features: out of host memory");
  for (int64_t at = 0; s == UT_OK && at < n; at += batch) {
    int64_t m = n - at < batch ? n - at : batch;
    /* A short last batch is padded with zero images whose Gram matrices are not read. */
    memcpy(buf, images + at * sz, (size_t)(m * sz) * sizeof(float));
    memset(buf + m * sz, 0, (size_t)((batch - m) * sz) * sizeof(float));
    s = ut_upload(net.p, net.x, buf);
    if (s == UT_OK) s = ut_plan_run(net.p);
    for (int64_t b = 0; s == UT_OK && b < m; b++) {
      s = ut_read(net.p, net.gram[b], gram);
      float *out = features + (at + b) * STYLE_FEATURES;
      for (int64_t i = 0; s == UT_OK && i < ch; i++)
        for (int64_t j = i; j < ch; j++) *out++ = gram[i * ch + j];
    }
    if (s != UT_OK) ut_error_prefix("style features of images %lld..%lld", (long long)at, (long long)(at + m - 1));
  }
  gram_free(&net);
  free(buf);
  free(gram);
  return s;
}

/* Squared Euclidean distance. Eight float partial sums keep independent chains the compiler
 * can put in vector registers (no fast-math needed); the result is the same on every run. */
static double sqdist(const float *a, const float *b, int64_t d) {
  float acc[8] = { 0 };
  int64_t blocks = d / 8;
  for (int64_t q = 0; q < blocks; q++)
    for (int t = 0; t < 8; t++) {
      float v = a[8 * q + t] - b[8 * q + t];
      acc[t] += v * v;
    }
  double s = 0;
  for (int64_t j = 8 * blocks; j < d; j++) {
    double v = (double)a[j] - b[j];
    s += v * v;
  }
  for (int t = 0; t < 8; t++) s += acc[t];
  return s;
}

/* k-means++: the first centre is a seeded uniform pick, each next one a pick with probability
 * proportional to the squared distance to the nearest centre so far. */
static void kmeans_pp(const float *x, int64_t n, int64_t d, int k, uint64_t seed, float *centres, double *dmin) {
  uint64_t key = kit_hash64(seed ^ 0x6b6d65616e73ull); /* "kmeans" */
  int64_t pick = (int64_t)(kit_hash64(key) % (uint64_t)n);
  for (int j = 0; j < k; j++) {
    memcpy(centres + j * d, x + pick * d, (size_t)d * sizeof(float));
    double total = 0;
    for (int64_t i = 0; i < n; i++) {
      double dist = sqdist(x + i * d, centres + j * d, d);
      if (j == 0 || dist < dmin[i]) dmin[i] = dist;
      total += dmin[i];
    }
    if (j + 1 == k) break;
    if (total <= 0) {
      /* Every point sits on a centre already (duplicates): any pick is as good. */
      pick = (int64_t)(kit_hash64(key + (uint64_t)j + 1) % (uint64_t)n);
      continue;
    }
    double r = unit(kit_hash64(key + (uint64_t)j + 1)) * total, cum = 0;
    pick = -1;
    for (int64_t i = 0; i < n && pick < 0; i++) {
      cum += dmin[i];
      if (dmin[i] > 0 && cum > r) pick = i;
    }
    /* Rounding can leave r at the very top of the sum: take the last point off the centres. */
    for (int64_t i = n - 1; pick < 0 && i >= 0; i--)
      if (dmin[i] > 0) pick = i;
  }
}

ut_status style_kmeans(const float *x, int64_t n, int64_t d, int k, uint64_t seed, int max_iterations, int32_t *labels_out,
                       style_cluster_report *report) {
  if (!x || !labels_out || n < 1 || d < 1 || k < 1 || k > n || max_iterations < 1)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "style_kmeans: %d clusters of %lld points (%lld dimensions, %d iterations): "
                                            "need 1 <= k <= points and at least one iteration",
                   k, (long long)n, (long long)d, max_iterations);
  style_cluster_report rep = { .feature_dim = d };
  float *centres = malloc((size_t)(k * d) * sizeof(float));
  double *sums = malloc((size_t)(k * d) * sizeof(double));
  double *dmin = malloc((size_t)n * sizeof(double));
  int64_t *counts = malloc((size_t)k * sizeof(int64_t));
  if (!centres || !sums || !dmin || !counts) {
    free(centres);
    free(sums);
    free(dmin);
    free(counts);
    return ut_fail(UT_ERR_HOST_MEMORY, "style_kmeans: out of host memory for %d centres of %lld dimensions", k, (long long)d);
  }
  kmeans_pp(x, n, d, k, seed, centres, dmin);
  for (int64_t i = 0; i < n; i++) labels_out[i] = -1;

  for (int it = 0; it < max_iterations; it++) {
    int64_t changes = 0;
    for (int64_t i = 0; i < n; i++) {
      /* Only a strictly nearer centre takes a point away, so ties (duplicate points and
       * centres) cannot make assignments flip back and forth forever. */
      int best = labels_out[i] >= 0 ? labels_out[i] : 0;
      double best_d = sqdist(x + i * d, centres + best * d, d);
      for (int j = 0; j < k; j++) {
        if (j == best) continue;
        double dist = sqdist(x + i * d, centres + j * d, d);
        if (dist < best_d) {
          best_d = dist;
          best = j;
        }
      }
      dmin[i] = best_d;
      if (labels_out[i] != best) changes++;
      labels_out[i] = best;
    }
    rep.iterations = it + 1;
    if (changes == 0) {
      rep.converged = 1;
      break;
    }
    memset(sums, 0, (size_t)(k * d) * sizeof(double));
    memset(counts, 0, (size_t)k * sizeof(int64_t));
    for (int64_t i = 0; i < n; i++) {
      counts[labels_out[i]]++;
      for (int64_t t = 0; t < d; t++) sums[labels_out[i] * d + t] += x[i * d + t];
    }
    /* An empty cluster takes the point farthest from its centre (from a cluster that keeps
     * others), Lloyd's usual repair; the choice is deterministic. */
    for (int j = 0; j < k; j++) {
      if (counts[j] > 0) continue;
      int64_t far = -1;
      for (int64_t i = 0; i < n; i++)
        if (counts[labels_out[i]] > 1 && (far < 0 || dmin[i] > dmin[far])) far = i;
      if (far < 0) break; /* cannot happen with k <= n */
      int32_t from = labels_out[far];
      counts[from]--;
      counts[j] = 1;
      for (int64_t t = 0; t < d; t++) {
        sums[from * d + t] -= x[far * d + t];
        sums[j * d + t] = x[far * d + t];
      }
      labels_out[far] = j;
      dmin[far] = 0;
      rep.empty_refills++;
    }
    for (int j = 0; j < k; j++)
      for (int64_t t = 0; t < d; t++) centres[j * d + t] = (float)(sums[j * d + t] / (double)counts[j]);
  }
  rep.inertia = 0;
  for (int64_t i = 0; i < n; i++) rep.inertia += sqdist(x + i * d, centres + labels_out[i] * d, d);
  if (report) *report = rep;
  free(centres);
  free(sums);
  free(dmin);
  free(counts);
  return UT_OK;
}

ut_status style_cluster_cfg(ut_runtime *rt, const float *images, int64_t n, int64_t c, int64_t h, int64_t w, int k,
                            uint64_t seed, const float *conv_w, const float *conv_b, const style_cfg *cfg,
                            int32_t *labels_out, style_cluster_report *report) {
  style_cfg defaults = style_default_cfg();
  if (!cfg) cfg = &defaults;
  if (!rt || !images || !labels_out || n < 1 || c < 1 || h < 1 || w < 1 || k < 1 || k > n || cfg->batch < 1 ||
      cfg->max_iterations < 1)
    return ut_fail(UT_ERR_INVALID_ARGUMENT,
                   "style_cluster: %lld images of %lldx%lldx%lld into %d clusters (batch %lld, %d iterations): need a "
                   "runtime, images, an output, 1 <= k <= images, a batch and an iteration",
                   (long long)n, (long long)c, (long long)h, (long long)w, k, (long long)cfg->batch, cfg->max_iterations);
  float *own_w = NULL, *own_b = NULL;
  int have_conv = 1;
  if (!conv_w) {
    own_w = malloc((size_t)(STYLE_CHANNELS * c * 9) * sizeof(float));
    own_b = malloc(STYLE_CHANNELS * sizeof(float));
    have_conv = own_w && own_b;
    if (have_conv) style_random_conv(seed, c, own_w, own_b);
    conv_w = own_w;
    conv_b = own_b;
  }
  float *features = malloc((size_t)(n * STYLE_FEATURES) * sizeof(float));
  ut_status s = features && have_conv
                    ? style_features(rt, images, n, c, h, w, conv_w, conv_b, cfg->batch, features)
                    : ut_fail(UT_ERR_HOST_MEMORY, "style_cluster: out of host memory for %lld style features", (long long)n);
  if (s == UT_OK) s = style_kmeans(features, n, STYLE_FEATURES, k, seed, cfg->max_iterations, labels_out, report);
  free(features);
  free(own_w);
  free(own_b);
  return s;
}

ut_status style_cluster(ut_runtime *rt, const float *images, int64_t n, int64_t c, int64_t h, int64_t w, int k,
                        uint64_t seed, const float *conv_w, const float *conv_b, int32_t *labels_out,
                        style_cluster_report *report) {
  return style_cluster_cfg(rt, images, n, c, h, w, k, seed, conv_w, conv_b, NULL, labels_out, report);
}
