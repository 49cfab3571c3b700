/* JPEG in and out through libjpeg-turbo, and the centred square crop + resize every importer
 * applies.
 *
 * libjpeg reports errors by calling error_exit, which must not return; we jump back to the
 * call with longjmp and turn the message into a UT_ERR_FORMAT naming the file. Warnings about
 * corrupt data (a truncated file, a bad Huffman code) would otherwise give a grey-filled or
 * garbled image silently, so they fail too; the one harmless and common warning, stray bytes
 * before a marker, is let through.
 */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "data_internal.h"

/* Past this, a "JPEG" is a decompression bomb or a mistake; 100 MP is a large camera. */
#define MAX_PIXELS 100000000ull
#define MAX_FILE_BYTES (512ull << 20)

typedef struct {
  struct jpeg_error_mgr pub;
  jmp_buf jump;
  char msg[JMSG_LENGTH_MAX];
} error_mgr;

static void on_error(j_common_ptr c) {
  error_mgr *e = (error_mgr *)c->err;
  c->err->format_message(c, e->msg);
  longjmp(e->jump, 1);
}

static void on_message(j_common_ptr c, int level) {
  if (level < 0 && c->err->msg_code != JWRN_EXTRANEOUS_DATA) on_error(c);
}

void ut_image_free(ut_image *img) {
  if (!img) return;
  free(img->pixels);
  img->pixels = NULL;
}

/* Adobe's CMYK JPEGs (the ones Photoshop writes, with an APP14 marker) store inverted inks. */
static void cmyk_to_rgb(const uint8_t *src, uint8_t *dst, size_t n, int inverted) {
  for (size_t i = 0; i < n; i++) {
    unsigned c = src[4 * i], m = src[4 * i + 1], y = src[4 * i + 2], k = src[4 * i + 3];
    if (!inverted) {
      c = 255 - c;
      m = 255 - m;
      y = 255 - y;
      k = 255 - k;
    }
    dst[3 * i] = (uint8_t)((c * k + 127) / 255);
    dst[3 * i + 1] = (uint8_t)((m * k + 127) / 255);
    dst[3 * i + 2] = (uint8_t)((y * k + 127) / 255);
  }
}

/* ITU-R 601 luma in 16-bit fixed point; the weights sum to 65536, so a gray pixel stays put. */
static void rgb_to_gray(const uint8_t *src, uint8_t *dst, size_t n) {
  for (size_t i = 0; i < n; i++)
    dst[i] = (uint8_t)((19595u * src[3 * i] + 38470u * src[3 * i + 1] + 7471u * src[3 * i + 2] + 32768u) >> 16);
}

/* Decodes; when target > 0 the DCT scale is lowered while the short side stays >= 2 * target. */
static ut_status decode(const uint8_t *data, size_t len, const char *name, int channels, int target, ut_image *out) {
  memset(out, 0, sizeof *out);
  if (channels != 1 && channels != 3)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: %d channels requested, expected 1 or 3", name, channels);
  if (len < 4 || data[0] != 0xFF || data[1] != 0xD8 || data[2] != 0xFF)
    return ut_fail(UT_ERR_FORMAT, "%s: not a JPEG file (it does not start with a JPEG start-of-image marker)", name);
  struct jpeg_decompress_struct cinfo;
  error_mgr jerr;
  uint8_t *volatile raw = NULL;
  cinfo.err = jpeg_std_error(&jerr.pub);
  jerr.pub.error_exit = on_error;
  jerr.pub.emit_message = on_message;
  if (setjmp(jerr.jump)) {
    jpeg_destroy_decompress(&cinfo);
    free(raw);
    return ut_fail(UT_ERR_FORMAT, "%s: corrupt JPEG: %s", name, jerr.msg);
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, (unsigned long)len);
  jpeg_read_header(&cinfo, TRUE);
  int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  if (cmyk)
    cinfo.out_color_space = JCS_CMYK;
  else if (channels == 1 && cinfo.jpeg_color_space == JCS_GRAYSCALE)
    cinfo.out_color_space = JCS_GRAYSCALE;
  else
    cinfo.out_color_space = JCS_RGB;
  unsigned side = cinfo.image_width < cinfo.image_height ? cinfo.image_width : cinfo.image_height;
  cinfo.scale_num = 1;
  cinfo.scale_denom = 1;
  for (unsigned d = 8; target > 0 && d > 1; d /= 2)
    if (side / d >= 2u * (unsigned)target) {
      cinfo.scale_denom = d;
      break;
    }
  jpeg_calc_output_dimensions(&cinfo);
  if ((uint64_t)cinfo.output_width * cinfo.output_height > MAX_PIXELS) {
    char msg[160];
    snprintf(msg, sizeof msg, "%u x %u pixels, more than the %llu this reader accepts", cinfo.output_width,
             cinfo.output_height, (unsigned long long)MAX_PIXELS);
    jpeg_destroy_decompress(&cinfo);
    return ut_fail(UT_ERR_FORMAT, "%s: %s", name, msg);
  }
  jpeg_start_decompress(&cinfo);
  size_t w = cinfo.output_width, h = cinfo.output_height, nc = (size_t)cinfo.output_components;
  raw = malloc(w * h * nc);
  if (!raw) {
    jpeg_destroy_decompress(&cinfo);
    return ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory for %zu x %zu pixels", name, w, h);
  }
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = raw + (size_t)cinfo.output_scanline * w * nc;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  int inverted = cinfo.saw_Adobe_marker;
  jpeg_destroy_decompress(&cinfo);

  uint8_t *pixels = raw;
  if (cmyk || (size_t)channels != nc) {
    uint8_t *conv = malloc(w * h * (size_t)channels), *rgb = NULL;
    if (cmyk && channels == 1) rgb = malloc(w * h * 3);
    if (!conv || (cmyk && channels == 1 && !rgb)) {
      free(conv);
      free(rgb);
      free(raw);
      return ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory for %zu x %zu pixels", name, w, h);
    }
    if (cmyk && channels == 3) {
      cmyk_to_rgb(raw, conv, w * h, inverted);
    } else if (cmyk) {
      cmyk_to_rgb(raw, rgb, w * h, inverted);
      rgb_to_gray(rgb, conv, w * h);
    } else if (nc == 3 && channels == 1) {
      rgb_to_gray(raw, conv, w * h);
    } else { /* gray decoded, RGB wanted: not reached (libjpeg expands gray), kept for safety */
      for (size_t i = 0; i < w * h; i++) conv[3 * i] = conv[3 * i + 1] = conv[3 * i + 2] = raw[i];
    }
    free(rgb);
    free(raw);
    pixels = conv;
  }
  *out = (ut_image){ .width = (int)w, .height = (int)h, .channels = channels, .pixels = pixels };
  return UT_OK;
}

ut_status ut_jpeg_decode(const uint8_t *data, size_t len, const char *name, int channels, ut_image *out) {
  if (!out) return ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_jpeg_decode: no output image");
  if (!data) return ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_jpeg_decode: no data");
  return decode(data, len, name ? name : "(memory)", channels, 0, out);
}

/* ------------------------------------------------------------------------------------------ */

/* Contributions of source pixels to each output pixel along one axis: output o takes
 * w[o * taps + t] of source first[o] + t. */
typedef struct {
  int taps;
  int *first;
  float *w;
} axis;

static int axis_build(axis *a, int in, int out) {
  double r = (double)in / out;
  a->taps = in >= out ? (int)r + 2 : 2;
  a->first = malloc((size_t)out * sizeof *a->first);
  a->w = calloc((size_t)out * (size_t)a->taps, sizeof *a->w);
  if (!a->first || !a->w) return -1;
  for (int o = 0; o < out; o++) {
    float *w = a->w + (size_t)o * (size_t)a->taps;
    if (in >= out) {
      /* Area: output o covers source [o r, (o + 1) r); each pixel weighs its overlap. */
      double start = o * r, end = (o + 1) * r;
      int j0 = (int)start;
      a->first[o] = j0;
      for (int t = 0; t < a->taps && j0 + t < in; t++) {
        double lo = j0 + t > start ? j0 + t : start, hi = j0 + t + 1 < end ? j0 + t + 1 : end;
        if (hi > lo) w[t] = (float)((hi - lo) / r);
      }
    } else {
      /* Bilinear with half-pixel centres, clamped at the borders. */
      double c = (o + 0.5) * r - 0.5;
      if (c < 0) c = 0;
      int j0 = (int)c;
      if (j0 > in - 1) j0 = in - 1;
      double f = c - j0;
      a->first[o] = j0;
      w[0] = (float)(1 - f);
      if (j0 + 1 < in)
        w[1] = (float)f;
      else
        w[0] = 1;
    }
  }
  return 0;
}

static void axis_free(axis *a) {
  free(a->first);
  free(a->w);
}

void ut_resize_square(const uint8_t *src, int src_stride, int side, int channels, int size, uint8_t *dst) {
  axis ax;
  float *tmp = malloc((size_t)side * (size_t)size * (size_t)channels * sizeof *tmp);
  if (axis_build(&ax, side, size) != 0 || !tmp) {
    /* Tiny allocations only; on failure fall back to nearest sampling rather than fail. */
    for (int y = 0; y < size; y++)
      for (int x = 0; x < size; x++)
        for (int c = 0; c < channels; c++)
          dst[((size_t)y * size + x) * channels + c] =
              src[(size_t)(y * side / size) * src_stride + (size_t)(x * side / size) * channels + c];
    axis_free(&ax);
    free(tmp);
    return;
  }
  size_t C = (size_t)channels;
  for (int y = 0; y < side; y++) { /* rows: side x side -> side x size */
    const uint8_t *row = src + (size_t)y * (size_t)src_stride;
    for (int o = 0; o < size; o++)
      for (size_t c = 0; c < C; c++) {
        float acc = 0;
        for (int t = 0; t < ax.taps; t++) {
          float wt = ax.w[(size_t)o * ax.taps + t];
          if (wt != 0) acc += wt * row[(size_t)(ax.first[o] + t) * C + c];
        }
        tmp[((size_t)y * size + o) * C + c] = acc;
      }
  }
  for (int o = 0; o < size; o++) /* columns: side x size -> size x size */
    for (size_t x = 0; x < (size_t)size * C; x++) {
      float acc = 0;
      for (int t = 0; t < ax.taps; t++) {
        float wt = ax.w[(size_t)o * ax.taps + t];
        if (wt != 0) acc += wt * tmp[(size_t)(ax.first[o] + t) * size * C + x];
      }
      int v = (int)(acc + 0.5f);
      dst[(size_t)o * size * C + x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
  axis_free(&ax);
  free(tmp);
}

ut_status ut_image_square_resize(const ut_image *in, int size, uint8_t *hwc) {
  if (!in || !in->pixels || !hwc || size < 1 || in->width < 1 || in->height < 1 ||
      (in->channels != 1 && in->channels != 3))
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_image_square_resize: no image, or size %d < 1", size);
  int side = in->width < in->height ? in->width : in->height;
  int x0 = (in->width - side) / 2, y0 = (in->height - side) / 2;
  size_t stride = (size_t)in->width * (size_t)in->channels;
  ut_resize_square(in->pixels + (size_t)y0 * stride + (size_t)x0 * (size_t)in->channels, (int)stride, side, in->channels,
                   size, hwc);
  return UT_OK;
}

ut_status ut_jpeg_load_square(const char *path, int channels, int size, uint8_t *hwc) {
  if (!path || !hwc || size < 1)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_jpeg_load_square: no path or output, or size %d < 1", size);
  uint8_t *data;
  size_t len;
  ut_status s = ut_data_read_file(path, MAX_FILE_BYTES, &data, &len);
  if (s != UT_OK) return s;
  ut_image img;
  s = decode(data, len, path, channels, size, &img);
  free(data);
  if (s != UT_OK) return s;
  s = ut_image_square_resize(&img, size, hwc);
  ut_image_free(&img);
  return s;
}

ut_status ut_jpeg_read_float(const char *path, int channels, int size, float *chw) {
  if (!chw || size < 1) return ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_jpeg_read_float: no output, or size %d < 1", size);
  size_t hw = (size_t)size * (size_t)size;
  uint8_t *hwc = malloc(hw * (size_t)(channels == 1 ? 1 : 3));
  if (!hwc) return ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", path ? path : "(null)");
  ut_status s = ut_jpeg_load_square(path, channels, size, hwc);
  if (s == UT_OK) ut_image_bytes_to_chw(hwc, hw, channels, chw);
  free(hwc);
  return s;
}

/* ------------------------------------------------------------------------------------------ */

ut_status ut_jpeg_write(const char *path, const uint8_t *hwc, int width, int height, int channels, int quality) {
  if (!path || !hwc || width < 1 || height < 1 || width > 65500 || height > 65500 || (channels != 1 && channels != 3) ||
      quality < 1 || quality > 100)
    return ut_fail(UT_ERR_INVALID_ARGUMENT,
                   "%s: cannot encode %d x %d x %d at quality %d (sides 1..65500, 1 or 3 channels, quality 1..100)",
                   path ? path : "(null)", width, height, channels, quality);
  struct jpeg_compress_struct cinfo;
  error_mgr jerr;
  unsigned char *buf = NULL; /* address taken, so it survives the longjmp */
  unsigned long size = 0;
  cinfo.err = jpeg_std_error(&jerr.pub);
  jerr.pub.error_exit = on_error;
  if (setjmp(jerr.jump)) {
    jpeg_destroy_compress(&cinfo);
    free(buf);
    return ut_fail(UT_ERR_FORMAT, "%s: JPEG encoding failed: %s", path, jerr.msg);
  }
  jpeg_create_compress(&cinfo);
  jpeg_mem_dest(&cinfo, &buf, &size);
  cinfo.image_width = (JDIMENSION)width;
  cinfo.image_height = (JDIMENSION)height;
  cinfo.input_components = channels;
  cinfo.in_color_space = channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = (JSAMPROW)(hwc + (size_t)cinfo.next_scanline * (size_t)width * (size_t)channels);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  ut_status s = ut_data_write_atomic(path, buf, size);
  free(buf);
  return s;
}
