/* IDX files (MNIST, Fashion-MNIST): a 4-byte magic (0, 0, type, number of dimensions), the
 * dimensions as big-endian uint32, then the values in row-major order. Debian's
 * dataset-fashion-mnist package installs them gzip-compressed under
 * /usr/share/datasets/fashion-mnist, so a file starting with gzip's magic is decompressed
 * first: with zlib when the build has it (UT_HAVE_ZLIB), else through the gzip program.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef UT_HAVE_ZLIB
#include <zlib.h>
#endif

#include "data_internal.h"

/* Fashion-MNIST's training images are 47 MB; this leaves room for far larger sets. */
#define MAX_IDX_BYTES (4ull << 30)
#define MAX_GZ_BYTES (1ull << 30)

ut_status ut_idx_parse(const uint8_t *buf, size_t len, const char *name, ut_idx_view *out) {
  memset(out, 0, sizeof *out);
  if (len < 4 || buf[0] != 0 || buf[1] != 0)
    return ut_fail(UT_ERR_FORMAT, "%s: not an IDX file (it does not start with two zero bytes)", name);
  if (buf[2] != 0x08)
    return ut_fail(UT_ERR_FORMAT, "%s: IDX value type 0x%02x, this reader takes unsigned bytes (0x08)", name, buf[2]);
  int nd = buf[3];
  if (nd < 1 || nd > 4) return ut_fail(UT_ERR_FORMAT, "%s: IDX with %d dimensions, expected 1 to 4", name, nd);
  if (len < 4 + 4 * (size_t)nd)
    return ut_fail(UT_ERR_FORMAT, "%s: truncated IDX header (%zu bytes, %d dimensions)", name, len, nd);
  uint64_t total = 1;
  for (int i = 0; i < nd; i++) {
    const uint8_t *p = buf + 4 + 4 * i;
    out->dims[i] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    /* Checked before multiplying so forged sizes cannot wrap around. */
    if (out->dims[i] != 0 && total > (uint64_t)len / out->dims[i])
      return ut_fail(UT_ERR_FORMAT, "%s: IDX dimension %d is %u: the values would need more than the file's %zu bytes",
                     name, i, out->dims[i], len);
    total *= out->dims[i];
  }
  size_t body = len - 4 - 4 * (size_t)nd;
  if (total != body)
    return ut_fail(UT_ERR_FORMAT, "%s: the IDX dimensions give %llu values but the file holds %zu bytes of them%s", name,
                   (unsigned long long)total, body, body < total ? " (truncated?)" : "");
  out->ndims = nd;
  out->data = buf + 4 + 4 * (size_t)nd;
  out->n_bytes = (size_t)total;
  return UT_OK;
}

#ifdef UT_HAVE_ZLIB
static ut_status gunzip(const char *path, uint8_t **buf, size_t *len) {
  gzFile gz = gzopen(path, "rb");
  if (!gz) return ut_fail(UT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  size_t cap = 1 << 20, n = 0;
  uint8_t *b = malloc(cap + 1);
  ut_status s = b ? UT_OK : ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", path);
  while (s == UT_OK) {
    if (n == cap) {
      uint8_t *nb = cap < MAX_GZ_BYTES ? realloc(b, 2 * cap + 1) : NULL;
      if (!nb) {
        s = ut_fail(UT_ERR_FORMAT, "%s: decompresses to more than %llu bytes", path, (unsigned long long)MAX_GZ_BYTES);
        break;
      }
      b = nb;
      cap *= 2;
    }
    int got = gzread(gz, b + n, (unsigned)(cap - n > (1u << 30) ? (1u << 30) : cap - n));
    if (got < 0) {
      int code;
      s = ut_fail(UT_ERR_FORMAT, "%s: corrupt gzip data: %s", path, gzerror(gz, &code));
    } else if (got == 0) {
      break;
    }
    n += (size_t)(got > 0 ? got : 0);
  }
  /* gzread stops quietly at a truncated stream; gzclose_r reports it. */
  int rc = gzclose_r(gz);
  if (s == UT_OK && rc != Z_OK) s = ut_fail(UT_ERR_FORMAT, "%s: corrupt or truncated gzip data", path);
  if (s != UT_OK) {
    free(b);
    return s;
  }
  *buf = b;
  *len = n;
  return UT_OK;
}
#else
extern char **environ;

/* Runs `gzip -dc -- path` and collects its output; gzip's own message goes to /dev/null and
 * a failure is reported as corrupt data, which is what gzip exits non-zero for. */
static ut_status gunzip(const char *path, uint8_t **buf, size_t *len) {
  int pfd[2];
  if (pipe(pfd) != 0) return ut_fail(UT_ERR_IO, "%s: cannot create a pipe: %s", path, strerror(errno));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
  posix_spawn_file_actions_addclose(&fa, pfd[0]);
  posix_spawn_file_actions_addclose(&fa, pfd[1]);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  char arg0[] = "gzip", arg1[] = "-dc", arg2[] = "--";
  char *path_copy = strdup(path);
  char *argv[] = { arg0, arg1, arg2, path_copy, NULL };
  pid_t pid;
  int rc = path_copy ? posix_spawnp(&pid, "gzip", &fa, NULL, argv, environ) : ENOMEM;
  posix_spawn_file_actions_destroy(&fa);
  free(path_copy);
  close(pfd[1]);
  if (rc != 0) {
    close(pfd[0]);
    return ut_fail(UT_ERR_IO, "%s: is gzip-compressed and the gzip program cannot run: %s", path, strerror(rc));
  }
  size_t cap = 1 << 20, n = 0;
  uint8_t *b = malloc(cap + 1);
  ut_status s = b ? UT_OK : ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", path);
  while (s == UT_OK) {
    if (n == cap) {
      uint8_t *nb = cap < MAX_GZ_BYTES ? realloc(b, 2 * cap + 1) : NULL;
      if (!nb) {
        s = ut_fail(UT_ERR_FORMAT, "%s: decompresses to more than %llu bytes", path, (unsigned long long)MAX_GZ_BYTES);
        break;
      }
      b = nb;
      cap *= 2;
    }
    ssize_t got = read(pfd[0], b + n, cap - n);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) s = ut_fail(UT_ERR_IO, "%s: reading gzip's output failed: %s", path, strerror(errno));
    if (got <= 0) break;
    n += (size_t)got;
  }
  if (s != UT_OK) kill(pid, SIGTERM);
  close(pfd[0]);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (s == UT_OK && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
    s = ut_fail(UT_ERR_FORMAT, "%s: corrupt or truncated gzip data (gzip -dc failed)", path);
  if (s != UT_OK) {
    free(b);
    return s;
  }
  *buf = b;
  *len = n;
  return UT_OK;
}
#endif

/* Reads an IDX file, decompressing it when it starts with gzip's magic bytes. */
static ut_status read_idx(const char *path, uint8_t **buf, size_t *len) {
  ut_status s = ut_data_read_file(path, MAX_IDX_BYTES, buf, len);
  if (s != UT_OK || *len < 2 || (*buf)[0] != 0x1f || (*buf)[1] != 0x8b) return s;
  free(*buf);
  *buf = NULL;
  return gunzip(path, buf, len);
}

ut_status ut_import_idx(const char *images_path, const char *labels_path, const char *out_path,
                        const char *const *class_names, const ut_import_cfg *cfg, ut_import_stats *stats) {
  ut_import_stats local;
  if (!stats) stats = &local;
  memset(stats, 0, sizeof *stats);
  if (!images_path || !labels_path || !out_path || !cfg || cfg->size < 1 || cfg->size > 4096 ||
      (cfg->channels != 1 && cfg->channels != 3))
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_import_idx: needs two files, an output, size 1..4096, 1 or 3 channels");
  uint8_t *ibuf = NULL, *lbuf = NULL, *gray = NULL, *rgb = NULL;
  size_t ilen = 0, llen = 0;
  ut_idx_view im, lb;
  ut_status s = read_idx(images_path, &ibuf, &ilen);
  if (s == UT_OK) s = read_idx(labels_path, &lbuf, &llen);
  if (s == UT_OK) s = ut_idx_parse(ibuf, ilen, images_path, &im);
  if (s == UT_OK) s = ut_idx_parse(lbuf, llen, labels_path, &lb);
  if (s == UT_OK && im.ndims != 3)
    s = ut_fail(UT_ERR_FORMAT, "%s: %d IDX dimensions, expected 3 (images x rows x columns)", images_path, im.ndims);
  if (s == UT_OK && lb.ndims != 1)
    s = ut_fail(UT_ERR_FORMAT, "%s: %d IDX dimensions, expected 1 (one label per image)", labels_path, lb.ndims);
  if (s == UT_OK && (im.dims[0] != lb.dims[0] || im.dims[0] == 0 || im.dims[0] > INT32_MAX))
    s = ut_fail(UT_ERR_MISMATCH, "%s has %u images but %s has %u labels", images_path, im.dims[0], labels_path,
                lb.dims[0]);
  if (s == UT_OK && (im.dims[1] == 0 || im.dims[2] == 0 || im.dims[1] > 65500 || im.dims[2] > 65500))
    s = ut_fail(UT_ERR_FORMAT, "%s: images of %u x %u pixels", images_path, im.dims[1], im.dims[2]);
  int n_classes = 0;
  if (s == UT_OK) {
    int given = 0;
    while (class_names && class_names[given]) given++;
    int most = 0;
    for (uint32_t i = 0; i < lb.dims[0]; i++)
      if (lb.data[i] > most) most = lb.data[i];
    n_classes = given ? given : most + 1;
    if (most >= n_classes)
      s = ut_fail(UT_ERR_MISMATCH, "%s: label %d but only %d class names were given", labels_path, most, n_classes);
    uint8_t seen[256] = { 0 };
    for (uint32_t i = 0; i < lb.dims[0]; i++) seen[lb.data[i]] = 1;
    for (int c = 0; c < n_classes && c < 256; c++) stats->empty_classes += !seen[c];
    if (n_classes > 256) stats->empty_classes += n_classes - 256;
  }
  json_t *src = s == UT_OK ? json_pack("{s:s, s:s?, s:s?, s:i, s:i}", "kind", "idx", "images", images_path, "labels",
                                       labels_path, "size", cfg->size, "channels", cfg->channels)
                           : NULL;
  char *source = src ? json_dumps(src, JSON_COMPACT) : NULL; /* NULL for a non-UTF-8 path: {} then */
  json_decref(src);
  ut_dataset_writer *w = NULL;
  if (s == UT_OK) {
    ut_dataset_desc desc = { .height = cfg->size, .width = cfg->size, .channels = cfg->channels, .n_classes = n_classes,
                             .class_names = class_names, .n_contents = 0, .source_json = source };
    if (!(w = ut_dataset_writer_open(out_path, &desc))) s = UT_ERR_IO;
  }
  size_t S2 = (size_t)cfg->size * (size_t)cfg->size;
  if (s == UT_OK && (!(gray = malloc(S2)) || !(rgb = malloc(3 * S2))))
    s = ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", out_path);
  size_t pixels = (size_t)im.dims[1] * im.dims[2];
  for (uint32_t i = 0; s == UT_OK && i < im.dims[0]; i++) {
    ut_image src_img = { .width = (int)im.dims[2], .height = (int)im.dims[1], .channels = 1,
                         .pixels = (uint8_t *)(uintptr_t)(im.data + (size_t)i * pixels) };
    s = ut_image_square_resize(&src_img, cfg->size, gray);
    if (s == UT_OK && cfg->channels == 3)
      for (size_t p = 0; p < S2; p++) rgb[3 * p] = rgb[3 * p + 1] = rgb[3 * p + 2] = gray[p];
    if (s == UT_OK) s = ut_dataset_writer_add(w, cfg->channels == 3 ? rgb : gray, lb.data[i], -1);
    if (s == UT_OK) stats->imported++;
    if (s == UT_OK && cfg->progress) cfg->progress(cfg->user, (int64_t)i + 1, (int64_t)im.dims[0]);
  }
  if (w) {
    if (s == UT_OK)
      s = ut_dataset_writer_finish(w);
    else
      ut_dataset_writer_abort(w);
  }
  stats->n_classes = n_classes;
  free(source);
  free(gray);
  free(rgb);
  free(ibuf);
  free(lbuf);
  return s;
}
