/* Direct convolution on the host (conv_host.c decides when, by ut_conv_direct_suits): every
 * (image, channel) plane is padded once into a small buffer, and every kernel tap becomes a
 * multiply-add of a shifted row segment of a plane into the outputs, with no column matrix.
 *
 *   forward       y[o] += w[o, c, i, j] * xp[c] shifted by (i, j)        threads over images
 *   grad weight   dw[o, c, i, j] = sum over images and pixels of dy[o] * xp[c] shifted
 *                                                                    threads over c
 *
 * xp is the plane with its padding materialised (zeros or the reflection). Every output
 * element has one writer and a fixed order of sums, so results do not depend on the thread
 * count. Stride 1 only: whole row segments are loaded as vectors. Input gradients run here as
 * forward passes of dy with the flipped kernel (conv_internal.h).
 *
 * Where it pays, measured in thread CPU time on one core of the 2-core AMD EPYC (AVX2, FMA),
 * 8 images, against im2col + a single-threaded OpenBLAS product, forward / weight gradient:
 * LORD's 5x5 32 -> 16 at 32x32 2.0x / 1.3x faster, 16 -> 32 (its flipped input gradient)
 * 1.5x / 0.9x, 3x3 32 -> 32 1.2x, the 7x7 16 -> 3 head 7.4x / 4.6x, the 7x7 3 -> 16 stem 2.1x,
 * VGG's 3 -> 64 1.5x, 64 -> 64 at 32x32 1.0x, 128 -> 128 at 16x16 1.05x; but 256 -> 256 at
 * 8x8 0.76x and 512 -> 512 at 4x4 0.09x (rows of one vector or less). The weight gradient's
 * 5-wide row tiles pay only with fewer outputs than inputs (1.3x at 32 -> 16, 0.9x at
 * 16 -> 32); its 3-wide ones up to 32 channels at 32x32 (32 -> 16 1.4x, 32 -> 32 1.13x,
 * 16 -> 32 1.08x) but not beyond (64 -> 64 0.92x, 128 -> 128 at 16x16 0.63x); the rest keeps
 * the GEMM. These figures were taken while
 * other work loaded the machine (thread CPU time is less disturbed than the wall clock, but
 * not immune): benchmarks/README.md has the side-by-side step times. */
#include <string.h>

#include "conv_direct.h"
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

/* GCC's generic vectors of LANES floats: one AVX register in the x86-64-v3 clone, two SSE
 * registers in the baseline one. The loops over a tile's channels, vectors and taps are
 * unrolled by pragma: the build's -O2 leaves them rolled, the sums then live in memory, and
 * the tiles ran 10 to 18 times slower. */
#define LANES 8
typedef float vec __attribute__((vector_size(LANES * sizeof(float))));

/* The forward pass is tiled in registers: a tile is OB output channels (OB <= MAX_OB) times NV
 * vectors of one output row (NV <= 2), and its OB * NV sums stay in registers across all
 * (c, i, j) taps. Each tap loads NV input vectors and broadcasts OB weights for OB * NV
 * multiply-adds: at 6 x 2 that is 8 loads for 12 multiply-adds, enough for the multiply-add
 * units to set the pace, in 12 + 2 + 1 of the 16 AVX registers. The weights are packed per
 * tile of channels as [c][i][j][OB], so the OB broadcasts of a tap read adjacent floats. */
#define MAX_OB 6

typedef struct {
  const ut_conv_geom *gm;
  int64_t o;
  ut_conv_pass pass;
  const float *in0, *in1, *bias;
  const float *packed; /* forward: the weights packed per tile of output channels */
  float *out;
  int64_t lo, hi;  /* this share's images (forward) or input channels (grad weight) */
  float *pad;      /* this share's padded planes: C planes (forward), or one (grad weight) */
  float *pads;     /* the workspace's first share's padded planes */
  size_t pad_size; /* floats from one share's planes to the next's */
  int shares;
  int64_t items;
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

/* Stores the n (<= LANES) first lanes of v at p. */
static inline __attribute__((always_inline)) void store(float *p, const vec *v, int64_t n) {
  if (n == LANES) {
    memcpy(p, v, sizeof *v);
    return;
  }
  for (int64_t l = 0; l < n; l++) p[l] = (*v)[l];
}

/* One tile: output channels o0 .. o0 + OB - 1 of row oy, NV vectors from column ox, the last
 * of them holding n (<= LANES) columns. Inlined with OB, NV and (for whole vectors) n
 * constant, so that acc lives in registers. */
static inline __attribute__((always_inline)) void forward_tile(const job *j, const float *wk, float *y, int64_t o0,
                                                               int64_t oy, int64_t ox, const int64_t n, const int OB,
                                                               const int NV) {
  const ut_conv_geom *gm = j->gm;
  const int64_t hp = padded_h(gm), wp = padded_w(gm), q = gm->oh * gm->ow, taps = gm->kh * gm->kw;
  vec acc[MAX_OB][2];
#pragma GCC unroll 6
  for (int o = 0; o < OB; o++)
#pragma GCC unroll 2
    for (int v = 0; v < NV; v++) acc[o][v] = (vec){ 0 } + (j->bias ? j->bias[o0 + o] : 0.0f);
  for (int64_t c = 0; c < gm->c; c++)
    for (int64_t ki = 0; ki < gm->kh; ki++) {
      const float *row = j->pad + (c * hp + oy + ki) * wp + ox;
      const float *w = wk + (c * taps + ki * gm->kw) * OB;
      for (int64_t kj = 0; kj < gm->kw; kj++) {
        vec x[2];
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++) load(&x[v], row + kj + v * LANES, v == NV - 1 ? n : LANES);
#pragma GCC unroll 6
        for (int o = 0; o < OB; o++)
#pragma GCC unroll 2
          for (int v = 0; v < NV; v++) acc[o][v] += w[kj * OB + o] * x[v];
      }
    }
#pragma GCC unroll 6
  for (int o = 0; o < OB; o++)
#pragma GCC unroll 2
    for (int v = 0; v < NV; v++) store(y + (o0 + o) * q + oy * gm->ow + ox + v * LANES, &acc[o][v], v == NV - 1 ? n : LANES);
}

/* Every row of one image for the OB output channels from o0: pairs of vectors, then a single
 * vector, then the row's tail. */
static inline __attribute__((always_inline)) void forward_rows(const job *j, const float *wk, float *y, int64_t o0,
                                                               const int OB) {
  const ut_conv_geom *gm = j->gm;
  const int64_t ow = gm->ow, tail = ow % LANES;
  for (int64_t oy = 0; oy < gm->oh; oy++) {
    int64_t ox = 0;
    for (; ox + 2 * LANES <= ow; ox += 2 * LANES) forward_tile(j, wk, y, o0, oy, ox, LANES, OB, 2);
    if (ox + LANES <= ow) forward_tile(j, wk, y, o0, oy, ox, LANES, OB, 1), ox += LANES;
    if (tail) forward_tile(j, wk, y, o0, oy, ox, tail, OB, 1);
  }
}

VECTOR_CLONES static void forward_images(job *j) {
  const ut_conv_geom *gm = j->gm;
  const int64_t hp = padded_h(gm), wp = padded_w(gm), q = gm->oh * gm->ow, per_o = gm->c * gm->kh * gm->kw;
  for (int64_t b = j->lo; b < j->hi; b++) {
    for (int64_t c = 0; c < gm->c; c++) pad_plane(j->pad + c * hp * wp, j->in0 + (b * gm->c + c) * gm->h * gm->w, gm);
    float *y = j->out + b * j->o * q;
    for (int64_t o0 = 0; o0 < j->o; o0 += MAX_OB) {
      const float *wk = j->packed + o0 * per_o;
      switch (j->o - o0 < MAX_OB ? j->o - o0 : MAX_OB) {
      case 1: forward_rows(j, wk, y, o0, 1); break;
      case 2: forward_rows(j, wk, y, o0, 2); break;
      case 3: forward_rows(j, wk, y, o0, 3); break;
      case 4: forward_rows(j, wk, y, o0, 4); break;
      case 5: forward_rows(j, wk, y, o0, 5); break;
      default: forward_rows(j, wk, y, o0, MAX_OB); break;
      }
    }
  }
}

/* packed = w [O, C, kh, kw] as tiles of MAX_OB output channels (the last one narrower), each
 * [C][kh][kw][tile width]. */
static void pack_weights(float *packed, const float *w, int64_t o, int64_t per_o) {
  for (int64_t o0 = 0; o0 < o; o0 += MAX_OB) {
    const int64_t ob = o - o0 < MAX_OB ? o - o0 : MAX_OB;
    for (int64_t t = 0; t < per_o; t++)
      for (int64_t k = 0; k < ob; k++) packed[o0 * per_o + t * ob + k] = w[(o0 + k) * per_o + t];
  }
}

/* The weight gradient, for a kernel row i of input channel c: dw[o, c, i, j] sums dy[o] times
 * the padded plane shifted by (i, j) over an image's pixels. Two tilings in registers:
 *
 *   - few output channels (o <= MAX_FEW_OUT): per tap (i, j), the sums of every output
 *     channel at once (one load of the plane feeds them all);
 *   - row tiles for 5- and 3-wide kernels: per 2 (or 3) output channels, the 5 (or 3) taps of
 *     the row at once: each column block loads 2 dy vectors and 5 shifted plane vectors for 10
 *     multiply-adds (3 and 3 for 9), in 10 + 2 + 1 (9 + 3 + 1) registers.
 *
 * Sums run over the columns of a row in vector lanes, over the rows of one image, then are
 * reduced across lanes in a fixed order and added into dw image after image. */
#define MAX_FEW_OUT 4
#define MAX_TILE_SUMS 10 /* the most sums a tile keeps: 2 channels x 5 taps */

/* acc[o * KW + k] += dy[o] times the plane shifted by tap k, over the n <= LANES columns from
 * ox of one row; KW taps of adjacent shifts, OB output channels. */
static inline __attribute__((always_inline)) void taps_block(vec *acc, const float *xr, const float *gr, int64_t q,
                                                             int64_t ox, const int64_t n, const int OB, const int KW) {
  vec g[MAX_FEW_OUT];
#pragma GCC unroll 4
  for (int o = 0; o < OB; o++) load(&g[o], gr + o * q + ox, n);
#pragma GCC unroll 5
  for (int k = 0; k < KW; k++) {
    vec x;
    load(&x, xr + ox + k, n);
#pragma GCC unroll 4
    for (int o = 0; o < OB; o++) acc[o * KW + k] += g[o] * x;
  }
}

/* dw[o * stride_o + k] += the sum over one image of dy[o] times the padded plane shifted to
 * x0 + k, for o < OB and k < KW. Inlined with OB and KW constant, so acc lives in registers. */
static inline __attribute__((always_inline)) void taps_sums(const ut_conv_geom *gm, const float *x0, const float *dy,
                                                            float *dw, const int OB, const int KW) {
  const int64_t wp = padded_w(gm), q = gm->oh * gm->ow, stride_o = gm->c * gm->kh * gm->kw;
  const int64_t whole = gm->ow / LANES * LANES;
  vec acc[MAX_TILE_SUMS];
#pragma GCC unroll 10
  for (int t = 0; t < OB * KW; t++) acc[t] = (vec){ 0 };
  for (int64_t oy = 0; oy < gm->oh; oy++) {
    const float *xr = x0 + oy * wp, *gr = dy + oy * gm->ow;
    for (int64_t ox = 0; ox < whole; ox += LANES) taps_block(acc, xr, gr, q, ox, LANES, OB, KW);
    if (whole < gm->ow) taps_block(acc, xr, gr, q, whole, gm->ow - whole, OB, KW);
  }
  for (int o = 0; o < OB; o++)
    for (int k = 0; k < KW; k++) {
      float sum = 0.0f;
      for (int l = 0; l < LANES; l++) sum += acc[o * KW + k][l];
      dw[o * stride_o + k] += sum;
    }
}

/* One image's part of dw[:, c] from its padded plane xp. */
static inline __attribute__((always_inline)) void grad_weight_image(const ut_conv_geom *gm, int64_t o_n, const float *xp,
                                                                    const float *dy, float *dw_c) {
  const int64_t wp = padded_w(gm), q = gm->oh * gm->ow, taps = gm->kh * gm->kw, stride_o = gm->c * taps;
  for (int64_t ki = 0; ki < gm->kh; ki++) {
    if (o_n > MAX_FEW_OUT) { /* row tiles: 5- or 3-wide kernels (ut_conv_direct_suits) */
      const float *x0 = xp + ki * wp;
      int64_t o0 = 0;
      if (gm->kw == 5) {
        for (; o0 + 2 <= o_n; o0 += 2) taps_sums(gm, x0, dy + o0 * q, dw_c + o0 * stride_o + ki * 5, 2, 5);
        for (; o0 < o_n; o0++) taps_sums(gm, x0, dy + o0 * q, dw_c + o0 * stride_o + ki * 5, 1, 5);
      } else {
        for (; o0 + 3 <= o_n; o0 += 3) taps_sums(gm, x0, dy + o0 * q, dw_c + o0 * stride_o + ki * 3, 3, 3);
        for (; o0 < o_n; o0++) taps_sums(gm, x0, dy + o0 * q, dw_c + o0 * stride_o + ki * 3, 1, 3);
      }
      continue;
    }
    for (int64_t kj = 0; kj < gm->kw; kj++) {
      float *dw = dw_c + ki * gm->kw + kj;
      const float *x0 = xp + ki * wp + kj;
      switch (o_n) {
      case 1: taps_sums(gm, x0, dy, dw, 1, 1); break;
      case 2: taps_sums(gm, x0, dy, dw, 2, 1); break;
      case 3: taps_sums(gm, x0, dy, dw, 3, 1); break;
      default: taps_sums(gm, x0, dy, dw, MAX_FEW_OUT, 1); break;
      }
    }
  }
}

/* Items are input channels c: each thread owns dw[:, c] and sums over the batch in order.
 * With row tiles (many output channels), images are the outer loop, so one image's dy stays
 * in cache while the thread's channels read it (channels outer, the whole batch's dy came
 * from memory again for every channel); with few output channels dy is small and the
 * channel-outer order measured faster (the 7x7 16 -> 3 head: 2.0 against 2.4 ms). The sums of
 * each dw[:, c] run over the images in order either way. */
VECTOR_CLONES static void grad_weight_channels(job *j) {
  const ut_conv_geom *gm = j->gm;
  const int64_t q = gm->oh * gm->ow, taps = gm->kh * gm->kw, o_n = j->o;
  float *xp = j->pad;
  for (int64_t c = j->lo; c < j->hi; c++)
    for (int64_t o = 0; o < o_n; o++)
      for (int64_t t = 0; t < taps; t++) j->out[(o * gm->c + c) * taps + t] = 0.0f;
  const int images_outer = o_n > MAX_FEW_OUT;
  const int64_t n_outer = images_outer ? gm->b : j->hi - j->lo, n_inner = images_outer ? j->hi - j->lo : gm->b;
  for (int64_t u = 0; u < n_outer; u++)
    for (int64_t v = 0; v < n_inner; v++) {
      const int64_t b = images_outer ? u : v, c = j->lo + (images_outer ? v : u);
      pad_plane(xp, j->in1 + (b * gm->c + c) * gm->h * gm->w, gm);
      grad_weight_image(gm, o_n, xp, j->in0 + b * o_n * q, j->out + c * taps);
    }
}

/* Shares [lo, hi) of the pass: each its contiguous items, with its own padded planes in the
 * workspace (allocating them per launch cost page faults, and unmapping them interrupted the
 * other cores). */
static int run_shares(void *ctx, int64_t lo, int64_t hi) {
  for (int64_t share = lo; share < hi; share++) {
    job j = *(const job *)ctx;
    j.lo = j.items * share / j.shares, j.hi = j.items * (share + 1) / j.shares;
    j.pad = j.pads + (size_t)share * j.pad_size;
    if (j.pass == UT_CONV_FORWARD) forward_images(&j);
    else grad_weight_channels(&j);
  }
  return 0;
}

/* The workspace: the packed weights (forward), then each share's padded planes, in floats
 * rounded up to 64 (256 bytes) so no two shares' planes share a cache line. */
static size_t round64(size_t floats) { return (floats + 63) / 64 * 64; }
static int64_t items_of(const ut_conv_geom *gm, ut_conv_pass pass) { return pass == UT_CONV_GRAD_WEIGHT ? gm->c : gm->b; }
static int shares_of(const ut_conv_geom *gm, ut_conv_pass pass, int threads) {
  int64_t items = items_of(gm, pass);
  return threads < 1 ? 1 : items < threads ? (int)(items > 0 ? items : 1) : threads;
}
static size_t packed_size(const ut_conv_geom *gm, int64_t o, ut_conv_pass pass) {
  return pass == UT_CONV_FORWARD ? round64((size_t)(o * gm->c * gm->kh * gm->kw)) : 0;
}
static size_t pad_size(const ut_conv_geom *gm, ut_conv_pass pass) {
  return round64((size_t)(pass == UT_CONV_FORWARD ? gm->c : 1) * (size_t)(padded_h(gm) * padded_w(gm)));
}

size_t ut_conv_direct_workspace(const ut_conv_geom *gm, int64_t o, ut_conv_pass pass, int threads) {
  return packed_size(gm, o, pass) + (size_t)shares_of(gm, pass, threads) * pad_size(gm, pass);
}

/* Where measured faster than im2col + GEMM (the top of this file). Rows of 16 or more keep the
 * forward tiles at two vectors; at 8x8 (one vector) and below they lose. The weight gradient's
 * row tiles lose to the GEMM as channels grow (its product gets more efficient, they do not). */
int ut_conv_direct_suits(const ut_conv_geom *gm, int64_t o, ut_conv_pass pass) {
  if (gm->stride != 1) return 0;
  if (pass == UT_CONV_FORWARD) return o <= MAX_FEW_OUT || (gm->kh * gm->kw > 1 && gm->ow >= 2 * LANES);
  if (pass == UT_CONV_GRAD_WEIGHT)
    return o <= MAX_FEW_OUT || (gm->kw == 5 && o < gm->c) ||
           (gm->kw == 3 && o <= 32 && gm->c <= 32 && gm->ow >= 2 * LANES);
  return 0; /* input gradients: as forward passes with the flipped kernel (conv_internal.h) */
}

void ut_conv_direct_run(const ut_conv_geom *gm, int64_t o, ut_conv_pass pass, const float *in0, const float *in1,
                        const float *bias, float *out, float *workspace, int threads) {
  const int shares = shares_of(gm, pass, threads);
  job all = { .gm = gm, .o = o, .pass = pass, .in0 = in0, .in1 = in1, .bias = bias, .out = out, .shares = shares,
              .items = items_of(gm, pass), .pads = workspace + packed_size(gm, o, pass), .pad_size = pad_size(gm, pass) };
  if (pass == UT_CONV_FORWARD) {
    pack_weights(workspace, in1, o, gm->c * gm->kh * gm->kw);
    all.packed = workspace;
  }
  ut_host_parallel(shares, shares, run_shares, &all);
}
