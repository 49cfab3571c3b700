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
 * (out, out_off, n, key_lo, key_hi, run_lo, run_hi, first); the engine refreshes run_* every
 * run. `first` is the stream element that out[0] holds: 0, or the first element of a graph's
 * share of the batch in data-parallel training (ut_graph_set_share), so that the n elements
 * are elements [first, first + n) of the stream a graph over the whole batch draws.
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

/* Writes the lanes of global block gb that fall in the window [first, first + n) of the stream
 * to out[element - first]. */
static void store4(__global float *out, uint first, uint n, uint gb, float4 v) {
  float e[4] = { v.x, v.y, v.z, v.w };
  for (uint k = 0; k < 4; k++) {
    uint i = gb * 4 + k;
    if (i >= first && i - first < n) out[i - first] = e[k];
  }
}

/* Work-items cover the blocks that overlap the window; the host keeps first + n + 3 < 2^32. */
static uint first_block(uint first) { return first / 4; }
static uint window_blocks(uint first, uint n) { return (first + n + 3) / 4 - first / 4; }

__kernel void random_uniform(__global float *out, uint out_off, uint n, uint key_lo, uint key_hi, uint run_lo,
                             uint run_hi, uint first) {
  if (get_global_id(0) >= window_blocks(first, n)) return;
  uint b = first_block(first) + get_global_id(0);
  uint4 w = philox4x32_10((uint4)(b, 0u, run_lo, run_hi), (uint2)(key_lo, key_hi));
  store4(out + out_off, first, n, b, (float4)(u01(w.x), u01(w.y), u01(w.z), u01(w.w)));
}

__kernel void random_normal(__global float *out, uint out_off, uint n, uint key_lo, uint key_hi, uint run_lo,
                            uint run_hi, uint first) {
  if (get_global_id(0) >= window_blocks(first, n)) return;
  uint b = first_block(first) + get_global_id(0);
  uint4 w = philox4x32_10((uint4)(b, 0u, run_lo, run_hi), (uint2)(key_lo, key_hi));
  float r0 = sqrt(-2.0f * log(u01(w.x)));
  float a0 = 2.0f * u01(w.y);
  float r1 = sqrt(-2.0f * log(u01(w.z)));
  float a1 = 2.0f * u01(w.w);
  store4(out + out_off, first, n, b, (float4)(r0 * cospi(a0), r0 * sinpi(a0), r1 * cospi(a1), r1 * sinpi(a1)));
}
