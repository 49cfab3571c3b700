/* The convolution ops (engine/ops/conv.c) against the reference composite they replaced
 * (conv_reference.c), on both of their launch paths and with the batch split into chunks:
 *
 *   - host: one host function per node with OpenBLAS (CPU devices with host memory), and its
 *     direct loops for stride-1 layers of at most 32 channels with 4 or fewer outputs or rows
 *     of 16 or more (on in 8-float vectors, in 16-float ones where the processor has AVX-512,
 *     and off so im2col + GEMM runs), with input gradients as
 *     flipped-kernel convolutions where they qualify (on and off), and Winograd F(2x2, 3x3) for
 *     wide 3x3 layers (on, and off);
 *   - device: OpenCL kernels and CLBlast GEMMs per chunk (any device; forced here by turning
 *     the runtime's host GEMM off, so CLBlast runs on the CPU device too), and its direct
 *     kernels for layers of 4 or fewer output channels (on, and off);
 *   - chunks of the automatic size, and of one image, so a batch of three runs three chunks
 *     and the weight gradient accumulates across them.
 *
 * For each case: the output, the gradients of x, w and bias of a quadratic loss, and the
 * gradients of a loss of those gradients (second order: every op's backward is made of the
 * three ops, so this runs all three inside each other). Then what the chunks are for: the
 * launch structure, and an arena that no longer holds a whole-batch column matrix. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "ops/conv_direct.h"
#include "ops/conv_internal.h"
#include "runtime_internal.h"

typedef struct {
  int transpose; /* 0: conv2d; 1: conv_transpose2d (w is [C, O, kh, kw]) */
  int b, c, o, h, w, k, stride, pad, reflect_or_opad, bias;
} path_case;

static const path_case cases[] = {
  /* t  b  c  o  h  w  k  s  p  refl/opad bias */
  { 0, 3, 3, 4, 7, 5, 3, 1, 1, 0, 1 },
  { 0, 3, 3, 4, 7, 5, 3, 1, 1, 1, 1 },  /* reflect */
  { 0, 3, 5, 3, 8, 9, 3, 2, 1, 1, 0 },  /* stride 2, reflect, no bias */
  { 0, 3, 4, 5, 6, 7, 1, 1, 0, 0, 1 },  /* 1x1: no column matrix for a chunk of one */
  { 0, 3, 3, 2, 9, 8, 4, 2, 1, 0, 1 },  /* DCGAN-style down-sampling */
  { 0, 3, 2, 3, 8, 9, 7, 1, 3, 1, 1 },  /* LORD's 7x7 head with reflection */
  { 1, 3, 4, 3, 4, 5, 4, 2, 1, 0, 1 },  /* transposed, x2 up-sampling */
  { 1, 3, 3, 2, 3, 4, 3, 2, 1, 1, 1 },  /* transposed, output padding 1 */
  { 1, 3, 4, 5, 5, 4, 1, 1, 0, 0, 0 },  /* transposed 1x1 */
  /* 5 or more output channels in rows narrower than 32: im2col + GEMM even where direct loops are on */
  { 0, 3, 6, 5, 7, 5, 3, 1, 1, 1, 1 },
  { 0, 3, 5, 6, 8, 9, 3, 2, 1, 0, 1 },
  { 0, 3, 5, 5, 6, 7, 1, 1, 0, 0, 1 },
  { 1, 3, 6, 5, 4, 5, 4, 2, 1, 0, 1 },
  /* stride 1, zero padding, 5 or more channels and fewer outputs than inputs: the host's
   * input gradient as a convolution with the flipped kernel (pad k - 1 - p), for p = k / 2,
   * p = 0 and 5x5 */
  { 0, 3, 6, 5, 7, 5, 3, 1, 1, 0, 1 },
  { 0, 3, 7, 6, 6, 7, 3, 1, 0, 0, 0 },
  { 0, 3, 7, 5, 6, 7, 5, 1, 2, 0, 1 },
  { 1, 3, 5, 6, 4, 5, 3, 1, 1, 0, 1 },  /* transposed, stride 1: its forward is that input gradient */
  /* rows of 16 or more, so the host's direct loops take every output count: tails (43 = 16 +
   * 16 + 8 + 3 columns in 8-float vectors, 32 + 11 in 16-float ones) and 13 outputs (forward
   * blocks of 6, 6, 1 or 8, 5; weight-gradient blocks of 4, 4, 4, 1 or 8, 5), reflected; 5x5 (taps in blocks of 3 and 2) with 5 outputs from 8 inputs;
   * more outputs than inputs; 7x7 reflected, 32 wide; more outputs than inputs, 32 wide and
   * zero-padded, whose input gradient is the flipped forward pass on the direct loops; rows
   * of exactly 16 with 12 outputs (two whole blocks) and 5x5; 17 wide, reflected, 7 outputs */
  { 0, 2, 3, 13, 3, 43, 3, 1, 1, 1, 1 },
  { 0, 2, 8, 5, 3, 33, 5, 1, 2, 0, 1 },
  { 0, 2, 4, 9, 3, 32, 3, 1, 1, 0, 0 },
  { 0, 2, 3, 8, 4, 32, 7, 1, 3, 1, 1 },
  { 0, 2, 4, 6, 3, 32, 3, 1, 1, 0, 1 },
  { 0, 2, 5, 12, 3, 16, 5, 1, 2, 0, 1 },
  { 0, 2, 7, 7, 3, 17, 3, 1, 1, 1, 1 },
  /* images smaller than the kernel: taps that read only padding (1x1 and 2x1 under 3x3) */
  { 0, 3, 5, 6, 1, 1, 3, 1, 1, 0, 1 },
  { 0, 3, 6, 5, 2, 1, 3, 1, 1, 0, 1 },
  /* 3x3, stride 1, pad 1, 64 or more channels in and out, images of 4x4 or more: the host's
   * Winograd F(2x2, 3x3) for the forward pass and the (flipped) input gradient; odd sizes
   * (tiles cut at the right and bottom edges), more outputs than inputs without a bias, and
   * three images over the threads' rows of tiles; then a 3x2 image, which stays on the GEMM */
  { 0, 2, 64, 64, 5, 7, 3, 1, 1, 0, 1 },
  { 0, 2, 64, 72, 4, 4, 3, 1, 1, 0, 0 },
  { 0, 3, 80, 64, 4, 5, 3, 1, 1, 0, 1 },
  { 0, 3, 64, 64, 3, 2, 3, 1, 1, 0, 1 },
  /* 32 channels in rows of 16: Winograd, where the direct loops would also take it */
  { 0, 2, 32, 32, 5, 16, 3, 1, 1, 0, 1 },
  /* stride 3, zero padding 2: the columns that read inside a row, found once per row */
  { 0, 2, 3, 6, 11, 10, 5, 3, 2, 0, 1 },
  /* stride 2 into output rows of 16 (from 33 columns, odd): input rows split into even and odd
   * columns for im2col and col2im */
  { 0, 2, 3, 5, 6, 33, 4, 2, 1, 0, 1 },
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

static int tconv_out(int size, const path_case *k) { return (size - 1) * k->stride - 2 * k->pad + k->k + k->reflect_or_opad; }

static ut_shape x_shape(const path_case *k) { return UT_SHAPE(k->b, k->c, k->h, k->w); }
static ut_shape w_shape(const path_case *k) {
  return k->transpose ? UT_SHAPE(k->c, k->o, k->k, k->k) : UT_SHAPE(k->o, k->c, k->k, k->k);
}

static void case_str(const path_case *k, char *buf, size_t size) {
  snprintf(buf, size, "%s x[%d,%d,%d,%d] o %d k %d s %d p %d %s %d%s", k->transpose ? "conv_transpose2d" : "conv2d", k->b,
           k->c, k->h, k->w, k->o, k->k, k->stride, k->pad, k->transpose ? "opad" : "reflect", k->reflect_or_opad,
           k->bias ? " +bias" : "");
}

/* The convolution of the case, through the public calls or through the reference. */
static ut_tensor *build(ut_graph *g, const path_case *k, ut_tensor *x, ut_tensor *w, ut_tensor *b, int reference) {
  if (!k->transpose) {
    ut_conv_cfg cfg = { .stride = k->stride, .pad = k->pad, .pad_mode = k->reflect_or_opad ? UT_PAD_REFLECT : UT_PAD_ZERO };
    if (!reference) return ut_conv2d(g, x, w, b, cfg);
    ut_conv_geom gm = { .b = k->b, .c = k->c, .h = k->h, .w = k->w, .kh = k->k, .kw = k->k, .stride = k->stride,
                        .pad = k->pad, .reflect = k->reflect_or_opad };
    ck_assert_ut_ok(ut_conv_geom_check("test", &gm));
    return ut_conv2d_reference(g, x, w, b, &gm);
  }
  if (!reference) return ut_conv_transpose2d(g, x, w, b, k->stride, k->pad, k->reflect_or_opad);
  ut_conv_geom gm = { .b = k->b, .c = k->o, .h = tconv_out(k->h, k), .w = tconv_out(k->w, k), .kh = k->k, .kw = k->k,
                      .stride = k->stride, .pad = k->pad };
  ck_assert_ut_ok(ut_conv_geom_check("test", &gm));
  return ut_conv_transpose2d_reference(g, x, w, b, &gm);
}

static ut_tensor *weighted_square_sum(ut_graph *g, ut_tensor *t, uint64_t seed) {
  float *v = gc_random_values(seed, gc_numel(ut_tensor_shape(t)), -1, 1);
  ut_tensor *l = ut_sum_all(g, ut_mul(g, ut_square(g, t), ut_constant(g, ut_tensor_shape(t), v)));
  free(v);
  return l;
}

enum { R_Y, R_GX, R_GW, R_GB, R_HX, R_HW, N_RESULTS };
static const char *result_names[N_RESULTS] = { "output", "dL/dx", "dL/dw", "dL/dbias", "d(second)/dx", "d(second)/dw" };

typedef struct {
  float *v[N_RESULTS];
  int64_t n[N_RESULTS];
} results;

/* Runs the case and reads the six results. */
static results run_case(const path_case *k, int reference, uint64_t seed) {
  ut_store *st = ut_store_new(test_runtime(), 1);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *in[3] = { ut_input(g, "x", UT_F32, x_shape(k)), ut_input(g, "w", UT_F32, w_shape(k)),
                       k->bias ? ut_input(g, "b", UT_F32, UT_SHAPE(k->o)) : NULL };
  ut_tensor *y = build(g, k, in[0], in[1], in[2], reference);
  ck_assert_ut_ptr(y);
  int n_in = k->bias ? 3 : 2;
  ck_assert_ut_ok(ut_backward(g, weighted_square_sum(g, y, 5), (ut_tensor_list){ n_in, in }));
  ut_tensor *out[N_RESULTS] = { y, ut_grad(g, in[0]), ut_grad(g, in[1]), k->bias ? ut_grad(g, in[2]) : NULL };
  ut_tensor *second = ut_add(g, weighted_square_sum(g, out[R_GX], 6), weighted_square_sum(g, out[R_GW], 7));
  ck_assert_ut_ok(ut_backward(g, second, (ut_tensor_list){ 2, in }));
  out[R_HX] = ut_grad(g, in[0]);
  out[R_HW] = ut_grad(g, in[1]);
  ut_tensor *listed[N_RESULTS];
  int n_out = 0;
  for (int i = 0; i < N_RESULTS; i++)
    if (out[i]) listed[n_out++] = out[i];
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = listed, .n_outputs = n_out });
  ck_assert_ut_ptr(p);
  uint64_t rng = seed;
  for (int i = 0; i < n_in; i++) {
    int64_t n = gc_numel(ut_tensor_shape(in[i]));
    float *v = malloc((size_t)n * sizeof *v);
    test_fill_uniform(&rng, v, n, -1, 1);
    ck_assert_ut_ok(ut_upload(p, in[i], v));
    free(v);
  }
  ck_assert_ut_ok(ut_plan_run(p));
  results r = { 0 };
  for (int i = 0; i < N_RESULTS; i++) {
    if (!out[i]) continue;
    r.n[i] = gc_numel(ut_tensor_shape(out[i]));
    r.v[i] = malloc((size_t)r.n[i] * sizeof(float));
    ck_assert_ut_ok(ut_read(p, out[i], r.v[i]));
  }
  ut_plan_free(p);
  ut_graph_free(g);
  ut_store_free(st);
  return r;
}

static void free_results(results *r) {
  for (int i = 0; i < N_RESULTS; i++) free(r->v[i]);
}

/* The settings each case runs under. */
static const struct {
  int device_path, direct, one_image_chunks, flip, winograd; /* direct: 0 off, else the loops' vector width */
  const char *name;
} settings[] = {
  { 0, 16, 0, 1, 1, "host path (direct loops in 16-float vectors, Winograd and flipped input gradients on)" },
  { 0, 8, 0, 1, 1, "host path (direct loops in 8-float vectors, Winograd and flipped input gradients on)" },
  { 0, 0, 0, 1, 0, "host path, im2col + GEMM" },
  { 0, 0, 1, 1, 0, "host path, im2col + GEMM, one-image chunks" },
  { 0, 0, 0, 0, 0, "host path, im2col + GEMM, input gradients through col2im" },
  { 0, 0, 0, 0, 1, "host path, Winograd forward, input gradients through col2im" },
  { 1, 0, 0, 0, 0, "device path" },
  { 1, 0, 1, 0, 0, "device path, one-image chunks" },
  { 1, 8, 0, 0, 0, "device path, direct kernels for 4 or fewer output channels" },
};
#define N_SETTINGS ((int)(sizeof settings / sizeof settings[0]))

/* Every result of `got` against the reference's. f32 sums of hundreds to thousands of products
 * in different orders (chunks, CLBlast's tiles, OpenBLAS's blocking), with cancellation: the
 * tolerance scales with the largest magnitude of the result. */
static void assert_matches(const char *label, const char *setting, const results *ref, const results *got) {
  for (int i = 0; i < N_RESULTS; i++) {
    if (!ref->v[i]) continue;
    ck_assert_int_eq(ref->n[i], got->n[i]);
    double scale = 0;
    for (int64_t j = 0; j < ref->n[i]; j++) scale = fmax(scale, fabs(ref->v[i][j]));
    int64_t at = 0;
    double worst = test_compare(got->v[i], ref->v[i], ref->n[i], 1e-5 + 1e-4 * scale, 1e-4, &at);
    ck_assert_msg(worst <= 1, "%s, %s: %s[%lld] = %.9g, reference %.9g", label, setting, result_names[i], (long long)at,
                  got->v[i][at], ref->v[i][at]);
  }
}

START_TEST(test_paths_match_reference) {
  const path_case *k = &cases[_i / N_SETTINGS];
  const int s = _i % N_SETTINGS;
  ut_runtime *rt = test_runtime();
  int saved_host = rt->host_gemm;
  if (settings[s].device_path) rt->host_gemm = 0;
  else if (!rt->host_gemm) { /* a GPU has only the device path */
    return;
  }
  if (settings[s].direct > ut_conv_direct_widest_lanes()) return; /* no AVX-512 here */
  const int saved_direct = rt->conv_direct;
  rt->conv_chunk_images = settings[s].one_image_chunks;
  rt->conv_direct = settings[s].direct;
  rt->conv_flip = settings[s].flip;
  rt->conv_winograd = settings[s].winograd;
  char label[200];
  case_str(k, label, sizeof label);
  results ref = run_case(k, 1, 42), got = run_case(k, 0, 42);
  rt->host_gemm = saved_host;
  rt->conv_chunk_images = 0;
  rt->conv_direct = saved_direct;
  rt->conv_flip = 1;
  rt->conv_winograd = 1;
  assert_matches(label, settings[s].name, &ref, &got);
  free_results(&ref);
  free_results(&got);
}
END_TEST

/* More thread shares than host threads (a CPU device of more than 64 compute units, the cap
 * of host_threads.c): the shares are grouped onto the threads, and every one of them still
 * runs. 70 images on a device that claims 80 compute units. */
START_TEST(test_more_shares_than_threads) {
  static const path_case k = { 0, 70, 5, 6, 4, 4, 3, 1, 1, 0, 1 };
  ut_runtime *rt = test_runtime();
  if (!rt->host_gemm) return; /* the host path only */
  const unsigned saved = rt->info.compute_units;
  rt->info.compute_units = 80;
  results ref = run_case(&k, 1, 42), got = run_case(&k, 0, 42);
  rt->info.compute_units = saved;
  char label[200];
  case_str(&k, label, sizeof label);
  assert_matches(label, "host path on 80 claimed compute units", &ref, &got);
  free_results(&ref);
  free_results(&got);
}
END_TEST

/* The statistics of a plan computing `out` of graph g; frees the graph and its store. */
static ut_plan_stats stats_of(ut_graph *g, ut_tensor *out) {
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = &out, .n_outputs = 1 });
  ck_assert_ut_ptr(p);
  ut_plan_stats s = ut_plan_get_stats(p);
  ut_store *st = ut_graph_store(g);
  ut_plan_free(p);
  ut_graph_free(g);
  ut_store_free(st);
  return s;
}

static int launches_of(const path_case *k) {
  ut_graph *g = ut_graph_new(test_runtime(), ut_store_new(test_runtime(), 1));
  ut_tensor *y = build(g, k, ut_input(g, "x", UT_F32, x_shape(k)), ut_input(g, "w", UT_F32, w_shape(k)), NULL, 0);
  return stats_of(g, y).launches;
}

/* The host path is one launch per node; the device path three per chunk (im2col, GEMM,
 * reordering for the forward pass; reordering, GEMM, col2im for the transposed one), or one
 * per node where a direct kernel takes the pass (4 or fewer output channels). */
START_TEST(test_launch_structure) {
  ut_runtime *rt = test_runtime();
  int saved_host = rt->host_gemm, saved_direct = rt->conv_direct;
  const path_case *conv = &cases[0], *tconv = &cases[6], *wide = &cases[9];
  if (saved_host) {
    ck_assert_int_eq(launches_of(conv), 1);
    ck_assert_int_eq(launches_of(tconv), 1);
  }
  rt->host_gemm = 0;
  int direct_conv = launches_of(conv), direct_tconv = launches_of(tconv);
  rt->conv_chunk_images = 1;
  int wide_chunked = launches_of(wide);
  rt->conv_direct = 0;
  int chunked_conv = launches_of(conv), chunked_tconv = launches_of(tconv);
  rt->conv_chunk_images = 0;
  int whole_conv = launches_of(conv);
  rt->conv_direct = saved_direct;
  rt->host_gemm = saved_host;
  ck_assert_int_eq(direct_conv, 1);
  ck_assert_int_eq(direct_tconv, 1);
  ck_assert_int_eq(wide_chunked, 3 * wide->b); /* 6 -> 5 channels: no direct kernel */
  ck_assert_int_eq(chunked_conv, 3 * conv->b);
  ck_assert_int_eq(chunked_tconv, 3 * tconv->b);
  ck_assert_int_eq(whole_conv, 3);
}
END_TEST

/* Which host passes Winograd takes: all three passes of a wide 3x3 layer at 4x4 or more (the
 * input gradient in the flipped form; before the direct loops), not a 2x2 image, not a narrow
 * or reflected layer, and nothing when the runtime turns it off. */
START_TEST(test_winograd_takes_wide_3x3_layers) {
  ut_runtime *rt = test_runtime();
  if (!rt->host_gemm) return; /* a GPU: the device path only */
  ut_conv_geom wide = { .b = 2, .c = 64, .h = 4, .w = 4, .kh = 3, .kw = 3, .stride = 1, .pad = 1 };
  ck_assert_ut_ok(ut_conv_geom_check("test", &wide));
  ck_assert_int_eq(ut_conv_chunks(rt, &wide, 64, UT_CONV_FORWARD).winograd, 1);
  ut_conv_chunking grad_input = ut_conv_chunks(rt, &wide, 64, UT_CONV_GRAD_INPUT);
  ck_assert(grad_input.flipped && grad_input.winograd);
  ck_assert_int_eq(ut_conv_chunks(rt, &wide, 64, UT_CONV_GRAD_WEIGHT).winograd, 1);
  ut_conv_geom small = wide, narrow = wide, reflected = wide, lord = wide;
  small.h = small.w = 2;
  narrow.c = 16;
  lord.c = 32, lord.h = lord.w = 32; /* the direct loops suit it too; Winograd comes first */
  ck_assert_ut_ok(ut_conv_geom_check("test", &lord));
  ut_conv_chunking lord_forward = ut_conv_chunks(rt, &lord, 32, UT_CONV_FORWARD);
  ck_assert(lord_forward.winograd && !lord_forward.direct);
  reflected.reflect = 1;
  ck_assert_ut_ok(ut_conv_geom_check("test", &small));
  ck_assert_int_eq(ut_conv_chunks(rt, &small, 64, UT_CONV_FORWARD).winograd, 0);
  ck_assert_int_eq(ut_conv_chunks(rt, &narrow, 64, UT_CONV_FORWARD).winograd, 0);
  ck_assert_int_eq(ut_conv_chunks(rt, &wide, 16, UT_CONV_FORWARD).winograd, 0);
  ck_assert_int_eq(ut_conv_chunks(rt, &reflected, 64, UT_CONV_FORWARD).winograd, 0);
  rt->conv_winograd = 0;
  int off = ut_conv_chunks(rt, &wide, 64, UT_CONV_FORWARD).winograd;
  rt->conv_winograd = 1;
  ck_assert_int_eq(off, 0);
}
END_TEST

/* A runtime of the tests' device opened with the environment variable `name` set to `value`
 * (unset when NULL), which is unset again afterwards. */
static ut_runtime *open_with(const char *name, const char *value) {
  if (value) setenv(name, value, 1);
  const char *sel = getenv("UNTANGLE_TEST_DEVICE");
  ut_runtime *rt = ut_runtime_open(&(ut_device_query){ .select = sel ? sel : "best" });
  unsetenv(name);
  return rt;
}

/* $UNTANGLE_CONV_WINOGRAD: 0 turns Winograd off for the runtime, 1 or unset keeps it on, and
 * anything else is refused with the variable, the value and what it takes. */
static ut_runtime *open_with_winograd(const char *value) { return open_with("UNTANGLE_CONV_WINOGRAD", value); }

START_TEST(test_winograd_environment_switch) {
  const char *values[] = { NULL, "1", "0" };
  for (int i = 0; i < 3; i++) {
    ut_runtime *rt = open_with_winograd(values[i]);
    ck_assert_ut_ptr(rt);
    ck_assert_int_eq(rt->conv_winograd, i < 2);
    ut_runtime_close(rt);
  }
  ck_assert_ptr_null(open_with_winograd("yes"));
  const char *msg = ut_last_error();
  ck_assert_msg(strstr(msg, "$UNTANGLE_CONV_WINOGRAD is 'yes'") && strstr(msg, "expected 1"), "%s", msg);
}
END_TEST

/* The direct loops' forward pass sums each output in the same order at either width, so where
 * the processor runs both (16 needs x86-64-v4, on which the 8-float loops run their FMA clone)
 * the outputs and the input gradients (the flipped forward pass) are the same bits: 13 outputs
 * in rows of 43 and 5x5 over 33 columns, the tails and partial blocks of both widths. */
START_TEST(test_direct_widths_same_forward_bits) {
  ut_runtime *rt = test_runtime();
  if (!rt->host_gemm || ut_conv_direct_widest_lanes() < 16) return;
  const int saved = rt->conv_direct;
  for (int i = 0; i < 2; i++) {
    const path_case *k = &cases[i == 0 ? 17 : 18];
    ck_assert_int_eq(k->w >= 32 && !k->transpose, 1);
    rt->conv_direct = 8;
    results narrow = run_case(k, 0, 42);
    rt->conv_direct = 16;
    results wide = run_case(k, 0, 42);
    rt->conv_direct = saved;
    char label[200];
    case_str(k, label, sizeof label);
    for (int r = R_Y; r <= R_GX; r++)
      ck_assert_msg(!memcmp(narrow.v[r], wide.v[r], (size_t)narrow.n[r] * sizeof(float)), "%s: %s differs between widths",
                    label, result_names[r]);
    free_results(&narrow);
    free_results(&wide);
  }
}
END_TEST

/* $UNTANGLE_CONV_LANES: 8 keeps the direct loops at 8-float vectors, unset takes the widest the
 * processor runs, 16 is taken only where it runs them, and anything else is refused. */
static ut_runtime *open_with_lanes(const char *value) { return open_with("UNTANGLE_CONV_LANES", value); }

START_TEST(test_lanes_environment_switch) {
  const int widest = ut_conv_direct_widest_lanes();
  ck_assert(widest == 8 || widest == 16);
  ut_runtime *rt = open_with_lanes(NULL);
  ck_assert_ut_ptr(rt);
  ck_assert_int_eq(rt->conv_direct, widest);
  ut_runtime_close(rt);
  rt = open_with_lanes("8");
  ck_assert_ut_ptr(rt);
  ck_assert_int_eq(rt->conv_direct, 8);
  ut_runtime_close(rt);
  rt = open_with_lanes("16");
  if (widest == 16) {
    ck_assert_ut_ptr(rt);
    ck_assert_int_eq(rt->conv_direct, 16);
    ut_runtime_close(rt);
  } else {
    ck_assert_ptr_null(rt);
    ck_assert_msg(strstr(ut_last_error(), "at most 8"), "%s", ut_last_error());
  }
  ck_assert_ptr_null(open_with_lanes("4"));
  const char *msg = ut_last_error();
  ck_assert_msg(strstr(msg, "$UNTANGLE_CONV_LANES is '4'") && strstr(msg, "expected 8"), "%s", msg);
}
END_TEST

/* Arena of a training step through one convolution layer of a batch of 16, for the new ops
 * and for the reference: the reference keeps the batch's column matrix (C*k*k x B*OH*OW) from
 * the forward pass to the weight gradient; the chunked ops hold one chunk's at a time. */
static size_t step_arena(int reference) {
  const path_case k = { 0, 16, 16, 8, 32, 32, 5, 1, 2, 0, 1 };
  ut_graph *g = ut_graph_new(test_runtime(), ut_store_new(test_runtime(), 1));
  ut_tensor *x = ut_input(g, "x", UT_F32, x_shape(&k));
  ut_tensor *w = ut_param(g, "conv.w", w_shape(&k), (ut_init){ UT_INIT_FAN_IN_UNIFORM, 0, 0 });
  ut_tensor *y = build(g, &k, x, w, NULL, reference);
  ck_assert_ut_ok(ut_backward(g, ut_mean(g, ut_square(g, y), 0xf), ut_params(g, "conv.")));
  return stats_of(g, ut_grad(g, w)).arena_peak_bytes;
}

START_TEST(test_chunks_save_memory) {
  ut_runtime *rt = test_runtime();
  rt->conv_chunk_images = 2;
  size_t chunked = step_arena(0), reference = step_arena(1);
  rt->conv_chunk_images = 0;
  /* The column matrix is 16*5*5 x 16*32*32 floats = 26 MB; the rest of the step is a few MB. */
  size_t col_bytes = (size_t)16 * 25 * 16 * 32 * 32 * sizeof(float);
  ck_assert_msg(reference > col_bytes, "the reference arena (%zu bytes) should hold the column matrix (%zu)", reference,
                col_bytes);
  ck_assert_msg(chunked < reference - col_bytes / 2, "chunked arena %zu bytes, reference %zu: no column matrix saved",
                chunked, reference);
}
END_TEST

static Suite *paths_suite(void) {
  Suite *s = suite_create("ops_conv_paths");
  TCase *tc = tcase_create("paths");
  tcase_set_timeout(tc, 900);
  tcase_add_loop_test(tc, test_paths_match_reference, 0, N_SETTINGS * N_CASES);
  tcase_add_test(tc, test_more_shares_than_threads);
  tcase_add_test(tc, test_launch_structure);
  tcase_add_test(tc, test_winograd_takes_wide_3x3_layers);
  tcase_add_test(tc, test_winograd_environment_switch);
  tcase_add_test(tc, test_direct_widths_same_forward_bits);
  tcase_add_test(tc, test_lanes_environment_switch);
  tcase_add_test(tc, test_chunks_save_memory);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(paths_suite()); }
