/* The convolution passes on the host, for CPU devices whose memory is host memory (the same
 * condition as the host GEMM, host_gemm.h). One host launch per node maps its tensors and
 * splits the batch over the device's compute units: each thread works through its own images
 * a chunk at a time, in the order conv_launch.c describes, with the column matrix built by
 * plain C into its own workspace small enough to stay in cache, a single-threaded OpenBLAS
 * product, and the results written straight into the NCHW tensors:
 *
 *   - a chunk of one image needs no reordering: y_b [O, q] is the GEMM's own output layout,
 *     and dy_b is already the channel-major operand;
 *   - a 1x1, stride-1, unpadded convolution of one image needs no column matrix: x_b is it;
 *   - col2im is a scatter-add in a fixed order (deterministic, no atomics on one thread).
 *
 * Splitting images rather than each product keeps every thread busy from im2col to the
 * output with one wake-up and one wait per node (host_threads.c), where OpenBLAS's own
 * threads would wait (and spin) at every product of every chunk. Every output image has one
 * writer; the weight gradient's threads sum their images into partials that are added in
 * thread order, so the results depend on the thread count (fixed: the device's compute
 * units), never on timing.
 *
 * Zero-padded loops find the columns of a row that read inside the image once per row: at
 * stride 1 they copy whole runs (memcpy), at stride 2 into rows of 16 or more they split each
 * input row into its even and odd columns first (below), at other strides they take every
 * stride-th entry without a test per column; reflection takes the general loops. Narrow
 * layers go to the direct loops instead (conv_direct.c), 3x3 ones of 32 or more channels to
 * Winograd F(2x2, 3x3) (conv_winograd.c); ut_conv_chunks decides. */
#include <string.h>

#include <cblas.h>

#include "conv_direct.h"
#include "conv_winograd.h"
#include "host_threads.h"

typedef struct {
  ut_conv_geom gm;
  int64_t o;
  ut_conv_pass pass;
  ut_conv_chunking ch;
  int has_bias;
  int threads;
} host_conv;

enum { OP_FIRST, OP_SECOND, OP_BIAS, OP_OUT, OP_WORKSPACE, N_OPS }; /* the operands, in map order */

/* a / s rounded up, for s > 0; 0 for a <= 0. */
static int64_t ceil_div(int64_t a, int64_t s) { return a <= 0 ? 0 : (a + s - 1) / s; }

/* The output columns [lo, hi) whose tap kj reads inside the row (input column
 * ox * stride + kj - pad in [0, w)), for zero padding. */
static void inside(const ut_conv_geom *gm, int64_t kj, int64_t *lo, int64_t *hi) {
  *lo = ceil_div(gm->pad - kj, gm->stride);
  *hi = ceil_div(gm->w + gm->pad - kj, gm->stride);
  if (*hi > gm->ow) *hi = gm->ow;
  if (*hi < *lo) *hi = *lo;
}

/* A "same" convolution (stride 1, zero pad, output as wide as the image) reads, for tap
 * (ki, kj), the image plane shifted by `shift` floats: col row entry n is plane entry
 * n + shift wherever the tap reads inside the image. So the rows oy0 .. oy1 - 1 that read
 * inside are one run of memory on both sides, from column lo of the first row to column hi
 * of the last; the entries of columns outside [lo, hi) in that run wrap around from the
 * neighbouring row and are not the tap's (they are zeros for im2col, and must add nothing in
 * col2im). */
typedef struct {
  int64_t shift, oy0, oy1, first, last; /* the run is col entries [first, last) */
} same_run;

static int same_conv(const ut_conv_geom *gm) { return gm->stride == 1 && !gm->reflect && gm->ow == gm->w; }

static same_run same_tap(const ut_conv_geom *gm, int64_t ki, int64_t kj, int64_t lo, int64_t hi) {
  same_run r = { .shift = (ki - gm->pad) * gm->w + (kj - gm->pad) };
  r.oy0 = gm->pad - ki > 0 ? gm->pad - ki : 0;
  r.oy1 = gm->h + gm->pad - ki < gm->oh ? gm->h + gm->pad - ki : gm->oh;
  if (r.oy1 <= r.oy0 || hi <= lo) { /* the tap reads nothing inside (an image smaller than the kernel) */
    r.oy0 = r.oy1 = r.first = r.last = 0;
    return r;
  }
  r.first = r.oy0 * gm->ow + lo;
  r.last = (r.oy1 - 1) * gm->ow + hi;
  return r;
}

/* Zeros columns outside [lo, hi) of the rows oy0 .. oy1 - 1 of a col row. */
static void zero_borders(float *row, const same_run *r, int64_t ow, int64_t lo, int64_t hi) {
  for (int64_t oy = r->oy0; oy < r->oy1; oy++) {
    for (int64_t ox = 0; ox < lo; ox++) row[oy * ow + ox] = 0.0f;
    for (int64_t ox = hi; ox < ow; ox++) row[oy * ow + ox] = 0.0f;
  }
}

/* Stride 2 with zero padding (the encoders' 4x4 down-sampling layers): output column ox of
 * tap kj reads input column 2 ox + kj - pad, every other column of the row from an even or an
 * odd one. Each input row is split once into its even and odd columns, and every tap of it is
 * then a contiguous run of one half: per column, the strided reads stayed scalar, and the
 * copies took two to three times as long as the GEMM they fed. Output rows from SPLIT_MIN
 * columns (LORD's first encoder layer: its passes in about 0.8 of the time; on its 8- and
 * 4-column layers splitting lost, col2im by up to half again) and input rows up to 2 SPLIT_MAX. */
enum { SPLIT_MIN = 16, SPLIT_MAX = 1024 };

static int split_rows(const ut_conv_geom *gm) {
  return gm->stride == 2 && !gm->reflect && gm->ow >= SPLIT_MIN && gm->w <= 2 * SPLIT_MAX;
}

/* half[0] = the row's even columns, half[1] its odd ones. */
static void split_row(float half[2][SPLIT_MAX], const float *src, int64_t w) {
  for (int64_t j = 0; j < w / 2; j++) {
    half[0][j] = src[2 * j];
    half[1][j] = src[2 * j + 1];
  }
  if (w % 2) half[0][w / 2] = src[w - 1];
}

/* Where tap kj's run lies: input column 2 ox + kj - pad is entry ox + *base of half *parity. */
static void split_tap(const ut_conv_geom *gm, int64_t kj, int *parity, int64_t *base) {
  const int64_t off = kj - gm->pad;
  *parity = (int)(off & 1);
  *base = (off - *parity) / 2;
}

static void im2col_plane_split(float *col, size_t ld, const float *img, int64_t c, const ut_conv_geom *gm) {
  float half[2][SPLIT_MAX];
  const int64_t ow = gm->ow;
  for (int64_t ki = 0; ki < gm->kh; ki++)
    for (int64_t oy = 0; oy < gm->oh; oy++) {
      float *taps = col + (size_t)((c * gm->kh + ki) * gm->kw) * ld + oy * ow; /* tap kj's row: + kj ld */
      const int64_t iy = 2 * oy + ki - gm->pad;
      if (iy < 0 || iy >= gm->h) {
        for (int64_t kj = 0; kj < gm->kw; kj++)
          for (int64_t ox = 0; ox < ow; ox++) taps[kj * ld + ox] = 0.0f;
        continue;
      }
      split_row(half, img + (size_t)(c * gm->h + iy) * (size_t)gm->w, gm->w);
      for (int64_t kj = 0; kj < gm->kw; kj++) {
        int64_t lo, hi, base;
        int parity;
        inside(gm, kj, &lo, &hi);
        split_tap(gm, kj, &parity, &base);
        float *dst = taps + kj * ld;
        const float *run = half[parity] + base;
        for (int64_t ox = 0; ox < lo; ox++) dst[ox] = 0.0f;
        for (int64_t ox = lo; ox < hi; ox++) dst[ox] = run[ox];
        for (int64_t ox = hi; ox < ow; ox++) dst[ox] = 0.0f;
      }
    }
}

/* col2im of the same: every tap of an input row added into its even or odd half, then the
 * halves added into the row. */
static void col2im_plane_split(float *img, const float *col, size_t ld, int64_t c, float bias, const ut_conv_geom *gm) {
  float half[2][SPLIT_MAX];
  const int64_t ow = gm->ow, w = gm->w;
  float *out = img + c * gm->h * w;
  for (int64_t j = 0; j < gm->h * w; j++) out[j] = bias;
  for (int64_t ki = 0; ki < gm->kh; ki++)
    for (int64_t oy = 0; oy < gm->oh; oy++) {
      const int64_t iy = 2 * oy + ki - gm->pad;
      if (iy < 0 || iy >= gm->h) continue;
      const float *taps = col + (size_t)((c * gm->kh + ki) * gm->kw) * ld + oy * ow;
      for (int64_t j = 0; j < (w + 1) / 2; j++) half[0][j] = half[1][j] = 0.0f;
      for (int64_t kj = 0; kj < gm->kw; kj++) {
        int64_t lo, hi, base;
        int parity;
        inside(gm, kj, &lo, &hi);
        split_tap(gm, kj, &parity, &base);
        float *run = half[parity] + base;
        const float *src = taps + kj * ld;
        for (int64_t ox = lo; ox < hi; ox++) run[ox] += src[ox];
      }
      float *dst = out + iy * w;
      for (int64_t j = 0; j < w / 2; j++) {
        dst[2 * j] += half[0][j];
        dst[2 * j + 1] += half[1][j];
      }
      if (w % 2) dst[w - 1] += half[0][w / 2];
    }
}

/* The col rows (c, ki, kj) of channel c, `ld` floats apart, columns q of one image. */
static void im2col_plane(float *col, size_t ld, const float *img, int64_t c, const ut_conv_geom *gm) {
  if (split_rows(gm)) {
    im2col_plane_split(col, ld, img, c, gm);
    return;
  }
  const int64_t ow = gm->ow, s = gm->stride, zero_pad = !gm->reflect, same = same_conv(gm);
  for (int64_t ki = 0; ki < gm->kh; ki++)
    for (int64_t kj = 0; kj < gm->kw; kj++) {
      float *row = col + (size_t)((c * gm->kh + ki) * gm->kw + kj) * ld;
      int64_t lo = 0, hi = 0;
      if (zero_pad) inside(gm, kj, &lo, &hi);
      if (same) {
        const same_run r = same_tap(gm, ki, kj, lo, hi);
        const float *plane = img + c * gm->h * gm->w;
        memset(row, 0, (size_t)r.first * sizeof *row);
        memcpy(row + r.first, plane + r.first + r.shift, (size_t)(r.last - r.first) * sizeof *row);
        memset(row + r.last, 0, (size_t)(gm->oh * ow - r.last) * sizeof *row);
        zero_borders(row, &r, ow, lo, hi);
        continue;
      }
      for (int64_t oy = 0; oy < gm->oh; oy++) {
        float *dst = row + oy * ow;
        int iy = ut_conv_source(oy * gm->stride + ki - gm->pad, gm->h, gm->reflect);
        if (iy < 0) {
          memset(dst, 0, (size_t)ow * sizeof *dst);
          continue;
        }
        const float *src = img + (size_t)(c * gm->h + iy) * (size_t)gm->w;
        if (zero_pad && s == 1) {
          memset(dst, 0, (size_t)lo * sizeof *dst);
          memcpy(dst + lo, src + lo + kj - gm->pad, (size_t)(hi - lo) * sizeof *dst);
          memset(dst + hi, 0, (size_t)(ow - hi) * sizeof *dst);
          continue;
        }
        if (zero_pad) { /* rows of a few to 16 columns: no calls */
          for (int64_t ox = 0; ox < lo; ox++) dst[ox] = 0.0f;
          for (int64_t ox = lo; ox < hi; ox++) dst[ox] = src[ox * s + kj - gm->pad];
          for (int64_t ox = hi; ox < ow; ox++) dst[ox] = 0.0f;
          continue;
        }
        for (int64_t ox = 0; ox < ow; ox++) {
          int ix = ut_conv_source(ox * gm->stride + kj - gm->pad, gm->w, gm->reflect);
          dst[ox] = ix < 0 ? 0.0f : src[ix];
        }
      }
    }
}

/* Channel c of img = bias + col2im(col): each column entry added to the pixel it was read from,
 * in a fixed order. A same convolution's rows are added as one run each, after zeroing their
 * wrapped border entries (col is scratch). */
static void col2im_plane(float *img, float *col, size_t ld, int64_t c, float bias, const ut_conv_geom *gm) {
  if (split_rows(gm)) {
    col2im_plane_split(img, col, ld, c, bias, gm);
    return;
  }
  const int64_t ow = gm->ow, s = gm->stride, zero_pad = !gm->reflect, plane = gm->h * gm->w, same = same_conv(gm);
  float *out = img + c * plane;
  for (int64_t j = 0; j < plane; j++) out[j] = bias;
  for (int64_t ki = 0; ki < gm->kh; ki++)
    for (int64_t kj = 0; kj < gm->kw; kj++) {
      float *row = col + (size_t)((c * gm->kh + ki) * gm->kw + kj) * ld;
      int64_t lo = 0, hi = 0;
      if (zero_pad) inside(gm, kj, &lo, &hi);
      if (same) {
        const same_run r = same_tap(gm, ki, kj, lo, hi);
        zero_borders(row, &r, ow, lo, hi);
        for (int64_t n = r.first; n < r.last; n++) out[n + r.shift] += row[n];
        continue;
      }
      for (int64_t oy = 0; oy < gm->oh; oy++) {
        int iy = ut_conv_source(oy * gm->stride + ki - gm->pad, gm->h, gm->reflect);
        if (iy < 0) continue;
        float *dst = out + iy * gm->w;
        const float *src = row + oy * ow;
        if (zero_pad) {
          for (int64_t ox = lo; ox < hi; ox++) dst[ox * s + kj - gm->pad] += src[ox];
          continue;
        }
        for (int64_t ox = 0; ox < ow; ox++) {
          int ix = ut_conv_source(ox * gm->stride + kj - gm->pad, gm->w, gm->reflect);
          if (ix >= 0) dst[ix] += src[ox];
        }
      }
    }
}

/* ---- the copies of one chunk ---------------------------------------------------------------------- */

/* col [C*kh*kw, nb*q] = im2col of the nb images at x. */
static void im2col_chunk(float *col, const float *x, int64_t nb, const ut_conv_geom *gm) {
  const int64_t q = gm->oh * gm->ow, img = gm->c * gm->h * gm->w;
  for (int64_t i = 0; i < nb; i++)
    for (int64_t c = 0; c < gm->c; c++) im2col_plane(col + i * q, (size_t)(nb * q), x + i * img, c, gm);
}

/* The nb images at dx = col2im(col) (+ bias); col is scratch and is changed. */
static void col2im_chunk(float *dx, float *col, const float *bias, int64_t nb, const ut_conv_geom *gm) {
  const int64_t q = gm->oh * gm->ow, img = gm->c * gm->h * gm->w;
  for (int64_t i = 0; i < nb; i++)
    for (int64_t c = 0; c < gm->c; c++) col2im_plane(dx + i * img, col + i * q, (size_t)(nb * q), c, bias ? bias[c] : 0.0f, gm);
}

/* y [nb, o, q] = t [o, nb*q] (+ bias). */
static void to_batch_major(float *y, const float *t, const float *bias, int64_t nb, int64_t o, int64_t q) {
  for (int64_t i = 0; i < nb; i++)
    for (int64_t k = 0; k < o; k++) {
      float *d = y + (i * o + k) * q, b = bias ? bias[k] : 0.0f;
      const float *src = t + k * nb * q + i * q;
      for (int64_t x = 0; x < q; x++) d[x] = src[x] + b;
    }
}

/* t [o, nb*q] = y [nb, o, q]. */
static void to_channel_major(float *t, const float *y, int64_t nb, int64_t o, int64_t q) {
  for (int64_t i = 0; i < nb; i++)
    for (int64_t k = 0; k < o; k++) memcpy(t + k * nb * q + i * q, y + (i * o + k) * q, (size_t)q * sizeof *t);
}

/* y [k, q] = bias per row, or nothing without a bias; returns the beta of the product that
 * then adds into y. Filling y first spares OpenBLAS's own pass that scales (zeroes) C for
 * beta = 0 and a second pass adding the bias after the product. */
static float preset_plane_bias(float *y, const float *bias, int64_t k, int64_t q) {
  if (!bias) return 0.0f;
  for (int64_t i = 0; i < k; i++)
    for (int64_t j = 0; j < q; j++) y[i * q + j] = bias[i];
  return 1.0f;
}

static void sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b, int64_t ldb,
                  float beta, float *c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, 1.0f, a,
              (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

/* ---- one thread's images ------------------------------------------------------------------------- */

typedef struct {
  const host_conv *hc;
  float *const *ptr;
} pass_job;

/* Share `share` of hc->ch.threads: its images [b_lo, b_hi), a chunk at a time, in its own
 * workspace (and for the weight gradient its own partial). */
static void run_images(const pass_job *job, int64_t share) {
  const host_conv *hc = job->hc;
  float *const *ptr = job->ptr;
  const ut_conv_geom *gm = &hc->gm;
  const int64_t o = hc->o, q = gm->oh * gm->ow, k = gm->c * gm->kh * gm->kw, img = gm->c * gm->h * gm->w, out = o * q;
  const int64_t threads = hc->ch.threads, b_lo = gm->b * share / threads, b_hi = gm->b * (share + 1) / threads;
  const int direct = gm->kh == 1 && gm->kw == 1 && gm->stride == 1 && gm->pad == 0;
  const float *in0 = ptr[OP_FIRST], *in1 = ptr[OP_SECOND], *bias = hc->has_bias ? ptr[OP_BIAS] : NULL;
  float *col = ptr[OP_WORKSPACE] + (size_t)share * hc->ch.share, *t = col + hc->ch.t_offset;
  /* The weight gradient: the first thread sums into the output, the others into partials
   * (every thread has at least one image: ut_conv_chunks makes no more threads than images). */
  float *dw = share == 0 ? ptr[OP_OUT] : ptr[OP_WORKSPACE] + hc->ch.partial_offset + (size_t)(share - 1) * hc->ch.partial;
  for (int64_t b0 = b_lo; b0 < b_hi; b0 += hc->ch.images) {
    const int64_t nb = b_hi - b0 < hc->ch.images ? b_hi - b0 : hc->ch.images, cols = nb * q;
    float *dst = ptr[OP_OUT];
    if (hc->pass == UT_CONV_FORWARD) { /* in0 = x, in1 = w */
      const float *c = direct && nb == 1 ? in0 + b0 * img : col;
      if (c == col) im2col_chunk(col, in0 + b0 * img, nb, gm);
      if (nb == 1) {
        sgemm(0, 0, o, q, k, in1, k, c, q, preset_plane_bias(dst + b0 * out, bias, o, q), dst + b0 * out, q);
      } else {
        sgemm(0, 0, o, cols, k, in1, k, c, cols, 0.0f, t, cols);
        to_batch_major(dst + b0 * out, t, bias, nb, o, q);
      }
    } else if (hc->pass == UT_CONV_GRAD_INPUT) { /* in0 = dy, in1 = w */
      const float *dyt = nb == 1 ? in0 + b0 * out : t;
      if (nb > 1) to_channel_major(t, in0 + b0 * out, nb, o, q);
      if (direct && nb == 1) {
        sgemm(1, 0, k, q, o, in1, k, dyt, q, preset_plane_bias(dst + b0 * img, bias, gm->c, q), dst + b0 * img, q);
        continue;
      }
      sgemm(1, 0, k, cols, o, in1, k, dyt, cols, 0.0f, col, cols);
      col2im_chunk(dst + b0 * img, col, bias, nb, gm);
    } else { /* in0 = dy, in1 = x */
      const float *c = direct && nb == 1 ? in1 + b0 * img : col;
      if (c == col) im2col_chunk(col, in1 + b0 * img, nb, gm);
      const float *dyt = nb == 1 ? in0 + b0 * out : t;
      if (nb > 1) to_channel_major(t, in0 + b0 * out, nb, o, q);
      sgemm(0, 1, o, k, cols, dyt, cols, c, cols, b0 > b_lo ? 1.0f : 0.0f, dw, k);
    }
  }
}

/* The shares [lo, hi) on one thread: one each, unless there are more shares than threads
 * (host_threads.h caps them), when a thread takes several in turn. */
static int run_shares(void *ctx, int64_t lo, int64_t hi) {
  for (int64_t share = lo; share < hi; share++) run_images(ctx, share);
  return 0;
}

/* wf [C, O, kh, kw] = w [O, C, kh, kw] with its channel axes swapped and flipped in both
 * spatial axes: the kernel of the input gradient as a forward convolution. */
static void flip_kernel(float *wf, const float *w, int64_t o, int64_t c, int64_t kh, int64_t kw) {
  for (int64_t i = 0; i < o; i++)
    for (int64_t j = 0; j < c; j++)
      for (int64_t y = 0; y < kh; y++)
        for (int64_t x = 0; x < kw; x++)
          wf[((j * o + i) * kh + y) * kw + x] = w[((i * c + j) * kh + (kh - 1 - y)) * kw + (kw - 1 - x)];
}

static ut_status run(const void *args, float *const *ptr) {
  const host_conv *hc = args;
  if (hc->ch.winograd && hc->pass == UT_CONV_GRAD_WEIGHT) {
    ut_conv_winograd_grad_weight(&hc->gm, hc->o, ptr[OP_FIRST], ptr[OP_SECOND], ptr[OP_OUT], ptr[OP_WORKSPACE], hc->ch.threads);
    return UT_OK;
  }
  if (hc->ch.winograd) { /* reads a flipped kernel in place */
    ut_conv_winograd_forward(&hc->gm, hc->o, ptr[OP_FIRST], ptr[OP_SECOND], hc->ch.flipped,
                             hc->has_bias ? ptr[OP_BIAS] : NULL, ptr[OP_OUT], ptr[OP_WORKSPACE], hc->ch.threads);
    return UT_OK;
  }
  float *with_flipped[N_OPS];
  if (hc->ch.flipped) { /* hc describes the forward pass of dy; in1 becomes the flipped kernel */
    for (int i = 0; i < N_OPS; i++) with_flipped[i] = ptr[i];
    with_flipped[OP_SECOND] = ptr[OP_WORKSPACE] + hc->ch.weights_offset;
    flip_kernel(with_flipped[OP_SECOND], ptr[OP_SECOND], hc->gm.c, hc->o, hc->gm.kh, hc->gm.kw);
    ptr = with_flipped;
  }
  if (hc->ch.direct)
    return ut_conv_direct_run(&hc->gm, hc->o, hc->pass, ptr[OP_FIRST], ptr[OP_SECOND], hc->has_bias ? ptr[OP_BIAS] : NULL,
                              ptr[OP_OUT], hc->threads, hc->ch.direct);
  pass_job job = { hc, ptr };
  ut_host_parallel(hc->ch.threads, hc->ch.threads, run_shares, &job);
  if (hc->pass == UT_CONV_GRAD_WEIGHT) { /* the partials, added in thread order */
    const size_t n = (size_t)(hc->o * hc->gm.c * hc->gm.kh * hc->gm.kw);
    for (int t = 1; t < hc->ch.threads; t++) {
      const float *part = ptr[OP_WORKSPACE] + hc->ch.partial_offset + (size_t)(t - 1) * hc->ch.partial;
      for (size_t i = 0; i < n; i++) ptr[OP_OUT][i] += part[i];
    }
  }
  return UT_OK;
}

ut_status ut_conv_launch_host(ut_plan *p, ut_tensor *n, ut_conv_pass pass, const ut_conv_geom *gm, int64_t o) {
  ut_runtime *rt = ut_plan_runtime(p);
  host_conv hc = { .gm = *gm, .o = o, .pass = pass, .ch = ut_conv_chunks(rt, gm, o, pass), .has_bias = n->n_in > 2,
                   .threads = rt->info.compute_units ? (int)rt->info.compute_units : 1 };
  if (hc.ch.flipped) hc.gm = ut_conv_flipped(gm, o), hc.o = gm->c, hc.pass = UT_CONV_FORWARD;
  ut_host_operand ops[N_OPS] = {
    [OP_FIRST] = { ut_plan_loc(p, n->in[0]), (size_t)ut_shape_numel(n->in[0]->shape), 0 },
    [OP_SECOND] = { ut_plan_loc(p, n->in[1]), (size_t)ut_shape_numel(n->in[1]->shape), 0 },
    [OP_BIAS] = { n->n_in > 2 ? ut_plan_loc(p, n->in[2]) : ut_plan_loc(p, n->in[0]),
                  n->n_in > 2 ? (size_t)ut_shape_numel(n->in[2]->shape) : 0, 0 },
    [OP_OUT] = { ut_plan_loc(p, n), (size_t)ut_shape_numel(n->shape), 1 },
    [OP_WORKSPACE] = { ut_plan_workspace(p, n), hc.ch.workspace, 1 },
  };
  static const char *names[] = { "host_conv_forward", "host_conv_grad_input", "host_conv_grad_weight" };
  return ut_plan_host(p, n, names[pass], run, &hc, sizeof hc, ops, N_OPS);
}
