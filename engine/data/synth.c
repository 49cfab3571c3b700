/* The built-in rendered data set: an analytic ray caster over a handful of axis-aligned
 * primitives (ellipsoids, boxes, cylinders) that together make one object, lit by a key light
 * fixed to the camera, with a little specular, 2x2 supersampled, on a light-grey background.
 *
 * Why a ray caster and not a ray marcher: every primitive has a closed-form entry point, so a
 * sample costs a few dozen flops per primitive it may hit (a conservative screen rectangle per
 * primitive rejects the rest), and 100 classes x 96 views at 64x64 render in seconds.
 *
 * Determinism: the only libm calls are sqrt, floor and fabs, which IEEE 754 requires to be
 * exact (correctly rounded), and the pose's sine and cosine come from our own series in double, so
 * the bytes depend on nothing but IEEE single/double arithmetic in the order written here. That
 * needs multiply-add contraction off: GCC's default in ISO C mode (-std=c11, as the build uses);
 * clang gets the pragma below. (A target that evaluates float in extended precision, such as
 * 32-bit x87, could still differ in the last bit of an intermediate.)
 *
 * Object space: x is the object's length (its front, with the accent-coloured nose, at +x),
 * y is up, z is its width. The whole object is centred and scaled so a unit sphere at the origin
 * holds it, and the camera frames that sphere, so every pose of every class fits the image. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "philox.h"
#include "untangle.h"
#include "untangle_data.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define SYNTH_MAX_PRIMS 8
#define SYNTH_UNIFORMS 48
#define SYNTH_MAX_SIZE 4096
/* Camera distance from the origin, and tan of half the field of view: a unit sphere subtends
 * asin(1 / 3.5) = 16.6 degrees (tan 0.298), framed with about 6% margin. */
#define SYNTH_CAMERA_DIST 3.5f
#define SYNTH_TAN_HALF 0.316f
/* The plain light-grey background, as bytes so corners are exactly this colour. */
#define SYNTH_BG 200
/* Elevations (degrees) of the views: evenly spaced in [LO, HI] when there are several, MID when
 * there is one. */
#define SYNTH_ELEV_LO 10.0
#define SYNTH_ELEV_HI 40.0
#define SYNTH_ELEV_MID 20.0
#define SYNTH_AZIMUTHS 24
/* The Philox run of class c is this tag | c, so the identities never share a stream with other
 * users of the same seed. */
#define SYNTH_RUN_TAG 0x53594e5400000000ull /* "SYNT" */

enum { PRIM_ELLIPSOID, PRIM_BOX, PRIM_CYLINDER };
enum { MAT_BODY, MAT_CABIN, MAT_ACCENT, MAT_WHEEL, MAT_COUNT };
enum { PAT_PLAIN, PAT_STRIPES_X, PAT_STRIPES_Y, PAT_CHECKS, PAT_DOTS, PAT_BAND, PAT_COUNT };

typedef struct {
  int type, axis, mat; /* axis: a cylinder's axis (0 x, 1 y, 2 z) */
  float c[3], h[3];    /* centre and half extents (the radii across a cylinder's axis) */
} prim;

typedef struct {
  prim p[SYNTH_MAX_PRIMS];
  int n;
  float color[MAT_COUNT][3];
  float pattern_color[3];
  int pattern;
  float freq, band, ks;
} object;

/* One primitive seen from one camera: everything that does not depend on the ray. */
typedef struct {
  const prim *p;
  float inv_h[3];
  float oh[3];     /* (eye - c) / h: the eye in the primitive's unit space */
  float cc;        /* |oh|^2 - 1 over the quadric's axes */
  float lo[3], hi[3]; /* slab planes relative to the eye: c - h - eye, c + h - eye */
  float rect[4];   /* conservative screen rectangle: x0, x1, y0, y1 in tan units */
} prepared;

typedef struct {
  float eye[3], fwd[3], right[3], up[3], light[3];
  prepared pp[SYNTH_MAX_PRIMS];
  int n;
  float rect[4]; /* union of the primitives' rectangles */
} scene;

/* ---- deterministic trigonometry ------------------------------------------------------------ */

/* sin and cos of 2 pi * turns: reduction to [-pi/4, pi/4] around the nearest quarter turn,
 * then Taylor series to x^17 in Horner form (error below 1e-16 there). Plain double arithmetic
 * in a fixed order, so the same bits everywhere, unlike libm's sin/cos. */
static void sincos_turns(double turns, double *s, double *c) {
  double q4 = (turns - floor(turns)) * 4.0; /* quarter turns in [0, 4) */
  double q = floor(q4 + 0.5);
  double x = (q4 - q) * 1.57079632679489661923;
  double x2 = x * x;
  double sn = x * (1.0 + x2 * (-1.0 / 6 + x2 * (1.0 / 120 + x2 * (-1.0 / 5040 + x2 * (1.0 / 362880 +
              x2 * (-1.0 / 39916800 + x2 * (1.0 / 6227020800.0 + x2 * (-1.0 / 1307674368000.0 +
              x2 * (1.0 / 355687428096000.0)))))))));
  double cs = 1.0 + x2 * (-1.0 / 2 + x2 * (1.0 / 24 + x2 * (-1.0 / 720 + x2 * (1.0 / 40320 +
              x2 * (-1.0 / 3628800 + x2 * (1.0 / 479001600.0 + x2 * (-1.0 / 87178291200.0 +
              x2 * (1.0 / 20922789888000.0))))))));
  switch ((int)q & 3) {
  case 0: *s = sn; *c = cs; break;
  case 1: *s = cs; *c = -sn; break;
  case 2: *s = -sn; *c = -cs; break;
  default: *s = -cs; *c = sn; break;
  }
}

/* Views are A azimuths x E elevations, azimuth fastest: view = e * A + a. A = 24 (every 15
 * degrees, as Cars3D) when views is a multiple of 24, and E = views / 24 elevations evenly from
 * 10 to 40 degrees (one elevation: 20); otherwise A = views azimuths, evenly over the full turn,
 * at 20 degrees. Angles as turns (fractions of 360 degrees), exact rationals rounded once. */
static int view_turns(int views, int view, double *az_turns, double *el_turns) {
  if (views < 1 || view < 0 || view >= views) return 0;
  int na = views % SYNTH_AZIMUTHS == 0 ? SYNTH_AZIMUTHS : views;
  int ne = views / na;
  int ia = view % na, ie = view / na;
  *az_turns = (double)ia / (double)na;
  double el = ne == 1 ? SYNTH_ELEV_MID
                      : SYNTH_ELEV_LO + (SYNTH_ELEV_HI - SYNTH_ELEV_LO) * (double)ie / (double)(ne - 1);
  *el_turns = el / 360.0;
  return 1;
}

void ut_synth_view_angles(int views, int view, float *azimuth_deg, float *elevation_deg) {
  double az = 0.0, el = 0.0; /* left as they are for an invalid view */
  view_turns(views, view, &az, &el);
  if (azimuth_deg) *azimuth_deg = (float)(az * 360.0);
  if (elevation_deg) *elevation_deg = (float)(el * 360.0);
}

/* ---- the object of one class --------------------------------------------------------------- */

/* fminf / fmaxf are calls into libm unless NaNs are ruled out; these inline (no NaNs arise). */
static inline float minf(float a, float b) { return a < b ? a : b; }
static inline float maxf(float a, float b) { return a > b ? a : b; }

static float lerp(float a, float b, float u) { return a + (b - a) * u; }

static int pick(float u, int n) {
  int k = (int)(u * (float)n);
  return k < n ? k : n - 1;
}

/* HSV (all in [0, 1]) to RGB, the usual six sectors. */
static void hsv_rgb(float h, float s, float v, float rgb[3]) {
  h = (h - floorf(h)) * 6.0f;
  int k = pick(h / 6.0f, 6);
  float f = h - (float)k;
  float p = v * (1.0f - s), q = v * (1.0f - s * f), t = v * (1.0f - s * (1.0f - f));
  const float tab[6][3] = { { v, t, p }, { q, v, p }, { p, v, t }, { p, q, v }, { t, p, v }, { v, p, q } };
  for (int i = 0; i < 3; i++) rgb[i] = tab[k][i];
}

static prim *add_prim(object *o, int type, int axis, int mat, float cx, float cy, float cz, float hx, float hy,
                      float hz) {
  prim *p = &o->p[o->n++];
  p->type = type;
  p->axis = axis;
  p->mat = mat;
  p->c[0] = cx, p->c[1] = cy, p->c[2] = cz;
  p->h[0] = hx, p->h[1] = hy, p->h[2] = hz;
  return p;
}

/* An upper bound on the distance from `centre` to the primitive, as tight as is cheap: exact
 * for boxes (the farthest corner) and for ellipsoids and cylinders centred on it. */
static float prim_reach(const prim *p, const float centre[3]) {
  float a[3], h2 = 0.0f;
  for (int k = 0; k < 3; k++) a[k] = fabsf(p->c[k] - centre[k]);
  if (p->type == PRIM_BOX) {
    for (int k = 0; k < 3; k++) h2 += (a[k] + p->h[k]) * (a[k] + p->h[k]);
    return sqrtf(h2);
  }
  if (p->type == PRIM_ELLIPSOID)
    return sqrtf(a[0] * a[0] + a[1] * a[1] + a[2] * a[2]) + maxf(p->h[0], maxf(p->h[1], p->h[2]));
  int i = (p->axis + 1) % 3, j = (p->axis + 2) % 3;
  float along = a[p->axis] + p->h[p->axis], across = sqrtf(a[i] * a[i] + a[j] * a[j]) + maxf(p->h[i], p->h[j]);
  return sqrtf(along * along + across * across);
}

/* The identity of a class: a body (ellipsoid, box or lengthwise cylinder) with a texture
 * pattern in two colours, a cabin on top set forward or back, an accent-coloured nose at the
 * front and maybe a tail fin, maybe four dark wheels. The cabin's offset, the nose and the fin
 * break the front/back symmetry so that a half turn changes the image. */
static void build_object(uint64_t seed, int class_id, object *o) {
  float u[SYNTH_UNIFORMS];
  ut_philox_fill_uniform(seed, SYNTH_RUN_TAG | (uint64_t)(uint32_t)class_id, 0, u, SYNTH_UNIFORMS);
  o->n = 0;

  /* Body: an ellipsoid, box or lengthwise cylinder of half-length 1 before normalisation. */
  float bh = lerp(0.22f, 0.44f, u[1]), bw = lerp(0.32f, 0.58f, u[2]);
  add_prim(o, pick(u[0], 3), 0, MAT_BODY, 0, 0, 0, 1.0f, bh, bw);

  /* Cabin (none, ellipsoid, box or upright cylinder), off-centre along x. */
  int cabin = pick(u[3], 4);
  float side = u[8] < 0.5f ? -1.0f : 1.0f;
  if (cabin > 0) {
    float cl = lerp(0.25f, 0.50f, u[4]), ch = lerp(0.14f, 0.32f, u[5]), cw = bw * lerp(0.55f, 0.92f, u[6]);
    float cx = side * lerp(0.18f, 0.45f, u[7]);
    float cy = bh + ch * 0.55f;
    if (cabin == 1) add_prim(o, PRIM_ELLIPSOID, 0, MAT_CABIN, cx, cy, 0, cl, ch * 1.2f, cw);
    if (cabin == 2) add_prim(o, PRIM_BOX, 0, MAT_CABIN, cx, cy, 0, cl, ch, cw);
    if (cabin == 3) add_prim(o, PRIM_CYLINDER, 1, MAT_CABIN, cx, cy, 0, cl * 0.8f, ch, cl * 0.8f);
  }

  /* Nose at the front end, accent colour. */
  float nr = lerp(0.12f, 0.24f, u[9]);
  add_prim(o, PRIM_ELLIPSOID, 0, MAT_ACCENT, 1.0f, bh * lerp(-0.2f, 0.4f, u[10]), 0, nr, bh * lerp(0.45f, 0.8f, u[10]),
           bw * lerp(0.35f, 0.75f, u[9]));

  /* Tail fin at the back: always when there is no cabin, so every class has a front and a back. */
  if (cabin == 0 || u[11] < 0.5f) {
    float fh = lerp(0.18f, 0.38f, u[12]);
    add_prim(o, PRIM_BOX, 0, MAT_ACCENT, -0.82f, bh + fh * 0.5f, 0, lerp(0.08f, 0.16f, u[12]), fh * 0.5f + 0.04f,
             lerp(0.03f, 0.06f, u[11]));
  }

  /* Wheels: cylinders across the width under the body's front and back quarters. */
  if (u[13] < 0.6f) {
    float wr = lerp(0.16f, 0.28f, u[14]), ww = lerp(0.06f, 0.11f, u[14]);
    for (int i = 0; i < 4; i++) {
      float wx = (i & 1) ? 0.62f : -0.62f, wz = (i & 2) ? bw - ww * 0.3f : -(bw - ww * 0.3f);
      add_prim(o, PRIM_CYLINDER, 2, MAT_WHEEL, wx, -bh, wz, wr, wr, ww);
    }
  }

  /* Centre the bounding box at the origin, then scale so the unit sphere holds the object. */
  float lo[3] = { 1e30f, 1e30f, 1e30f }, hi[3] = { -1e30f, -1e30f, -1e30f };
  for (int i = 0; i < o->n; i++)
    for (int k = 0; k < 3; k++) {
      lo[k] = minf(lo[k], o->p[i].c[k] - o->p[i].h[k]);
      hi[k] = maxf(hi[k], o->p[i].c[k] + o->p[i].h[k]);
    }
  float mid[3] = { (lo[0] + hi[0]) * 0.5f, (lo[1] + hi[1]) * 0.5f, (lo[2] + hi[2]) * 0.5f };
  float reach = 0.0f;
  for (int i = 0; i < o->n; i++) reach = maxf(reach, prim_reach(&o->p[i], mid));
  float scale = 1.0f / reach;
  for (int i = 0; i < o->n; i++)
    for (int k = 0; k < 3; k++) {
      o->p[i].c[k] = (o->p[i].c[k] - mid[k]) * scale;
      o->p[i].h[k] *= scale;
    }

  /* Colours: a saturated body colour, a pattern colour at least 0.2 turns of hue away (or much
   * darker / lighter), a cabin colour, an accent and a dark wheel grey. */
  float hue = u[17];
  hsv_rgb(hue, lerp(0.55f, 0.95f, u[18]), lerp(0.60f, 0.95f, u[19]), o->color[MAT_BODY]);
  if (u[20] < 0.7f)
    hsv_rgb(hue + lerp(0.2f, 0.8f, u[21]), lerp(0.4f, 0.9f, u[22]), lerp(0.5f, 0.95f, u[23]), o->pattern_color);
  else
    hsv_rgb(hue, lerp(0.0f, 0.3f, u[22]), u[21] < 0.5f ? lerp(0.08f, 0.2f, u[23]) : lerp(0.9f, 1.0f, u[23]),
            o->pattern_color);
  hsv_rgb(u[24], lerp(0.2f, 0.8f, u[25]), lerp(0.35f, 0.95f, u[26]), o->color[MAT_CABIN]);
  hsv_rgb(u[27], lerp(0.7f, 1.0f, u[28]), lerp(0.85f, 1.0f, u[29]), o->color[MAT_ACCENT]);
  float g = lerp(0.10f, 0.22f, u[30]);
  o->color[MAT_WHEEL][0] = o->color[MAT_WHEEL][1] = o->color[MAT_WHEEL][2] = g;

  o->pattern = pick(u[15], PAT_COUNT);
  o->freq = lerp(2.5f, 5.0f, u[16]); /* pattern cells per unit of the normalised object */
  o->band = lerp(0.08f, 0.2f, u[31]);
  o->ks = lerp(0.05f, 0.45f, u[32]);
}

/* ---- the camera and the primitives as it sees them ----------------------------------------- */

static float dot3(const float a[3], const float b[3]) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

/* Conservative screen rectangle of a sphere (centre relative to the eye in camera coordinates
 * x right, y up, z forward, radius r, z - r > 0): over the sphere's bounding box the ratios
 * X / Z and Y / Z take their extremes at corners. */
static void sphere_rect(float x, float y, float z, float r, float rect[4]) {
  const float m = 1e-4f; /* margin for rounding */
  float zn = z - r, zf = z + r;
  rect[0] = minf((x - r) / zn, (x - r) / zf) - m;
  rect[1] = maxf((x + r) / zn, (x + r) / zf) + m;
  rect[2] = minf((y - r) / zn, (y - r) / zf) - m;
  rect[3] = maxf((y + r) / zn, (y + r) / zf) + m;
}

static void prepare_scene(const object *o, double az_turns, double el_turns, scene *sc) {
  double sa_d, ca_d, se_d, ce_d;
  sincos_turns(az_turns, &sa_d, &ca_d);
  sincos_turns(el_turns, &se_d, &ce_d);
  float sa = (float)sa_d, ca = (float)ca_d, se = (float)se_d, ce = (float)ce_d;
  /* The camera sits on the sphere of radius SYNTH_CAMERA_DIST in direction w and looks at the
   * origin; azimuth 0 faces the object's front (+x), azimuth 90 its +z (right-hand) side.
   * right = fwd x up normalised, which for this w is exactly (sin a, 0, -cos a); up = right x fwd. */
  const float w[3] = { ce * ca, se, ce * sa };
  for (int k = 0; k < 3; k++) {
    sc->eye[k] = SYNTH_CAMERA_DIST * w[k];
    sc->fwd[k] = -w[k];
  }
  sc->right[0] = sa, sc->right[1] = 0.0f, sc->right[2] = -ca;
  sc->up[0] = -ca * se, sc->up[1] = ce, sc->up[2] = -sa * se;
  /* Key light fixed to the camera: from the upper left, a little in front. */
  float l[3];
  for (int k = 0; k < 3; k++) l[k] = -0.45f * sc->right[k] + 0.75f * sc->up[k] + 0.5f * w[k];
  float il = 1.0f / sqrtf(dot3(l, l));
  for (int k = 0; k < 3; k++) sc->light[k] = l[k] * il;

  sc->n = o->n;
  sc->rect[0] = sc->rect[2] = 1e30f;
  sc->rect[1] = sc->rect[3] = -1e30f;
  for (int i = 0; i < o->n; i++) {
    const prim *p = &o->p[i];
    prepared *q = &sc->pp[i];
    q->p = p;
    float rel[3], rad2 = 0.0f, hmax = maxf(p->h[0], maxf(p->h[1], p->h[2]));
    q->cc = -1.0f;
    for (int k = 0; k < 3; k++) {
      q->inv_h[k] = 1.0f / p->h[k];
      q->oh[k] = (sc->eye[k] - p->c[k]) * q->inv_h[k];
      if (p->type != PRIM_CYLINDER || k != p->axis) q->cc += q->oh[k] * q->oh[k];
      q->lo[k] = p->c[k] - p->h[k] - sc->eye[k];
      q->hi[k] = p->c[k] + p->h[k] - sc->eye[k];
      rel[k] = p->c[k] - sc->eye[k];
      rad2 += p->h[k] * p->h[k];
    }
    float rad = p->type == PRIM_ELLIPSOID ? hmax : sqrtf(rad2); /* a box's corner bounds a cylinder too */
    sphere_rect(dot3(rel, sc->right), dot3(rel, sc->up), dot3(rel, sc->fwd), rad, q->rect);
    sc->rect[0] = minf(sc->rect[0], q->rect[0]);
    sc->rect[1] = maxf(sc->rect[1], q->rect[1]);
    sc->rect[2] = minf(sc->rect[2], q->rect[2]);
    sc->rect[3] = maxf(sc->rect[3], q->rect[3]);
  }
}

/* ---- ray casting --------------------------------------------------------------------------- */

/* Entry distance (in units of the unnormalised direction d) of the ray eye + t d into the
 * primitive if it is in (0, tmax), with the outward normal there (unnormalised); 0 if none. The
 * eye is outside every primitive, so the entry point is the visible one. */
static int intersect(const prepared *q, const float d[3], const float inv_d[3], float tmax, float *t_out,
                     float n[3]) {
  const prim *p = q->p;
  if (p->type == PRIM_BOX) {
    float tn = -1e30f, tf = 1e30f;
    int axis = 0;
    for (int k = 0; k < 3; k++) {
      float t1 = q->lo[k] * inv_d[k], t2 = q->hi[k] * inv_d[k];
      float a = minf(t1, t2), b = maxf(t1, t2);
      if (a > tn) tn = a, axis = k;
      if (b < tf) tf = b;
    }
    if (tn > tf || tn <= 0.0f || tn >= tmax) return 0;
    n[0] = n[1] = n[2] = 0.0f;
    n[axis] = d[axis] > 0.0f ? -1.0f : 1.0f;
    *t_out = tn;
    return 1;
  }
  float dh[3] = { d[0] * q->inv_h[0], d[1] * q->inv_h[1], d[2] * q->inv_h[2] };
  int ax = p->type == PRIM_CYLINDER ? p->axis : -1;
  float a = 0.0f, b = 0.0f;
  for (int k = 0; k < 3; k++)
    if (k != ax) {
      a += dh[k] * dh[k];
      b += q->oh[k] * dh[k];
    }
  float disc = b * b - a * q->cc;
  if (disc < 0.0f || a < 1e-12f) return 0;
  float sq = sqrtf(disc);
  float t = (-b - sq) / a;
  int cap = 0;
  if (ax >= 0) {
    float t1 = q->lo[ax] * inv_d[ax], t2 = q->hi[ax] * inv_d[ax];
    float s0 = minf(t1, t2), s1 = maxf(t1, t2);
    float exit = minf((-b + sq) / a, s1);
    if (s0 > t) t = s0, cap = 1;
    if (t > exit) return 0;
  }
  if (t <= 0.0f || t >= tmax) return 0;
  if (cap) {
    n[0] = n[1] = n[2] = 0.0f;
    n[ax] = d[ax] > 0.0f ? -1.0f : 1.0f;
  } else {
    /* the gradient of the quadric: (local point) / h, with no axial part for a cylinder */
    for (int k = 0; k < 3; k++) n[k] = k == ax ? 0.0f : (q->oh[k] + t * dh[k]) * q->inv_h[k];
  }
  *t_out = t;
  return 1;
}

static int parity(float x) { return (int)floorf(x) & 1; }

/* The body's texture in object space, so it turns with the object: 1 where the pattern colour
 * shows. */
static int pattern_at(const object *o, const float x[3]) {
  float f = o->freq;
  switch (o->pattern) {
  case PAT_STRIPES_X: return parity(x[0] * f);
  case PAT_STRIPES_Y: return parity(x[1] * f * 1.5f);
  case PAT_CHECKS: return ((int)floorf(x[0] * f) + (int)floorf(x[1] * f) + (int)floorf(x[2] * f)) & 1;
  case PAT_DOTS: {
    float s = 0.0f;
    for (int k = 0; k < 3; k++) {
      float c = x[k] * f * 1.3f;
      c = c - floorf(c) - 0.5f;
      s += c * c;
    }
    return s < 0.1f;
  }
  case PAT_BAND: return fabsf(x[2]) < o->band || fabsf(x[0] + 0.35f) < o->band * 0.6f;
  default: return 0;
  }
}

/* What the ray through screen position (sx, sy) (tan units) hits: the geometry every look shares. */
typedef struct {
  int hit;     /* index into the scene's primitives, -1 for the background */
  int pattern; /* the body's texture shows here */
  float t;     /* entry distance in units of d */
  float n[3];  /* outward normal, unnormalised */
  float d[3];  /* the ray's direction, unnormalised */
} sample;

static int trace(const object *o, const scene *sc, float sx, float sy, sample *sm) {
  sm->hit = -1;
  sm->pattern = 0;
  if (sx < sc->rect[0] || sx > sc->rect[1] || sy < sc->rect[2] || sy > sc->rect[3]) return 0;
  float *d = sm->d, inv_d[3];
  for (int k = 0; k < 3; k++) {
    d[k] = sc->fwd[k] + sx * sc->right[k] + sy * sc->up[k];
    inv_d[k] = d[k] == 0.0f ? 1e30f : 1.0f / d[k];
  }
  float best = 1e30f;
  for (int i = 0; i < sc->n; i++) {
    const prepared *q = &sc->pp[i];
    if (sx < q->rect[0] || sx > q->rect[1] || sy < q->rect[2] || sy > q->rect[3]) continue;
    float t, ni[3];
    if (intersect(q, d, inv_d, best, &t, ni)) {
      best = t, sm->hit = i;
      sm->n[0] = ni[0], sm->n[1] = ni[1], sm->n[2] = ni[2];
    }
  }
  if (sm->hit < 0) return 0;
  sm->t = best;
  if (sc->pp[sm->hit].p->mat == MAT_BODY) {
    float x[3];
    for (int k = 0; k < 3; k++) x[k] = sc->eye[k] + best * d[k];
    sm->pattern = pattern_at(o, x);
  }
  return 1;
}

/* The day look's colour of a hit sample: the original shading, operation for operation. */
static void shade_day(const object *o, const scene *sc, const sample *sm, float rgb[3]) {
  const prim *p = sc->pp[sm->hit].p;
  const float *alb = sm->pattern ? o->pattern_color : o->color[p->mat];
  float n[3] = { sm->n[0], sm->n[1], sm->n[2] };
  const float *d = sm->d;
  float in = 1.0f / sqrtf(dot3(n, n)), id = 1.0f / sqrtf(dot3(d, d));
  float hv[3];
  for (int k = 0; k < 3; k++) {
    n[k] *= in;
    hv[k] = sc->light[k] - d[k] * id;
  }
  float ih = 1.0f / sqrtf(dot3(hv, hv));
  float ndl = maxf(0.0f, dot3(n, sc->light)), ndh = maxf(0.0f, dot3(n, hv) * ih);
  float spec = ndh * ndh; /* ndh^32 by squaring */
  spec *= spec;
  spec *= spec;
  spec *= spec;
  spec *= spec;
  spec *= p->mat == MAT_WHEEL ? 0.1f : o->ks;
  float light = 0.26f + 0.08f * n[1] + 0.76f * ndl; /* sky-tinted ambient plus Lambert */
  for (int k = 0; k < 3; k++) rgb[k] = alb[k] * light + spec;
}

static uint8_t to_byte(float v) {
  v = minf(maxf(v, 0.0f), 1.0f);
  return (uint8_t)(int)(v * 255.0f + 0.5f);
}

/* ---- looks (domains) ----------------------------------------------------------------------- */

/* The lit looks other than day: the same hits, shaded under other lights. A key light in a
 * direction fixed to the camera (coefficients on right, up and the view direction w), an
 * optional lamp (a point light at a position fixed to the camera, with 1 / (1 + f r^2)
 * fall-off), a flat ambient term plus a sky term along the normal's y, and albedos pulled
 * towards their grey by `desat` (colours fade in dim light). */
typedef struct {
  uint8_t bg[3];
  float ambient[3], sky[3];
  float key[3], key_dir[3];
  float lamp[3], lamp_pos[3], lamp_falloff;
  float desat;
} synth_look;

static const synth_look synth_looks[UT_SYNTH_DOMAIN_COUNT] = {
  [UT_SYNTH_DAY] = { .bg = { SYNTH_BG, SYNTH_BG, SYNTH_BG } }, /* shaded by shade_day */
  [UT_SYNTH_NIGHT] = { .bg = { 16, 20, 38 },
                       .ambient = { 0.045f, 0.055f, 0.10f },
                       .sky = { 0.02f, 0.03f, 0.06f },
                       .key = { 0.13f, 0.17f, 0.30f }, /* moonlight from the upper left */
                       .key_dir = { -0.45f, 0.75f, 0.5f },
                       .lamp = { 1.9f, 1.45f, 0.8f }, /* a warm street lamp up and to the right */
                       .lamp_pos = { 1.7f, 1.3f, 1.2f },
                       .lamp_falloff = 0.3f,
                       .desat = 0.35f },
  [UT_SYNTH_SKETCH] = { .bg = { 246, 246, 246 } }, /* drawn by synth_sketch */
  [UT_SYNTH_DUSK] = { .bg = { 190, 128, 122 },
                      .ambient = { 0.20f, 0.13f, 0.24f },
                      .sky = { 0.05f, 0.03f, 0.07f },
                      .key = { 1.05f, 0.60f, 0.32f }, /* a low sun from the left */
                      .key_dir = { -0.9f, 0.12f, 0.42f },
                      .desat = 0.1f },
};

static const char *const synth_domain_names[UT_SYNTH_DOMAIN_COUNT] = { "day", "night", "sketch", "dusk" };

const char *ut_synth_domain_name(int domain) {
  return domain >= 0 && domain < UT_SYNTH_DOMAIN_COUNT ? synth_domain_names[domain] : NULL;
}

int ut_synth_domain_from_name(const char *name) {
  for (int d = 0; name && d < UT_SYNTH_DOMAIN_COUNT; d++)
    if (strcmp(synth_domain_names[d], name) == 0) return d;
  return -1;
}

int ut_synth_domain_count(void) { return UT_SYNTH_DOMAIN_COUNT; }

/* A look's lights placed for one camera. */
typedef struct {
  float key_dir[3], lamp_pos[3];
} look_lights;

static void place_lights(const synth_look *lk, const scene *sc, look_lights *out) {
  float l[3];
  for (int k = 0; k < 3; k++) {
    float w = -sc->fwd[k];
    l[k] = lk->key_dir[0] * sc->right[k] + lk->key_dir[1] * sc->up[k] + lk->key_dir[2] * w;
    out->lamp_pos[k] = lk->lamp_pos[0] * sc->right[k] + lk->lamp_pos[1] * sc->up[k] + lk->lamp_pos[2] * w;
  }
  float il = dot3(l, l) > 0.0f ? 1.0f / sqrtf(dot3(l, l)) : 0.0f;
  for (int k = 0; k < 3; k++) out->key_dir[k] = l[k] * il;
}

/* Blinn-Phong highlight (n.h)^32 for unit n, unit light direction l and unit view vector v. */
static float highlight(const float n[3], const float l[3], const float v[3]) {
  float h[3] = { l[0] + v[0], l[1] + v[1], l[2] + v[2] };
  float hh = dot3(h, h);
  if (hh <= 0.0f) return 0.0f;
  float s = maxf(0.0f, dot3(n, h) / sqrtf(hh));
  for (int i = 0; i < 5; i++) s *= s;
  return s;
}

static void shade_lit(const synth_look *lk, const look_lights *li, const object *o, const scene *sc,
                      const sample *sm, float rgb[3]) {
  const prim *p = sc->pp[sm->hit].p;
  const float *src = sm->pattern ? o->pattern_color : o->color[p->mat];
  float alb[3], n[3], v[3], x[3];
  float grey = 0.30f * src[0] + 0.59f * src[1] + 0.11f * src[2];
  float in = 1.0f / sqrtf(dot3(sm->n, sm->n)), id = 1.0f / sqrtf(dot3(sm->d, sm->d));
  for (int k = 0; k < 3; k++) {
    alb[k] = src[k] + (grey - src[k]) * lk->desat;
    n[k] = sm->n[k] * in;
    v[k] = -sm->d[k] * id;
    x[k] = sc->eye[k] + sm->t * sm->d[k];
  }
  float ks = p->mat == MAT_WHEEL ? 0.1f : o->ks;
  float ndk = maxf(0.0f, dot3(n, li->key_dir)), sk = ks * highlight(n, li->key_dir, v);
  float ndl = 0.0f, sl = 0.0f, att = 0.0f;
  if (lk->lamp[0] > 0.0f) {
    float l[3] = { li->lamp_pos[0] - x[0], li->lamp_pos[1] - x[1], li->lamp_pos[2] - x[2] };
    float r2 = dot3(l, l), ir = 1.0f / sqrtf(r2);
    for (int k = 0; k < 3; k++) l[k] *= ir;
    att = 1.0f / (1.0f + lk->lamp_falloff * r2);
    ndl = maxf(0.0f, dot3(n, l));
    sl = ks * highlight(n, l, v);
  }
  for (int k = 0; k < 3; k++) {
    float lamp = lk->lamp[k] * att;
    rgb[k] = alb[k] * (lk->ambient[k] + lk->sky[k] * n[1] + lk->key[k] * ndk + lamp * ndl) + lk->key[k] * sk +
             lamp * sl;
  }
}

/* ---- the sketch look ----------------------------------------------------------------------- */

/* One sample of the drawing: what it hits and how light it would be. */
typedef struct {
  int hit, pattern;
  float n[3]; /* unit normal */
  float tone; /* 0 dark .. 1 light: the day look's lighting times the albedo's grey */
} sketch_sample;

#define SKETCH_PAPER 246
#define SKETCH_OUTLINE 0.10f /* ink of the outlines */
#define SKETCH_HATCH 0.30f   /* ink of the hatching, a lighter pen */

static void sketch_row(const object *o, const scene *sc, int ns, int j, sketch_sample *row) {
  float sy = (1.0f - (float)(2 * j + 1) / (float)ns) * SYNTH_TAN_HALF;
  for (int i = 0; i < ns; i++) {
    float sx = ((float)(2 * i + 1) / (float)ns - 1.0f) * SYNTH_TAN_HALF;
    sample sm;
    sketch_sample *s = &row[i];
    s->hit = trace(o, sc, sx, sy, &sm) ? sm.hit : -1;
    s->pattern = sm.pattern;
    if (s->hit < 0) continue;
    const prim *p = sc->pp[sm.hit].p;
    const float *alb = sm.pattern ? o->pattern_color : o->color[p->mat];
    float in = 1.0f / sqrtf(dot3(sm.n, sm.n));
    for (int k = 0; k < 3; k++) s->n[k] = sm.n[k] * in;
    float light = 0.26f + 0.08f * s->n[1] + 0.76f * maxf(0.0f, dot3(s->n, sc->light));
    s->tone = light * (0.35f + 0.65f * (0.30f * alb[0] + 0.59f * alb[1] + 0.11f * alb[2]));
  }
}

/* Ink where a hit sample borders something else: the background (the silhouette), another part,
 * a crease (normals more than ~37 degrees apart) or the edge of the body's texture. */
static int sketch_edge(const sketch_sample *s, const sketch_sample *nb) {
  if (!nb || nb->hit != s->hit) return 1;
  if (dot3(s->n, nb->n) < 0.8f) return 1;
  return nb->pattern != s->pattern;
}

/* Hatching lines at 45 degrees on the page (one, two crossed, then a denser third set as the
 * tone darkens), `period` samples apart; line width 40% of the period. */
static int sketch_hatch(float tone, int i, int j, float period) {
  float a = (float)(i + j) / period, b = (float)(i - j + 4096 * 64) / period;
  int h1 = a - floorf(a) < 0.4f, h2 = b - floorf(b) < 0.4f;
  float c = a + 0.5f;
  int h3 = c - floorf(c) < 0.3f;
  return (tone < 0.62f && h1) || (tone < 0.40f && h2) || (tone < 0.22f && h3);
}

/* The line drawing: samples are traced row by row into a ring of four rows (a pixel's two rows
 * and one more on each side for the edge test), so memory stays O(size). */
static ut_status synth_sketch(const object *o, const scene *sc, int size, uint8_t *rgb) {
  const int ns = 2 * size;
  sketch_sample *ring = malloc((size_t)4 * (size_t)ns * sizeof *ring);
  if (!ring) return ut_fail(UT_ERR_HOST_MEMORY, "ut_synth_render: no memory for %d samples of a sketch", 4 * ns);
  /* hatching period: about 1/20 of the image, never under 2.5 pixels (5 samples) */
  float period = maxf(5.0f, (float)ns / 20.0f);
  int done = 0; /* sample rows traced so far */
  for (int y = 0; y < size; y++) {
    for (; done < ns && done <= 2 * y + 2; done++) sketch_row(o, sc, ns, done, ring + (size_t)(done & 3) * (size_t)ns);
    for (int x = 0; x < size; x++) {
      float acc = 0.0f;
      int hits = 0;
      for (int j = 2 * y; j < 2 * y + 2; j++)
        for (int i = 2 * x; i < 2 * x + 2; i++) {
          const sketch_sample *s = ring + (size_t)(j & 3) * (size_t)ns + i;
          float ink = (float)SKETCH_PAPER / 255.0f;
          if (s->hit >= 0) {
            hits++;
            int edge = 0;
            for (int dj = -1; dj <= 1 && !edge; dj++)
              for (int di = -1; di <= 1 && !edge; di++) {
                int jj = j + dj, ii = i + di;
                const sketch_sample *nb =
                    jj < 0 || jj >= ns || ii < 0 || ii >= ns ? NULL : ring + (size_t)(jj & 3) * (size_t)ns + ii;
                if (dj || di) edge = sketch_edge(s, nb);
              }
            if (edge)
              ink = SKETCH_OUTLINE;
            else if (sketch_hatch(s->tone, i, j, period))
              ink = SKETCH_HATCH;
          }
          acc += ink;
        }
      uint8_t *px = rgb + ((size_t)y * (size_t)size + (size_t)x) * 3;
      uint8_t g = hits ? to_byte(acc * 0.25f) : (uint8_t)SKETCH_PAPER;
      px[0] = px[1] = px[2] = g;
    }
  }
  free(ring);
  return UT_OK;
}

/* Checks the arguments of `fn` (its output `out`, named `out_name` in messages) and builds
 * class class_id's object and its scene in view `view`. */
static ut_status object_in_view(const char *fn, const char *out_name, const ut_synth_cfg *cfg, int class_id, int view,
                                const void *out, object *o, scene *sc) {
  if (!cfg || !out) return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, cfg ? out_name : "cfg");
  if (cfg->classes < 1 || class_id < 0 || class_id >= cfg->classes)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: class %d is outside [0, %d)", fn, class_id, cfg->classes);
  if (cfg->views < 1 || view < 0 || view >= cfg->views)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: view %d is outside [0, %d)", fn, view, cfg->views);
  if (cfg->size < 1 || cfg->size > SYNTH_MAX_SIZE)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: size %d is outside [1, %d]", fn, cfg->size, SYNTH_MAX_SIZE);
  double az = 0.0, el = 0.0;
  build_object(cfg->seed, class_id, o);
  view_turns(cfg->views, view, &az, &el);
  prepare_scene(o, az, el, sc);
  return UT_OK;
}

/* The geometry pass of ut_synth_render alone: the same 2x2 sample positions, no shading, so a
 * pixel's coverage is 0 exactly where the render is plain background in every look. */
ut_status ut_synth_coverage(const ut_synth_cfg *cfg, int class_id, int view, uint8_t *coverage) {
  object o;
  scene sc;
  ut_status st = object_in_view("ut_synth_coverage", "coverage", cfg, class_id, view, coverage, &o, &sc);
  if (st != UT_OK) return st;
  const int size = cfg->size, ns = 2 * size;
  for (int y = 0; y < size; y++)
    for (int x = 0; x < size; x++) {
      uint8_t hits = 0;
      for (int j = 0; j < 2; j++) {
        float sy = (1.0f - (float)(4 * y + 2 * j + 1) / (float)ns) * SYNTH_TAN_HALF;
        for (int i = 0; i < 2; i++) {
          float sx = ((float)(4 * x + 2 * i + 1) / (float)ns - 1.0f) * SYNTH_TAN_HALF;
          sample sm;
          hits += (uint8_t)trace(&o, &sc, sx, sy, &sm);
        }
      }
      coverage[(size_t)y * (size_t)size + (size_t)x] = hits;
    }
  return UT_OK;
}

/* Style k > 0 (DMIT's styles within a look): the whole picture as if under a light of hue
 * (k - 1) times the golden ratio (turns, so every style has its own hue), a multiplicative cast
 * plus a glow of that colour that shows on dark looks too. */
static void synth_style(int style, int size, uint8_t *rgb) {
  float tint[3], hue = 0.08f + 0.618034f * (float)(style - 1);
  hsv_rgb(hue - floorf(hue), 0.6f, 1.0f, tint);
  for (size_t i = 0; i < (size_t)size * (size_t)size; i++)
    for (int k = 0; k < 3; k++) {
      float v = (float)rgb[3 * i + k] / 255.0f;
      rgb[3 * i + k] = to_byte(v * (0.55f + 0.45f * tint[k]) + 0.16f * tint[k]);
    }
}

static ut_status render_look(const ut_synth_cfg *cfg, int class_id, int view, uint8_t *rgb);

ut_status ut_synth_render(const ut_synth_cfg *cfg, int class_id, int view, uint8_t *rgb) {
  if (cfg && cfg->style < 0)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_synth_render: style %d is negative", cfg->style);
  ut_status st = render_look(cfg, class_id, view, rgb);
  if (st == UT_OK && cfg->style > 0) synth_style(cfg->style, cfg->size, rgb);
  return st;
}

static ut_status render_look(const ut_synth_cfg *cfg, int class_id, int view, uint8_t *rgb) {
  if (cfg && (cfg->domain < 0 || cfg->domain >= UT_SYNTH_DOMAIN_COUNT))
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_synth_render: domain %d is outside [0, %d)", cfg->domain,
                   UT_SYNTH_DOMAIN_COUNT);
  object o;
  scene sc;
  ut_status st = object_in_view("ut_synth_render", "rgb", cfg, class_id, view, rgb, &o, &sc);
  if (st != UT_OK) return st;
  if (cfg->domain == UT_SYNTH_SKETCH) return synth_sketch(&o, &sc, cfg->size, rgb);

  const synth_look *look = &synth_looks[cfg->domain];
  look_lights lights;
  place_lights(look, &sc, &lights);
  const int size = cfg->size, ns = 2 * size; /* 2x2 samples per pixel */
  float bg[3];
  for (int k = 0; k < 3; k++) bg[k] = (float)look->bg[k] / 255.0f;
  for (int y = 0; y < size; y++) {
    for (int x = 0; x < size; x++) {
      float acc[3] = { 0.0f, 0.0f, 0.0f };
      int hits = 0;
      for (int j = 0; j < 2; j++) {
        float sy = (1.0f - (float)(4 * y + 2 * j + 1) / (float)ns) * SYNTH_TAN_HALF;
        for (int i = 0; i < 2; i++) {
          float sx = ((float)(4 * x + 2 * i + 1) / (float)ns - 1.0f) * SYNTH_TAN_HALF;
          float c[3];
          sample sm;
          int h = trace(&o, &sc, sx, sy, &sm);
          if (h && cfg->domain == UT_SYNTH_DAY)
            shade_day(&o, &sc, &sm, c);
          else if (h)
            shade_lit(look, &lights, &o, &sc, &sm, c);
          hits += h;
          for (int k = 0; k < 3; k++) acc[k] += h ? c[k] : bg[k];
        }
      }
      uint8_t *px = rgb + ((size_t)y * (size_t)size + (size_t)x) * 3;
      for (int k = 0; k < 3; k++) px[k] = hits ? to_byte(acc[k] * 0.25f) : look->bg[k];
    }
  }
  return UT_OK;
}
