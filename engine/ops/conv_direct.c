/* Direct convolution on the host for layers with few output channels (conv_host.c decides
 * when): the RGB head of a generator (16 -> 3, 7x7). Through im2col its GEMM has a dimension
 * of 3 that fills no tile, so moving the columns costs more than the arithmetic. Here each
 * (image, channel) plane is padded once into a small buffer, and every kernel tap becomes a
 * multiply-add of one shifted plane into another, whose inner loop runs along a row and
 * vectorises.
 *
 *   forward       y[o] += w[o, c, i, j] * xp[c] shifted by (i, j)        threads over images
 *   grad weight   dw[o, c, i, j] = sum over images and pixels of dy[o] * xp[c] shifted
 *                                                                    threads over (o, c)
 *
 * xp is the plane with its padding materialised (zeros or the reflection). Every output
 * element has one writer and a fixed order of sums, so results do not depend on the thread
 * count. Measured on 2 cores (`untangle bench --suite ops --quick`, 32 images of 32x32),
 * against im2col + GEMM split by images: the 16 -> 3 head's forward 5.0 ms against 11-14 and
 * its weight gradient 8.5 against 12; but its input gradient (a flipped-kernel convolution
 * with 16 outputs there) 2.3 against 5.0, and every pass of the 3 -> 16 encoder stem and of
 * VGG's 3 -> 64 first layer 1.5-4 times faster through the GEMM. Hence only few outputs,
 * and not the input gradient. */
#include <stdlib.h>
#include <string.h>

#include "conv_direct.h"
#include "error.h"
#include "host_threads.h"

/* The loops below are plain C that the compiler vectorises; built for the x86-64 baseline they
 * get 4-float SSE2 vectors. On x86-64 a second copy for x86-64-v3 (AVX2 and FMA) is chosen at
 * load time where the processor has them (GCC's function multiversioning). Not "arch=haswell":
 * GCC picks such a clone by processor model, so an AMD processor with the same features gets
 * the baseline copy; an x86-64-v3 clone is picked by the features themselves. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define VECTOR_CLONES
#endif

typedef struct {
  const ut_conv_geom *gm;
  int64_t o;
  ut_conv_pass pass;
  const float *in0, *in1, *bias;
  float *out;
  int64_t lo, hi; /* this share's images (forward, grad input) or (o, c) pairs (grad weight) */
  float *pad;     /* this share's padded planes (C or 1 of hp * wp floats), then ow floats */
} job;

static int64_t padded_h(const ut_conv_geom *gm) { return gm->h + 2 * gm->pad; }
static int64_t padded_w(const ut_conv_geom *gm) { return gm->w + 2 * gm->pad; }

/* xp = the padded plane of one image channel. */
static void pad_plane(float *xp, const float *x, const ut_conv_geom *gm) {
  const int64_t hp = padded_h(gm), wp = padded_w(gm);
  for (int64_t r = 0; r < hp; r++) {
    int64_t sr = ut_conv_source(r - gm->pad, gm->h, gm->reflect);
    for (int64_t c = 0; c < wp; c++) {
      int64_t sc = ut_conv_source(c - gm->pad, gm->w, gm->reflect);
      xp[r * wp + c] = sr < 0 || sc < 0 ? 0.0f : x[sr * gm->w + sc];
    }
  }
}

VECTOR_CLONES static void forward_images(job *j) {
  const ut_conv_geom *gm = j->gm;
  const int64_t hp = padded_h(gm), wp = padded_w(gm), s = gm->stride, q = gm->oh * gm->ow;
  for (int64_t b = j->lo; b < j->hi; b++) {
    for (int64_t c = 0; c < gm->c; c++) pad_plane(j->pad + c * hp * wp, j->in0 + (b * gm->c + c) * gm->h * gm->w, gm);
    for (int64_t o = 0; o < j->o; o++) {
      float *y = j->out + (b * j->o + o) * q;
      for (int64_t i = 0; i < q; i++) y[i] = j->bias ? j->bias[o] : 0.0f;
      for (int64_t c = 0; c < gm->c; c++)
        for (int64_t ki = 0; ki < gm->kh; ki++)
          for (int64_t kj = 0; kj < gm->kw; kj++) {
            const float w = j->in1[((o * gm->c + c) * gm->kh + ki) * gm->kw + kj];
            const float *xp = j->pad + c * hp * wp + ki * wp + kj;
            for (int64_t oy = 0; oy < gm->oh; oy++) {
              float *yr = y + oy * gm->ow;
              const float *xr = xp + oy * s * wp;
              if (s == 1)
                for (int64_t ox = 0; ox < gm->ow; ox++) yr[ox] += w * xr[ox];
              else
                for (int64_t ox = 0; ox < gm->ow; ox++) yr[ox] += w * xr[ox * s];
            }
          }
    }
  }
}

/* Items are (o, c) pairs: each thread owns whole kernels dw[o, c] and sums over the batch in
 * order. The per-tap sum runs along rows into `acc` (ow floats) so that it vectorises like the
 * other passes; the row sums are added up at the end of each image. */
VECTOR_CLONES static void grad_weight_pairs(job *j) {
  const ut_conv_geom *gm = j->gm;
  const int64_t wp = padded_w(gm), s = gm->stride, q = gm->oh * gm->ow, taps = gm->kh * gm->kw;
  float *xp = j->pad, *acc = j->pad + padded_h(gm) * wp;
  for (int64_t it = j->lo; it < j->hi; it++) {
    const int64_t o = it / gm->c, c = it % gm->c;
    float *dw = j->out + (o * gm->c + c) * taps;
    for (int64_t t = 0; t < taps; t++) dw[t] = 0.0f;
    for (int64_t b = 0; b < gm->b; b++) {
      pad_plane(xp, j->in1 + (b * gm->c + c) * gm->h * gm->w, gm);
      const float *dy = j->in0 + (b * j->o + o) * q;
      for (int64_t ki = 0; ki < gm->kh; ki++)
        for (int64_t kj = 0; kj < gm->kw; kj++) {
          const float *x0 = xp + ki * wp + kj;
          memset(acc, 0, (size_t)gm->ow * sizeof *acc);
          for (int64_t oy = 0; oy < gm->oh; oy++) {
            const float *xr = x0 + oy * s * wp, *gr = dy + oy * gm->ow;
            if (s == 1)
              for (int64_t ox = 0; ox < gm->ow; ox++) acc[ox] += gr[ox] * xr[ox];
            else
              for (int64_t ox = 0; ox < gm->ow; ox++) acc[ox] += gr[ox] * xr[ox * s];
          }
          float sum = 0.0f;
          for (int64_t ox = 0; ox < gm->ow; ox++) sum += acc[ox];
          dw[ki * gm->kw + kj] += sum;
        }
    }
  }
}

/* One share of the pass: its own padded planes, then the loops over its items. */
static int run_share(void *ctx, int64_t lo, int64_t hi) {
  job j = *(const job *)ctx;
  j.lo = lo, j.hi = hi;
  size_t planes = j.pass == UT_CONV_FORWARD ? (size_t)j.gm->c : 1;
  j.pad = malloc((planes * (size_t)(padded_h(j.gm) * padded_w(j.gm)) + (size_t)j.gm->ow) * sizeof(float));
  if (!j.pad) return 1;
  if (j.pass == UT_CONV_FORWARD) forward_images(&j);
  else grad_weight_pairs(&j);
  free(j.pad);
  return 0;
}

int ut_conv_direct_suits(int64_t o, ut_conv_pass pass) { return o <= 4 && pass != UT_CONV_GRAD_INPUT; }

ut_status ut_conv_direct_run(const ut_conv_geom *gm, int64_t o, ut_conv_pass pass, const float *in0, const float *in1,
                             const float *bias, float *out, int threads) {
  job all = { .gm = gm, .o = o, .pass = pass, .in0 = in0, .in1 = in1, .bias = bias, .out = out };
  int64_t items = pass == UT_CONV_GRAD_WEIGHT ? o * gm->c : gm->b;
  if (ut_host_parallel(threads, items, run_share, &all))
    return ut_fail(UT_ERR_HOST_MEMORY, "direct convolution: out of host memory for a padded plane");
  return UT_OK;
}
