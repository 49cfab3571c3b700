/* Optimizer updates, in place on the parameter and its state. The host computes everything
 * that depends only on the step (bias corrections, learning rate) once per run.
 *
 * Adam follows torch.optim.Adam (L2 weight decay added to the gradient):
 *   g += wd p;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *   p -= step_size * m / (sqrt(v) / bc2_sqrt + eps),  step_size = lr / (1 - b1^t),
 *   bc2_sqrt = sqrt(1 - b2^t). */
__kernel void adam_update(__global float *p, uint p_off, __global const float *g, uint g_off, __global float *m,
                          uint m_off, __global float *v, uint v_off, uint n, float b1, float b2, float eps, float wd,
                          float step_size, float bc2_sqrt) {
  uint i = get_global_id(0);
  if (i >= n) return;
  float w = p[p_off + i];
  float grad = g[g_off + i] + wd * w;
  float mi = b1 * m[m_off + i] + (1.0f - b1) * grad;
  float vi = b2 * v[v_off + i] + (1.0f - b2) * grad * grad;
  m[m_off + i] = mi;
  v[v_off + i] = vi;
  p[p_off + i] = w - step_size * mi / (sqrt(vi) / bc2_sqrt + eps);
}

/* SGD with momentum as torch.optim.SGD (no dampening): buf = mu buf + g; p -= lr buf. The
 * buffer starts at zero, which makes the first step buf = g as in PyTorch. */
__kernel void sgd_update(__global float *p, uint p_off, __global const float *g, uint g_off, __global float *buf,
                         uint buf_off, uint n, float momentum, float wd, float lr) {
  uint i = get_global_id(0);
  if (i >= n) return;
  float w = p[p_off + i];
  float grad = g[g_off + i] + wd * w;
  float b = momentum * buf[buf_off + i] + grad;
  buf[buf_off + i] = b;
  p[p_off + i] = w - lr * b;
}

/* A plain copy of n floats: the gradient reduction (engine/reduce.c) packs the gradients of
 * one optimiser into its workspace for the host, then unpacks the results. */
__kernel void copy_floats(__global float *dst, uint dst_off, __global const float *src, uint src_off, uint n) {
  uint i = get_global_id(0);
  if (i < n) dst[dst_off + i] = src[src_off + i];
}
