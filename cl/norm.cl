/* Instance normalisation and AdaIN, fused: statistics, normalisation and affine part in one
 * kernel per pass (engine/ops/norm_fused.c builds the ops on them).
 *
 * Layout: x is NCHW, row-major; each (sample b, channel c) plane of n = H*W contiguous
 * elements is one work-group, so the group index gives the plane with no division. The
 * normalising kernels run on a 2-D range of C x B groups (group (c, b) is plane b*C + c) and
 * read the per-plane scale and bias at b * pstride + c: pstride = C for AdaIN's [B, C]
 * tensors, 0 for instance norm's per-channel [C] vectors. A missing scale reads as 1, a
 * missing bias as 0 (the flags; the buffer is then any valid one).
 *
 * Statistics are two-pass as in the composite reference (engine/ops/norm.c): the mean, then
 * the biased mean of squared deviations, so the variance stays accurate for large means;
 * rstd = 1 / sqrt(var + eps). The work-items stride over the plane by the group size, then
 * combine their partial sums through a fixed tree in local memory: the result is the same on
 * every run. The group size is a power of two (1 on CPU devices, where one work-item streams
 * its plane fastest; norm_fused.c says why). Each pass re-reads the plane, which mostly hits
 * the cache, as one plane is at most a few hundred KiB.
 *
 * With xhat = (x - mean) * rstd, g = dy * scale and means over the plane:
 *   plane_norm_forward:    y  = xhat * scale + bias
 *   plane_norm_backward:   dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
 *   plane_norm_param_grad: sum(dy * xhat) and sum(dy) per plane (1-D range, one group per
 *                          plane), the gradients of a per-plane scale and bias */

/* The sum of v over the work-group, in a fixed order; every work-item gets it. The leading
 * barrier lets a previous call's readers of partial[0] finish before it is overwritten. */
inline float group_sum(float v, __local float *partial) {
  uint lid = get_local_id(0);
  barrier(CLK_LOCAL_MEM_FENCE);
  partial[lid] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (uint width = get_local_size(0) / 2; width > 0; width /= 2) {
    if (lid < width) partial[lid] += partial[lid + width];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  return partial[0];
}

/* Three sums at once (the w lane is unused), so the backward's second pass pays for one tree. */
inline float4 group_sum4(float4 v, __local float4 *partial) {
  uint lid = get_local_id(0);
  barrier(CLK_LOCAL_MEM_FENCE);
  partial[lid] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (uint width = get_local_size(0) / 2; width > 0; width /= 2) {
    if (lid < width) partial[lid] += partial[lid + width];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  return partial[0];
}

/* The passes read the plane as float4 (vload4: tensors sit at any element offset) for its
 * first n4 = n / 4 quads, then the n % 4 left as floats; work-item lid takes quads lid,
 * lid + ls, ... and then tail element lid. On a GPU neighbouring work-items read neighbouring
 * quads; on a CPU, where a work-group runs on one core, each work-item's loop becomes SIMD. */
inline float hsum(float4 v) { return (v.x + v.y) + (v.z + v.w); }

inline float plane_mean(__global const float *xp, uint n, float inv_n, __local float *partial) {
  uint lid = get_local_id(0), ls = get_local_size(0), n4 = n >> 2;
  float4 s4 = (float4)(0.0f);
  for (uint i = lid; i < n4; i += ls) s4 += vload4(i, xp);
  float s = hsum(s4);
  for (uint i = 4 * n4 + lid; i < n; i += ls) s += xp[i];
  return group_sum(s, partial) * inv_n;
}

/* sum((x - mean)^2) */
inline float plane_sq_dev(__global const float *xp, uint n, float mean, __local float *partial) {
  uint lid = get_local_id(0), ls = get_local_size(0), n4 = n >> 2;
  float4 q4 = (float4)(0.0f);
  for (uint i = lid; i < n4; i += ls) {
    float4 d = vload4(i, xp) - mean;
    q4 += d * d;
  }
  float q = hsum(q4);
  for (uint i = 4 * n4 + lid; i < n; i += ls) {
    float d = xp[i] - mean;
    q += d * d;
  }
  return group_sum(q, partial);
}

/* (sum((x - mean)^2), sum(dy), sum(dy * (x - mean))) */
inline float4 plane_dy_sums(__global const float *xp, __global const float *dyp, uint n, float mean,
                            __local float4 *partial) {
  uint lid = get_local_id(0), ls = get_local_size(0), n4 = n >> 2;
  float4 q4 = (float4)(0.0f), g4 = (float4)(0.0f), gd4 = (float4)(0.0f);
  for (uint i = lid; i < n4; i += ls) {
    float4 d = vload4(i, xp) - mean, gy = vload4(i, dyp);
    q4 += d * d;
    g4 += gy;
    gd4 += gy * d;
  }
  float4 acc = (float4)(hsum(q4), hsum(g4), hsum(gd4), 0.0f);
  for (uint i = 4 * n4 + lid; i < n; i += ls) {
    float d = xp[i] - mean, gy = dyp[i];
    acc += (float4)(d * d, gy, gy * d, 0.0f);
  }
  return group_sum4(acc, partial);
}

__kernel void plane_norm_forward(__global float *y, uint y_off, __global const float *x, uint x_off,
                                 __global const float *scale, uint scale_off, __global const float *bias, uint bias_off,
                                 uint n, float inv_n, float eps, int has_scale, int has_bias, uint pstride,
                                 __local float *partial) {
  uint c = get_group_id(0), b = get_group_id(1), lid = get_local_id(0), ls = get_local_size(0), n4 = n >> 2;
  uint base = (b * get_num_groups(0) + c) * n, param = b * pstride + c;
  __global const float *xp = x + x_off + base;
  __global float *yp = y + y_off + base;
  float mean = plane_mean(xp, n, inv_n, partial);
  float rstd = 1.0f / sqrt(plane_sq_dev(xp, n, mean, partial) * inv_n + eps);
  float a = has_scale ? rstd * scale[scale_off + param] : rstd;
  float t = has_bias ? bias[bias_off + param] : 0.0f;
  for (uint i = lid; i < n4; i += ls) vstore4((vload4(i, xp) - mean) * a + t, i, yp);
  for (uint i = 4 * n4 + lid; i < n; i += ls) yp[i] = (xp[i] - mean) * a + t;
}

__kernel void plane_norm_backward(__global float *dx, uint dx_off, __global const float *x, uint x_off,
                                  __global const float *dy, uint dy_off, __global const float *scale, uint scale_off,
                                  uint n, float inv_n, float eps, int has_scale, uint pstride,
                                  __local float4 *partial) {
  uint c = get_group_id(0), b = get_group_id(1), lid = get_local_id(0), ls = get_local_size(0), n4 = n >> 2;
  uint base = (b * get_num_groups(0) + c) * n;
  __global const float *xp = x + x_off + base, *dyp = dy + dy_off + base;
  __global float *dxp = dx + dx_off + base;
  float mean = plane_mean(xp, n, inv_n, (__local float *)partial);
  float4 acc = plane_dy_sums(xp, dyp, n, mean, partial);
  float rstd = 1.0f / sqrt(acc.x * inv_n + eps);
  float s = has_scale ? scale[scale_off + b * pstride + c] : 1.0f;
  /* dx = rstd * s * dy - rstd * mean(g) - rstd^2 * (x - mean) * mean(g * xhat), g = s * dy */
  float k_dy = rstd * s, k_0 = k_dy * acc.y * inv_n, k_x = k_dy * rstd * rstd * acc.z * inv_n;
  for (uint i = lid; i < n4; i += ls) vstore4(k_dy * vload4(i, dyp) - k_0 - k_x * (vload4(i, xp) - mean), i, dxp);
  for (uint i = 4 * n4 + lid; i < n; i += ls) dxp[i] = k_dy * dyp[i] - k_0 - k_x * (xp[i] - mean);
}

/* out[plane] = sum(dy * xhat), out[planes + plane] = sum(dy): the scale's and the bias's
 * gradient per plane, as the [2, B, C] tensor the op makes. */
__kernel void plane_norm_param_grad(__global float *out, uint out_off, __global const float *x, uint x_off,
                                    __global const float *dy, uint dy_off, uint n, float inv_n, float eps,
                                    __local float4 *partial) {
  uint plane = get_group_id(0);
  __global const float *xp = x + x_off + plane * n, *dyp = dy + dy_off + plane * n;
  float mean = plane_mean(xp, n, inv_n, (__local float *)partial);
  float4 acc = plane_dy_sums(xp, dyp, n, mean, partial);
  if (get_local_id(0) == 0) {
    out[out_off + plane] = acc.z / sqrt(acc.x * inv_n + eps);
    out[out_off + get_num_groups(0) + plane] = acc.y;
  }
}
