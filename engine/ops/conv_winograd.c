/* Winograd's minimal filtering F(2x2, 3x3) for wide 3x3 convolutions on the host (Lavin and
 * Gray, "Fast Algorithms for Convolutional Neural Networks", 2016). Every 2x2 block of outputs
 * ("tile") is read from a 4x4 patch of the input; in the transformed domain the 3x3 kernel and
 * the patch become 4x4 and the convolution an elementwise product, so a layer's products
 * become 16 GEMMs, one per transformed position xi:
 *
 *   U[xi] [o, c] = (G g G^T)[xi]     per kernel g = w[o, c]          (once per pass)
 *   V[xi] [c, t] = (B^T d B)[xi]     per input patch d of tile t
 *   M[xi] [o, t] = U[xi] V[xi]       16 GEMMs of o x c by c x tiles
 *   y tile       = A^T m A           per output channel and tile, m = M[.][o, t]
 *
 * which is 16 multiply-adds per (o, c, tile) where im2col + GEMM does 36 (9 per output, 4
 * outputs): 2.25 times fewer. The transforms are additions, O(c + o) per tile against the
 * GEMMs' O(c o), so they pay only with wide layers. F(2x2, 3x3) keeps fp32 rounding close to
 * the direct sum (its transforms have coefficients 1 and 1/2); larger tiles would save more
 * products but lose digits.
 *
 * The input gradient of such a layer is a forward pass of dy with the flipped kernel
 * (conv_internal.h), so it runs here too. The weight gradient is the adjoint of the same steps:
 *
 *   dM[xi] [o, t] = (A dY A^T)[xi]   per output-gradient tile dY of tile t
 *   dU[xi] [o, c] = sum over t of dM[xi] V[xi]^T    16 GEMMs of o x tiles by tiles x c
 *   dw[o, c]      = G^T dU G          per kernel
 *
 * Threads: the kernel transform is split over output channels; then every thread takes a
 * contiguous range of the batch's tiles, a chunk at a time in its own V and M, small enough to
 * stay in cache (for the weight gradient, summing into its own dU; the threads' dU are added
 * in thread order). Each output has one writer and each sum a fixed order, so the results do
 * not depend on the thread count.
 *
 * Measured: benchmarks/README.md ("Winograd F(2x2, 3x3) for VGG's layers", and "Winograd for every
 * pass of 3x3 layers from 32 channels"). */
#include <string.h>

#include <cblas.h>

#include "conv_winograd.h"
#include "host_threads.h"

/* Transformed floats (V and M) per thread and chunk: at most 4 MB, within the L3 a core
 * shares, and at most 128 tiles: with 64 channels in and out, chunks of 128 tiles (1 MB, in a
 * core's L2) ran VGG's 32x32 layer in 0.85 of the time that 256 took; wider layers reach the
 * limit on floats first. */
enum { CHUNK_FLOATS = 1 << 20, MAX_CHUNK_TILES = 128, ALIGN = 16 };
/* Where it paid (benchmarks/README.md): 32 or more channels in and out (64 before the
 * transforms were made contiguous), images of at least 4x4. At 2x2 an image is one tile, and
 * transforming 512 x 512 kernels for 32 tiles cost more than the products saved (VGG's last
 * block: 11 ms against 8 through im2col + GEMM). */
enum { MIN_CHANNELS = 32, MIN_SIDE = 4 };

int ut_conv_winograd_suits(const ut_conv_geom *gm, int64_t o) {
  return gm->kh == 3 && gm->kw == 3 && gm->stride == 1 && gm->pad == 1 && !gm->reflect && gm->c >= MIN_CHANNELS &&
         o >= MIN_CHANNELS && gm->oh >= MIN_SIDE && gm->ow >= MIN_SIDE;
}

static size_t align_up(size_t floats) { return (floats + ALIGN - 1) / ALIGN * ALIGN; }

/* Tiles are taken a whole row of tiles at a time: the patches of one row of tiles are four
 * input rows, transformed down their columns as whole rows (contiguous vectors), and their
 * tiles are consecutive columns of V and M. */
static int64_t tiles_x(const ut_conv_geom *gm) { return (gm->ow + 1) / 2; }
static int64_t tiles_y(const ut_conv_geom *gm) { return (gm->oh + 1) / 2; }

/* The threads that get rows of tiles: no more than there are rows. */
static int row_threads(const ut_conv_geom *gm, int threads) {
  const int64_t rows = gm->b * tiles_y(gm);
  return threads < rows ? threads : rows > 0 ? (int)rows : 1;
}

/* Rows of tiles per chunk: within CHUNK_FLOATS, and no more than a thread's share. */
static int64_t chunk_rows(const ut_conv_geom *gm, int64_t o, int threads) {
  int64_t tiles = CHUNK_FLOATS / (16 * (gm->c + o)), share = (gm->b * tiles_y(gm) + threads - 1) / threads;
  if (tiles > MAX_CHUNK_TILES) tiles = MAX_CHUNK_TILES;
  const int64_t rows = tiles / tiles_x(gm) > 1 ? tiles / tiles_x(gm) : 1;
  return rows < share ? rows : share;
}

/* A row of the padded image: input columns -1 .. 2 tx, so every tile's 4 columns are in it. */
static int64_t padded_row(const ut_conv_geom *gm) { return 2 * tiles_x(gm) + 2; }

/* Rows of padded_row floats a thread needs beside V and M: transform_patches' padded plane
 * (2 ty + 2 rows), then room for transform_output_grads' zero row; transform_outputs uses
 * fewer than the 2 ty + 5 rows in all. */
static int64_t buffer_rows(const ut_conv_geom *gm) { return 2 * tiles_y(gm) + 5; }

/* Floats from one position's matrix of V or M (rows x ld) to the next: one cache line more
 * than the matrix, since matrices a power of two bytes apart map to the same cache sets, and
 * the transforms read or write all 16 at once. */
static int64_t stride(int64_t rows, int64_t ld) { return rows * ld + ALIGN; }

static size_t per_thread(const ut_conv_geom *gm, int64_t o, int threads) {
  const int64_t ld = chunk_rows(gm, o, threads) * tiles_x(gm);
  return align_up((size_t)(16 * (stride(gm->c, ld) + stride(o, ld)))) + align_up((size_t)(buffer_rows(gm) * padded_row(gm)));
}

/* Floats of U (or dU) [16, o, c], rounded up: the workspace's first part and each extra
 * thread's dU. */
static size_t u_floats(const ut_conv_geom *gm, int64_t o) { return align_up((size_t)(16 * o * gm->c)); }

/* The workspace: U (or the summed dU) first, then each thread's V, M and buffer, then for a
 * weight gradient the dU of every thread after the first. */
size_t ut_conv_winograd_workspace(const ut_conv_geom *gm, int64_t o, int threads, int weight_gradient) {
  threads = row_threads(gm, threads);
  const size_t u = u_floats(gm, o);
  return u + (size_t)threads * per_thread(gm, o, threads) + (weight_gradient ? (size_t)(threads - 1) * u : 0);
}

typedef struct {
  const ut_conv_geom *gm;
  int64_t o, rows, chunk; /* rows: of tiles in the batch; chunk: rows of tiles per chunk */
  const float *x, *w, *bias, *dy; /* dy: a weight gradient's output gradient */
  float *y, *u, *scratch, *dw;    /* u: U, or a weight gradient's dU */
  int threads;
  int flipped; /* w is the kernel [c, o, 3, 3] of the convolution whose input gradient this is */
} job;

/* U[xi] [o, c] for the output channels [lo, hi): G g G^T with G = [1 0 0; .5 .5 .5; .5 -.5 .5;
 * 0 0 1], rows first. Input channels go KERNEL_BLOCK at a time, their nine taps first turned
 * into rows, so every step below is a vector over input channels with contiguous loads and
 * stores (U's rows run over c): VGG's 512 x 512 layers transform 262144 kernels per pass.
 *
 * An input gradient's kernel g[i, j] is the forward kernel w[j, i] turned by 180 degrees:
 * with J the reversal, G J = P G where P swaps rows 0 and 3, so its transform is
 * P (G w[j, i] G^T) P^T. Its pass therefore transforms w as it is, rows [lo, hi) of w's
 * first axis (c here), into U' [xi] [c, o], and each product reads U'[P xi] transposed
 * (turned_position). Flipping 512 x 512 kernels into a copy first took about 7 ms on one
 * thread, two thirds of the Winograd pass it fed; gathering them flipped in place cost as
 * much (a few floats from every 18 KB). */
enum { KERNEL_BLOCK = 64 };

/* The position of U' that position xi of a turned kernel's transform reads (above). */
static int turned_position(int xi) {
  static const int p[4] = { 3, 1, 2, 0 };
  return p[xi / 4] * 4 + p[xi % 4];
}

VECTOR_CLONES
static int transform_kernels(void *ctx, int64_t lo, int64_t hi) {
  const job *jb = ctx;
  const int64_t c = jb->flipped ? jb->o : jb->gm->c, plane = jb->o * jb->gm->c; /* c: w's second axis */
  float g[9][KERNEL_BLOCK], t[4][3][KERNEL_BLOCK];
  for (int64_t i = lo; i < hi; i++)
    for (int64_t j0 = 0; j0 < c; j0 += KERNEL_BLOCK) {
      const int64_t n = c - j0 < KERNEL_BLOCK ? c - j0 : KERNEL_BLOCK;
      const float *w = jb->w + (i * c + j0) * 9;
      for (int64_t j = 0; j < n; j++)
        for (int k = 0; k < 9; k++) g[k][j] = w[j * 9 + k];
      for (int k = 0; k < 3; k++)
        for (int64_t j = 0; j < n; j++) {
          t[0][k][j] = g[k][j];
          t[1][k][j] = 0.5f * (g[k][j] + g[3 + k][j] + g[6 + k][j]);
          t[2][k][j] = 0.5f * (g[k][j] - g[3 + k][j] + g[6 + k][j]);
          t[3][k][j] = g[6 + k][j];
        }
      float *u = jb->u + i * c + j0;
      for (int r = 0; r < 4; r++) {
        float *u0 = u + (r * 4 + 0) * plane, *u1 = u + (r * 4 + 1) * plane, *u2 = u + (r * 4 + 2) * plane,
              *u3 = u + (r * 4 + 3) * plane;
        for (int64_t j = 0; j < n; j++) {
          u0[j] = t[r][0][j];
          u1[j] = 0.5f * (t[r][0][j] + t[r][1][j] + t[r][2][j]);
          u2[j] = 0.5f * (t[r][0][j] - t[r][1][j] + t[r][2][j]);
          u3[j] = t[r][2][j];
        }
      }
    }
  return 0;
}

/* One row of B^T d B for the tx tiles of a row of tiles: the row combination t = x + s y of
 * two padded rows (B^T's row: s is 1 or -1, so the sum is exact), then along t split into its
 * even and odd columns e and o, the four values of each tile. t is formed in registers where
 * it is used, not stored: reading t[k + 1] back from a row just written in whole vectors
 * straddles two stores, which the processor cannot forward, and that stall cost more than the
 * GEMMs on VGG's 64-channel 32x32 layers. restrict: without it GCC kept such loops scalar. */
static inline void combine_row(float *restrict v0, float *restrict v1, float *restrict v2, float *restrict v3,
                               const float *restrict x, const float *restrict y, float s, int64_t half, int64_t tx) {
  const float *xo = x + half, *yo = y + half;
  for (int64_t k = 0; k < tx; k++) {
    const float e0 = x[k] + s * y[k], e1 = x[k + 1] + s * y[k + 1];
    const float o0 = xo[k] + s * yo[k], o1 = xo[k + 1] + s * yo[k + 1];
    v0[k] = e0 - e1;
    v1[k] = o0 + e1;
    v2[k] = e1 - o0;
    v3[k] = o0 - o1;
  }
}

/* V[xi] [c, ld] for the rows of tiles [row0, row0 + rows): B^T d B with B^T = [1 0 -1 0;
 * 0 1 1 0; 0 -1 1 0; 0 1 0 -1], d a tile's 4x4 patch from input row 2 ty - 1 and column
 * 2 tx - 1, zeros outside the image.
 *
 * The rows of each plane that the chunk reads are first copied once into a zero-padded plane
 * in buf whose rows are split into their even and odd padded columns, E and O: tile k's four
 * columns are then E[k], O[k], E[k + 1], O[k + 1], and every step is a run of contiguous
 * vectors (combine_row). Before, the four rows of every row of tiles were copied afresh and
 * the tiles' overlapping columns read at stride 2. */
VECTOR_CLONES
static void transform_patches(const job *jb, int64_t row0, int64_t rows, float *v, int64_t ld, float *buf) {
  const ut_conv_geom *gm = jb->gm;
  const int64_t c = gm->c, h = gm->h, w = gm->w, tx = tiles_x(gm), ty = tiles_y(gm), wp = padded_row(gm), half = tx + 1;
  const int64_t step = stride(c, ld);
  float *pad = buf;
  /* Entries that stay zero: row -1 and rows from h, column -1 (E[0]) and columns from w. */
  memset(pad, 0, (size_t)((2 * ty + 2) * wp) * sizeof *pad);
  for (int64_t ch = 0; ch < c; ch++)
    for (int64_t g = row0; g < row0 + rows;) {
      const int64_t b = g / ty, first = g % ty, last = (row0 + rows - g < ty - first ? row0 + rows - g : ty - first) + first;
      const float *plane = jb->x + (b * c + ch) * h * w;
      /* image rows 2 first - 1 .. 2 last, into padded rows one below */
      const int64_t y_lo = 2 * first - 1 > 0 ? 2 * first - 1 : 0, y_hi = 2 * last + 1 < h ? 2 * last + 1 : h;
      for (int64_t y = y_lo; y < y_hi; y++) {
        float *e = pad + (y + 1) * wp, *o = e + half;
        const float *src = plane + y * w;
        for (int64_t k = 0; k < w / 2; k++) {
          o[k] = src[2 * k];
          e[k + 1] = src[2 * k + 1];
        }
        if (w % 2) o[w / 2] = src[w - 1];
      }
      for (int64_t tyi = first; tyi < last; tyi++, g++) {
        const float *d0 = pad + 2 * tyi * wp, *d1 = d0 + wp, *d2 = d1 + wp, *d3 = d2 + wp;
        static const float sign[4] = { -1.0f, 1.0f, -1.0f, -1.0f };
        const float *x[4] = { d0, d1, d2, d1 }, *y[4] = { d2, d2, d1, d3 }; /* B^T's rows */
        float *dst = v + ch * ld + (g - row0) * tx;
        for (int i = 0; i < 4; i++)
          combine_row(dst + (i * 4 + 0) * step, dst + (i * 4 + 1) * step, dst + (i * 4 + 2) * step,
                      dst + (i * 4 + 3) * step, x[i], y[i], sign[i], half, tx);
      }
    }
}

/* The outputs of the rows of tiles [row0, row0 + rows) from M[xi] [o, ld]: A^T m A with
 * A^T = [1 1 1 0; 0 1 -1 -1], plus the bias, each output row built whole in buf; a tile past
 * an odd edge keeps its inside part. */
VECTOR_CLONES
static void transform_outputs(const job *jb, int64_t row0, int64_t rows, const float *m, int64_t ld, float *buf) {
  const ut_conv_geom *gm = jb->gm;
  const int64_t o = jb->o, oh = gm->oh, ow = gm->ow, tx = tiles_x(gm), ty = tiles_y(gm), step = stride(o, ld);
  float *a[4], *e[4], *out = buf + 8 * tx;
  for (int j = 0; j < 4; j++) a[j] = buf + j * tx, e[j] = buf + (4 + j) * tx;
  for (int64_t oc = 0; oc < o; oc++) {
    const float bias = jb->bias ? jb->bias[oc] : 0.0f;
    for (int64_t r = 0; r < rows; r++) {
      const int64_t g = row0 + r, b = g / ty, y0 = 2 * (g % ty);
      const float *s = m + oc * ld + r * tx;
      for (int j = 0; j < 4; j++) {
        const float *s0 = s + j * step, *s1 = s + (4 + j) * step, *s2 = s + (8 + j) * step, *s3 = s + (12 + j) * step;
        for (int64_t k = 0; k < tx; k++) {
          a[j][k] = s0[k] + s1[k] + s2[k];
          e[j][k] = s1[k] - s2[k] - s3[k];
        }
      }
      float *plane = jb->y + (b * o + oc) * oh * ow;
      for (int i = 0; i < 2 && y0 + i < oh; i++) {
        float *const *q = i ? e : a;
        for (int64_t k = 0; k < tx; k++) {
          out[2 * k] = q[0][k] + q[1][k] + q[2][k] + bias;
          out[2 * k + 1] = q[1][k] - q[2][k] - q[3][k] + bias;
        }
        memcpy(plane + (y0 + i) * ow, out, (size_t)ow * sizeof *out);
      }
    }
  }
}

/* Share s's V and M (a chunk of ld tiles each) and its buffer, in the scratch after U. */
static void thread_space(const job *jb, int64_t s, int64_t ld, float **v, float **m, float **buf) {
  const int64_t c = jb->gm->c, o = jb->o;
  *v = jb->scratch + (size_t)s * per_thread(jb->gm, o, jb->threads);
  *m = *v + 16 * stride(c, ld);
  *buf = *v + align_up((size_t)(16 * (stride(c, ld) + stride(o, ld))));
}

/* Share s of the threads: its rows of tiles, a chunk at a time. */
static int run_tiles(void *ctx, int64_t lo, int64_t hi) {
  const job *jb = ctx;
  const int64_t c = jb->gm->c, o = jb->o, tx = tiles_x(jb->gm), ld = jb->chunk * tx;
  for (int64_t s = lo; s < hi; s++) {
    float *v, *m, *buf;
    thread_space(jb, s, ld, &v, &m, &buf);
    const int64_t first = jb->rows * s / jb->threads, last = jb->rows * (s + 1) / jb->threads;
    for (int64_t r0 = first; r0 < last; r0 += jb->chunk) {
      const int64_t rows = last - r0 < jb->chunk ? last - r0 : jb->chunk, n = rows * tx;
      transform_patches(jb, r0, rows, v, ld, buf);
      for (int xi = 0; xi < 16; xi++) {
        const float *u = jb->u + (jb->flipped ? turned_position(xi) : xi) * o * c;
        cblas_sgemm(CblasRowMajor, jb->flipped ? CblasTrans : CblasNoTrans, CblasNoTrans, (int)o, (int)n, (int)c, 1.0f, u,
                    jb->flipped ? (int)o : (int)c, v + xi * stride(c, ld), (int)ld, 0.0f, m + xi * stride(o, ld), (int)ld);
      }
      transform_outputs(jb, r0, rows, m, ld, buf);
    }
  }
  return 0;
}

/* ---- the weight gradient -------------------------------------------------------------------- */

/* The 16 values of A dY A^T, A^T = [1 1 1 0; 0 1 -1 -1], for n tiles of a row of tiles whose
 * output-gradient rows are y0 and y1 (whole tiles: columns 2k and 2k + 1). Down the two rows
 * R = (Y0, Y0 + Y1, Y0 - Y1, -Y1); along each, (P, Q) -> (P, P + Q, P - Q, -Q). */
static inline void output_grad_tiles(float *restrict dst, int64_t step, const float *restrict y0, const float *restrict y1,
                                     int64_t n) {
  for (int64_t k = 0; k < n; k++) {
    const float p0 = y0[2 * k], q0 = y0[2 * k + 1], p1 = y1[2 * k], q1 = y1[2 * k + 1];
    const float p[4] = { p0, p0 + p1, p0 - p1, -p1 }, q[4] = { q0, q0 + q1, q0 - q1, -q1 };
    for (int i = 0; i < 4; i++) {
      dst[(i * 4 + 0) * step + k] = p[i];
      dst[(i * 4 + 1) * step + k] = p[i] + q[i];
      dst[(i * 4 + 2) * step + k] = p[i] - q[i];
      dst[(i * 4 + 3) * step + k] = -q[i];
    }
  }
}

/* dM[xi] [o, ld] for the rows of tiles [row0, row0 + rows): the adjoint of transform_outputs,
 * from dy's 2x2 blocks, zeros past an odd edge (a zero row in buf, and the last column of an
 * odd width on its own). */
VECTOR_CLONES
static void transform_output_grads(const job *jb, int64_t row0, int64_t rows, float *m, int64_t ld, float *buf) {
  const ut_conv_geom *gm = jb->gm;
  const int64_t o = jb->o, oh = gm->oh, ow = gm->ow, tx = tiles_x(gm), ty = tiles_y(gm), step = stride(o, ld);
  float *zero = buf + (2 * ty + 2) * padded_row(gm); /* past transform_patches' padded plane */
  memset(zero, 0, (size_t)(ow + 1) * sizeof *zero);
  for (int64_t oc = 0; oc < o; oc++)
    for (int64_t r = 0; r < rows; r++) {
      const int64_t g = row0 + r, b = g / ty, y = 2 * (g % ty);
      const float *y0 = jb->dy + ((b * o + oc) * oh + y) * ow, *y1 = y + 1 < oh ? y0 + ow : zero;
      float *dst = m + oc * ld + r * tx;
      output_grad_tiles(dst, step, y0, y1, ow / 2);
      if (ow % 2) { /* the last tile's second column is outside */
        const float p0 = y0[ow - 1], p1 = y1[ow - 1], p[4] = { p0, p0 + p1, p0 - p1, -p1 };
        for (int i = 0; i < 4; i++)
          for (int j = 0; j < 4; j++) dst[(i * 4 + j) * step + tx - 1] = j == 3 ? 0.0f : p[i];
      }
    }
}

/* dw[o, c] = G^T dU G for the output channels [lo, hi), G^T = [1 .5 .5 0; 0 .5 -.5 0;
 * 0 .5 .5 1]: the adjoint of transform_kernels, input channels KERNEL_BLOCK at a time. */
VECTOR_CLONES
static int transform_kernel_grads(void *ctx, int64_t lo, int64_t hi) {
  const job *jb = ctx;
  const int64_t c = jb->gm->c, plane = jb->o * c;
  float t[3][4][KERNEL_BLOCK], g[9][KERNEL_BLOCK];
  for (int64_t i = lo; i < hi; i++)
    for (int64_t j0 = 0; j0 < c; j0 += KERNEL_BLOCK) {
      const int64_t n = c - j0 < KERNEL_BLOCK ? c - j0 : KERNEL_BLOCK;
      const float *u = jb->u + i * c + j0;
      for (int s = 0; s < 4; s++) {
        const float *u0 = u + s * plane, *u1 = u + (4 + s) * plane, *u2 = u + (8 + s) * plane, *u3 = u + (12 + s) * plane;
        for (int64_t j = 0; j < n; j++) {
          t[0][s][j] = u0[j] + 0.5f * (u1[j] + u2[j]);
          t[1][s][j] = 0.5f * (u1[j] - u2[j]);
          t[2][s][j] = 0.5f * (u1[j] + u2[j]) + u3[j];
        }
      }
      for (int r = 0; r < 3; r++)
        for (int64_t j = 0; j < n; j++) {
          g[r * 3 + 0][j] = t[r][0][j] + 0.5f * (t[r][1][j] + t[r][2][j]);
          g[r * 3 + 1][j] = 0.5f * (t[r][1][j] - t[r][2][j]);
          g[r * 3 + 2][j] = 0.5f * (t[r][1][j] + t[r][2][j]) + t[r][3][j];
        }
      float *w = jb->dw + (i * c + j0) * 9;
      for (int64_t j = 0; j < n; j++)
        for (int k = 0; k < 9; k++) w[j * 9 + k] = g[k][j];
    }
  return 0;
}

/* A thread's dU: the first thread's is the workspace's U, the others' follow the threads'
 * scratch (ut_conv_winograd_workspace). */
static float *thread_grads(const job *jb, int64_t s) {
  const size_t others = (size_t)jb->threads * per_thread(jb->gm, jb->o, jb->threads); /* after every thread's scratch */
  return s == 0 ? jb->u : jb->scratch + others + (size_t)(s - 1) * u_floats(jb->gm, jb->o);
}

/* Share s of the threads: its rows of tiles, a chunk at a time, summed into its dU. */
static int run_tiles_grad(void *ctx, int64_t lo, int64_t hi) {
  const job *jb = ctx;
  const int64_t c = jb->gm->c, o = jb->o, tx = tiles_x(jb->gm), ld = jb->chunk * tx;
  for (int64_t s = lo; s < hi; s++) {
    float *v, *m, *buf, *du = thread_grads(jb, s);
    thread_space(jb, s, ld, &v, &m, &buf);
    const int64_t first = jb->rows * s / jb->threads, last = jb->rows * (s + 1) / jb->threads;
    for (int64_t r0 = first; r0 < last; r0 += jb->chunk) {
      const int64_t rows = last - r0 < jb->chunk ? last - r0 : jb->chunk, n = rows * tx;
      transform_patches(jb, r0, rows, v, ld, buf);
      transform_output_grads(jb, r0, rows, m, ld, buf);
      for (int xi = 0; xi < 16; xi++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)o, (int)c, (int)n, 1.0f, m + xi * stride(o, ld), (int)ld,
                    v + xi * stride(c, ld), (int)ld, r0 > first ? 1.0f : 0.0f, du + xi * o * c, (int)c);
    }
  }
  return 0;
}

/* The threads' dU added into the first's, entries [lo, hi) of them, in thread order. */
static int sum_thread_grads(void *ctx, int64_t lo, int64_t hi) {
  const job *jb = ctx;
  for (int s = 1; s < jb->threads; s++) {
    const float *part = thread_grads(jb, s);
    for (int64_t i = lo; i < hi; i++) jb->u[i] += part[i];
  }
  return 0;
}

void ut_conv_winograd_grad_weight(const ut_conv_geom *gm, int64_t o, const float *dy, const float *x, float *dw,
                                  float *workspace, int threads) {
  threads = row_threads(gm, threads);
  job jb = { .gm = gm, .o = o, .rows = gm->b * tiles_y(gm), .chunk = chunk_rows(gm, o, threads), .x = x, .dy = dy,
             .dw = dw, .u = workspace, .scratch = workspace + u_floats(gm, o), .threads = threads };
  ut_host_parallel(threads, threads, run_tiles_grad, &jb);
  ut_host_parallel(threads, 16 * o * gm->c, sum_thread_grads, &jb);
  ut_host_parallel(threads, o, transform_kernel_grads, &jb);
}

void ut_conv_winograd_forward(const ut_conv_geom *gm, int64_t o, const float *x, const float *w, int flipped, const float *bias,
                              float *y, float *workspace, int threads) {
  threads = row_threads(gm, threads);
  job jb = { .gm = gm, .o = o, .rows = gm->b * tiles_y(gm), .chunk = chunk_rows(gm, o, threads), .x = x, .w = w,
             .bias = bias, .y = y, .u = workspace, .scratch = workspace + u_floats(gm, o),
             .threads = threads, .flipped = flipped };
  ut_host_parallel(threads, flipped ? gm->c : o, transform_kernels, &jb); /* w's first axis */
  ut_host_parallel(threads, threads, run_tiles, &jb);
}
