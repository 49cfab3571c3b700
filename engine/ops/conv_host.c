/* The convolution passes on the host, for CPU devices whose memory is host memory (the same
 * condition as the host GEMM, host_gemm.h). One host launch per node maps its tensors and
 * works through the batch a chunk at a time, in the order conv_launch.c describes, with the
 * column matrix built by plain C into a workspace small enough to stay in cache, OpenBLAS for
 * the products, and the results written straight into the NCHW tensors:
 *
 *   - a chunk of one image needs no reordering: y_b [O, q] is the GEMM's own output layout,
 *     and dy_b is already the channel-major operand;
 *   - a 1x1, stride-1, unpadded convolution of one image needs no column matrix: x_b is it;
 *   - col2im is a scatter-add in a fixed order (deterministic, no atomics on one thread).
 *
 * Loops that know the stride is 1 and the padding zero copy whole runs of a row (memcpy); the
 * general loops handle strides and reflection. The copies are split by (image, channel) plane
 * over the device's compute units, as OpenBLAS splits the products: one thread alone cannot
 * fill a column matrix as fast as two cores multiply it. Every plane has one writer, so the
 * results do not depend on the split. */
#include <string.h>

#include <cblas.h>

#include "conv_direct.h"
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

/* The output columns [lo, hi) whose tap kj reads inside the row, for stride 1 and zero pad. */
static void inside(const ut_conv_geom *gm, int64_t kj, int64_t *lo, int64_t *hi) {
  *lo = gm->pad - kj > 0 ? gm->pad - kj : 0;
  *hi = gm->w + gm->pad - kj < gm->ow ? gm->w + gm->pad - kj : gm->ow;
  if (*hi < *lo) *hi = *lo;
}

/* The col rows (c, ki, kj) of channel c, `ld` floats apart, columns q of one image. */
static void im2col_plane(float *col, size_t ld, const float *img, int64_t c, const ut_conv_geom *gm) {
  const int64_t ow = gm->ow, simple = gm->stride == 1 && !gm->reflect;
  for (int64_t ki = 0; ki < gm->kh; ki++)
    for (int64_t kj = 0; kj < gm->kw; kj++) {
      float *row = col + (size_t)((c * gm->kh + ki) * gm->kw + kj) * ld;
      int64_t lo = 0, hi = 0;
      if (simple) inside(gm, kj, &lo, &hi);
      for (int64_t oy = 0; oy < gm->oh; oy++) {
        float *dst = row + oy * ow;
        int iy = ut_conv_source(oy * gm->stride + ki - gm->pad, gm->h, gm->reflect);
        if (iy < 0) {
          memset(dst, 0, (size_t)ow * sizeof *dst);
          continue;
        }
        const float *src = img + (size_t)(c * gm->h + iy) * (size_t)gm->w;
        if (simple) {
          memset(dst, 0, (size_t)lo * sizeof *dst);
          memcpy(dst + lo, src + lo + kj - gm->pad, (size_t)(hi - lo) * sizeof *dst);
          memset(dst + hi, 0, (size_t)(ow - hi) * sizeof *dst);
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
 * in a fixed order. */
static void col2im_plane(float *img, const float *col, size_t ld, int64_t c, float bias, const ut_conv_geom *gm) {
  const int64_t ow = gm->ow, simple = gm->stride == 1 && !gm->reflect, plane = gm->h * gm->w;
  float *out = img + c * plane;
  for (int64_t j = 0; j < plane; j++) out[j] = bias;
  for (int64_t ki = 0; ki < gm->kh; ki++)
    for (int64_t kj = 0; kj < gm->kw; kj++) {
      const float *row = col + (size_t)((c * gm->kh + ki) * gm->kw + kj) * ld;
      int64_t lo = 0, hi = 0;
      if (simple) inside(gm, kj, &lo, &hi);
      for (int64_t oy = 0; oy < gm->oh; oy++) {
        int iy = ut_conv_source(oy * gm->stride + ki - gm->pad, gm->h, gm->reflect);
        if (iy < 0) continue;
        float *dst = out + iy * gm->w;
        const float *src = row + oy * ow;
        if (simple) {
          float *d = dst + kj - gm->pad;
          for (int64_t ox = lo; ox < hi; ox++) d[ox] += src[ox];
          continue;
        }
        for (int64_t ox = 0; ox < ow; ox++) {
          int ix = ut_conv_source(ox * gm->stride + kj - gm->pad, gm->w, gm->reflect);
          if (ix >= 0) dst[ix] += src[ox];
        }
      }
    }
}

/* ---- the plane copies of one chunk, split over threads ----------------------------------------- */

typedef enum { IM2COL, COL2IM, TO_BATCH_MAJOR, TO_CHANNEL_MAJOR } copy_kind;

/* One copy over the planes (image i of the chunk, channel k): `images` by `planes` items. */
typedef struct {
  copy_kind kind;
  const ut_conv_geom *gm;
  int64_t images, planes, q; /* q: the floats of one plane of the channel-major side */
  float *dst;
  const float *src, *bias;
} copy_job;

static int copy_items(void *ctx, int64_t lo, int64_t hi) {
  const copy_job *j = ctx;
  const size_t ld = (size_t)(j->images * j->q); /* the channel-major side's row length */
  for (int64_t it = lo; it < hi; it++) {
    int64_t i = it / j->planes, k = it % j->planes;
    float bias = j->bias ? j->bias[k] : 0.0f;
    switch (j->kind) {
    case IM2COL: /* src: the chunk's images; dst: col */
      im2col_plane(j->dst + i * j->q, ld, j->src + i * j->planes * j->gm->h * j->gm->w, k, j->gm);
      break;
    case COL2IM: /* src: col; dst: the chunk's images */
      col2im_plane(j->dst + i * j->planes * j->gm->h * j->gm->w, j->src + i * j->q, ld, k, bias, j->gm);
      break;
    case TO_BATCH_MAJOR: { /* src: t [planes, images*q]; dst: [images, planes, q] */
      float *d = j->dst + (i * j->planes + k) * j->q;
      const float *s = j->src + (size_t)k * ld + (size_t)(i * j->q);
      for (int64_t x = 0; x < j->q; x++) d[x] = s[x] + bias;
      break;
    }
    case TO_CHANNEL_MAJOR: /* the inverse, without bias */
      memcpy(j->dst + (size_t)k * ld + (size_t)(i * j->q), j->src + (i * j->planes + k) * j->q, (size_t)j->q * sizeof(float));
      break;
    }
  }
  return 0;
}

static void copy_parallel(copy_job job, int threads) { ut_host_parallel(threads, job.images * job.planes, copy_items, &job); }

static void add_plane_bias(float *y, const float *bias, int64_t k, int64_t q) {
  for (int64_t i = 0; i < k; i++)
    for (int64_t j = 0; j < q; j++) y[i * q + j] += bias[i];
}

static void sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b, int64_t ldb,
                  float beta, float *c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, 1.0f, a,
              (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

static ut_status run(const void *args, float *const *ptr) {
  const host_conv *hc = args;
  if (hc->ch.direct)
    return ut_conv_direct_run(&hc->gm, hc->o, hc->pass, ptr[OP_FIRST], ptr[OP_SECOND], hc->has_bias ? ptr[OP_BIAS] : NULL,
                              ptr[OP_OUT], hc->threads);
  const ut_conv_geom *gm = &hc->gm;
  const int64_t o = hc->o, q = gm->oh * gm->ow, k = gm->c * gm->kh * gm->kw, img = gm->c * gm->h * gm->w, out = o * q;
  const int direct = gm->kh == 1 && gm->kw == 1 && gm->stride == 1 && gm->pad == 0;
  const float *in0 = ptr[OP_FIRST], *in1 = ptr[OP_SECOND], *bias = hc->has_bias ? ptr[OP_BIAS] : NULL;
  float *dst = ptr[OP_OUT], *col = ptr[OP_WORKSPACE], *t = ptr[OP_WORKSPACE] + hc->ch.t_offset;
  for (int64_t b0 = 0; b0 < gm->b; b0 += hc->ch.images) {
    const int64_t nb = gm->b - b0 < hc->ch.images ? gm->b - b0 : hc->ch.images, cols = nb * q;
    const copy_job chunk = { .gm = gm, .images = nb, .q = q };
    copy_job job = chunk;
    if (hc->pass == UT_CONV_FORWARD) { /* in0 = x, in1 = w */
      const float *c = direct && nb == 1 ? in0 + b0 * img : col;
      job.kind = IM2COL, job.planes = gm->c, job.dst = col, job.src = in0 + b0 * img;
      if (c == col) copy_parallel(job, hc->threads);
      if (nb == 1) {
        sgemm(0, 0, o, q, k, in1, k, c, q, 0.0f, dst + b0 * out, q);
        if (bias) add_plane_bias(dst + b0 * out, bias, o, q);
      } else {
        sgemm(0, 0, o, cols, k, in1, k, c, cols, 0.0f, t, cols);
        job = chunk;
        job.kind = TO_BATCH_MAJOR, job.planes = o, job.dst = dst + b0 * out, job.src = t, job.bias = bias;
        copy_parallel(job, hc->threads);
      }
    } else if (hc->pass == UT_CONV_GRAD_INPUT) { /* in0 = dy, in1 = w */
      const float *dyt = nb == 1 ? in0 + b0 * out : t;
      job.kind = TO_CHANNEL_MAJOR, job.planes = o, job.dst = t, job.src = in0 + b0 * out;
      if (nb > 1) copy_parallel(job, hc->threads);
      if (direct && nb == 1) {
        sgemm(1, 0, k, q, o, in1, k, dyt, q, 0.0f, dst + b0 * img, q);
        if (bias) add_plane_bias(dst + b0 * img, bias, gm->c, q);
        continue;
      }
      sgemm(1, 0, k, cols, o, in1, k, dyt, cols, 0.0f, col, cols);
      job = chunk;
      job.kind = COL2IM, job.planes = gm->c, job.dst = dst + b0 * img, job.src = col, job.bias = bias;
      copy_parallel(job, hc->threads);
    } else { /* in0 = dy, in1 = x */
      const float *c = direct && nb == 1 ? in1 + b0 * img : col;
      job.kind = IM2COL, job.planes = gm->c, job.dst = col, job.src = in1 + b0 * img;
      if (c == col) copy_parallel(job, hc->threads);
      const float *dyt = nb == 1 ? in0 + b0 * out : t;
      job = chunk;
      job.kind = TO_CHANNEL_MAJOR, job.planes = o, job.dst = t, job.src = in0 + b0 * out;
      if (nb > 1) copy_parallel(job, hc->threads);
      sgemm(0, 1, o, k, cols, dyt, cols, c, cols, b0 ? 1.0f : 0.0f, dst, k);
    }
  }
  return UT_OK;
}

ut_status ut_conv_launch_host(ut_plan *p, ut_tensor *n, ut_conv_pass pass, const ut_conv_geom *gm, int64_t o) {
  ut_runtime *rt = ut_plan_runtime(p);
  host_conv hc = { .gm = *gm, .o = o, .pass = pass, .ch = ut_conv_chunks(rt, gm, o), .has_bias = n->n_in > 2,
                   .threads = rt->info.compute_units ? (int)rt->info.compute_units : 1 };
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
