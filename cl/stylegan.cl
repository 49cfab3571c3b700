/* StyleGAN2 pieces: the FIR resampler upfirdn2d and a swap of a tensor's first two dimensions
 * (a conv weight [O, C, k, k] read as a transposed-conv weight [C, O, k, k]).
 *
 * upfirdn2d (as StyleGAN2's op of that name, square case): each plane of in [planes, h, w] is
 *   1. upsampled by `up`: sample j of a row is in[j / up] when j % up == 0, else 0 (length h*up);
 *   2. padded by pad0 zeros before (a negative pad crops), and extended with zeros after;
 *   3. filtered with the separable kernel gain * k (x) k, as a true convolution: the taps passed
 *      here are already flipped, so the loop is a correlation with them;
 *   4. decimated by `down`, to out [planes, oh, ow].
 *   out[y][x] = gain * sum_{ty, tx} k[ty] k[tx] U[y*down + ty - pad0][x*down + tx - pad0]
 * where U is the zero-stuffed input, zero outside [0, h*up) x [0, w*up). The output size is set
 * by the host (the trailing pad is implied by it). One work-item per output element; the
 * range is rounded up to the work-group size and the overhang returns at once. Kernels of at
 * most 7 taps, passed as arguments. */

inline int fir_source(int j, int up, int n) {
  if (j < 0 || j >= n * up) return -1;
  if (up == 1) return j; /* the blurs and downsamplings: no division per tap */
  return j % up != 0 ? -1 : j / up;
}

__kernel void upfirdn2d(__global float *out, uint o_off, __global const float *in, uint i_off, uint count,
                        int h, int w, int oh, int ow, int up, int down, int pad0, int taps, float k0, float k1,
                        float k2, float k3, float k4, float k5, float k6, float gain) {
  uint i = get_global_id(0);
  if (i >= count) return;
  const float k[7] = { k0, k1, k2, k3, k4, k5, k6 };
  int x = (int)(i % (uint)ow), y = (int)((i / (uint)ow) % (uint)oh);
  uint plane = i / ((uint)ow * (uint)oh);
  __global const float *src = in + i_off + (size_t)plane * (uint)h * (uint)w;
  float acc = 0.0f;
  for (int ty = 0; ty < taps; ty++) {
    int iy = fir_source(y * down + ty - pad0, up, h);
    if (iy < 0) continue;
    float row = 0.0f;
    for (int tx = 0; tx < taps; tx++) {
      int ix = fir_source(x * down + tx - pad0, up, w);
      if (ix >= 0) row += k[tx] * src[iy * w + ix];
    }
    acc += k[ty] * row;
  }
  out[o_off + i] = gain * acc;
}

/* out [b, a, r] = in [a, b, r]: the first two dimensions swapped (r: the rest, flattened). */
__kernel void swap01(__global float *out, uint o_off, __global const float *in, uint i_off, uint count, uint na,
                     uint nb, uint nr) {
  uint i = get_global_id(0);
  if (i >= count) return;
  uint r = i % nr, a = (i / nr) % na, b = i / (nr * na);
  out[o_off + i] = in[i_off + (a * nb + b) * nr + r];
}
