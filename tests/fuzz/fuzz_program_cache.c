/* The on-disk program cache reader (engine/program_cache.c) on any bytes. The entry for a
 * fixed key is made once by the real writer, to learn its file name; each input then replaces
 * that file. A load either returns a binary (the file held this key, a length and a matching
 * checksum) or reports the entry rejected and removes the file so a rebuild replaces it. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_support.h"
#include "runtime_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char entry[8192];

static void find_entry(void) {
  const unsigned char binary[] = "a program binary";
  ut_program_cache_store(fuzz_dir(), FUZZ_CACHE_KEY, binary, sizeof binary);
  DIR *d = opendir(fuzz_dir());
  FUZZ_CHECK(d != NULL);
  for (struct dirent *e; (e = readdir(d));)
    if (strstr(e->d_name, ".bin")) snprintf(entry, sizeof entry, "%s/%s", fuzz_dir(), e->d_name);
  closedir(d);
  FUZZ_CHECK(entry[0] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!entry[0]) find_entry();
  FILE *f = fopen(entry, "wb");
  FUZZ_CHECK(f != NULL);
  FUZZ_CHECK(size == 0 || fwrite(data, 1, size, f) == size);
  FUZZ_CHECK(fclose(f) == 0);
  unsigned char *bin = NULL;
  size_t len = 0;
  int rejected = -1;
  if (ut_program_cache_load(fuzz_dir(), FUZZ_CACHE_KEY, &bin, &len, &rejected)) {
    FUZZ_CHECK(rejected == 0 && bin != NULL && len > 0 && len <= size);
    free(bin);
  } else {
    FUZZ_CHECK(rejected == 1 && access(entry, F_OK) != 0);
  }
  return 0;
}
