/* The GEMM launch on both of its paths: OpenBLAS on the host (the default on a CPU device that
 * shares host memory) and CLBlast ($UNTANGLE_CPU_GEMM=clblast, and every other device). Every
 * transpose combination, plain and strided batched, with buffer offsets, padded leading
 * dimensions and batch strides, alpha and beta, odd sizes, two operands in one buffer and a
 * batch that reuses one B; each path against a plain C reference in double and against the
 * other, the memory around C untouched, a second run bit-identical to the first, and the
 * profile naming each path's GEMMs and timing them. And how CLBlast is called: never with more
 * operand copies than the plain row-major call, and none for a product that needs none. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clblast_gemm.h"
#include "plan_internal.h"
#include "runtime_internal.h"
#include "test_support.h"

typedef struct {
  int ta, tb;
  size_t m, n, k;
  size_t pad_a, pad_b, pad_c;  /* leading dimension minus the stored columns */
  size_t off_a, off_b, off_c;  /* floats from the start of the tensor */
  size_t batch, stride_pad;    /* batch entries lie their size plus stride_pad apart */
  int shared_b;                /* stride_b 0: every entry reuses one B */
  int b_in_a;                  /* B lies in A's tensor (one buffer, two operands) */
  float alpha, beta;
} gemm_case;

static const gemm_case cases[] = {
  { 0, 0, 37, 29, 53, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1.0f, 0.0f },
  { 1, 0, 17, 41, 23, 3, 5, 7, 5, 3, 11, 1, 0, 0, 0, 0.5f, -1.25f },
  { 0, 1, 31, 19, 45, 1, 2, 9, 7, 13, 1, 1, 0, 0, 0, -1.5f, 0.75f },
  { 1, 1, 23, 33, 15, 4, 0, 3, 2, 9, 6, 1, 0, 0, 0, 2.0f, 1.0f },
  { 0, 0, 9, 13, 11, 2, 1, 3, 3, 1, 4, 3, 5, 0, 0, 1.0f, 0.5f },
  { 1, 0, 7, 11, 17, 0, 3, 2, 1, 6, 2, 4, 3, 0, 0, -0.75f, 0.0f },
  { 0, 1, 12, 5, 19, 1, 1, 1, 9, 2, 5, 2, 1, 0, 0, 1.25f, -0.5f },
  { 1, 1, 6, 9, 10, 3, 2, 4, 0, 7, 3, 3, 2, 0, 0, 0.5f, 2.0f },
  { 1, 0, 8, 14, 6, 1, 2, 3, 4, 5, 6, 5, 2, 1, 0, 1.0f, 0.25f },  /* one B for every entry */
  { 0, 1, 21, 21, 35, 0, 0, 2, 3, 0, 1, 1, 0, 0, 1, 1.0f, 0.0f }, /* A A^T from one tensor */
  { 0, 0, 1, 27, 1, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 3.0f, -1.0f },  /* a rank-1 update */
  /* Offsets at multiples of 128 bytes: CLBlast gets zero-offset sub-buffers (clblast_gemm.h). */
  { 1, 0, 128, 96, 64, 0, 0, 0, 32, 64, 96, 1, 0, 0, 0, 1.0f, 0.5f },
  { 0, 0, 64, 128, 96, 0, 0, 0, 64, 32, 32, 1, 0, 0, 0, -1.0f, 0.0f },
  { 0, 1, 64, 64, 64, 0, 0, 0, 32, 32, 32, 2, 0, 0, 0, 1.0f, 0.0f },
  { 0, 0, 160, 150, 170, 1, 0, 6, 1, 2, 3, 1, 0, 0, 0, 1.0f, 0.5f }, /* large enough for threads */
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

/* A matrix of a case as stored: rows x cols, row-major, `ld` apart, entries `stride` apart. */
typedef struct {
  size_t rows, cols, ld, stride, off, len;
} layout;

static layout lay(size_t rows, size_t cols, size_t pad, size_t off, const gemm_case *c, int shared) {
  layout l = { rows, cols, cols + pad, 0, off, 0 };
  l.stride = shared ? 0 : rows * l.ld + c->stride_pad;
  l.len = off + (c->batch - 1) * l.stride + (rows - 1) * l.ld + cols;
  return l;
}

static void layouts(const gemm_case *c, layout *a, layout *b, layout *cc) {
  *a = lay(c->ta ? c->k : c->m, c->ta ? c->m : c->k, c->pad_a, c->off_a, c, 0);
  *b = lay(c->tb ? c->n : c->k, c->tb ? c->k : c->n, c->pad_b, c->off_b + (c->b_in_a ? a->len : 0), c, c->shared_b);
  *cc = lay(c->m, c->n, c->pad_c, c->off_c, c, 0);
}

/* The tensors' lengths: A's input (which holds B too when b_in_a), B's input, C's. */
static size_t a_len(const gemm_case *c) {
  layout a, b, cc;
  layouts(c, &a, &b, &cc);
  return (c->b_in_a ? b.len : a.len) + 3; /* a tail no operand reaches */
}
static size_t b_len(const gemm_case *c) {
  layout a, b, cc;
  layouts(c, &a, &b, &cc);
  return c->b_in_a ? 1 : b.len + 3;
}
static size_t c_len(const gemm_case *c) {
  layout a, b, cc;
  layouts(c, &a, &b, &cc);
  return cc.len + 5;
}

/* ---- the op: C (a store tensor, input 0) updated in place by one GEMM launch ----------------- */

static ut_status gemm_shape(ut_tensor *n) {
  n->shape = n->in[0]->shape;
  return UT_OK;
}

static ut_status gemm_forward(ut_plan *p, ut_tensor *n) {
  const gemm_case *c = &cases[n->iattr[0]];
  layout a, b, cc;
  layouts(c, &a, &b, &cc);
  ut_loc la = ut_plan_loc(p, n->in[1]), lb = ut_plan_loc(p, n->in[c->b_in_a ? 1 : 2]), lc = ut_plan_loc(p, n->in[0]);
  ut_gemm_args args = {
    .trans_a = c->ta, .trans_b = c->tb, .m = c->m, .n = c->n, .k = c->k, .alpha = c->alpha, .beta = c->beta,
    .a = { la.buf, la.off + a.off }, .b = { lb.buf, lb.off + b.off }, .c = { lc.buf, lc.off + cc.off },
    .lda = (size_t)n->iattr[1] ? (size_t)n->iattr[1] : a.ld, .ldb = b.ld, .ldc = cc.ld,
    .batch = c->batch, .stride_a = a.stride, .stride_b = b.stride, .stride_c = cc.stride,
  };
  return ut_plan_gemm(p, n, &args);
}

static const ut_op_def op_test_gemm = { "test_gemm", UT_OP_UPDATE, gemm_shape, gemm_forward, NULL };

/* ---- the reference ------------------------------------------------------------------------- */

static void reference(const gemm_case *c, const float *av, const float *bv, const float *c0, float *out) {
  layout a, b, cc;
  layouts(c, &a, &b, &cc);
  if (c->b_in_a) bv = av;
  memcpy(out, c0, c_len(c) * sizeof *out);
  for (size_t e = 0; e < c->batch; e++)
    for (size_t i = 0; i < c->m; i++)
      for (size_t j = 0; j < c->n; j++) {
        double s = 0;
        for (size_t kk = 0; kk < c->k; kk++) {
          size_t ia = a.off + e * a.stride + (c->ta ? kk * a.ld + i : i * a.ld + kk);
          size_t ib = b.off + e * b.stride + (c->tb ? j * b.ld + kk : kk * b.ld + j);
          s += (double)av[ia] * bv[ib];
        }
        size_t ic = cc.off + e * cc.stride + i * cc.ld + j;
        out[ic] = (float)(c->alpha * s + c->beta * (double)c0[ic]);
      }
}

/* Whether element i of C's tensor is one the GEMM writes. */
static int in_c(const gemm_case *c, size_t i) {
  layout a, b, cc;
  layouts(c, &a, &b, &cc);
  if (i < cc.off) return 0;
  for (size_t e = 0; e < c->batch; e++) {
    size_t r = i - cc.off - e * cc.stride;
    if (i >= cc.off + e * cc.stride && r / cc.ld < c->m && r % cc.ld < c->n) return 1;
  }
  return 0;
}

/* ---- running every case on one runtime ------------------------------------------------------ */

typedef struct {
  float *a[N_CASES], *b[N_CASES], *c0[N_CASES], *ref[N_CASES];
} case_data;

static void data_new(case_data *d) {
  uint64_t seed = 42;
  for (int i = 0; i < N_CASES; i++) {
    size_t na = a_len(&cases[i]), nb = b_len(&cases[i]), nc = c_len(&cases[i]);
    d->a[i] = malloc(na * sizeof(float));
    d->b[i] = malloc(nb * sizeof(float));
    d->c0[i] = malloc(nc * sizeof(float));
    d->ref[i] = malloc(nc * sizeof(float));
    ck_assert(d->a[i] && d->b[i] && d->c0[i] && d->ref[i]);
    test_fill_uniform(&seed, d->a[i], (int64_t)na, -1, 1);
    test_fill_uniform(&seed, d->b[i], (int64_t)nb, -1, 1);
    test_fill_uniform(&seed, d->c0[i], (int64_t)nc, -1, 1);
    reference(&cases[i], d->a[i], d->b[i], d->c0[i], d->ref[i]);
  }
}

static void data_free(case_data *d) {
  for (int i = 0; i < N_CASES; i++) free(d->a[i]), free(d->b[i]), free(d->c0[i]), free(d->ref[i]);
}

/* Opens a runtime with $UNTANGLE_CPU_GEMM set to `env` (NULL: unset), and puts it back. */
static ut_runtime *open_with(const char *env) {
  const char *old = getenv("UNTANGLE_CPU_GEMM");
  char *saved = old ? strdup(old) : NULL;
  if (env) setenv("UNTANGLE_CPU_GEMM", env, 1);
  else unsetenv("UNTANGLE_CPU_GEMM");
  const char *sel = getenv("UNTANGLE_TEST_DEVICE");
  ut_runtime *rt = ut_runtime_open(&(ut_device_query){ .select = sel ? sel : "best", .profiling = 1 });
  if (saved) setenv("UNTANGLE_CPU_GEMM", saved, 1);
  else unsetenv("UNTANGLE_CPU_GEMM");
  free(saved);
  return rt;
}

/* Whether the default is the host path on this device: a CPU sharing host memory. */
static int expect_host(ut_runtime *rt) {
  cl_bool unified = CL_FALSE;
  clGetDeviceInfo(rt->device, CL_DEVICE_HOST_UNIFIED_MEMORY, sizeof unified, &unified, NULL);
  return ut_runtime_device(rt)->type == UT_DEVICE_CPU && unified == CL_TRUE;
}

/* Every case in one plan; out[i] gets C of case i after one run. Checks the launches' kernel
 * names and that a second run from the same C gives the same bits. */
static void run_cases(const char *env, const case_data *d, float **out, const char *kernel) {
  ut_runtime *rt = open_with(env);
  ck_assert_ut_ptr(rt);
  if (!kernel) kernel = expect_host(rt) ? "openblas_sgemm" : "clblast_sgemm";
  ut_store *st = ut_store_new(rt, 1);
  ut_graph *g = ut_graph_new(rt, st);
  ut_tensor *ta[N_CASES], *tb[N_CASES];
  ut_store_tensor *tc[N_CASES];
  for (int i = 0; i < N_CASES; i++) {
    char name[32];
    snprintf(name, sizeof name, "c%d", i);
    ut_tensor *c = ut_param(g, name, UT_SHAPE((int64_t)c_len(&cases[i])), (ut_init){ UT_INIT_ZERO, 0, 0 });
    snprintf(name, sizeof name, "a%d", i);
    ta[i] = ut_input(g, name, UT_F32, UT_SHAPE((int64_t)a_len(&cases[i])));
    snprintf(name, sizeof name, "b%d", i);
    tb[i] = ut_input(g, name, UT_F32, UT_SHAPE((int64_t)b_len(&cases[i])));
    ck_assert_ut_ptr(c);
    tc[i] = c->store;
    ut_tensor *in[3] = { c, ta[i], tb[i] };
    int64_t attr[2] = { i, 0 };
    ck_assert_ut_ptr(ut_node_new(g, &op_test_gemm, 3, in, attr, 2, NULL, 0));
  }
  ut_plan *p = ut_plan_compile(g, NULL);
  ck_assert_ut_ptr(p);
  float *again = malloc(c_len(&cases[N_CASES - 1]) * sizeof *again);
  ck_assert_ptr_nonnull(again);
  for (int i = 0; i < N_CASES; i++) {
    ck_assert_ut_ok(ut_upload(p, ta[i], d->a[i]));
    ck_assert_ut_ok(ut_upload(p, tb[i], d->b[i]));
  }
  for (int run = 0; run < 2; run++) {
    for (int i = 0; i < N_CASES; i++) ck_assert_ut_ok(ut_store_tensor_write(st, tc[i], d->c0[i]));
    ck_assert_ut_ok(ut_plan_run(p));
    for (int i = 0; i < N_CASES; i++) {
      float *dst = run == 0 ? out[i] : again;
      ck_assert_ut_ok(ut_store_tensor_read(st, tc[i], dst));
      if (run == 1)
        ck_assert_msg(!memcmp(out[i], again, c_len(&cases[i]) * sizeof(float)),
                      "case %d (%s): a second run gave other bits", i, kernel);
    }
  }
  free(again);
  ut_profile_entry *e = NULL;
  int n = 0;
  ck_assert_ut_ok(ut_plan_profile(p, &e, &n));
  ck_assert_int_eq(n, N_CASES);
  for (int i = 0; i < n; i++) {
    ck_assert_str_eq(e[i].kernel, kernel);
    ck_assert_msg(e[i].ms >= 0, "case %d has a negative time", i);
    /* 8 MFLOP take a measurable time on either path; the profile must have caught it. */
    if (i == N_CASES - 1) ck_assert_msg(e[i].ms > 0, "the largest case (%s) has no time in the profile", kernel);
  }
  free(e);
  ut_plan_free(p);
  ut_graph_free(g);
  ut_store_free(st);
  ut_runtime_close(rt);
}

static void check_case(int i, const float *got, const float *ref, const char *what) {
  const gemm_case *c = &cases[i];
  int64_t worst = 0;
  double err = test_compare(got, ref, (int64_t)c_len(c), 1e-5, 1e-4, &worst);
  ck_assert_msg(err <= 1, "case %d (%s, %s%s %zux%zux%zu batch %zu): element %lld is %.9g, expected %.9g", i, what,
                c->ta ? "T" : "N", c->tb ? "T" : "N", c->m, c->n, c->k, c->batch, (long long)worst, got[worst],
                ref[worst]);
  for (size_t j = 0; j < c_len(c); j++)
    if (!in_c(c, j))
      ck_assert_msg(got[j] == ref[j], "case %d (%s): element %zu lies outside C but changed from %.9g to %.9g", i, what,
                    j, ref[j], got[j]);
}

START_TEST(test_paths_match_reference_and_each_other) {
  case_data d;
  data_new(&d);
  float *host[N_CASES], *blas[N_CASES];
  for (int i = 0; i < N_CASES; i++) {
    host[i] = malloc(c_len(&cases[i]) * sizeof(float));
    blas[i] = malloc(c_len(&cases[i]) * sizeof(float));
    ck_assert(host[i] && blas[i]);
  }
  run_cases(NULL, &d, host, NULL);
  run_cases("clblast", &d, blas, "clblast_sgemm");
  for (int i = 0; i < N_CASES; i++) {
    check_case(i, host[i], d.ref[i], "default path");
    check_case(i, blas[i], d.ref[i], "CLBlast");
    check_case(i, host[i], blas[i], "default path against CLBlast");
    free(host[i]);
    free(blas[i]);
  }
  data_free(&d);
}
END_TEST

/* CLBlast's scratch for the call as given, row-major, at the given offsets. */
static size_t row_major_copies(ut_runtime *rt, const ut_gemm_args *a) {
  size_t bytes = 0;
  ck_assert_int_eq(CLBlastSGemmTempBufferSize(CLBlastLayoutRowMajor, a->trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
                                              a->trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, a->m, a->n, a->k,
                                              a->a.off, a->lda, a->b.off, a->ldb, a->c.off, a->ldc, &rt->queue, &bytes),
                   CLBlastSuccess);
  return bytes;
}

/* Runs the prepared call and checks 64 entries of C (all of it would take seconds in double). */
static void check_sampled(ut_runtime *rt, const ut_gemm_args *a, const ut_clblast_gemm *call, const float *host) {
  ck_assert_ut_ok(ut_clblast_gemm_enqueue(call, &rt->queue, NULL, NULL));
  size_t n = a->n, c_floats = (a->m - 1) * a->ldc + n;
  float *c = malloc(c_floats * sizeof *c);
  ck_assert_ptr_nonnull(c);
  ck_assert_ut_ok(ut_runtime_read(rt, a->c.buf, a->c.off * sizeof(float), c_floats * sizeof(float), c));
  uint64_t seed = 7;
  for (int s = 0; s < 64; s++) {
    float pick[2];
    test_fill_uniform(&seed, pick, 2, 0, 1);
    size_t i = (size_t)(pick[0] * (float)a->m) % a->m, j = (size_t)(pick[1] * (float)n) % n;
    double sum = 0;
    for (size_t kk = 0; kk < a->k; kk++)
      sum += (double)host[a->a.off + (a->trans_a ? kk * a->lda + i : i * a->lda + kk)] *
             host[a->b.off + (a->trans_b ? j * a->ldb + kk : kk * a->ldb + j)];
    ck_assert_msg(fabs(c[i * a->ldc + j] - sum) <= 1e-4 * (1 + fabs(sum)), "%s%s: C[%zu, %zu] is %.7g, expected %.7g",
                  a->trans_a ? "T" : "N", a->trans_b ? "T" : "N", i, j, c[i * a->ldc + j], sum);
  }
  free(c);
}

/* Square products of 1024 (a multiple of CLBlast's tiles, and beyond the sizes that its direct
 * kernel takes on PoCL) in each transpose combination, at offsets of 0, of 256 bytes and of 4
 * bytes: the call never copies more than the plain row-major one, aligned operands become
 * sub-buffers, and two of the calls run and give the product. */
START_TEST(test_clblast_call_copies_least) {
  ut_runtime *rt = open_with("clblast");
  ck_assert_ut_ptr(rt);
  /* A, B and C lie `gap` floats apart, so that no offset makes one overlap the next. */
  const size_t nn = 1024, gap = nn * nn + 128, floats = 3 * gap;
  float *host = malloc(floats * sizeof *host);
  ck_assert_ptr_nonnull(host);
  uint64_t seed = 3;
  test_fill_uniform(&seed, host, (int64_t)floats, -1, 1);
  cl_mem buf;
  ck_assert_ut_ok(ut_runtime_alloc(rt, floats * sizeof(float), "test operands", &buf));
  ck_assert_ut_ok(ut_runtime_write(rt, buf, 0, floats * sizeof(float), host));
  const size_t offsets[3] = { 0, 64, 1 };
  for (int combo = 0; combo < 4; combo++)
    for (int o = 0; o < 3; o++) {
      size_t off = offsets[o];
      ut_gemm_args a = { .trans_a = combo & 1, .trans_b = combo >> 1, .m = nn, .n = nn, .k = nn, .alpha = 1,
                         .a = { buf, off }, .b = { buf, gap + off }, .c = { buf, 2 * gap + off },
                         .lda = nn, .ldb = nn, .ldc = nn, .batch = 1 };
      ut_clblast_gemm call;
      ck_assert_ut_ok(ut_clblast_gemm_prepare(rt, &a, &call));
      size_t plain = row_major_copies(rt, &a);
      ck_assert_msg(call.temp_bytes <= plain, "%s%s at offset %zu: %zu bytes of copies, row-major needs %zu",
                    a.trans_a ? "T" : "N", a.trans_b ? "T" : "N", off, call.temp_bytes, plain);
      int aligned = (off * sizeof(float)) % rt->info.base_align_bytes == 0;
      for (size_t i = 0; i < 3; i++) /* operand i starts i * gap + off floats into the buffer */
        ck_assert_msg((call.owned[i] != NULL) == (aligned && i * gap + off != 0),
                      "offset %zu: operand %zu %s a sub-buffer", off, i, call.owned[i] ? "got" : "did not get");
      /* CLBlast's tiled kernel on PoCL (GEMMK 0) reads A untransposed and B transposed in
       * column-major, and writes C column-major: T x N, swapped, is exactly that. */
      if (ut_runtime_device(rt)->type == UT_DEVICE_CPU && a.trans_a && !a.trans_b && aligned) {
        ck_assert_msg(call.temp_bytes == 0 && plain > 0,
                      "TN at offset %zu: %zu bytes of copies (row-major: %zu), expected none", off, call.temp_bytes,
                      plain);
        ck_assert_int_eq(call.layout, CLBlastLayoutColMajor);
      }
      /* One call without copies through sub-buffers, one with copies and offsets. */
      if ((combo == 1 && o == 1) || (combo == 0 && o == 2)) check_sampled(rt, &a, &call, host);
      ut_clblast_gemm_release(&call);
    }
  clReleaseMemObject(buf);
  free(host);
  ut_runtime_close(rt);
}
END_TEST

START_TEST(test_explicit_openblas_is_the_default) {
  /* "openblas" names the default, so it takes the same path as no setting at all. */
  case_data d;
  data_new(&d);
  float *out[N_CASES];
  for (int i = 0; i < N_CASES; i++) ck_assert_ptr_nonnull(out[i] = malloc(c_len(&cases[i]) * sizeof(float)));
  run_cases("openblas", &d, out, NULL);
  for (int i = 0; i < N_CASES; i++) {
    check_case(i, out[i], d.ref[i], "UNTANGLE_CPU_GEMM=openblas");
    free(out[i]);
  }
  data_free(&d);
}
END_TEST

START_TEST(test_unknown_setting_is_refused) {
  ck_assert_ptr_null(open_with("mkl"));
  ck_assert_msg(strstr(ut_last_error(), "UNTANGLE_CPU_GEMM") && strstr(ut_last_error(), "'mkl'") &&
                    strstr(ut_last_error(), "clblast"),
                "the message should name the variable, the value and what is expected: %s", ut_last_error());
}
END_TEST

START_TEST(test_bad_leading_dimension_fails_to_compile) {
  /* lda one short of A's columns: both paths refuse the plan, naming the node. */
  ut_runtime *rt = open_with(_i ? "clblast" : NULL);
  ck_assert_ut_ptr(rt);
  ut_store *st = ut_store_new(rt, 1);
  ut_graph *g = ut_graph_new(rt, st);
  const gemm_case *c = &cases[0];
  ut_tensor *in[3] = { ut_param(g, "c", UT_SHAPE((int64_t)c_len(c)), (ut_init){ UT_INIT_ZERO, 0, 0 }),
                       ut_input(g, "a", UT_F32, UT_SHAPE((int64_t)a_len(c))),
                       ut_input(g, "b", UT_F32, UT_SHAPE((int64_t)b_len(c))) };
  int64_t attr[2] = { 0, (int64_t)c->k - 1 };
  ut_tensor *n = ut_node_new(g, &op_test_gemm, 3, in, attr, 2, NULL, 0);
  ck_assert_ut_ptr(n);
  ck_assert_ptr_null(ut_plan_compile(g, NULL));
  ck_assert_msg(strstr(ut_last_error(), ut_tensor_name(n)), "the message should name node '%s': %s", ut_tensor_name(n),
                ut_last_error());
  if (!_i && expect_host(rt))
    ck_assert_msg(strstr(ut_last_error(), "leading dimension of A is 52"), "unexpected message: %s", ut_last_error());
  ut_graph_free(g);
  ut_store_free(st);
  ut_runtime_close(rt);
}
END_TEST

int main(void) {
  Suite *s = suite_create("host_gemm");
  TCase *tc = tcase_create("gemm");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_paths_match_reference_and_each_other);
  tcase_add_test(tc, test_explicit_openblas_is_the_default);
  tcase_add_test(tc, test_clblast_call_copies_least);
  tcase_add_test(tc, test_unknown_setting_is_refused);
  tcase_add_loop_test(tc, test_bad_leading_dimension_fails_to_compile, 0, 2);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
