/* Helpers shared by every kernel family: the runtime puts this file in front of each cl/ source
 * before building it (OpenCL C has no portable #include of embedded text). */

/* Offset of element i of a row-major 4-D index space `d` (innermost last) in a tensor read
 * with strides `s`: a stride of 0 repeats the tensor along that dimension (broadcasting). */
inline uint index4(uint i, int4 d, int4 s) {
  uint i3 = i % (uint)d.w;
  i /= (uint)d.w;
  uint i2 = i % (uint)d.z;
  i /= (uint)d.z;
  uint i1 = i % (uint)d.y;
  uint i0 = i / (uint)d.y;
  return i0 * (uint)s.x + i1 * (uint)s.y + i2 * (uint)s.z + i3 * (uint)s.w;
}
