/* Direct convolution on the host for layers with few output channels (conv_host.c decides
 * when): the RGB head of a generator (16 -> 3, 7x7). Through im2col its GEMM has a dimension
 * of 3 that fills no tile, so moving the columns costs more than the arithmetic. Here each
 * (image, channel) plane is padded once into a small buffer, and every kernel tap becomes a
 * multiply-add of a shifted row segment of one plane into the outputs.
 *
 *   forward       y[o] += w[o, c, i, j] * xp[c] shifted by (i, j)        threads over images
 *   grad weight   dw[o, c, i, j] = sum over images and pixels of dy[o] * xp[c] shifted
 *                                                                    threads over c
 *
 * xp is the plane with its padding materialised (zeros or the reflection). Every output
 * element has one writer and a fixed order of sums, so results do not depend on the thread
 * count. Stride 1 only: whole row segments are loaded as vectors.
 *
 * Measured on 2 cores (`untangle bench --suite ops --quick`, 32 images of 32x32) against
 * im2col + GEMM split by images: the 16 -> 3 head's forward 2.1-2.3 ms against 11-14 and its
 * weight gradient 4.5 against 12 (the loops before register blocking: 5.0 and 8.5); but its
 * input gradient (a flipped-kernel convolution with 16 outputs there) 2.3 against 5.0, and
 * every pass of the 3 -> 16 encoder stem and of VGG's 3 -> 64 first layer 1.5-4 times faster
 * through the GEMM. Hence only few outputs, and not the input gradient. */
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

/* Blocks of LANES output columns are computed in vector registers for every output channel at
 * once (at most MAX_OUT of them), so each load of an input row segment feeds MAX_OUT
 * multiply-adds and the sums stay in registers across all (c, i, j) taps instead of going
 * through memory at every tap (the loops over output channels are unrolled for that). GCC's generic vectors: one AVX register in the x86-64-v3
 * clone, two SSE registers in the baseline one. */
#define LANES 8
#define MAX_OUT 4
typedef float vec __attribute__((vector_size(LANES * sizeof(float))));

typedef struct {
  const ut_conv_geom *gm;
  int64_t o;
  ut_conv_pass pass;
  const float *in0, *in1, *bias;
  float *out;
  int64_t lo, hi; /* this share's images (forward) or input channels (grad weight) */
  float *pad;     /* this share's padded planes: C of hp * wp floats (forward), or 1 */
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

/* *v = the n (<= LANES) floats at p, the other lanes zero. Inlined with n == LANES a constant
 * for whole blocks, so those are one unaligned load. (Through a pointer: a returned vector
 * would change the calling convention between the clones.) */
static inline __attribute__((always_inline)) void load(vec *v, const float *p, int64_t n) {
  if (n == LANES) {
    memcpy(v, p, sizeof *v);
    return;
  }
  *v = (vec){ 0 };
  for (int64_t l = 0; l < n; l++) (*v)[l] = p[l];
}

/* The n <= LANES output columns from ox of row oy of the o_n output channels of one image.
 * Inlined with o_n a constant (1 to MAX_OUT), so that acc lives in registers. */
static inline __attribute__((always_inline)) void forward_block(const job *j, const float *xp, float *y, int64_t oy,
                                                                int64_t ox, const int64_t n, const int64_t o_n) {
  const ut_conv_geom *gm = j->gm;
  const int64_t hp = padded_h(gm), wp = padded_w(gm), q = gm->oh * gm->ow, stride_o = gm->c * gm->kh * gm->kw;
  vec acc[MAX_OUT];
#pragma GCC unroll 4
  for (int64_t o = 0; o < o_n; o++) acc[o] = (vec){ 0 } + (j->bias ? j->bias[o] : 0.0f);
  for (int64_t c = 0; c < gm->c; c++)
    for (int64_t ki = 0; ki < gm->kh; ki++) {
      const float *row = xp + c * hp * wp + (oy + ki) * wp + ox;
      const float *w = j->in1 + (c * gm->kh + ki) * gm->kw;
      for (int64_t kj = 0; kj < gm->kw; kj++) {
        vec x;
        load(&x, row + kj, n);
#pragma GCC unroll 4
        for (int64_t o = 0; o < o_n; o++) acc[o] += w[o * stride_o + kj] * x;
      }
    }
#pragma GCC unroll 4
  for (int64_t o = 0; o < o_n; o++) {
    if (n == LANES) memcpy(y + o * q + oy * gm->ow + ox, &acc[o], sizeof acc[o]);
    else
      for (int64_t l = 0; l < n; l++) y[o * q + oy * gm->ow + ox + l] = acc[o][l];
  }
}

/* One image's rows, whole blocks then the row's tail, for o_n output channels. */
static inline __attribute__((always_inline)) void forward_rows(const job *j, float *y, const int64_t o_n) {
  const ut_conv_geom *gm = j->gm;
  const int64_t whole = gm->ow / LANES * LANES;
  for (int64_t oy = 0; oy < gm->oh; oy++) {
    for (int64_t ox = 0; ox < whole; ox += LANES) forward_block(j, j->pad, y, oy, ox, LANES, o_n);
    if (whole < gm->ow) forward_block(j, j->pad, y, oy, whole, gm->ow - whole, o_n);
  }
}

VECTOR_CLONES static void forward_images(job *j) {
  const ut_conv_geom *gm = j->gm;
  const int64_t hp = padded_h(gm), wp = padded_w(gm), q = gm->oh * gm->ow;
  for (int64_t b = j->lo; b < j->hi; b++) {
    for (int64_t c = 0; c < gm->c; c++) pad_plane(j->pad + c * hp * wp, j->in0 + (b * gm->c + c) * gm->h * gm->w, gm);
    float *y = j->out + b * j->o * q;
    switch (j->o) {
    case 1: forward_rows(j, y, 1); break;
    case 2: forward_rows(j, y, 2); break;
    case 3: forward_rows(j, y, 3); break;
    default: forward_rows(j, y, MAX_OUT); break;
    }
  }
}

/* acc[o] += dy[o] times the shifted plane over the n <= LANES columns from ox of one row. */
static inline __attribute__((always_inline)) void tap_block(vec *acc, const float *xr, const float *gr, int64_t q,
                                                            int64_t ox, const int64_t n, const int64_t o_n) {
  vec x, g;
  load(&x, xr + ox, n);
#pragma GCC unroll 4
  for (int64_t o = 0; o < o_n; o++) {
    load(&g, gr + o * q + ox, n);
    acc[o] += g * x;
  }
}

/* dw[o] (o < o_n, c * kh * kw floats apart) += the sum over one image of dy[o] times the
 * padded plane shifted to x0 (a tap's origin). Inlined with o_n a constant, as forward_block. */
static inline __attribute__((always_inline)) void tap_sums(const ut_conv_geom *gm, const float *x0, const float *dy,
                                                           float *dw, const int64_t o_n) {
  const int64_t wp = padded_w(gm), q = gm->oh * gm->ow, stride_o = gm->c * gm->kh * gm->kw;
  const int64_t whole = gm->ow / LANES * LANES;
  vec acc[MAX_OUT];
#pragma GCC unroll 4
  for (int64_t o = 0; o < o_n; o++) acc[o] = (vec){ 0 };
  for (int64_t oy = 0; oy < gm->oh; oy++) {
    const float *xr = x0 + oy * wp, *gr = dy + oy * gm->ow;
    for (int64_t ox = 0; ox < whole; ox += LANES) tap_block(acc, xr, gr, q, ox, LANES, o_n);
    if (whole < gm->ow) tap_block(acc, xr, gr, q, whole, gm->ow - whole, o_n);
  }
#pragma GCC unroll 4
  for (int64_t o = 0; o < o_n; o++) {
    float sum = 0.0f;
    for (int l = 0; l < LANES; l++) sum += acc[o][l];
    dw[o * stride_o] += sum;
  }
}

/* Items are input channels c: each thread owns dw[:, c] and sums over the batch in order. For
 * each tap the products of every output channel's dy with the shifted plane are summed in
 * vector registers over all rows of an image, then reduced across lanes in a fixed order. */
VECTOR_CLONES static void grad_weight_channels(job *j) {
  const ut_conv_geom *gm = j->gm;
  const int64_t wp = padded_w(gm), q = gm->oh * gm->ow, taps = gm->kh * gm->kw, o_n = j->o;
  float *xp = j->pad;
  for (int64_t c = j->lo; c < j->hi; c++) {
    for (int64_t o = 0; o < o_n; o++)
      for (int64_t t = 0; t < taps; t++) j->out[(o * gm->c + c) * taps + t] = 0.0f;
    for (int64_t b = 0; b < gm->b; b++) {
      pad_plane(xp, j->in1 + (b * gm->c + c) * gm->h * gm->w, gm);
      const float *dy = j->in0 + b * o_n * q;
      for (int64_t ki = 0; ki < gm->kh; ki++)
        for (int64_t kj = 0; kj < gm->kw; kj++) {
          float *dw = j->out + c * taps + ki * gm->kw + kj;
          switch (o_n) {
          case 1: tap_sums(gm, xp + ki * wp + kj, dy, dw, 1); break;
          case 2: tap_sums(gm, xp + ki * wp + kj, dy, dw, 2); break;
          case 3: tap_sums(gm, xp + ki * wp + kj, dy, dw, 3); break;
          default: tap_sums(gm, xp + ki * wp + kj, dy, dw, MAX_OUT); break;
          }
        }
    }
  }
}

/* One share of the pass: its own padded planes, then the loops over its items. */
static int run_share(void *ctx, int64_t lo, int64_t hi) {
  job j = *(const job *)ctx;
  j.lo = lo, j.hi = hi;
  size_t planes = j.pass == UT_CONV_FORWARD ? (size_t)j.gm->c : 1;
  j.pad = malloc(planes * (size_t)(padded_h(j.gm) * padded_w(j.gm)) * sizeof(float));
  if (!j.pad) return 1;
  if (j.pass == UT_CONV_FORWARD) forward_images(&j);
  else grad_weight_channels(&j);
  free(j.pad);
  return 0;
}

int ut_conv_direct_suits(const ut_conv_geom *gm, int64_t o, ut_conv_pass pass) {
  return o <= MAX_OUT && gm->stride == 1 && pass != UT_CONV_GRAD_INPUT;
}

ut_status ut_conv_direct_run(const ut_conv_geom *gm, int64_t o, ut_conv_pass pass, const float *in0, const float *in1,
                             const float *bias, float *out, int threads) {
  job all = { .gm = gm, .o = o, .pass = pass, .in0 = in0, .in1 = in1, .bias = bias, .out = out };
  int64_t items = pass == UT_CONV_GRAD_WEIGHT ? gm->c : gm->b;
  if (ut_host_parallel(threads, items, run_share, &all))
    return ut_fail(UT_ERR_HOST_MEMORY, "direct convolution: out of host memory for a padded plane");
  return UT_OK;
}
