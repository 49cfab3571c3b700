/* Kernels behind the classification and GAN losses. Every tensor arrives as (buffer, element
 * offset); one work-item per output element (or row); the overhang returns at once.
 *
 * softplus:  y = log(1 + exp(x)) computed as max(x, 0) + log1p(exp(-|x|)), which neither
 *            overflows for large x nor loses the small tail for very negative x.
 * row_max:   x [rows, k] -> y [rows]: the largest element of each row, by a sequential scan
 *            (rows are class logits, k is small), so the result does not depend on scheduling.
 * one_hot:   labels int [rows] -> y [rows, k] with 1 at the label and 0 elsewhere; a label
 *            outside [0, k) gives a row of zeros instead of writing out of bounds. */

__kernel void softplus(__global float *y, uint y_off, __global const float *x, uint x_off, uint n) {
  uint i = get_global_id(0);
  if (i >= n) return;
  float v = x[x_off + i];
  y[y_off + i] = fmax(v, 0.0f) + log1p(exp(-fabs(v)));
}

__kernel void row_max(__global float *y, uint y_off, __global const float *x, uint x_off, uint rows, uint k) {
  uint r = get_global_id(0);
  if (r >= rows) return;
  __global const float *row = x + x_off + r * k;
  float m = row[0];
  for (uint j = 1; j < k; j++) m = fmax(m, row[j]);
  y[y_off + r] = m;
}

__kernel void one_hot(__global float *y, uint y_off, __global const int *labels, uint l_off, uint n, uint k) {
  uint i = get_global_id(0);
  if (i >= n) return;
  int label = labels[l_off + i / k];
  y[y_off + i] = (label >= 0 && (uint)label == i % k) ? 1.0f : 0.0f;
}
