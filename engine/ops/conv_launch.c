/* The convolution passes as OpenCL kernels and CLBlast GEMMs, a chunk of the batch at a time
 * (conv_internal.h). The chunk's column matrix and its channel-major output live in the
 * node's workspace; the kernels of cl/conv.cl work on a chunk because an image batch at an
 * offset is a smaller image batch. Per chunk of nb images starting at image b0, with
 * q = OH * OW and K = C * kh * kw:
 *
 *   forward       col = im2col(x[b0:]) [K, nb*q];  t = W col [O, nb*q];  y[b0:] = t + bias
 *   grad input    t = dy[b0:] channel-major;  col = W^T t;  dx[b0:] = col2im(col) + bias
 *   grad weight   col = im2col(x[b0:]);  t = dy[b0:] channel-major;  dW (+)= t col^T
 *
 * Every GEMM keeps the batch in its N (or K) dimension, as the whole-batch version did, so a
 * chunk of several images makes one large product. */
#include "conv_direct.h"
#include "conv_winograd.h"
#include "error.h"

/* Workspace budgets, in floats: on a device, large enough that a chunk's GEMM fills the
 * device and small beside its memory (256 MiB); on the host, per thread, a few MiB so a
 * chunk's columns stay in cache between im2col and the GEMM. */
#define DEVICE_WORKSPACE_FLOATS ((size_t)64 << 20)
#define HOST_WORKSPACE_FLOATS ((size_t)1 << 20)
#define ALIGN_FLOATS 64
/* On a device, the forward pass and the input gradient of a layer with this many output
 * channels or fewer run the direct kernels of cl/conv.cl instead of im2col + GEMM. On PoCL
 * (benchmarks/README.md, "CLBlast calls and direct kernels") the 16 -> 3 head's forward pass
 * ran 2.4-5 times faster; a direct weight gradient (a work-group per weight) ran slower, and
 * so did every pass of layers with 3 input channels, whose GEMMs waste little (their M is the
 * output channels); no GPU has measured either yet. */
#define DEVICE_DIRECT_OUTPUTS 4

static size_t align_up(size_t floats) { return (floats + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS; }

int ut_conv_flips(const ut_conv_geom *gm) {
  return gm->stride == 1 && !gm->reflect && gm->kh == gm->kw && gm->pad <= gm->kh - 1;
}

ut_conv_geom ut_conv_flipped(const ut_conv_geom *gm, int64_t o) {
  ut_conv_geom f = { .b = gm->b, .c = o, .h = gm->oh, .w = gm->ow, .kh = gm->kh, .kw = gm->kw, .stride = 1,
                     .pad = gm->kh - 1 - gm->pad, .reflect = 0, .oh = gm->h, .ow = gm->w };
  return f;
}

ut_conv_chunking ut_conv_chunks(ut_runtime *rt, const ut_conv_geom *gm, int64_t o, ut_conv_pass pass) {
  size_t q = (size_t)(gm->oh * gm->ow), k = (size_t)(gm->c * gm->kh * gm->kw), col_img = k * q, t_img = (size_t)o * q;
  int threads = rt->host_gemm && rt->info.compute_units > 1 ? (int)rt->info.compute_units : 1;
  /* Winograd before the direct loops: where both suit (LORD's 32 -> 32 layers at 32x32) it took
   * 0.75-0.85 of their time (benchmarks/README.md). An input gradient gets there through the
   * flipped form below. */
  if (rt->host_gemm && rt->conv_winograd && pass != UT_CONV_GRAD_INPUT && ut_conv_winograd_suits(gm, o)) {
    return (ut_conv_chunking){ .winograd = 1, .images = gm->b, .threads = threads,
                               .workspace = ut_conv_winograd_workspace(gm, o, threads, pass == UT_CONV_GRAD_WEIGHT) };
  }
  const int direct = rt->host_gemm ? rt->conv_direct && ut_conv_direct_suits(gm, o, pass)
                                    : rt->conv_direct && o <= DEVICE_DIRECT_OUTPUTS && pass != UT_CONV_GRAD_WEIGHT;
  if (direct) return (ut_conv_chunking){ .direct = rt->conv_direct, .images = gm->b, .threads = 1 };
  /* The flipped form pays where the GEMM gets the smaller column matrix (o < c), or where the
   * flipped forward pass runs the direct loops or Winograd's (conv_internal.h). */
  const ut_conv_geom f = ut_conv_flipped(gm, o);
  if (rt->host_gemm && rt->conv_flip && pass == UT_CONV_GRAD_INPUT && ut_conv_flips(gm) &&
      (o < gm->c || (rt->conv_direct && ut_conv_direct_suits(&f, gm->c, UT_CONV_FORWARD)) ||
       (rt->conv_winograd && ut_conv_winograd_suits(&f, gm->c)))) {
    ut_conv_chunking c = ut_conv_chunks(rt, &f, gm->c, UT_CONV_FORWARD);
    c.flipped = 1;
    if (!c.winograd) { /* Winograd reads the kernel flipped in place */
      c.weights_offset = c.workspace;
      c.workspace += (size_t)o * k;
    }
    return c;
  }
  if (threads > gm->b) threads = gm->b > 0 ? (int)gm->b : 1;
  int64_t per_thread = (gm->b + threads - 1) / threads;
  size_t budget = rt->host_gemm ? HOST_WORKSPACE_FLOATS : DEVICE_WORKSPACE_FLOATS;
  int64_t nb = (int64_t)(budget / (col_img + t_img ? col_img + t_img : 1));
  if (nb > per_thread) nb = per_thread;
  if (rt->conv_chunk_images > 0 && nb > rt->conv_chunk_images) nb = rt->conv_chunk_images;
  if (nb < 1) nb = 1;
  ut_conv_chunking c = { .images = nb, .threads = threads };
  c.col_floats = (size_t)nb * col_img;
  c.t_offset = align_up(c.col_floats);
  c.share = align_up(c.t_offset + (size_t)nb * t_img);
  c.partial_offset = (size_t)threads * c.share;
  c.partial = pass == UT_CONV_GRAD_WEIGHT && threads > 1 ? align_up((size_t)o * k) : 0;
  c.workspace = c.partial_offset + (size_t)(threads - 1) * c.partial;
  return c;
}

void ut_conv_geom_args(ut_launch *l, const ut_conv_geom *gm, size_t count) {
  int bchw[4] = { (int)gm->b, (int)gm->c, (int)gm->h, (int)gm->w };
  int ksp[4] = { (int)gm->kh, (int)gm->kw, (int)gm->stride, (int)gm->pad };
  ut_arg_int4(l, bchw);
  ut_arg_int4(l, ksp);
  ut_arg_int(l, (int)gm->oh);
  ut_arg_int(l, (int)gm->ow);
  ut_arg_int(l, gm->reflect);
  ut_arg_uint(l, (unsigned)count);
  ut_launch_range(l, count, 0);
}

static ut_loc at(ut_loc l, size_t floats) { return (ut_loc){ l.buf, l.off + floats }; }

/* col [K, nb*q] = im2col of the nb images at x. */
static void launch_im2col(ut_plan *p, ut_tensor *n, ut_loc col, ut_loc x, const ut_conv_geom *chunk) {
  ut_launch *l = ut_plan_kernel(p, n, "conv", "im2col");
  ut_arg_loc(l, col);
  ut_arg_loc(l, x);
  ut_conv_geom_args(l, chunk, (size_t)(chunk->c * chunk->b * chunk->oh * chunk->ow));
}

/* x (nb images) = col2im(col) (+ bias). */
static void launch_col2im(ut_plan *p, ut_tensor *n, ut_loc x, ut_loc col, const ut_tensor *bias, const ut_conv_geom *chunk) {
  ut_launch *l = ut_plan_kernel(p, n, "conv", "col2im");
  ut_arg_loc(l, x);
  ut_arg_loc(l, col);
  ut_arg_loc(l, bias ? ut_plan_loc(p, bias) : col); /* any valid buffer when there is no bias */
  ut_arg_int(l, bias != NULL);
  ut_conv_geom_args(l, chunk, (size_t)(chunk->b * chunk->c * chunk->h * chunk->w));
}

/* y [nb, o, q] = t [o, nb*q] (+ bias). */
static void launch_batch_major(ut_plan *p, ut_tensor *n, ut_loc y, ut_loc t, const ut_tensor *bias, int64_t nb, int64_t o,
                               int64_t q) {
  ut_launch *l = ut_plan_kernel(p, n, "conv", "batch_major");
  size_t count = (size_t)(nb * o * q);
  ut_arg_loc(l, y);
  ut_arg_loc(l, t);
  ut_arg_loc(l, bias ? ut_plan_loc(p, bias) : t);
  ut_arg_uint(l, (unsigned)nb);
  ut_arg_uint(l, (unsigned)o);
  ut_arg_uint(l, (unsigned)q);
  ut_arg_int(l, bias != NULL);
  ut_arg_uint(l, (unsigned)count);
  ut_launch_range(l, count, 0);
}

/* t [o, nb*q] = y [nb, o, q]. */
static void launch_channel_major(ut_plan *p, ut_tensor *n, ut_loc t, ut_loc y, int64_t nb, int64_t o, int64_t q) {
  ut_launch *l = ut_plan_kernel(p, n, "conv", "channel_major");
  size_t count = (size_t)(nb * o * q);
  ut_arg_loc(l, t);
  ut_arg_loc(l, y);
  ut_arg_uint(l, (unsigned)nb);
  ut_arg_uint(l, (unsigned)o);
  ut_arg_uint(l, (unsigned)q);
  ut_arg_uint(l, (unsigned)count);
  ut_launch_range(l, count, 0);
}

static ut_status gemm(ut_plan *p, ut_tensor *n, int ta, int tb, int64_t m, int64_t nn, int64_t k, ut_loc a, ut_loc b,
                      ut_loc c, float beta) {
  ut_gemm_args g = { .trans_a = ta, .trans_b = tb, .m = (size_t)m, .n = (size_t)nn, .k = (size_t)k, .alpha = 1.0f,
                     .beta = beta, .a = a, .b = b, .c = c, .lda = (size_t)(ta ? m : k), .ldb = (size_t)(tb ? k : nn),
                     .ldc = (size_t)nn };
  return ut_plan_gemm(p, n, &g);
}

/* The forward pass or the input gradient as one direct kernel over the whole batch (cl/conv.cl). */
static void launch_direct(ut_plan *p, ut_tensor *n, ut_conv_pass pass, const ut_conv_geom *gm, int64_t o) {
  ut_launch *l = ut_plan_kernel(p, n, "conv", pass == UT_CONV_FORWARD ? "direct_forward" : "direct_grad_input");
  const ut_tensor *bias = n->n_in > 2 ? n->in[2] : NULL;
  ut_arg_tensor(l, n);
  ut_arg_tensor(l, n->in[0]);
  ut_arg_tensor(l, n->in[1]);
  ut_arg_loc(l, bias ? ut_plan_loc(p, bias) : ut_plan_loc(p, n)); /* any valid buffer when there is no bias */
  ut_arg_int(l, bias != NULL);
  ut_arg_int(l, (int)o);
  ut_conv_geom_args(l, gm, pass == UT_CONV_FORWARD ? (size_t)(gm->b * o * gm->oh * gm->ow)
                                                   : (size_t)(gm->b * gm->c * gm->h * gm->w));
}

ut_status ut_conv_launch_device(ut_plan *p, ut_tensor *n, ut_conv_pass pass, const ut_conv_geom *gm, int64_t o) {
  ut_conv_chunking ch = ut_conv_chunks(ut_plan_runtime(p), gm, o, pass);
  if (ch.direct) {
    launch_direct(p, n, pass, gm, o);
    return UT_OK;
  }
  const int64_t q = gm->oh * gm->ow, k = gm->c * gm->kh * gm->kw, img = gm->c * gm->h * gm->w, out = o * q;
  ut_loc ws = ut_plan_workspace(p, n), col = ws, t = at(ws, ch.t_offset);
  ut_loc dst = ut_plan_loc(p, n);
  ut_status st = UT_OK;
  for (int64_t b0 = 0; st == UT_OK && b0 < gm->b; b0 += ch.images) {
    ut_conv_geom chunk = *gm;
    chunk.b = gm->b - b0 < ch.images ? gm->b - b0 : ch.images;
    const int64_t cols = chunk.b * q;
    if (pass == UT_CONV_FORWARD) {
      const ut_tensor *x = n->in[0], *w = n->in[1], *bias = n->n_in > 2 ? n->in[2] : NULL;
      launch_im2col(p, n, col, at(ut_plan_loc(p, x), (size_t)(b0 * img)), &chunk);
      st = gemm(p, n, 0, 0, o, cols, k, ut_plan_loc(p, w), col, t, 0.0f);
      launch_batch_major(p, n, at(dst, (size_t)(b0 * out)), t, bias, chunk.b, o, q);
    } else if (pass == UT_CONV_GRAD_INPUT) {
      const ut_tensor *dy = n->in[0], *w = n->in[1], *bias = n->n_in > 2 ? n->in[2] : NULL;
      launch_channel_major(p, n, t, at(ut_plan_loc(p, dy), (size_t)(b0 * out)), chunk.b, o, q);
      st = gemm(p, n, 1, 0, k, cols, o, ut_plan_loc(p, w), t, col, 0.0f);
      launch_col2im(p, n, at(dst, (size_t)(b0 * img)), col, bias, &chunk);
    } else {
      const ut_tensor *dy = n->in[0], *x = n->in[1];
      launch_im2col(p, n, col, at(ut_plan_loc(p, x), (size_t)(b0 * img)), &chunk);
      launch_channel_major(p, n, t, at(ut_plan_loc(p, dy), (size_t)(b0 * out)), chunk.b, o, q);
      st = gemm(p, n, 0, 1, o, k, cols, t, col, dst, b0 ? 1.0f : 0.0f);
    }
  }
  return st;
}
