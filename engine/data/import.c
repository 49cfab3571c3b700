/* Image-folder import: DIR/<class>/<image>.jpg into a data set file, or DIR/<domain>/<image>.jpg
 * (also DIR/trainA, DIR/trainB, ... as UNIT and CycleGAN lay them out) with domain labels.
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

/* Writes the images of every group (a folder's files): group g is class g when the groups are
 * classes, or domain g of the one class "all" when `domains` (where a group without a readable
 * image is an error naming its folder). `kind` and `extra` go into the source object. */
/* The mask of image `file` of class folder `folder`: the file of the same name in the class
 * folder of the same name under mask_dir, read as gray and cropped and resized as the image. */
static ut_status load_mask(const char *mask_dir, const char *folder, const char *file, int size, uint8_t *mask) {
  char *class_dir = join(mask_dir, basename_of(folder)), *path = class_dir ? join(class_dir, basename_of(file)) : NULL;
  ut_status s = path ? ut_jpeg_load_square(path, 1, size, mask) : ut_fail(UT_ERR_HOST_MEMORY, "out of host memory");
  if (s != UT_OK && path) {
    char why[512];
    snprintf(why, sizeof why, "%s", ut_last_error());
    s = ut_fail(UT_ERR_FORMAT, "the mask of %s: %s", file, why);
  }
  free(class_dir);
  free(path);
  return s;
}

static ut_status import_groups(const char *dir, const char *out_path, const ut_import_cfg *cfg, strlist *folders,
                               char **group_names, strlist *group_files, int domains, json_t *src, tally *t) {
  int n_groups = (int)folders->n;
  uint8_t *img = malloc((size_t)cfg->size * (size_t)cfg->size * (size_t)cfg->channels);
  uint8_t *mask = malloc((size_t)cfg->size * (size_t)cfg->size);
  const char *mask_dir = domains ? NULL : cfg->mask_dir;
  char *clean_dir = utf8_clean(dir);
  ut_status s = img && mask && src && clean_dir ? UT_OK : ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", dir);
  if (s == UT_OK) {
    json_object_set_new(src, "size", json_integer(cfg->size));
    json_object_set_new(src, "channels", json_integer(cfg->channels));
    json_object_set_new(src, "path", json_string(clean_dir));
  }
  char *source = s == UT_OK ? json_dumps(src, JSON_COMPACT) : NULL;
  ut_dataset_writer *w = NULL;
  if (s == UT_OK) {
    static const char *const all[1] = { "all" };
    ut_dataset_desc desc = { .height = cfg->size, .width = cfg->size, .channels = cfg->channels,
                             .n_classes = domains ? 1 : n_groups,
                             .class_names = domains ? all : (const char *const *)group_names, .n_contents = 0,
                             .source_json = source, .n_domains = domains ? n_groups : 0,
                             .domain_names = domains ? (const char *const *)group_names : NULL,
                             .has_masks = mask_dir != NULL };
    w = ut_dataset_writer_open(out_path, &desc);
    if (!w) s = UT_ERR_IO;
  }
  for (int g = 0; s == UT_OK && g < n_groups; g++) {
    int64_t before = ut_dataset_writer_count(w);
    for (size_t i = 0; s == UT_OK && i < group_files[g].n; i++) {
      const char *file = group_files[g].items[i];
      if (ut_jpeg_load_square(file, cfg->channels, cfg->size, img) != UT_OK) {
        skip(t, file, reason_for(file));
      } else if (mask_dir) {
        s = load_mask(mask_dir, folders->items[g], file, cfg->size, mask);
        if (s == UT_OK)
          s = ut_dataset_writer_add_labels(w, img, &(ut_image_labels){ .class_id = g, .content_id = -1, .domain_id = -1,
                                                                        .mask = mask });
        if (s == UT_OK) t->stats->imported++;
      } else if ((s = ut_dataset_writer_add_domain(w, img, domains ? 0 : g, -1, domains ? g : -1)) == UT_OK) {
        t->stats->imported++;
      }
      advance(t);
    }
    if (s == UT_OK && ut_dataset_writer_count(w) == before) {
      t->stats->empty_classes += !domains;
      if (domains)
        s = ut_fail(UT_ERR_FORMAT, "%s: domain '%s' has no readable image (%zu files tried)", folders->items[g],
                    group_names[g], group_files[g].n);
    }
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
  free(img);
  free(mask);
  free(source);
  free(clean_dir);
  json_decref(src);
  return s;
}

/* Lists each chosen folder's files (`nested` gets what is inside them but is no file) and
 * reports what is skipped: files directly in `dir`, entries that are no regular file, folders
 * inside the group folders. `what` names a group in messages ("class", "domain"). */
static ut_status list_groups(strlist *folders, strlist *top_files, strlist *others, strlist *group_files,
                             strlist *nested, const char *what, tally *t) {
  ut_status s = UT_OK;
  for (size_t c = 0; s == UT_OK && c < folders->n; c++) {
    /* Folders inside a group folder are not read; they land with the other skipped entries. */
    s = list_dir(folders->items[c], &nested[c], &group_files[c], &nested[c]);
    t->total += (int64_t)group_files[c].n;
  }
  if (s != UT_OK) return s;
  char reason[96];
  snprintf(reason, sizeof reason, "not inside a %s folder", what);
  for (size_t i = 0; top_files && i < top_files->n; i++) skip(t, top_files->items[i], reason);
  for (size_t i = 0; others && i < others->n; i++) skip(t, others->items[i], "not a regular file");
  snprintf(reason, sizeof reason, "not a regular file (folders inside a %s folder are not read)", what);
  for (size_t c = 0; c < folders->n; c++)
    for (size_t i = 0; i < nested[c].n; i++) skip(t, nested[c].items[i], reason);
  return UT_OK;
}

static char **group_names_of(strlist *folders) {
  char **names = calloc(folders->n ? folders->n : 1, sizeof *names);
  for (size_t c = 0; names && c < folders->n; c++)
    if (!(names[c] = utf8_clean(basename_of(folders->items[c])))) {
      for (size_t k = 0; k < c; k++) free(names[k]);
      free(names);
      return NULL;
    }
  return names;
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
  if (s == UT_OK) s = list_groups(&folders, &top_files, &others, class_files, nested, "class", &t);
  char **names = s == UT_OK ? group_names_of(&folders) : NULL;
  if (s == UT_OK && !names) s = ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", dir);
  if (s == UT_OK) {
    stats->n_classes = (int)folders.n;
    s = import_groups(dir, out_path, cfg, &folders, names, class_files, 0, json_pack("{s:s}", "kind", "folder"), &t);
  }
  for (size_t c = 0; names && c < folders.n; c++) free(names[c]);
  free(names);
  for (size_t c = 0; class_files && c < folders.n; c++) strlist_free(&class_files[c]);
  for (size_t c = 0; nested && c < folders.n; c++) strlist_free(&nested[c]);
  free(class_files);
  free(nested);
  strlist_free(&folders);
  strlist_free(&top_files);
  strlist_free(&others);
  return s;
}

/* The letter X of a folder called "<prefix>X" (one capital letter), or 0. */
static char split_letter(const char *name, const char *prefix) {
  size_t n = strlen(prefix);
  return strncmp(name, prefix, n) == 0 && name[n] >= 'A' && name[n] <= 'Z' && name[n + 1] == '\0' ? name[n] : 0;
}

/* Chooses the domain folders of `dir` from its sub-folders (`all`, sorted, full paths) into
 * `chosen`: the <subset>X folders of a trainX/testX layout (every letter that either subset
 * has must be there), else all of them. *unit says which layout it was. */
static ut_status choose_domains(const char *dir, const char *subset, strlist *all, strlist *chosen, int *unit) {
  int seen[26] = { 0 }; /* bit 1: trainX, bit 2: testX */
  for (size_t i = 0; i < all->n; i++) {
    const char *b = basename_of(all->items[i]);
    char x = split_letter(b, "train"), y = split_letter(b, "test");
    if (x) seen[x - 'A'] |= 1;
    if (y) seen[y - 'A'] |= 2;
  }
  *unit = 0;
  for (int k = 0; k < 26; k++) *unit |= seen[k] != 0;
  if (!*unit) {
    for (size_t i = 0; i < all->n; i++)
      if (strlist_push(chosen, strdup(all->items[i]))) return ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", dir);
    return UT_OK;
  }
  int want = strcmp(subset, "train") == 0 ? 1 : 2;
  const char *other = want == 1 ? "test" : "train";
  for (int k = 0; k < 26; k++) {
    if (!seen[k]) continue;
    char name[8];
    snprintf(name, sizeof name, "%s%c", subset, 'A' + k);
    char *path = join(dir, name);
    if (!path) return ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", dir);
    if (!(seen[k] & want)) {
      ut_status s = ut_fail(UT_ERR_FORMAT, "%s: missing: domain %c has a %s%c folder but no %s%c partner", path, 'A' + k,
                            other, 'A' + k, subset, 'A' + k);
      free(path);
      return s;
    }
    if (strlist_push(chosen, path)) return ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", dir);
  }
  return UT_OK;
}

ut_status ut_import_domains(const char *dir, const char *subset, const char *out_path, const ut_import_cfg *cfg,
                            ut_import_stats *stats) {
  ut_import_stats local;
  if (!stats) stats = &local;
  memset(stats, 0, sizeof *stats);
  if (!subset) subset = "train";
  if (!dir || !out_path || !cfg || cfg->size < 1 || cfg->size > 4096 || (cfg->channels != 1 && cfg->channels != 3))
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_import_domains: needs a folder, an output, size 1..4096, 1 or 3 channels");
  if (strcmp(subset, "train") != 0 && strcmp(subset, "test") != 0)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: subset '%s', expected train or test", dir, subset);
  strlist all = { 0 }, top_files = { 0 }, others = { 0 }, folders = { 0 };
  int unit = 0;
  ut_status s = list_dir(dir, &all, &top_files, &others);
  if (s == UT_OK) s = choose_domains(dir, subset, &all, &folders, &unit);
  if (s == UT_OK && folders.n < 2)
    s = ut_fail(UT_ERR_FORMAT, "%s: %zu domain folder%s%s%s, expected at least two (one sub-folder per domain%s)", dir,
                folders.n, folders.n == 1 ? " (" : "s", folders.n == 1 ? basename_of(folders.items[0]) : "",
                folders.n == 1 ? ")" : "", unit ? ", or trainA, trainB, ..." : "");
  if (s == UT_OK && folders.n > INT32_MAX / 2) s = ut_fail(UT_ERR_FORMAT, "%s: too many domain folders", dir);
  strlist *files = s == UT_OK ? calloc(folders.n, sizeof *files) : NULL;
  strlist *nested = s == UT_OK ? calloc(folders.n, sizeof *nested) : NULL;
  if (s == UT_OK && (!files || !nested)) s = ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", dir);
  tally t = { .cfg = cfg, .stats = stats };
  /* In the trainX layout everything but the chosen folders is someone else's (testX, READMEs). */
  if (s == UT_OK) s = list_groups(&folders, unit ? NULL : &top_files, unit ? NULL : &others, files, nested, "domain", &t);
  for (size_t d = 0; s == UT_OK && d < folders.n; d++)
    if (files[d].n == 0) s = ut_fail(UT_ERR_FORMAT, "%s: the domain folder is empty (no files)", folders.items[d]);
  char **names = s == UT_OK ? group_names_of(&folders) : NULL;
  if (s == UT_OK && !names) s = ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", dir);
  if (s == UT_OK && unit) /* the domains of trainA, trainB are called A, B */
    for (size_t d = 0; d < folders.n; d++) memmove(names[d], names[d] + strlen(subset), strlen(names[d] + strlen(subset)) + 1);
  if (s == UT_OK) {
    stats->n_classes = 1;
    stats->n_domains = (int)folders.n;
    json_t *src = json_pack("{s:s, s:s}", "kind", "domains", "layout", unit ? "trainX" : "folders");
    if (src && unit) json_object_set_new(src, "subset", json_string(subset));
    s = import_groups(dir, out_path, cfg, &folders, names, files, 1, src, &t);
  }
  for (size_t d = 0; names && d < folders.n; d++) free(names[d]);
  free(names);
  for (size_t d = 0; files && d < folders.n; d++) strlist_free(&files[d]);
  for (size_t d = 0; nested && d < folders.n; d++) strlist_free(&nested[d]);
  free(files);
  free(nested);
  strlist_free(&all);
  strlist_free(&folders);
  strlist_free(&top_files);
  strlist_free(&others);
  return s;
}
