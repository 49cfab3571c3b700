/* The direct convolution's loops (conv_direct.c), written once for a vector width: that file
 * includes this one for each width it builds, with
 *
 *   LANES          floats per vector
 *   FORWARD_OUTS   output channels per forward block (at most 8)
 *   ROW_VECS       vectors of an output row per forward block (2)
 *   OUT_BLOCK      output channels per weight-gradient block (4 or 8)
 *   TAP_BLOCK      neighbouring taps of a kernel row per weight-gradient block (3)
 *   LOOPS(name)    the name's copy for this width
 *   LOOPS_TARGET   the attributes of the two entry points (the instruction set they are built for)
 *
 * and the job struct, padded_h, padded_w and pad_plane defined. The entry points are
 * LOOPS(forward_images) and LOOPS(grad_weight_channels). No include guard: included once per width.
 *
 * Blocks of output columns are computed in vector registers for several output channels at
 * once: the forward pass keeps FORWARD_OUTS x ROW_VECS sums (each load of an input row segment
 * feeds FORWARD_OUTS multiply-adds, each weight ROW_VECS), the weight gradient OUT_BLOCK x
 * TAP_BLOCK (each load of dy feeds TAP_BLOCK taps, each shifted input row OUT_BLOCK outputs).
 * The sums stay in registers across all (c, i, j) taps or all rows instead of going through
 * memory (the loops over a block are unrolled for that, with the counts as constants). */

typedef float LOOPS(vec) __attribute__((vector_size(LANES * sizeof(float))));

/* *v = the n (<= LANES) floats at p, the other lanes zero. Inlined with n == LANES a constant
 * for whole blocks, so those are one unaligned load. (Through a pointer: a returned vector
 * would change the calling convention between the clones.) */
static inline __attribute__((always_inline)) void LOOPS(load)(LOOPS(vec) *v, const float *p, int64_t n) {
  if (n == LANES) {
    memcpy(v, p, sizeof *v);
    return;
  }
  *v = (LOOPS(vec)){ 0 };
  for (int64_t l = 0; l < n; l++) (*v)[l] = p[l];
}

/* The columns [ox, ox + nv * LANES) of output row oy, the last vector holding only `tail` of
 * them, for the o_n output channels from o0 of one image (y: the image's output). Inlined
 * with nv, o_n and the kernel width kw constants, so that acc lives in registers and the
 * loop over a kernel row is unrolled. */
static inline __attribute__((always_inline)) void LOOPS(forward_block)(const job *j, float *y, int64_t o0, int64_t oy, int64_t ox,
                                                                const int64_t nv, int64_t tail, const int64_t o_n,
                                                                const int64_t kw) {
  const ut_conv_geom *gm = j->gm;
  const int64_t hp = padded_h(gm), wp = padded_w(gm), q = gm->oh * gm->ow, stride_o = gm->c * gm->kh * kw;
  const float *w0 = j->in1 + o0 * stride_o;
  LOOPS(vec) acc[FORWARD_OUTS][ROW_VECS];
#pragma GCC unroll 8
  for (int64_t o = 0; o < o_n; o++)
#pragma GCC unroll 2
    for (int64_t v = 0; v < nv; v++) acc[o][v] = (LOOPS(vec)){ 0 } + (j->bias ? j->bias[o0 + o] : 0.0f);
  for (int64_t c = 0; c < gm->c; c++)
    for (int64_t ki = 0; ki < gm->kh; ki++) {
      const float *row = j->pad + c * hp * wp + (oy + ki) * wp + ox;
      const float *w = w0 + (c * gm->kh + ki) * kw;
#pragma GCC unroll 7
      for (int64_t kj = 0; kj < kw; kj++) {
        LOOPS(vec) x[ROW_VECS];
#pragma GCC unroll 2
        for (int64_t v = 0; v < nv; v++) LOOPS(load)(&x[v], row + kj + v * LANES, v == nv - 1 ? tail : LANES);
#pragma GCC unroll 8
        for (int64_t o = 0; o < o_n; o++) {
          const float wt = w[o * stride_o + kj];
#pragma GCC unroll 2
          for (int64_t v = 0; v < nv; v++) acc[o][v] += wt * x[v];
        }
      }
    }
#pragma GCC unroll 8
  for (int64_t o = 0; o < o_n; o++)
#pragma GCC unroll 2
    for (int64_t v = 0; v < nv; v++) {
      float *dst = y + (o0 + o) * q + oy * gm->ow + ox + v * LANES;
      const int64_t n = v == nv - 1 ? tail : LANES;
      if (n == LANES) memcpy(dst, &acc[o][v], sizeof acc[o][v]);
      else
        for (int64_t l = 0; l < n; l++) dst[l] = acc[o][v][l];
    }
}

/* One image's rows for the o_n output channels from o0: blocks of ROW_VECS vectors, then of
 * one, then the row's tail. */
static inline __attribute__((always_inline)) void LOOPS(forward_rows_kw)(const job *j, float *y, int64_t o0, const int64_t o_n,
                                                                  const int64_t kw) {
  const int64_t ow = j->gm->ow;
  for (int64_t oy = 0; oy < j->gm->oh; oy++) {
    int64_t ox = 0;
    for (; ox + ROW_VECS * LANES <= ow; ox += ROW_VECS * LANES) LOOPS(forward_block)(j, y, o0, oy, ox, ROW_VECS, LANES, o_n, kw);
    for (; ox + LANES <= ow; ox += LANES) LOOPS(forward_block)(j, y, o0, oy, ox, 1, LANES, o_n, kw);
    if (ox < ow) LOOPS(forward_block)(j, y, o0, oy, ox, 1, ow - ox, o_n, kw);
  }
}

/* The generator's kernel widths, 3 and 5, as constants (a kernel row's loop then unrolls),
 * others as they come (for 7x7 the constant measured no faster). Every constant multiplies the
 * inlined blocks, 6 output counts x 3 row blocks x 2 clones each; with sanitizers that code
 * took clang over ten minutes to compile, so sanitized builds run every width through the
 * general loop (the same source, with the width a variable). */
static inline __attribute__((always_inline)) void LOOPS(forward_rows)(const job *j, float *y, int64_t o0, const int64_t o_n) {
#if !UT_CONV_SANITIZED
  switch (j->gm->kw) {
  case 3: LOOPS(forward_rows_kw)(j, y, o0, o_n, 3); return;
  case 5: LOOPS(forward_rows_kw)(j, y, o0, o_n, 5); return;
  default: break;
  }
#endif
  LOOPS(forward_rows_kw)(j, y, o0, o_n, j->gm->kw);
}

LOOPS_TARGET static void LOOPS(forward_images)(job *j) {
  const ut_conv_geom *gm = j->gm;
  const int64_t hp = padded_h(gm), wp = padded_w(gm), q = gm->oh * gm->ow;
  for (int64_t b = j->lo; b < j->hi; b++) {
    for (int64_t c = 0; c < gm->c; c++) pad_plane(j->pad + c * hp * wp, j->in0 + (b * gm->c + c) * gm->h * gm->w, gm);
    float *y = j->out + b * j->o * q;
    for (int64_t o0 = 0; o0 < j->o; o0 += FORWARD_OUTS) {
      switch (j->o - o0 < FORWARD_OUTS ? j->o - o0 : FORWARD_OUTS) {
      case 1: LOOPS(forward_rows)(j, y, o0, 1); break;
      case 2: LOOPS(forward_rows)(j, y, o0, 2); break;
      case 3: LOOPS(forward_rows)(j, y, o0, 3); break;
      case 4: LOOPS(forward_rows)(j, y, o0, 4); break;
      case 5: LOOPS(forward_rows)(j, y, o0, 5); break;
      case 6: LOOPS(forward_rows)(j, y, o0, 6); break;
#if FORWARD_OUTS > 6
      case 7: LOOPS(forward_rows)(j, y, o0, 7); break;
      case 8: LOOPS(forward_rows)(j, y, o0, 8); break;
#endif
      }
    }
  }
}

/* acc[o][t] += dy[o] times the padded row shifted by t, over the n <= LANES columns from ox.
 * The shifted rows are loaded once and each dy row as it is used, so the sums and the operands
 * take OUT_BLOCK x TAP_BLOCK + TAP_BLOCK + 1 registers. */
static inline __attribute__((always_inline)) void LOOPS(tap_block)(LOOPS(vec) acc[OUT_BLOCK][TAP_BLOCK], const float *xr,
                                                                   const float *gr, int64_t q, int64_t ox, const int64_t n,
                                                                   const int64_t o_n, const int64_t t_n) {
  LOOPS(vec) x[TAP_BLOCK];
#pragma GCC unroll 3
  for (int64_t t = 0; t < t_n; t++) LOOPS(load)(&x[t], xr + ox + t, n);
#pragma GCC unroll 8
  for (int64_t o = 0; o < o_n; o++) {
    LOOPS(vec) g;
    LOOPS(load)(&g, gr + o * q + ox, n);
#pragma GCC unroll 3
    for (int64_t t = 0; t < t_n; t++) acc[o][t] += g * x[t];
  }
}

/* The vector sums s[o, t] (o < o_n output channels `stride_o` vectors apart, t < t_n
 * neighbouring taps of one kernel row) += dy[o] times the padded plane shifted to x0 + t (x0:
 * the first tap's origin), over one image, lane by lane. Inlined with o_n and t_n constants, as
 * forward_block. The lanes are summed once, after the last image (grad_weight_channels): summed
 * here, for every image, the 16-float loops spent about as long extracting lanes as multiplying. */
static inline __attribute__((always_inline)) void LOOPS(tap_sums)(const ut_conv_geom *gm, const float *x0, const float *dy,
                                                                  float *s, const int64_t stride_o, const int64_t o_n,
                                                                  const int64_t t_n) {
  const int64_t wp = padded_w(gm), q = gm->oh * gm->ow;
  const int64_t whole = gm->ow / LANES * LANES;
  LOOPS(vec) acc[OUT_BLOCK][TAP_BLOCK];
#pragma GCC unroll 8
  for (int64_t o = 0; o < o_n; o++)
#pragma GCC unroll 3
    for (int64_t t = 0; t < t_n; t++) memcpy(&acc[o][t], s + (o * stride_o + t) * LANES, sizeof acc[o][t]);
  for (int64_t oy = 0; oy < gm->oh; oy++) {
    const float *xr = x0 + oy * wp, *gr = dy + oy * gm->ow;
    for (int64_t ox = 0; ox < whole; ox += LANES) LOOPS(tap_block)(acc, xr, gr, q, ox, LANES, o_n, t_n);
    if (whole < gm->ow) LOOPS(tap_block)(acc, xr, gr, q, whole, gm->ow - whole, o_n, t_n);
  }
#pragma GCC unroll 8
  for (int64_t o = 0; o < o_n; o++)
#pragma GCC unroll 3
    for (int64_t t = 0; t < t_n; t++) memcpy(s + (o * stride_o + t) * LANES, &acc[o][t], sizeof acc[o][t]);
}

/* Items are input channels c: each thread owns dw[:, c] and sums over the batch in order. For
 * each block of output channels and of taps the products are summed in vector registers over
 * all rows of an image and added to the share's vector sums (j->sums: [o, share's c, taps] of
 * LANES floats, zeroed), whose lanes are summed in a fixed order after the last image. Images
 * are the outer loop, so that one image's output gradient (128 KB for 32 channels at 32x32)
 * stays in the core's cache for all of the share's channels (with channels outside, the whole
 * batch's went through it once per channel: 0.93-0.94 of the time single-threaded at LORD's
 * 32x32 layers). */
LOOPS_TARGET static void LOOPS(grad_weight_channels)(job *j) {
  const ut_conv_geom *gm = j->gm;
  const int64_t wp = padded_w(gm), q = gm->oh * gm->ow, taps = gm->kh * gm->kw, share = j->hi - j->lo;
  float *xp = j->pad;
  for (int64_t b = 0; b < gm->b; b++) {
    for (int64_t c = j->lo; c < j->hi; c++) {
      pad_plane(xp, j->in1 + (b * gm->c + c) * gm->h * gm->w, gm);
      for (int64_t o0 = 0; o0 < j->o; o0 += OUT_BLOCK) {
        const float *dy = j->in0 + (b * j->o + o0) * q;
        const int64_t o_n = j->o - o0 < OUT_BLOCK ? j->o - o0 : OUT_BLOCK;
        for (int64_t ki = 0; ki < gm->kh; ki++)
          for (int64_t kj = 0; kj < gm->kw; kj += TAP_BLOCK) {
            const float *x0 = xp + ki * wp + kj;
            float *s = j->sums + ((o0 * share + c - j->lo) * taps + ki * gm->kw + kj) * LANES;
            const int64_t t_n = gm->kw - kj < TAP_BLOCK ? gm->kw - kj : TAP_BLOCK;
#define TAP_CASE(O, T) \
  case ((O)-1) * TAP_BLOCK + (T)-1: LOOPS(tap_sums)(gm, x0, dy, s, share * taps, O, T); break;
            switch ((o_n - 1) * TAP_BLOCK + t_n - 1) {
              TAP_CASE(1, 1) TAP_CASE(1, 2) TAP_CASE(1, 3) TAP_CASE(2, 1) TAP_CASE(2, 2) TAP_CASE(2, 3)
              TAP_CASE(3, 1) TAP_CASE(3, 2) TAP_CASE(3, 3) TAP_CASE(4, 1) TAP_CASE(4, 2) TAP_CASE(4, 3)
#if OUT_BLOCK > 4
              TAP_CASE(5, 1) TAP_CASE(5, 2) TAP_CASE(5, 3) TAP_CASE(6, 1) TAP_CASE(6, 2) TAP_CASE(6, 3)
              TAP_CASE(7, 1) TAP_CASE(7, 2) TAP_CASE(7, 3) TAP_CASE(8, 1) TAP_CASE(8, 2) TAP_CASE(8, 3)
#endif
            }
#undef TAP_CASE
          }
      }
    }
  }
  for (int64_t o = 0; o < j->o; o++)
    for (int64_t c = j->lo; c < j->hi; c++)
      for (int64_t t = 0; t < taps; t++) {
        const float *v = j->sums + ((o * share + c - j->lo) * taps + t) * LANES;
        float sum = 0.0f;
        for (int l = 0; l < LANES; l++) sum += v[l];
        j->out[(o * gm->c + c) * taps + t] = sum;
      }
}
