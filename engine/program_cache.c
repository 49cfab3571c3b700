/* Compiled OpenCL programs on disk, because PoCL and several GPU drivers take seconds to build
 * one. An entry is found by a hash of its key (platform, device, driver, source, options) and
 * holds the whole key and a checksum, so a collision or a damaged file is detected, removed
 * and rebuilt rather than trusted. A PoCL binary that is not whole (pocl_binary_check.c: PoCL
 * aborts loading one) is neither stored nor returned.
 *
 * File layout (little-endian host order; the cache is per machine):
 *   "UTPC0001" | u64 key length | key | u64 binary length | binary | u64 checksum of binary
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime_internal.h"

static const char magic[8] = { 'U', 'T', 'P', 'C', '0', '0', '0', '1' };

static void entry_path(const char *dir, const char *key, char *path, size_t size) {
  size_t n = strlen(key);
  snprintf(path, size, "%s/%016llx%016llx.bin", dir, (unsigned long long)ut_hash64(key, n, 1),
           (unsigned long long)ut_hash64(key, n, 2));
}

/* mkdir -p: the cache folder may be several levels below an existing one. */
static int make_dirs(const char *dir) {
  char path[4096];
  if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) return -1;
  for (char *p = path + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(path, 0755) != 0 && errno != EEXIST) return -1;
    *p = '/';
  }
  return (mkdir(path, 0755) != 0 && errno != EEXIST) ? -1 : 0;
}

static int read_u64(FILE *f, uint64_t *v) { return fread(v, sizeof *v, 1, f) == 1 ? 0 : -1; }

int ut_program_cache_load(const char *dir, const char *key, unsigned char **binary, size_t *size, int *rejected) {
  char path[4096];
  entry_path(dir, key, path, sizeof path);
  *rejected = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  char m[8];
  uint64_t key_len = 0, bin_len = 0, sum = 0;
  unsigned char *bin = NULL;
  char *stored_key = NULL;
  int ok = 0;
  struct stat sb;
  if (fstat(fileno(f), &sb) != 0) goto done;
  if (fread(m, 1, sizeof m, f) != sizeof m || memcmp(m, magic, sizeof m) != 0) goto done;
  if (read_u64(f, &key_len) || key_len != strlen(key) || key_len > (uint64_t)sb.st_size) goto done;
  stored_key = malloc(key_len + 1);
  if (!stored_key || fread(stored_key, 1, key_len, f) != key_len) goto done;
  if (memcmp(stored_key, key, key_len) != 0) goto done;
  if (read_u64(f, &bin_len) || bin_len == 0 || bin_len > (uint64_t)sb.st_size) goto done;
  bin = malloc(bin_len);
  if (!bin || fread(bin, 1, bin_len, f) != bin_len) goto done;
  if (read_u64(f, &sum) || sum != ut_hash64(bin, bin_len, 0)) goto done;
  if (!ut_pocl_binary_whole(bin, bin_len)) goto done; /* stored by an older untangle */
  ok = 1;
done:
  fclose(f);
  free(stored_key);
  if (!ok) {
    free(bin);
    /* A damaged or colliding entry: drop it so the rebuilt program replaces it. */
    remove(path);
    *rejected = 1;
    return 0;
  }
  *binary = bin;
  *size = bin_len;
  return 1;
}

void ut_program_cache_store(const char *dir, const char *key, const unsigned char *binary, size_t size) {
  if (!ut_pocl_binary_whole(binary, size)) return;
  if (make_dirs(dir) != 0) return; /* a cache we cannot write only costs time */
  char path[4096], tmp[4200];
  entry_path(dir, key, path, sizeof path);
  snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f) return;
  uint64_t key_len = strlen(key), bin_len = size, sum = ut_hash64(binary, size, 0);
  int ok = fwrite(magic, 1, sizeof magic, f) == sizeof magic && fwrite(&key_len, sizeof key_len, 1, f) == 1 &&
           fwrite(key, 1, key_len, f) == key_len && fwrite(&bin_len, sizeof bin_len, 1, f) == 1 &&
           fwrite(binary, 1, size, f) == size && fwrite(&sum, sizeof sum, 1, f) == 1;
  ok = (fclose(f) == 0) && ok;
  /* Renaming makes the entry appear whole or not at all, also for a concurrent reader. */
  if (!ok || rename(tmp, path) != 0) remove(tmp);
}
