/* Direct convolution on the host for stride-1 layers of few channels (conv_host.c decides
 * when, by ut_conv_direct_suits; 3x3 layers of 32 channels go to Winograd first): LORD's
 * generator's 5x5 layer and encoder stem at 32x32, the RGB heads.
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
 * slower direct) and the flipped input gradient of its 3 -> 64 first layer (2.5 times).
 *
 * The loops come in 8-float vectors and, for x86-64-v4 (AVX-512) processors, 16-float ones
 * (conv_direct_loops.h), the widest the processor runs chosen at run time. On an Emerald
 * Rapids Xeon, one thread, best of three (benchmarks/README.md, "Direct loops in AVX-512
 * vectors"): 16 floats took 0.43-0.67 of 8's time for the forward pass and the flipped input
 * gradient at LORD's 32x32 layers, 0.75-0.80 at 16x16, the same at 8x8 and below (the GEMM's
 * layers); the weight gradient 0.7-0.9 once its lanes were summed after the last image instead
 * of after each. */
#include <stdlib.h>
#include <string.h>

#include "conv_direct.h"
#include "error.h"
#include "host_threads.h"

/* Where the loops beat im2col + GEMM (measured: see the top of the file): stride 1, at most
 * NARROW channels on both sides, and either at most FEW_OUTPUTS outputs or output rows of at
 * least WIDE_ROW columns. Narrower images keep the GEMM: an image's column matrix then fits
 * in a core's cache, and the GEMM was as fast or faster for the weight gradient. */
#define FEW_OUTPUTS 4
#define NARROW 32
#define WIDE_ROW 16

typedef struct {
  const ut_conv_geom *gm;
  int64_t o;
  ut_conv_pass pass;
  const float *in0, *in1, *bias;
  float *out;
  int lanes;      /* 8 or 16: which width of the loops runs */
  int64_t lo, hi; /* this share's images (forward) or input channels (grad weight) */
  float *pad;     /* this share's padded planes: C of hp * wp floats (forward), or 1 */
  float *sums;    /* grad weight: this share's vector sums, o x (hi - lo) x kh x kw of `lanes` floats */
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

/* The loops at two widths (conv_direct_loops.h). 8 floats: one AVX register in the x86-64-v3
 * clone, two SSE registers in the baseline one; the blocks fit AVX2's 16 registers with room
 * for their operands (6 x 2 forward sums, 4 x 3 weight-gradient sums). */
#define LOOPS(name) name##_8
#define LOOPS_TARGET VECTOR_CLONES
#define LANES 8
#define FORWARD_OUTS 6
#define ROW_VECS 2
#define OUT_BLOCK 4
#define TAP_BLOCK 3
#include "conv_direct_loops.h"
#undef LOOPS
#undef LOOPS_TARGET
#undef LANES
#undef FORWARD_OUTS
#undef OUT_BLOCK

#if UT_CONV_WIDE_LOOPS
/* 16 floats, one AVX-512 register, for processors that have x86-64-v4: an output row of 32
 * columns is two vectors, and the 32 registers hold 8 x 2 forward sums or 8 x 3 weight-gradient
 * sums with their operands. */
#define LOOPS(name) name##_16
#define LOOPS_TARGET __attribute__((target("arch=x86-64-v4")))
#define LANES 16
#define FORWARD_OUTS 8
#define OUT_BLOCK 8
#include "conv_direct_loops.h"
#undef LOOPS
#undef LOOPS_TARGET
#undef LANES
#undef FORWARD_OUTS
#undef OUT_BLOCK
#endif

int ut_conv_direct_widest_lanes(void) {
#if UT_CONV_WIDE_LOOPS
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) return 16;
#endif
  return 8;
}

/* One share of the pass: its own padded planes, then the loops over its items. */
static int run_share(void *ctx, int64_t lo, int64_t hi) {
  job j = *(const job *)ctx;
  j.lo = lo, j.hi = hi;
  size_t planes = j.pass == UT_CONV_FORWARD ? (size_t)j.gm->c : 1;
  j.pad = malloc(planes * (size_t)(padded_h(j.gm) * padded_w(j.gm)) * sizeof(float));
  const size_t sums = j.pass == UT_CONV_FORWARD ? 0 : (size_t)(j.o * (hi - lo) * j.gm->kh * j.gm->kw * j.lanes);
  j.sums = sums ? calloc(sums, sizeof(float)) : NULL;
  if (!j.pad || (sums && !j.sums)) {
    free(j.pad);
    free(j.sums);
    return 1;
  }
#if UT_CONV_WIDE_LOOPS
  if (j.lanes == 16) {
    if (j.pass == UT_CONV_FORWARD) forward_images_16(&j);
    else grad_weight_channels_16(&j);
  } else
#endif
  if (j.pass == UT_CONV_FORWARD) forward_images_8(&j);
  else grad_weight_channels_8(&j);
  free(j.pad);
  free(j.sums);
  return 0;
}

int ut_conv_direct_suits(const ut_conv_geom *gm, int64_t o, ut_conv_pass pass) {
  if (gm->stride != 1 || pass == UT_CONV_GRAD_INPUT) return 0;
  return o <= NARROW && gm->c <= NARROW && (o <= FEW_OUTPUTS || gm->ow >= WIDE_ROW);
}

ut_status ut_conv_direct_run(const ut_conv_geom *gm, int64_t o, ut_conv_pass pass, const float *in0, const float *in1,
                             const float *bias, float *out, int threads, int lanes) {
  job all = { .gm = gm, .o = o, .pass = pass, .in0 = in0, .in1 = in1, .bias = bias, .out = out, .lanes = lanes };
  int64_t items = pass == UT_CONV_GRAD_WEIGHT ? gm->c : gm->b;
  if (ut_host_parallel(threads, items, run_share, &all))
    return ut_fail(UT_ERR_HOST_MEMORY, "direct convolution: out of host memory for a padded plane or the weight gradient's sums");
  return UT_OK;
}
