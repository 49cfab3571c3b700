#include "philox.h"

#include <math.h>

/* The constants of the published generator: the round multipliers and the Weyl sequence that
 * bumps the key between rounds (golden ratio and sqrt(3) - 1, in 32-bit fixed point). */
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u
#define PHILOX_ROUNDS 10

/* pi in double; M_PI is not part of strict C11. */
#define UT_PI 3.14159265358979323846

void ut_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
  uint32_t k0 = key[0], k1 = key[1];
  for (int r = 0; r < PHILOX_ROUNDS; r++) {
    if (r > 0) {
      k0 += PHILOX_W0;
      k1 += PHILOX_W1;
    }
    uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
    uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

static void philox_block(uint64_t key, uint64_t run, uint64_t block, uint32_t out[4]) {
  const uint32_t ctr[4] = { (uint32_t)block, (uint32_t)(block >> 32), (uint32_t)run, (uint32_t)(run >> 32) };
  const uint32_t k[2] = { (uint32_t)key, (uint32_t)(key >> 32) };
  ut_philox4x32_10(ctr, k, out);
}

void ut_philox_fill_uniform(uint64_t key, uint64_t run, uint64_t start, float *dst, size_t n) {
  uint32_t w[4];
  uint64_t cached = UINT64_MAX; /* no element can live in block 2^64 - 1 and need it */
  for (size_t j = 0; j < n; j++) {
    uint64_t i = start + j;
    if (i / 4 != cached) {
      cached = i / 4;
      philox_block(key, run, cached, w);
    }
    dst[j] = ut_philox_u01(w[i % 4]);
  }
}

/* The four normals of one block (see philox.h). Double precision with one final rounding makes
 * the host the reference the device is compared against; the angle is 2 pi u with 2u exact,
 * which is what the device's cospi/sinpi receive. */
static void normal_block(const uint32_t w[4], float z[4]) {
  for (int p = 0; p < 2; p++) {
    double u1 = ut_philox_u01(w[2 * p]);
    double u2 = ut_philox_u01(w[2 * p + 1]);
    double r = sqrt(-2.0 * log(u1));
    double theta = UT_PI * (2.0 * u2);
    z[2 * p] = (float)(r * cos(theta));
    z[2 * p + 1] = (float)(r * sin(theta));
  }
}

void ut_philox_fill_normal(uint64_t key, uint64_t run, uint64_t start, float *dst, size_t n) {
  uint32_t w[4];
  float z[4];
  uint64_t cached = UINT64_MAX;
  for (size_t j = 0; j < n; j++) {
    uint64_t i = start + j;
    if (i / 4 != cached) {
      cached = i / 4;
      philox_block(key, run, cached, w);
      normal_block(w, z);
    }
    dst[j] = z[i % 4];
  }
}
