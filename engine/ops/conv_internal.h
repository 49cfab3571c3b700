/* Convolution inside the engine (conv.c defines the ops):
 *
 *   conv2d              (x, w, bias?)  -> y    the forward pass
 *   conv2d_grad_input   (dy, w, bias?) -> dx   also the transposed convolution
 *   conv2d_grad_weight  (dy, x)        -> dw
 *
 * Each works through the batch in chunks, with the column matrix of one chunk in a workspace
 * that lives only while the node runs, so no whole-batch column matrix is ever kept; the
 * weight gradient recomputes its columns from x. The three are closed under differentiation
 * (each one's gradient is made of the three), so they differentiate to any order.
 *
 * Their launches come in two forms: OpenCL kernels and CLBlast GEMMs per chunk
 * (conv_launch.c, any device), and one host function per node with OpenBLAS on CPU devices
 * whose memory is host memory (conv_host.c). conv_reference.c keeps the engine's first
 * convolution, a composite of small ops, as the reference for tests. */
#ifndef UT_CONV_INTERNAL_H
#define UT_CONV_INTERNAL_H

#include "graph_internal.h"
#include "plan_internal.h"

/* The host loops (conv_direct.c, conv_winograd.c) are plain C that the compiler vectorises;
 * built for the x86-64 baseline they get 4-float SSE2 vectors. On x86-64 a second copy for
 * x86-64-v3 (AVX2 and FMA) of each function marked VECTOR_CLONES is chosen at load time where
 * the processor has them (GCC's function multiversioning). Not "arch=haswell": GCC picks such
 * a clone by processor model, so an AMD processor with the same features gets the baseline
 * copy; an x86-64-v3 clone is picked by the features themselves. */
/* UT_CONV_SANITIZED: built with AddressSanitizer (GCC says so with __SANITIZE_ADDRESS__, clang
 * with __has_feature). Such builds compile the host loops' general code only: sanitizers make
 * their inlined, specialised blocks very slow to compile (conv_direct.c). */
#if defined(__SANITIZE_ADDRESS__)
#define UT_CONV_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UT_CONV_SANITIZED 1
#endif
#endif
#ifndef UT_CONV_SANITIZED
#define UT_CONV_SANITIZED 0
#endif

/* Sanitized builds keep the baseline copy only: the same source, and half of the time GCC
 * spends compiling conv_direct.c with ASan (about a minute with both copies). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !UT_CONV_SANITIZED
#define VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
/* The direct loops also come in 16-float vectors for x86-64-v4 (AVX-512) processors; they are
 * chosen at run time (conv_direct.c). */
#define UT_CONV_WIDE_LOOPS 1
#else
#define VECTOR_CLONES
#define UT_CONV_WIDE_LOOPS 0
#endif

/* One convolution's geometry, seen from the image side: the image [b, c, h, w] that the
 * forward pass reads and the input gradient writes, the kernel, stride and padding, and the
 * output size (oh, ow) that ut_conv_geom_check fills in. */
typedef struct {
  int64_t b, c, h, w;   /* the image batch */
  int64_t kh, kw;       /* kernel */
  int64_t stride, pad;
  int reflect;
  int64_t oh, ow;       /* output size */
} ut_conv_geom;

/* The image coordinate that a shifted padded coordinate q (q = o * stride + k - pad) reads:
 * q itself inside the image, else -1 for a zero pad or the reflection (nn.ReflectionPad2d,
 * pad < size). cl/conv.cl's conv_src is the kernels' copy. */
static inline int ut_conv_source(int64_t q, int64_t size, int reflect) {
  if (q >= 0 && q < size) return (int)q;
  if (!reflect) return -1;
  return (int)(q < 0 ? -q : 2 * (size - 1) - q);
}

/* Fills in oh and ow and checks that the geometry makes sense; on failure sets the last error
 * (naming `op`, the image and the kernel) and returns its status. */
ut_status ut_conv_geom_check(const char *op, ut_conv_geom *gm);

/* The three ops (geometry gm; o output channels from the tensors). */
ut_tensor *ut_conv_forward_node(ut_graph *g, ut_tensor *x, ut_tensor *w, ut_tensor *bias, const ut_conv_geom *gm);
ut_tensor *ut_conv_grad_input_node(ut_graph *g, ut_tensor *dy, ut_tensor *w, ut_tensor *bias, const ut_conv_geom *gm);
ut_tensor *ut_conv_grad_weight_node(ut_graph *g, ut_tensor *dy, ut_tensor *x, const ut_conv_geom *gm);

/* Which pass a launcher emits. */
typedef enum { UT_CONV_FORWARD, UT_CONV_GRAD_INPUT, UT_CONV_GRAD_WEIGHT } ut_conv_pass;

/* How a pass splits the batch: `images` per chunk, and the workspace floats one chunk needs
 * (its column matrix, then its channel-major output at `t_offset`); or, on the host for few
 * output channels, `direct` loops that need no workspace (conv_direct.c).
 *
 * On the host the batch is also split over `threads` (conv_host.c): each thread works through
 * its own images with its own chunk's space, `share` floats apart from the next thread's; the
 * weight gradient's threads other than the first each sum into a partial [O, K] of their own
 * at `partial_offset` (`partial` floats apart), added up in thread order at the end. On a
 * device `threads` is 1.
 *
 * `flipped`: the host runs this input gradient as the forward convolution of dy with the
 * flipped kernel (ut_conv_flipped), and the chunks are that forward pass's; the flipped
 * kernel [C, O, kh, kw] lives at `weights_offset` (Winograd reads it in place and keeps no
 * copy). `workspace` is the node's total. */
typedef struct {
  int direct;   /* 0, or the direct path: on the host the loops of conv_direct.c in vectors of this many floats */
  int winograd; /* the pass runs as Winograd F(2x2, 3x3) on the host (conv_winograd.c) */
  int64_t images;
  size_t col_floats, t_offset;
  int threads;
  size_t share, partial_offset, partial;
  int flipped;
  size_t weights_offset;
  size_t workspace;
} ut_conv_chunking;
ut_conv_chunking ut_conv_chunks(ut_runtime *rt, const ut_conv_geom *gm, int64_t o, ut_conv_pass pass);

/* The input gradient of a stride-1, zero-padded convolution with a square kernel and
 * pad <= k - 1 is itself a convolution: of dy (o channels, oh x ow) with the kernel flipped
 * in both axes and its channel axes swapped, padded by k - 1 - pad, giving c channels of
 * h x w. As a forward pass it needs im2col where the direct input gradient needs col2im (a
 * scatter-add, pricier), and its product is C x (o*k*k) instead of (c*k*k) x o, whose short
 * inner dimension wastes a GEMM when o is small. The host takes it where o < c (the flipped
 * columns are then the smaller matrix: LORD's 5x5 32 -> 16 layer's input gradient took 8-12
 * ms instead of 14 on 2 cores; with o >= c it measured the same or slower, VGG's 64 -> 128:
 * 11 ms instead of 8.5), and wherever the flipped forward pass runs the direct loops
 * (conv_direct.c), which need no column matrix at all, or Winograd's (conv_winograd.c).
 * ut_conv_flips says whether the geometry allows it; ut_conv_flipped gives the forward
 * geometry. */
int ut_conv_flips(const ut_conv_geom *gm);
ut_conv_geom ut_conv_flipped(const ut_conv_geom *gm, int64_t o);

/* The launches of one node: n is the node, whose inputs are as listed above. */
ut_status ut_conv_launch_device(ut_plan *p, ut_tensor *n, ut_conv_pass pass, const ut_conv_geom *gm, int64_t o);
ut_status ut_conv_launch_host(ut_plan *p, ut_tensor *n, ut_conv_pass pass, const ut_conv_geom *gm, int64_t o);

/* The arguments every im2col/col2im kernel launch shares, after the tensors (cl/conv.cl), and
 * its range: `count` work-items. */
void ut_conv_geom_args(ut_launch *l, const ut_conv_geom *gm, size_t count);

/* ---- the reference (conv_reference.c) ---- */

/* x [B, C, H, W] -> col [C*kh*kw, B*OH*OW]. */
ut_tensor *ut_conv_im2col(ut_graph *g, ut_tensor *x, const ut_conv_geom *gm);
/* col [C*kh*kw, B*OH*OW] -> [B, C, H, W], the adjoint of im2col as a deterministic gather, plus
 * bias [C] per channel when bias is not NULL (its gradient is the sum over B, H, W). */
ut_tensor *ut_conv_col2im(ut_graph *g, ut_tensor *col, ut_tensor *bias, const ut_conv_geom *gm);
/* y [B, C, H, W] -> [C, B*H*W] (a view when B is 1). */
ut_tensor *ut_conv_to_channel_major(ut_graph *g, ut_tensor *y);
/* t [C, nb*oh*ow] (+ bias [C]) -> [nb, C, oh, ow] (a view when nb is 1 and there is no bias). */
ut_tensor *ut_conv_to_batch_major(ut_graph *g, ut_tensor *t, ut_tensor *bias, int64_t nb, int64_t oh, int64_t ow);
/* The whole convolution and transposed convolution as composites of the pieces above, for a
 * checked geometry (for the transposed one: that of the convolution whose input gradient it
 * is, with gm->c its output channels). */
ut_tensor *ut_conv2d_reference(ut_graph *g, ut_tensor *x, ut_tensor *w, ut_tensor *bias, const ut_conv_geom *gm);
ut_tensor *ut_conv_transpose2d_reference(ut_graph *g, ut_tensor *x, ut_tensor *w, ut_tensor *bias, const ut_conv_geom *gm);

#endif
