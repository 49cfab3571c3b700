/* Direct convolution on the host for stride-1 layers of few channels (conv_host.c decides
 * when, by ut_conv_direct_suits): LORD's generator and encoder stem at 32x32, the RGB heads.
 * Through im2col an image's column matrix there is 1-3 MB, larger than a core's cache, and
 * built and read again for every pass; and for few outputs the GEMM has a dimension that fills
 * no tile. Here each (image, channel) plane is padded once into a small buffer, and every
 * kernel tap becomes a multiply-add of a shifted row segment of one plane into the outputs.
 *
 *   forward       y[o] += w[o, c, i, j] * xp[c] shifted by (i, j)        threads over images
 *   grad weight   dw[o, c, i, j] = sum over images and pixels of dy[o] * xp[c] shifted
 *                                                                    threads over c
 *
 * The input gradient runs as the forward pass with the flipped kernel (conv_internal.h).
 * xp is the plane with its padding materialised (zeros or the reflection). Every output
 * element has one writer and a fixed order of sums, so results do not depend on the thread
 * count. Stride 1 only: whole row segments are loaded as vectors.
 *
 * Measured on 2 cores (`untangle bench --suite ops --quick`, 32 images, three runs of each
 * build alternating, smallest of three against smallest of three; benchmarks/README.md):
 * against im2col + GEMM split by images, LORD's 5x5 32 -> 16 layer at 32x32 forward 0.47,
 * input gradient 0.60 and weight gradient 0.82 of the time; the 3x3 32 -> 32 layer at 32x32
 * 0.79, 0.77 and 1.16 (within this machine's noise); the 7x7 3 -> 16 stem 0.61, 0.68, 0.85;
 * the 16 -> 3 head 0.83, 0.67, 0.82. With the 6-output forward block and threads kept
 * between calls (eight and six paired runs), the 3x3 32 -> 32 layer at 16x16 took 0.64 of
 * the GEMM's time forward, 0.51 for the input gradient and 0.99 for the weight gradient; at
 * 8x8 the weight gradient took 1.8 times as long (the forward 0.85), so 8x8 and below keep
 * the GEMM (an image's columns fit in cache), and so do VGG's 64-512 channels (1.2-3.8 times
 * slower direct) and the flipped input gradient of its 3 -> 64 first layer (2.5 times). */
#include <stdlib.h>
#include <string.h>

#include "conv_direct.h"
#include "error.h"
#include "host_threads.h"

/* Blocks of output columns are computed in vector registers for several output channels at
 * once: the forward pass keeps FORWARD_OUTS x ROW_VECS sums (each load of an input row segment
 * feeds FORWARD_OUTS multiply-adds, each weight ROW_VECS), the weight gradient OUT_BLOCK x
 * TAP_BLOCK (each load of dy feeds TAP_BLOCK taps, each load of the shifted input OUT_BLOCK
 * outputs). Either fits AVX2's 16 registers with room for its operands, and the
 * sums stay in registers across all (c, i, j) taps or all rows instead of going through
 * memory (the loops over a block are unrolled for that). GCC's generic vectors: one AVX
 * register in the x86-64-v3 clone, two SSE registers in the baseline one. */
#define LANES 8
#define FORWARD_OUTS 6
#define ROW_VECS 2
#define OUT_BLOCK 4
#define TAP_BLOCK 3
/* Where the loops beat im2col + GEMM (measured: see the top of the file): stride 1, at most
 * NARROW channels on both sides, and either at most FEW_OUTPUTS outputs or output rows of at
 * least WIDE_ROW columns. Narrower images keep the GEMM: an image's column matrix then fits
 * in a core's cache, and the GEMM was as fast or faster for the weight gradient. */
#define FEW_OUTPUTS 4
#define NARROW 32
#define WIDE_ROW 16
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

/* The columns [ox, ox + nv * LANES) of output row oy, the last vector holding only `tail` of
 * them, for the o_n output channels from o0 of one image (y: the image's output). Inlined
 * with nv, o_n and the kernel width kw constants, so that acc lives in registers and the
 * loop over a kernel row is unrolled. */
static inline __attribute__((always_inline)) void forward_block(const job *j, float *y, int64_t o0, int64_t oy, int64_t ox,
                                                                const int64_t nv, int64_t tail, const int64_t o_n,
                                                                const int64_t kw) {
  const ut_conv_geom *gm = j->gm;
  const int64_t hp = padded_h(gm), wp = padded_w(gm), q = gm->oh * gm->ow, stride_o = gm->c * gm->kh * kw;
  const float *w0 = j->in1 + o0 * stride_o;
  vec acc[FORWARD_OUTS][ROW_VECS];
#pragma GCC unroll 6
  for (int64_t o = 0; o < o_n; o++)
#pragma GCC unroll 2
    for (int64_t v = 0; v < nv; v++) acc[o][v] = (vec){ 0 } + (j->bias ? j->bias[o0 + o] : 0.0f);
  for (int64_t c = 0; c < gm->c; c++)
    for (int64_t ki = 0; ki < gm->kh; ki++) {
      const float *row = j->pad + c * hp * wp + (oy + ki) * wp + ox;
      const float *w = w0 + (c * gm->kh + ki) * kw;
#pragma GCC unroll 7
      for (int64_t kj = 0; kj < kw; kj++) {
        vec x[ROW_VECS];
#pragma GCC unroll 2
        for (int64_t v = 0; v < nv; v++) load(&x[v], row + kj + v * LANES, v == nv - 1 ? tail : LANES);
#pragma GCC unroll 6
        for (int64_t o = 0; o < o_n; o++) {
          const float wt = w[o * stride_o + kj];
#pragma GCC unroll 2
          for (int64_t v = 0; v < nv; v++) acc[o][v] += wt * x[v];
        }
      }
    }
#pragma GCC unroll 6
  for (int64_t o = 0; o < o_n; o++)
#pragma GCC unroll 2
    for (int64_t v = 0; v < nv; v++) {
      float *dst = y + (o0 + o) * q + oy * gm->ow + ox + v * LANES;
      const int64_t n = v == nv - 1 ? tail : LANES;
      if (n == LANES) memcpy(dst, &acc[o][v], sizeof acc[o][v]);
      else
        for (int64_t l = 0; l < n; l++) dst[l] = acc[o][v][l];
    }
}

/* One image's rows for the o_n output channels from o0: blocks of ROW_VECS vectors, then of
 * one, then the row's tail. */
static inline __attribute__((always_inline)) void forward_rows_kw(const job *j, float *y, int64_t o0, const int64_t o_n,
                                                                  const int64_t kw) {
  const int64_t ow = j->gm->ow;
  for (int64_t oy = 0; oy < j->gm->oh; oy++) {
    int64_t ox = 0;
    for (; ox + ROW_VECS * LANES <= ow; ox += ROW_VECS * LANES) forward_block(j, y, o0, oy, ox, ROW_VECS, LANES, o_n, kw);
    for (; ox + LANES <= ow; ox += LANES) forward_block(j, y, o0, oy, ox, 1, LANES, o_n, kw);
    if (ox < ow) forward_block(j, y, o0, oy, ox, 1, ow - ox, o_n, kw);
  }
}

/* The generator's kernel widths, 3 and 5, as constants (a kernel row's loop then unrolls),
 * others as they come (for 7x7 the constant measured no faster). Every constant multiplies the
 * inlined blocks, 6 output counts x 3 row blocks x 2 clones each; with sanitizers that code
 * took clang over ten minutes to compile, so sanitized builds run every width through the
 * general loop (the same source, with the width a variable). */
static inline __attribute__((always_inline)) void forward_rows(const job *j, float *y, int64_t o0, const int64_t o_n) {
#if !UT_CONV_SANITIZED
  switch (j->gm->kw) {
  case 3: forward_rows_kw(j, y, o0, o_n, 3); return;
  case 5: forward_rows_kw(j, y, o0, o_n, 5); return;
  default: break;
  }
#endif
  forward_rows_kw(j, y, o0, o_n, j->gm->kw);
}

VECTOR_CLONES static void forward_images(job *j) {
  const ut_conv_geom *gm = j->gm;
  const int64_t hp = padded_h(gm), wp = padded_w(gm), q = gm->oh * gm->ow;
  for (int64_t b = j->lo; b < j->hi; b++) {
    for (int64_t c = 0; c < gm->c; c++) pad_plane(j->pad + c * hp * wp, j->in0 + (b * gm->c + c) * gm->h * gm->w, gm);
    float *y = j->out + b * j->o * q;
    for (int64_t o0 = 0; o0 < j->o; o0 += FORWARD_OUTS) {
      switch (j->o - o0) {
      case 1: forward_rows(j, y, o0, 1); break;
      case 2: forward_rows(j, y, o0, 2); break;
      case 3: forward_rows(j, y, o0, 3); break;
      case 4: forward_rows(j, y, o0, 4); break;
      case 5: forward_rows(j, y, o0, 5); break;
      default: forward_rows(j, y, o0, FORWARD_OUTS); break;
      }
    }
  }
}

/* acc[o][t] += dy[o] times the padded row shifted by t, over the n <= LANES columns from ox. */
static inline __attribute__((always_inline)) void tap_block(vec acc[OUT_BLOCK][TAP_BLOCK], const float *xr, const float *gr,
                                                            int64_t q, int64_t ox, const int64_t n, const int64_t o_n,
                                                            const int64_t t_n) {
  vec g[OUT_BLOCK];
#pragma GCC unroll 4
  for (int64_t o = 0; o < o_n; o++) load(&g[o], gr + o * q + ox, n);
#pragma GCC unroll 3
  for (int64_t t = 0; t < t_n; t++) {
    vec x;
    load(&x, xr + ox + t, n);
#pragma GCC unroll 4
    for (int64_t o = 0; o < o_n; o++) acc[o][t] += g[o] * x;
  }
}

/* dw[o, t] (o < o_n output channels c * kh * kw floats apart, t < t_n neighbouring taps of one
 * kernel row) += the sum over one image of dy[o] times the padded plane shifted to x0 + t (x0:
 * the first tap's origin). Inlined with o_n and t_n constants, as forward_block. */
static inline __attribute__((always_inline)) void tap_sums(const ut_conv_geom *gm, const float *x0, const float *dy,
                                                           float *dw, const int64_t o_n, const int64_t t_n) {
  const int64_t wp = padded_w(gm), q = gm->oh * gm->ow, stride_o = gm->c * gm->kh * gm->kw;
  const int64_t whole = gm->ow / LANES * LANES;
  vec acc[OUT_BLOCK][TAP_BLOCK];
#pragma GCC unroll 4
  for (int64_t o = 0; o < o_n; o++)
#pragma GCC unroll 3
    for (int64_t t = 0; t < t_n; t++) acc[o][t] = (vec){ 0 };
  for (int64_t oy = 0; oy < gm->oh; oy++) {
    const float *xr = x0 + oy * wp, *gr = dy + oy * gm->ow;
    for (int64_t ox = 0; ox < whole; ox += LANES) tap_block(acc, xr, gr, q, ox, LANES, o_n, t_n);
    if (whole < gm->ow) tap_block(acc, xr, gr, q, whole, gm->ow - whole, o_n, t_n);
  }
#pragma GCC unroll 4
  for (int64_t o = 0; o < o_n; o++)
#pragma GCC unroll 3
    for (int64_t t = 0; t < t_n; t++) {
      float sum = 0.0f;
      for (int l = 0; l < LANES; l++) sum += acc[o][t][l];
      dw[o * stride_o + t] += sum;
    }
}

/* Items are input channels c: each thread owns dw[:, c] and sums over the batch in order. For
 * each block of output channels and of taps the products are summed in vector registers over
 * all rows of an image, then reduced across lanes in a fixed order. Images are the outer loop,
 * so that one image's output gradient (128 KB for 32 channels at 32x32) stays in the core's
 * cache for all of the share's channels (with channels outside, the whole batch's went through
 * it once per channel: 0.93-0.94 of the time single-threaded at LORD's 32x32 layers). */
VECTOR_CLONES static void grad_weight_channels(job *j) {
  const ut_conv_geom *gm = j->gm;
  const int64_t wp = padded_w(gm), q = gm->oh * gm->ow, taps = gm->kh * gm->kw;
  float *xp = j->pad;
  for (int64_t c = j->lo; c < j->hi; c++)
    for (int64_t o = 0; o < j->o; o++)
      for (int64_t t = 0; t < taps; t++) j->out[(o * gm->c + c) * taps + t] = 0.0f;
  for (int64_t b = 0; b < gm->b; b++) {
    for (int64_t c = j->lo; c < j->hi; c++) {
      pad_plane(xp, j->in1 + (b * gm->c + c) * gm->h * gm->w, gm);
      for (int64_t o0 = 0; o0 < j->o; o0 += OUT_BLOCK) {
        const float *dy = j->in0 + (b * j->o + o0) * q;
        const int64_t o_n = j->o - o0 < OUT_BLOCK ? j->o - o0 : OUT_BLOCK;
        for (int64_t ki = 0; ki < gm->kh; ki++)
          for (int64_t kj = 0; kj < gm->kw; kj += TAP_BLOCK) {
            const float *x0 = xp + ki * wp + kj;
            float *dw = j->out + ((o0 * gm->c + c) * gm->kh + ki) * gm->kw + kj;
            const int64_t t_n = gm->kw - kj < TAP_BLOCK ? gm->kw - kj : TAP_BLOCK;
#define TAP_CASE(O, T) \
  case ((O)-1) * TAP_BLOCK + (T)-1: tap_sums(gm, x0, dy, dw, O, T); break;
            switch ((o_n - 1) * TAP_BLOCK + t_n - 1) {
              TAP_CASE(1, 1) TAP_CASE(1, 2) TAP_CASE(1, 3) TAP_CASE(2, 1) TAP_CASE(2, 2) TAP_CASE(2, 3)
              TAP_CASE(3, 1) TAP_CASE(3, 2) TAP_CASE(3, 3) TAP_CASE(4, 1) TAP_CASE(4, 2) TAP_CASE(4, 3)
            }
#undef TAP_CASE
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
  if (gm->stride != 1 || pass == UT_CONV_GRAD_INPUT) return 0;
  return o <= NARROW && gm->c <= NARROW && (o <= FEW_OUTPUTS || gm->ow >= WIDE_ROW);
}

ut_status ut_conv_direct_run(const ut_conv_geom *gm, int64_t o, ut_conv_pass pass, const float *in0, const float *in1,
                             const float *bias, float *out, int threads) {
  job all = { .gm = gm, .o = o, .pass = pass, .in0 = in0, .in1 = in1, .bias = bias, .out = out };
  int64_t items = pass == UT_CONV_GRAD_WEIGHT ? gm->c : gm->b;
  if (ut_host_parallel(threads, items, run_share, &all))
    return ut_fail(UT_ERR_HOST_MEMORY, "direct convolution: out of host memory for a padded plane");
  return UT_OK;
}
