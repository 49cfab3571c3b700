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
#include <cblas.h>

#include "conv_winograd.h"
#include "host_threads.h"

/* Transformed floats (V and M) per thread and chunk: 4 MB, within the L3 a core shares. */
enum { CHUNK_FLOATS = 1 << 20, MAX_CHUNK_TILES = 256, MIN_CHUNK_TILES = 8, MIN_CHANNELS = 64, ALIGN = 16 };

int ut_conv_winograd_suits(const ut_conv_geom *gm, int64_t o) {
  return gm->kh == 3 && gm->kw == 3 && gm->stride == 1 && gm->pad == 1 && !gm->reflect && gm->c >= MIN_CHANNELS &&
         o >= MIN_CHANNELS;
}

static size_t align_up(size_t floats) { return (floats + ALIGN - 1) / ALIGN * ALIGN; }

static int64_t chunk_tiles(const ut_conv_geom *gm, int64_t o) {
  int64_t t = CHUNK_FLOATS / (16 * (gm->c + o));
  return t > MAX_CHUNK_TILES ? MAX_CHUNK_TILES : t < MIN_CHUNK_TILES ? MIN_CHUNK_TILES : t;
}

static size_t per_thread(const ut_conv_geom *gm, int64_t o) {
  return align_up((size_t)(16 * (gm->c + o) * chunk_tiles(gm, o)));
}

size_t ut_conv_winograd_workspace(const ut_conv_geom *gm, int64_t o, int threads) {
  return align_up((size_t)(16 * o * gm->c)) + (size_t)threads * per_thread(gm, o);
}

typedef struct {
  const ut_conv_geom *gm;
  int64_t o, tiles_x, tiles, chunk;
  const float *x, *w, *bias;
  float *y, *u, *scratch;
  int threads;
} job;

/* U[xi] [o, c] for the output channels [lo, hi): G g G^T with G = [1 0 0; .5 .5 .5; .5 -.5 .5;
 * 0 0 1], rows first. */
static int transform_kernels(void *ctx, int64_t lo, int64_t hi) {
  const job *jb = ctx;
  const int64_t c = jb->gm->c, plane = jb->o * c;
  for (int64_t i = lo; i < hi; i++)
    for (int64_t j = 0; j < c; j++) {
      const float *g = jb->w + (i * c + j) * 9;
      float t[4][3];
      for (int k = 0; k < 3; k++) {
        t[0][k] = g[k];
        t[1][k] = 0.5f * (g[k] + g[3 + k] + g[6 + k]);
        t[2][k] = 0.5f * (g[k] - g[3 + k] + g[6 + k]);
        t[3][k] = g[6 + k];
      }
      float *u = jb->u + i * c + j;
      for (int r = 0; r < 4; r++) {
        u[(r * 4 + 0) * plane] = t[r][0];
        u[(r * 4 + 1) * plane] = 0.5f * (t[r][0] + t[r][1] + t[r][2]);
        u[(r * 4 + 2) * plane] = 0.5f * (t[r][0] - t[r][1] + t[r][2]);
        u[(r * 4 + 3) * plane] = t[r][2];
      }
    }
  return 0;
}

/* V[xi] [c, n] (row length ld) for the tiles [t0, t0 + n): B^T d B with B^T = [1 0 -1 0;
 * 0 1 1 0; 0 -1 1 0; 0 1 0 -1], d the tile's 4x4 patch from row 2 ty - 1 and column 2 tx - 1,
 * zeros outside the image. */
static void transform_patches(const job *jb, int64_t t0, int64_t n, float *v, int64_t ld) {
  const ut_conv_geom *gm = jb->gm;
  const int64_t c = gm->c, h = gm->h, w = gm->w, per_image = jb->tiles / gm->b;
  for (int64_t k = 0; k < n; k++) {
    const int64_t tile = t0 + k, b = tile / per_image, r = tile % per_image;
    const int64_t y0 = 2 * (r / jb->tiles_x) - 1, x0 = 2 * (r % jb->tiles_x) - 1;
    const int inside = y0 >= 0 && x0 >= 0 && y0 + 4 <= h && x0 + 4 <= w;
    for (int64_t ch = 0; ch < c; ch++) {
      const float *plane = jb->x + (b * c + ch) * h * w;
      float d[4][4];
      if (inside) {
        for (int i = 0; i < 4; i++)
          for (int j = 0; j < 4; j++) d[i][j] = plane[(y0 + i) * w + x0 + j];
      } else {
        for (int i = 0; i < 4; i++)
          for (int j = 0; j < 4; j++) {
            const int64_t yy = y0 + i, xx = x0 + j;
            d[i][j] = yy >= 0 && yy < h && xx >= 0 && xx < w ? plane[yy * w + xx] : 0.0f;
          }
      }
      float t[4][4];
      for (int j = 0; j < 4; j++) {
        t[0][j] = d[0][j] - d[2][j];
        t[1][j] = d[1][j] + d[2][j];
        t[2][j] = d[2][j] - d[1][j];
        t[3][j] = d[1][j] - d[3][j];
      }
      float *dst = v + ch * ld + k;
      const int64_t step = c * ld;
      for (int i = 0; i < 4; i++) {
        dst[(i * 4 + 0) * step] = t[i][0] - t[i][2];
        dst[(i * 4 + 1) * step] = t[i][1] + t[i][2];
        dst[(i * 4 + 2) * step] = t[i][2] - t[i][1];
        dst[(i * 4 + 3) * step] = t[i][1] - t[i][3];
      }
    }
  }
}

/* The outputs of tiles [t0, t0 + n) from M[xi] [o, n] (row length ld): A^T m A with
 * A^T = [1 1 1 0; 0 1 -1 -1], plus the bias; a tile past an odd edge keeps its inside part. */
static void transform_outputs(const job *jb, int64_t t0, int64_t n, const float *m, int64_t ld) {
  const ut_conv_geom *gm = jb->gm;
  const int64_t o = jb->o, oh = gm->oh, ow = gm->ow, per_image = jb->tiles / gm->b, step = o * ld;
  for (int64_t k = 0; k < n; k++) {
    const int64_t tile = t0 + k, b = tile / per_image, r = tile % per_image;
    const int64_t y0 = 2 * (r / jb->tiles_x), x0 = 2 * (r % jb->tiles_x);
    for (int64_t oc = 0; oc < o; oc++) {
      const float *src = m + oc * ld + k;
      float s[16];
      for (int xi = 0; xi < 16; xi++) s[xi] = src[xi * step];
      float t[2][4];
      for (int j = 0; j < 4; j++) {
        t[0][j] = s[j] + s[4 + j] + s[8 + j];
        t[1][j] = s[4 + j] - s[8 + j] - s[12 + j];
      }
      const float bias = jb->bias ? jb->bias[oc] : 0.0f;
      float *plane = jb->y + (b * o + oc) * oh * ow;
      for (int i = 0; i < 2 && y0 + i < oh; i++) {
        plane[(y0 + i) * ow + x0] = t[i][0] + t[i][1] + t[i][2] + bias;
        if (x0 + 1 < ow) plane[(y0 + i) * ow + x0 + 1] = t[i][1] - t[i][2] - t[i][3] + bias;
      }
    }
  }
}

/* Share s of the threads: its tiles, a chunk at a time. */
static int run_tiles(void *ctx, int64_t lo, int64_t hi) {
  const job *jb = ctx;
  const int64_t c = jb->gm->c, o = jb->o, T = jb->chunk;
  for (int64_t s = lo; s < hi; s++) {
    float *v = jb->scratch + (size_t)s * per_thread(jb->gm, o), *m = v + 16 * c * T;
    const int64_t first = jb->tiles * s / jb->threads, last = jb->tiles * (s + 1) / jb->threads;
    for (int64_t t0 = first; t0 < last; t0 += T) {
      const int64_t n = last - t0 < T ? last - t0 : T;
      transform_patches(jb, t0, n, v, T);
      for (int xi = 0; xi < 16; xi++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)o, (int)n, (int)c, 1.0f, jb->u + xi * o * c, (int)c,
                    v + xi * c * T, (int)T, 0.0f, m + xi * o * T, (int)T);
      transform_outputs(jb, t0, n, m, T);
    }
  }
  return 0;
}

void ut_conv_winograd_forward(const ut_conv_geom *gm, int64_t o, const float *x, const float *w, const float *bias, float *y,
                              float *workspace, int threads) {
  const int64_t tiles_x = (gm->ow + 1) / 2, tiles = gm->b * tiles_x * ((gm->oh + 1) / 2);
  if (threads > tiles) threads = tiles > 0 ? (int)tiles : 1;
  job jb = { .gm = gm, .o = o, .tiles_x = tiles_x, .tiles = tiles, .chunk = chunk_tiles(gm, o), .x = x, .w = w,
             .bias = bias, .y = y, .u = workspace, .scratch = workspace + align_up((size_t)(16 * o * gm->c)),
             .threads = threads };
  ut_host_parallel(threads, o, transform_kernels, &jb);
  ut_host_parallel(threads, threads, run_tiles, &jb);
}
