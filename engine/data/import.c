/* Image-folder import: DIR/<class>/<image>.jpg into a data set file.
 *
 * The folder is listed completely first (so the progress has a total and the class list is
 * known before the header is reserved), then each file is decoded, cropped, resized and
 * streamed into the writer. A file that cannot be read is reported and skipped; only a
 * failure to write the output stops the import.
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data_internal.h"

typedef struct {
  char **items;
  size_t n, cap;
} strlist;

static int strlist_push(strlist *l, char *s) {
  if (!s) return -1;
  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 16;
    char **p = realloc(l->items, cap * sizeof *p);
    if (!p) {
      free(s);
      return -1;
    }
    l->items = p;
    l->cap = cap;
  }
  l->items[l->n++] = s;
  return 0;
}

static void strlist_free(strlist *l) {
  for (size_t i = 0; i < l->n; i++) free(l->items[i]);
  free(l->items);
  memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static char *join(const char *dir, const char *name) {
  size_t a = strlen(dir), b = strlen(name);
  char *p = malloc(a + b + 2);
  if (!p) return NULL;
  memcpy(p, dir, a);
  p[a] = '/';
  memcpy(p + a + 1, name, b + 1);
  return p;
}

/* Class names go into JSON, which must be UTF-8; a folder name need not be. Invalid bytes
 * become '?', so the class keeps a readable name and the import goes on. */
static char *utf8_clean(const char *s) {
  char *out = strdup(s);
  if (!out) return NULL;
  unsigned char *p = (unsigned char *)out;
  while (*p) {
    int len = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 0;
    int ok = len > 0;
    for (int i = 1; ok && i < len; i++) ok = (p[i] & 0xC0) == 0x80;
    if (ok && len == 2) ok = *p >= 0xC2;                         /* overlong */
    if (ok && len == 3) /* overlong, surrogates */
      ok = !(*p == 0xE0 && p[1] < 0xA0) && !(*p == 0xED && p[1] >= 0xA0);
    if (ok && len == 4) ok = !(*p == 0xF0 && p[1] < 0x90) && !(*p > 0xF4 || (*p == 0xF4 && p[1] >= 0x90));
    if (!ok) {
      *p++ = '?';
    } else {
      p += len;
    }
  }
  return out;
}

/* Lists the entries of `dir` (not starting with '.') into folders and files, each sorted. */
static ut_status list_dir(const char *dir, strlist *folders, strlist *files, strlist *others) {
  DIR *d = opendir(dir);
  if (!d) return ut_fail(UT_ERR_IO, "%s: cannot open the folder: %s", dir, strerror(errno));
  struct dirent *e;
  ut_status s = UT_OK;
  while (s == UT_OK && (e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char *path = join(dir, e->d_name);
    struct stat sb;
    if (!path) {
      s = ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", dir);
    } else if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
      if (strlist_push(folders, path)) s = ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", dir);
    } else if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
      if (strlist_push(files, path)) s = ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", dir);
    } else {
      /* Dangling links, sockets, unreadable entries: reported as skipped by the caller. */
      if (strlist_push(others, path)) s = ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", dir);
    }
  }
  closedir(d);
  strlist *lists[3] = { folders, files, others };
  for (int i = 0; i < 3; i++) /* an empty list has no array, and qsort must not get NULL */
    if (lists[i]->n > 1) qsort(lists[i]->items, lists[i]->n, sizeof *lists[i]->items, cmp_str);
  return s;
}

static const char *basename_of(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

/* The last error without its leading "<file>: ", since the callback gets the file apart. */
static const char *reason_for(const char *file) {
  const char *msg = ut_last_error();
  size_t n = strlen(file);
  return strncmp(msg, file, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ' ? msg + n + 2 : msg;
}

typedef struct {
  const ut_import_cfg *cfg;
  ut_import_stats *stats;
  int64_t done, total;
} tally;

static void skip(tally *t, const char *file, const char *reason) {
  t->stats->skipped++;
  if (t->cfg->skipped) t->cfg->skipped(t->cfg->user, file, reason);
}

static void advance(tally *t) {
  t->done++;
  if (t->cfg->progress) t->cfg->progress(t->cfg->user, t->done, t->total);
}

static ut_status import_classes(const char *dir, const char *out_path, const ut_import_cfg *cfg, strlist *folders,
                                strlist *class_files, tally *t) {
  int n_classes = (int)folders->n;
  char **names = calloc((size_t)n_classes, sizeof *names);
  uint8_t *img = malloc((size_t)cfg->size * (size_t)cfg->size * (size_t)cfg->channels);
  json_t *src = json_pack("{s:s, s:i, s:i}", "kind", "folder", "size", cfg->size, "channels", cfg->channels);
  char *clean_dir = utf8_clean(dir);
  ut_status s = names && img && src && clean_dir ? UT_OK : ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", dir);
  if (s == UT_OK) json_object_set_new(src, "path", json_string(clean_dir));
  for (int c = 0; s == UT_OK && c < n_classes; c++)
    if (!(names[c] = utf8_clean(basename_of(folders->items[c])))) s = ut_fail(UT_ERR_HOST_MEMORY, "out of host memory");
  char *source = s == UT_OK ? json_dumps(src, JSON_COMPACT) : NULL;
  ut_dataset_writer *w = NULL;
  if (s == UT_OK) {
    ut_dataset_desc desc = { .height = cfg->size, .width = cfg->size, .channels = cfg->channels, .n_classes = n_classes,
                             .class_names = (const char *const *)names, .n_contents = 0, .source_json = source };
    w = ut_dataset_writer_open(out_path, &desc);
    if (!w) s = UT_ERR_IO;
  }
  for (int c = 0; s == UT_OK && c < n_classes; c++) {
    int64_t before = ut_dataset_writer_count(w);
    for (size_t i = 0; s == UT_OK && i < class_files[c].n; i++) {
      const char *file = class_files[c].items[i];
      if (ut_jpeg_load_square(file, cfg->channels, cfg->size, img) != UT_OK) {
        skip(t, file, reason_for(file));
      } else if ((s = ut_dataset_writer_add(w, img, c, -1)) == UT_OK) {
        t->stats->imported++;
      }
      advance(t);
    }
    if (ut_dataset_writer_count(w) == before) t->stats->empty_classes++;
  }
  if (s == UT_OK && ut_dataset_writer_count(w) == 0) {
    s = ut_fail(UT_ERR_FORMAT, "%s: no image could be read (%lld files skipped)", dir, (long long)t->stats->skipped);
  }
  if (w) {
    if (s == UT_OK)
      s = ut_dataset_writer_finish(w);
    else
      ut_dataset_writer_abort(w);
  }
  if (names)
    for (int c = 0; c < n_classes; c++) free(names[c]);
  free(names);
  free(img);
  free(source);
  free(clean_dir);
  json_decref(src);
  return s;
}

ut_status ut_import_folder(const char *dir, const char *out_path, const ut_import_cfg *cfg, ut_import_stats *stats) {
  ut_import_stats local;
  if (!stats) stats = &local;
  memset(stats, 0, sizeof *stats);
  if (!dir || !out_path || !cfg || cfg->size < 1 || cfg->size > 4096 || (cfg->channels != 1 && cfg->channels != 3))
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_import_folder: needs a folder, an output, size 1..4096, 1 or 3 channels");
  strlist folders = { 0 }, top_files = { 0 }, others = { 0 };
  ut_status s = list_dir(dir, &folders, &top_files, &others);
  if (s == UT_OK && folders.n == 0)
    s = ut_fail(UT_ERR_FORMAT, "%s: no class folders (expected one sub-folder per class, holding JPEG files)", dir);
  if (s == UT_OK && folders.n > INT32_MAX / 2) s = ut_fail(UT_ERR_FORMAT, "%s: too many class folders", dir);
  strlist *class_files = s == UT_OK ? calloc(folders.n, sizeof *class_files) : NULL;
  strlist *nested = s == UT_OK ? calloc(folders.n, sizeof *nested) : NULL;
  if (s == UT_OK && (!class_files || !nested)) s = ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", dir);
  tally t = { .cfg = cfg, .stats = stats };
  for (size_t c = 0; s == UT_OK && c < folders.n; c++) {
    /* Folders inside a class folder are not read; they land with the other skipped entries. */
    s = list_dir(folders.items[c], &nested[c], &class_files[c], &nested[c]);
    t.total += (int64_t)class_files[c].n;
  }
  if (s == UT_OK) {
    stats->n_classes = (int)folders.n;
    for (size_t i = 0; i < top_files.n; i++) skip(&t, top_files.items[i], "not inside a class folder");
    for (size_t i = 0; i < others.n; i++) skip(&t, others.items[i], "not a regular file");
    for (size_t c = 0; c < folders.n; c++)
      for (size_t i = 0; i < nested[c].n; i++)
        skip(&t, nested[c].items[i], "not a regular file (folders inside a class folder are not read)");
    s = import_classes(dir, out_path, cfg, &folders, class_files, &t);
  }
  for (size_t c = 0; class_files && c < folders.n; c++) strlist_free(&class_files[c]);
  for (size_t c = 0; nested && c < folders.n; c++) strlist_free(&nested[c]);
  free(class_files);
  free(nested);
  strlist_free(&folders);
  strlist_free(&top_files);
  strlist_free(&others);
  return s;
}
