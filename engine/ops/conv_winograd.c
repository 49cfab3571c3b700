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
 * (conv_internal.h), so it runs here too. The weight gradient stays on im2col + GEMM.
 *
 * Threads: the kernel transform is split over output channels; then every thread takes a
 * contiguous range of the batch's tiles, a chunk at a time in its own V and M, small enough to
 * stay in cache. Each output has one writer and each sum a fixed order, so the results do not
 * depend on the thread count.
 *
 * Measured: benchmarks/README.md ("Winograd F(2x2, 3x3) for VGG's layers"). */
#include <string.h>

#include <cblas.h>

#include "conv_winograd.h"
#include "host_threads.h"

/* Transformed floats (V and M) per thread and chunk: 4 MB, within the L3 a core shares. */
enum { CHUNK_FLOATS = 1 << 20, MAX_CHUNK_TILES = 256, ALIGN = 16 };
/* Where it paid (benchmarks/README.md): 64 or more channels in and out, images of at least 4x4.
 * At 2x2 an image is one tile, and transforming 512 x 512 kernels for 32 tiles cost more than
 * the products saved (VGG's last block: 11 ms against 8 through im2col + GEMM). */
enum { MIN_CHANNELS = 64, MIN_SIDE = 4 };

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

static size_t per_thread(const ut_conv_geom *gm, int64_t o, int threads) {
  const int64_t ld = chunk_rows(gm, o, threads) * tiles_x(gm);
  return align_up((size_t)(16 * (gm->c + o) * ld)) + align_up((size_t)(8 * padded_row(gm)));
}

size_t ut_conv_winograd_workspace(const ut_conv_geom *gm, int64_t o, int threads) {
  threads = row_threads(gm, threads);
  return align_up((size_t)(16 * o * gm->c)) + (size_t)threads * per_thread(gm, o, threads);
}

typedef struct {
  const ut_conv_geom *gm;
  int64_t o, rows, chunk; /* rows: of tiles in the batch; chunk: rows of tiles per chunk */
  const float *x, *w, *bias;
  float *y, *u, *scratch;
  int threads;
} job;

/* U[xi] [o, c] for the output channels [lo, hi): G g G^T with G = [1 0 0; .5 .5 .5; .5 -.5 .5;
 * 0 0 1], rows first. Input channels go KERNEL_BLOCK at a time, their nine taps first turned
 * into rows, so every step below is a vector over input channels with contiguous loads and
 * stores (U's rows run over c): VGG's 512 x 512 layers transform 262144 kernels per pass. */
enum { KERNEL_BLOCK = 64 };

VECTOR_CLONES
static int transform_kernels(void *ctx, int64_t lo, int64_t hi) {
  const job *jb = ctx;
  const int64_t c = jb->gm->c, plane = jb->o * c;
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

/* V[xi] [c, ld] for the rows of tiles [row0, row0 + rows): B^T d B with B^T = [1 0 -1 0;
 * 0 1 1 0; 0 -1 1 0; 0 1 0 -1], d a tile's 4x4 patch from input row 2 ty - 1 and column
 * 2 tx - 1, zeros outside the image. The row combination (B^T d) is done on the four padded
 * rows whole; then tile k's columns are entries 2k .. 2k + 3 of the combined rows. */
VECTOR_CLONES
static void transform_patches(const job *jb, int64_t row0, int64_t rows, float *v, int64_t ld, float *buf) {
  const ut_conv_geom *gm = jb->gm;
  const int64_t c = gm->c, h = gm->h, w = gm->w, tx = tiles_x(gm), ty = tiles_y(gm), wp = padded_row(gm);
  const int64_t step = c * ld;
  float *d[4], *t[4];
  for (int i = 0; i < 4; i++) d[i] = buf + i * wp, t[i] = buf + (4 + i) * wp;
  for (int64_t ch = 0; ch < c; ch++)
    for (int64_t r = 0; r < rows; r++) {
      const int64_t g = row0 + r, b = g / ty, y0 = 2 * (g % ty) - 1;
      const float *plane = jb->x + (b * c + ch) * h * w;
      for (int i = 0; i < 4; i++) {
        const int64_t yy = y0 + i, n = w < wp - 1 ? w : wp - 1;
        memset(d[i], 0, (size_t)wp * sizeof *d[i]);
        if (yy >= 0 && yy < h) memcpy(d[i] + 1, plane + yy * w, (size_t)n * sizeof *d[i]);
      }
      for (int64_t j = 0; j < wp; j++) {
        t[0][j] = d[0][j] - d[2][j];
        t[1][j] = d[1][j] + d[2][j];
        t[2][j] = d[2][j] - d[1][j];
        t[3][j] = d[1][j] - d[3][j];
      }
      float *dst = v + ch * ld + r * tx;
      for (int i = 0; i < 4; i++) {
        float *v0 = dst + (i * 4 + 0) * step, *v1 = dst + (i * 4 + 1) * step, *v2 = dst + (i * 4 + 2) * step,
              *v3 = dst + (i * 4 + 3) * step;
        const float *ti = t[i];
        for (int64_t k = 0; k < tx; k++) {
          v0[k] = ti[2 * k] - ti[2 * k + 2];
          v1[k] = ti[2 * k + 1] + ti[2 * k + 2];
          v2[k] = ti[2 * k + 2] - ti[2 * k + 1];
          v3[k] = ti[2 * k + 1] - ti[2 * k + 3];
        }
      }
    }
}

/* The outputs of the rows of tiles [row0, row0 + rows) from M[xi] [o, ld]: A^T m A with
 * A^T = [1 1 1 0; 0 1 -1 -1], plus the bias, each output row built whole in buf; a tile past
 * an odd edge keeps its inside part. */
VECTOR_CLONES
static void transform_outputs(const job *jb, int64_t row0, int64_t rows, const float *m, int64_t ld, float *buf) {
  const ut_conv_geom *gm = jb->gm;
  const int64_t o = jb->o, oh = gm->oh, ow = gm->ow, tx = tiles_x(gm), ty = tiles_y(gm), step = o * ld;
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

/* Share s of the threads: its rows of tiles, a chunk at a time. */
static int run_tiles(void *ctx, int64_t lo, int64_t hi) {
  const job *jb = ctx;
  const int64_t c = jb->gm->c, o = jb->o, tx = tiles_x(jb->gm), ld = jb->chunk * tx;
  for (int64_t s = lo; s < hi; s++) {
    float *v = jb->scratch + (size_t)s * per_thread(jb->gm, o, jb->threads), *m = v + 16 * c * ld;
    float *buf = v + align_up((size_t)(16 * (c + o) * ld));
    const int64_t first = jb->rows * s / jb->threads, last = jb->rows * (s + 1) / jb->threads;
    for (int64_t r0 = first; r0 < last; r0 += jb->chunk) {
      const int64_t rows = last - r0 < jb->chunk ? last - r0 : jb->chunk, n = rows * tx;
      transform_patches(jb, r0, rows, v, ld, buf);
      for (int xi = 0; xi < 16; xi++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)o, (int)n, (int)c, 1.0f, jb->u + xi * o * c, (int)c,
                    v + xi * c * ld, (int)ld, 0.0f, m + xi * o * ld, (int)ld);
      transform_outputs(jb, r0, rows, m, ld, buf);
    }
  }
  return 0;
}

void ut_conv_winograd_forward(const ut_conv_geom *gm, int64_t o, const float *x, const float *w, const float *bias, float *y,
                              float *workspace, int threads) {
  threads = row_threads(gm, threads);
  job jb = { .gm = gm, .o = o, .rows = gm->b * tiles_y(gm), .chunk = chunk_rows(gm, o, threads), .x = x, .w = w,
             .bias = bias, .y = y, .u = workspace, .scratch = workspace + align_up((size_t)(16 * o * gm->c)),
             .threads = threads };
  ut_host_parallel(threads, o, transform_kernels, &jb);
  ut_host_parallel(threads, threads, run_tiles, &jb);
}
