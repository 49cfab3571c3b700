/* safetensors reading and atomic writing (format in safetensors.h). */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

/* The reference implementation refuses headers above 100 MB; so do we, before allocating. */
#define ST_MAX_HEADER (100u * 1024u * 1024u)
#define ST_METADATA "__metadata__"

/* ---------------------------------------------------------------------------------------------
 * Reading.
 */

void ut_st_file_free(ut_st_file *f) {
  if (!f) return;
  for (int i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
  for (int i = 0; i < f->n_meta; i++) {
    free(f->meta[i].key);
    free(f->meta[i].value);
  }
  free(f->tensors);
  free(f->meta);
  free(f->data);
  memset(f, 0, sizeof *f);
}

void ut_st_decode_f32(const unsigned char *src, float *dst, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const unsigned char *b = src + 4 * i;
    uint32_t bits = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    memcpy(&dst[i], &bits, sizeof bits);
  }
}

static int get_u64(const json_t *v, uint64_t *out) {
  if (!json_is_integer(v) || json_integer_value(v) < 0) return 0;
  *out = (uint64_t)json_integer_value(v);
  return 1;
}

/* Validates one tensor entry against the data section's size. The element count is checked
 * against the bytes the file actually has before it is ever multiplied out, so a shape of
 * [2^40, 2^40] is an error message, not an allocation. */
static ut_status parse_entry(const char *path, const char *name, const json_t *obj, uint64_t data_len,
                             ut_st_entry *e) {
  if (!*name) return ut_fail(UT_ERR_FORMAT, "%s: a tensor has an empty name", path);
  if (!json_is_object(obj)) return ut_fail(UT_ERR_FORMAT, "%s: tensor '%s': the entry is not a JSON object", path, name);
  const json_t *dtype = json_object_get(obj, "dtype");
  if (!json_is_string(dtype))
    return ut_fail(UT_ERR_FORMAT, "%s: tensor '%s': no \"dtype\" string", path, name);
  if (strcmp(json_string_value(dtype), "F32") != 0)
    return ut_fail(UT_ERR_MISMATCH, "%s: tensor '%s': dtype %s in the file, untangle expects F32", path, name,
                   json_string_value(dtype));

  const json_t *shape = json_object_get(obj, "shape");
  if (!json_is_array(shape)) return ut_fail(UT_ERR_FORMAT, "%s: tensor '%s': no \"shape\" array", path, name);
  size_t rank = json_array_size(shape);
  if (rank > UT_MAX_RANK)
    return ut_fail(UT_ERR_MISMATCH, "%s: tensor '%s': rank %zu in the file, untangle handles at most %d", path,
                   name, rank, UT_MAX_RANK);
  e->shape = (ut_shape){ .rank = (int)rank };
  int any_zero = 0;
  for (size_t i = 0; i < rank; i++) {
    uint64_t d;
    if (!get_u64(json_array_get(shape, i), &d))
      return ut_fail(UT_ERR_FORMAT, "%s: tensor '%s': shape entry %zu is not a non-negative integer", path, name, i);
    e->shape.d[i] = (int64_t)d; /* json integers are at most INT64_MAX */
    any_zero |= d == 0;
  }
  char sbuf[128];
  uint64_t numel = 1;
  if (any_zero) {
    numel = 0;
  } else {
    for (size_t i = 0; i < rank; i++) {
      uint64_t d = (uint64_t)e->shape.d[i];
      if (numel > data_len / 4 / d)
        return ut_fail(UT_ERR_FORMAT, "%s: tensor '%s': shape %s needs more than the %" PRIu64
                       " bytes of data the file has", path, name, ut_shape_str(e->shape, sbuf, sizeof sbuf), data_len);
      numel *= d;
    }
  }

  const json_t *offs = json_object_get(obj, "data_offsets");
  if (!json_is_array(offs) || json_array_size(offs) != 2 || !get_u64(json_array_get(offs, 0), &e->begin) ||
      !get_u64(json_array_get(offs, 1), &e->end) || e->begin > e->end)
    return ut_fail(UT_ERR_FORMAT, "%s: tensor '%s': \"data_offsets\" is not [begin, end] with 0 <= begin <= end",
                   path, name);
  if (e->end > data_len)
    return ut_fail(UT_ERR_FORMAT, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] reach past the %"
                   PRIu64 " bytes of data; the file is truncated", path, name, e->begin, e->end, data_len);
  if (e->end - e->begin != numel * 4)
    return ut_fail(UT_ERR_FORMAT, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] hold %" PRIu64
                   " bytes, shape %s of F32 needs %" PRIu64, path, name, e->begin, e->end, e->end - e->begin,
                   ut_shape_str(e->shape, sbuf, sizeof sbuf), numel * 4);
  e->name = strdup(name);
  if (!e->name) return ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", path);
  return UT_OK;
}

static ut_status parse_metadata(const char *path, const json_t *obj, ut_st_file *f) {
  if (!json_is_object(obj)) return ut_fail(UT_ERR_FORMAT, "%s: \"%s\" is not a JSON object", path, ST_METADATA);
  f->meta = calloc(json_object_size(obj) + 1, sizeof *f->meta);
  if (!f->meta) return ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", path);
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)obj, key, v) {
    if (!json_is_string(v))
      return ut_fail(UT_ERR_FORMAT, "%s: metadata '%s' is not a string", path, key);
    ut_st_pair *p = &f->meta[f->n_meta++];
    p->key = strdup(key);
    p->value = strdup(json_string_value(v));
    if (!p->key || !p->value) return ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", path);
  }
  return UT_OK;
}

static int by_offset(const void *a, const void *b) {
  const ut_st_entry *x = *(const ut_st_entry *const *)a, *y = *(const ut_st_entry *const *)b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  return x->end < y->end ? -1 : x->end > y->end;
}

/* The tensors must tile the data section exactly: that is what the format promises, and a file
 * where they do not is damaged or hand-made. */
static ut_status check_layout(const char *path, const ut_st_file *f) {
  if (f->n_tensors == 0) {
    if (f->data_len != 0)
      return ut_fail(UT_ERR_FORMAT, "%s: %" PRIu64 " bytes of data but no tensors", path, f->data_len);
    return UT_OK;
  }
  const ut_st_entry **order = malloc((size_t)f->n_tensors * sizeof *order);
  if (!order) return ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", path);
  for (int i = 0; i < f->n_tensors; i++) order[i] = &f->tensors[i];
  qsort(order, (size_t)f->n_tensors, sizeof *order, by_offset);
  ut_status s = UT_OK;
  uint64_t at = 0;
  const char *prev = NULL;
  for (int i = 0; i < f->n_tensors && s == UT_OK; i++) {
    const ut_st_entry *e = order[i];
    if (e->begin < at)
      s = ut_fail(UT_ERR_FORMAT, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] overlap tensor '%s'",
                  path, e->name, e->begin, e->end, prev);
    else if (e->begin > at)
      s = ut_fail(UT_ERR_FORMAT, "%s: tensor '%s': a gap of %" PRIu64 " bytes before its data", path, e->name,
                  e->begin - at);
    at = e->end;
    prev = e->name;
  }
  if (s == UT_OK && at != f->data_len)
    s = ut_fail(UT_ERR_FORMAT, "%s: %" PRIu64 " bytes of data after the last tensor '%s'", path, f->data_len - at,
                prev);
  free(order);
  return s;
}

static ut_status parse_header(const char *path, const char *text, size_t len, ut_st_file *f) {
  json_error_t err;
  json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
  if (!root)
    return ut_fail(UT_ERR_FORMAT, "%s: the header is not valid JSON: %s (line %d, column %d)", path, err.text,
                   err.line, err.column);
  ut_status s = UT_OK;
  if (!json_is_object(root)) {
    s = ut_fail(UT_ERR_FORMAT, "%s: the header is not a JSON object", path);
    goto done;
  }
  f->tensors = calloc(json_object_size(root) + 1, sizeof *f->tensors);
  if (!f->tensors) {
    s = ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", path);
    goto done;
  }
  const char *key;
  json_t *v;
  json_object_foreach(root, key, v) {
    if (strcmp(key, ST_METADATA) == 0)
      s = parse_metadata(path, v, f);
    else if ((s = parse_entry(path, key, v, f->data_len, &f->tensors[f->n_tensors])) == UT_OK)
      f->n_tensors++;
    if (s != UT_OK) goto done;
  }
  s = check_layout(path, f);
done:
  json_decref(root);
  return s;
}

static ut_status read_exact(const char *path, FILE *fp, void *dst, size_t n, const char *what) {
  if (n == 0 || fread(dst, 1, n, fp) == n) return UT_OK;
  if (ferror(fp)) return ut_fail(UT_ERR_IO, "%s: reading %s failed: %s", path, what, strerror(errno));
  return ut_fail(UT_ERR_FORMAT, "%s: the file ended inside %s; it is truncated", path, what);
}

ut_status ut_st_read(const char *path, ut_st_file *out) {
  memset(out, 0, sizeof *out);
  FILE *fp = fopen(path, "rb");
  if (!fp) return ut_fail(errno == ENOENT ? UT_ERR_NOT_FOUND : UT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  ut_status s = UT_OK;
  char *header = NULL;
  struct stat sb;
  if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
    s = ut_fail(UT_ERR_IO, "%s: not a regular file", path);
    goto fail;
  }
  uint64_t size = (uint64_t)sb.st_size;
  unsigned char lenbuf[8];
  if (size < 8) {
    s = ut_fail(UT_ERR_FORMAT, "%s: %" PRIu64 " bytes is too short for a safetensors file", path, size);
    goto fail;
  }
  if ((s = read_exact(path, fp, lenbuf, 8, "the header length")) != UT_OK) goto fail;
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | lenbuf[i];
  if (hlen == 0 || hlen > size - 8 || hlen > ST_MAX_HEADER) {
    s = ut_fail(UT_ERR_FORMAT, "%s: header length %" PRIu64 " does not fit a file of %" PRIu64
                " bytes; the file is truncated or not safetensors", path, hlen, size);
    goto fail;
  }
  header = malloc((size_t)hlen);
  if (!header) {
    s = ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory for the header", path);
    goto fail;
  }
  if ((s = read_exact(path, fp, header, (size_t)hlen, "the header")) != UT_OK) goto fail;
  out->data_len = size - 8 - hlen;
  if (out->data_len > SIZE_MAX - 1) {
    s = ut_fail(UT_ERR_FORMAT, "%s: too large for this host's address space", path);
    goto fail;
  }
  if ((s = parse_header(path, header, (size_t)hlen, out)) != UT_OK) goto fail;
  /* Only now, with every tensor checked against the real file size, is the data read. */
  out->data = malloc((size_t)out->data_len + 1);
  if (!out->data) {
    s = ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory for %" PRIu64 " bytes of data", path, out->data_len);
    goto fail;
  }
  if ((s = read_exact(path, fp, out->data, (size_t)out->data_len, "the tensor data")) != UT_OK) goto fail;
  free(header);
  fclose(fp);
  return UT_OK;
fail:
  free(header);
  fclose(fp);
  ut_st_file_free(out);
  return s;
}

/* ---------------------------------------------------------------------------------------------
 * Writing.
 */

static void put_le64(unsigned char b[8], uint64_t v) {
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
}

/* In place: float i occupies the same four bytes before and after. */
static void encode_f32(float *v, size_t n) {
  unsigned char *b = (unsigned char *)v;
  for (size_t i = 0; i < n; i++) {
    uint32_t bits;
    memcpy(&bits, &v[i], sizeof bits);
    b[4 * i] = (unsigned char)bits;
    b[4 * i + 1] = (unsigned char)(bits >> 8);
    b[4 * i + 2] = (unsigned char)(bits >> 16);
    b[4 * i + 3] = (unsigned char)(bits >> 24);
  }
}

static size_t desc_numel(const ut_st_desc *d) {
  size_t n = 1;
  for (int i = 0; i < d->shape.rank; i++) n *= (size_t)d->shape.d[i];
  return n;
}

/* The header JSON, padded with spaces to a multiple of 8 bytes (*len). */
static ut_status build_header(const char *path, const ut_st_desc *t, int n, const ut_st_pair *meta, int n_meta,
                              char **text, size_t *len) {
  json_t *root = json_object();
  json_t *md = json_object();
  int ok = root && md;
  uint64_t at = 0;
  for (int i = 0; ok && i < n; i++) {
    json_t *e = json_object(), *shape = json_array(), *offs = json_array();
    ok = e && shape && offs;
    for (int k = 0; ok && k < t[i].shape.rank; k++) ok = json_array_append_new(shape, json_integer(t[i].shape.d[k])) == 0;
    uint64_t bytes = 4 * (uint64_t)desc_numel(&t[i]);
    ok = ok && json_array_append_new(offs, json_integer((json_int_t)at)) == 0 &&
         json_array_append_new(offs, json_integer((json_int_t)(at + bytes))) == 0 &&
         json_object_set_new(e, "dtype", json_string("F32")) == 0 && json_object_set(e, "shape", shape) == 0 &&
         json_object_set(e, "data_offsets", offs) == 0 && json_object_set(root, t[i].name, e) == 0;
    json_decref(e);
    json_decref(shape);
    json_decref(offs);
    at += bytes;
  }
  for (int i = 0; ok && i < n_meta; i++) ok = json_object_set_new(md, meta[i].key, json_string(meta[i].value)) == 0;
  ok = ok && json_object_set(root, ST_METADATA, md) == 0;
  char *js = ok ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  json_decref(md);
  json_decref(root);
  if (!js) return ut_fail(UT_ERR_HOST_MEMORY, "%s: cannot build the header (out of memory or a name is not UTF-8)", path);
  size_t raw = strlen(js), padded = (raw + 7) / 8 * 8;
  char *buf = malloc(padded);
  if (!buf) {
    free(js);
    return ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", path);
  }
  memcpy(buf, js, raw);
  memset(buf + raw, ' ', padded - raw);
  free(js);
  *text = buf;
  *len = padded;
  return UT_OK;
}

static ut_status write_bytes(const char *tmp, FILE *fp, const void *p, size_t n) {
  if (n == 0 || fwrite(p, 1, n, fp) == n) return UT_OK;
  return ut_fail(UT_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
}

/* Syncs the folder so the rename itself survives a crash. Best effort: the new file is already
 * in place, and some file systems refuse fsync on a folder. */
static void sync_parent(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
  if (!dir) return;
  int fd = open(dir, O_RDONLY);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
  free(dir);
}

static ut_status write_body(const char *tmp, FILE *fp, const char *header, size_t hlen, const ut_st_desc *t, int n,
                            ut_st_fill_fn fill, void *user) {
  unsigned char lenbuf[8];
  put_le64(lenbuf, hlen);
  ut_status s = write_bytes(tmp, fp, lenbuf, 8);
  if (s == UT_OK) s = write_bytes(tmp, fp, header, hlen);
  size_t most = 1;
  for (int i = 0; i < n; i++)
    if (desc_numel(&t[i]) > most) most = desc_numel(&t[i]);
  float *buf = s == UT_OK ? malloc(most * sizeof *buf) : NULL;
  if (s == UT_OK && !buf) s = ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", tmp);
  for (int i = 0; s == UT_OK && i < n; i++) {
    size_t numel = desc_numel(&t[i]);
    if (numel == 0) continue;
    if ((s = fill(user, i, buf)) != UT_OK) {
      ut_error_prefix("%s: reading tensor '%s' to save it", tmp, t[i].name);
      break;
    }
    encode_f32(buf, numel);
    s = write_bytes(tmp, fp, buf, numel * sizeof *buf);
  }
  free(buf);
  if (s == UT_OK && fflush(fp) != 0) s = ut_fail(UT_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
  if (s == UT_OK && fsync(fileno(fp)) != 0) s = ut_fail(UT_ERR_IO, "%s: fsync failed: %s", tmp, strerror(errno));
  return s;
}

ut_status ut_st_write(const char *path, const ut_st_desc *tensors, int n_tensors, const ut_st_pair *meta,
                      int n_meta, ut_st_fill_fn fill, void *user) {
  char *header = NULL;
  size_t hlen = 0;
  ut_status s = build_header(path, tensors, n_tensors, meta, n_meta, &header, &hlen);
  if (s != UT_OK) return s;
  size_t plen = strlen(path);
  char *tmp = malloc(plen + sizeof ".tmp-XXXXXX");
  if (!tmp) {
    free(header);
    return ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", path);
  }
  memcpy(tmp, path, plen);
  memcpy(tmp + plen, ".tmp-XXXXXX", sizeof ".tmp-XXXXXX");
  int fd = mkstemp(tmp);
  if (fd < 0) {
    s = ut_fail(UT_ERR_IO, "%s: cannot create a temporary file next to it: %s", path, strerror(errno));
    free(tmp);
    free(header);
    return s;
  }
  /* mkstemp makes the file private (0600); a checkpoint is an ordinary file. */
  (void)fchmod(fd, 0644);
  FILE *fp = fdopen(fd, "wb");
  if (!fp) {
    s = ut_fail(UT_ERR_IO, "%s: fdopen failed: %s", tmp, strerror(errno));
    close(fd);
  } else {
    s = write_body(tmp, fp, header, hlen, tensors, n_tensors, fill, user);
    if (fclose(fp) != 0 && s == UT_OK) s = ut_fail(UT_ERR_IO, "%s: close failed: %s", tmp, strerror(errno));
  }
  if (s == UT_OK && rename(tmp, path) != 0)
    s = ut_fail(UT_ERR_IO, "%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
  if (s != UT_OK) {
    unlink(tmp);
  } else {
    sync_parent(path);
  }
  free(tmp);
  free(header);
  return s;
}
