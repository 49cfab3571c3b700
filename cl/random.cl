/* Random tensors from Philox 4x32-10 (Salmon, Moraes, Dror, Shaw, SC 2011), OpenCL C 1.2.
 *
 * The same generator and the same element -> counter mapping as engine/philox.h, so a (key, run)
 * stream is the same on every device and on the host:
 *   element i uses block b = i / 4, lane i % 4, where block b is
 *     philox4x32_10(ctr = (b, 0, run_lo, run_hi), key = (key_lo, key_hi))
 *   (a tensor has fewer than 2^32 elements, so the block's high word is 0).
 * Uniform: ((w >> 8) | 1) * 2^-24, exact in float, so device and host agree bit for bit.
 * Normal: Box-Muller on the lane pairs (0, 1) and (2, 3) of one block. OpenCL only bounds the
 * error of log (3 ulp), sqrt (3 ulp), cospi and sinpi (4 ulp), so device normals differ from the
 * host's correctly rounded double computation by at most about 12 ulp of |z|; the tests allow
 * 2e-6 relative plus 1e-6 absolute. The angle goes through cospi/sinpi(2u) because 2u is exact,
 * which avoids the rounding of 2 pi u and the device's argument reduction. Nothing here has the
 * form a * b + c, so -cl-mad-enable cannot change a result.
 *
 * Layout: one work-item per Philox block writes up to four consecutive elements. Arguments:
 * (out, out_off, n, key_lo, key_hi, run_lo, run_hi); the engine refreshes run_* every run.
 */

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static uint4 philox4x32_10(uint4 c, uint2 k) {
  for (int r = 0; r < 10; r++) {
    if (r > 0) {
      k.x += PHILOX_W0;
      k.y += PHILOX_W1;
    }
    uint hi0 = mul_hi(PHILOX_M0, c.x), lo0 = PHILOX_M0 * c.x;
    uint hi1 = mul_hi(PHILOX_M1, c.z), lo1 = PHILOX_M1 * c.z;
    c = (uint4)(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
  }
  return c;
}

static float u01(uint w) { return convert_float((w >> 8) | 1u) * 0x1p-24f; }

static void store4(__global float *out, uint first, uint n, float4 v) {
  if (n - first >= 4) { /* first < n; n - first cannot wrap, first + 4 could */
    out[first] = v.x;
    out[first + 1] = v.y;
    out[first + 2] = v.z;
    out[first + 3] = v.w;
  } else {
    uint left = n - first;
    out[first] = v.x;
    if (left > 1) out[first + 1] = v.y;
    if (left > 2) out[first + 2] = v.z;
  }
}

__kernel void random_uniform(__global float *out, uint out_off, uint n, uint key_lo, uint key_hi, uint run_lo,
                             uint run_hi) {
  uint b = get_global_id(0);
  /* b < ceil(n / 4) <= 2^30, so b * 4 cannot wrap; (n + 3) / 4 could. */
  if (b >= n / 4 + (n % 4 != 0)) return;
  uint4 w = philox4x32_10((uint4)(b, 0u, run_lo, run_hi), (uint2)(key_lo, key_hi));
  store4(out + out_off, b * 4, n, (float4)(u01(w.x), u01(w.y), u01(w.z), u01(w.w)));
}

__kernel void random_normal(__global float *out, uint out_off, uint n, uint key_lo, uint key_hi, uint run_lo,
                            uint run_hi) {
  uint b = get_global_id(0);
  if (b >= n / 4 + (n % 4 != 0)) return;
  uint4 w = philox4x32_10((uint4)(b, 0u, run_lo, run_hi), (uint2)(key_lo, key_hi));
  float r0 = sqrt(-2.0f * log(u01(w.x)));
  float a0 = 2.0f * u01(w.y);
  float r1 = sqrt(-2.0f * log(u01(w.z)));
  float a1 = 2.0f * u01(w.w);
  store4(out + out_off, b * 4, n, (float4)(r0 * cospi(a0), r0 * sinpi(a0), r1 * cospi(a1), r1 * sinpi(a1)));
}
