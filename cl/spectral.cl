/* Spectral normalization's power iteration (torch.nn.utils.spectral_norm).
 *
 * l2_normalize: out = in / max(||in||_2, eps) for one vector of n floats, run as ONE
 *   work-group of `local` work-items (a power of two): each sums the squares of a strided
 *   slice, a tree in local memory adds the partial sums in a fixed order (deterministic, no
 *   atomics), then each scales its slice. The vectors are the weight's row and column counts
 *   (thousands at most), so one group is enough.
 * copy_into: out[i] = in[i], the update that writes the new u or v back into the store. */

__kernel void l2_normalize(__global float *out, uint o_off, __global const float *in, uint i_off, uint n, float eps,
                           __local float *partial) {
  uint lid = get_local_id(0), size = get_local_size(0);
  float acc = 0.0f;
  for (uint i = lid; i < n; i += size) {
    float v = in[i_off + i];
    acc += v * v;
  }
  partial[lid] = acc;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (uint s = size / 2; s > 0; s /= 2) {
    if (lid < s) partial[lid] += partial[lid + s];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  float norm = fmax(sqrt(partial[0]), eps);
  for (uint i = lid; i < n; i += size) out[o_off + i] = in[i_off + i] / norm;
}

__kernel void copy_into(__global float *out, uint o_off, __global const float *in, uint i_off, uint n) {
  uint i = get_global_id(0);
  if (i < n) out[o_off + i] = in[i_off + i];
}
