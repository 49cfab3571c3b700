/* Whole-file reads and atomic writes for the data layer. An atomic write goes to a temporary
 * file in the destination's folder (same file system, so rename is atomic), is synced, and
 * is renamed over the destination: a reader sees the old file or the new one, never a part. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data_internal.h"

ut_status ut_data_read_file(const char *path, size_t max_bytes, uint8_t **buf, size_t *len) {
  *buf = NULL;
  *len = 0;
  int fd = open(path, O_RDONLY);
  if (fd < 0) return ut_fail(UT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat sb;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    close(fd);
    return ut_fail(UT_ERR_IO, "%s: not a regular file", path);
  }
  if ((uint64_t)sb.st_size > max_bytes) {
    close(fd);
    return ut_fail(UT_ERR_FORMAT, "%s: %lld bytes, more than the %zu this reader accepts", path, (long long)sb.st_size,
                   max_bytes);
  }
  size_t n = (size_t)sb.st_size;
  uint8_t *b = malloc(n + 1);
  if (!b) {
    close(fd);
    return ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory for %zu bytes", path, n);
  }
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, b + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      ut_status s = ut_fail(UT_ERR_IO, "%s: read failed: %s", path, r < 0 ? strerror(errno) : "file shrank");
      free(b);
      close(fd);
      return s;
    }
    got += (size_t)r;
  }
  close(fd);
  b[n] = 0;
  *buf = b;
  *len = n;
  return UT_OK;
}

int ut_data_temp_file(const char *path, char **tmp) {
  size_t plen = strlen(path);
  char *t = malloc(plen + sizeof ".tmp-XXXXXX");
  if (!t) {
    ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", path);
    return -1;
  }
  memcpy(t, path, plen);
  memcpy(t + plen, ".tmp-XXXXXX", sizeof ".tmp-XXXXXX");
  int fd = mkstemp(t);
  if (fd < 0) {
    ut_fail(UT_ERR_IO, "%s: cannot create a temporary file next to it: %s", path, strerror(errno));
    free(t);
    return -1;
  }
  /* mkstemp makes the file private (0600); a data set or an image is an ordinary file. */
  (void)fchmod(fd, 0644);
  *tmp = t;
  return fd;
}

void ut_data_sync_parent(const char *path) {
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

ut_status ut_data_write_atomic(const char *path, const void *data, size_t len) {
  char *tmp = NULL;
  int fd = ut_data_temp_file(path, &tmp);
  if (fd < 0) return UT_ERR_IO;
  ut_status s = UT_OK;
  const uint8_t *p = data;
  size_t done = 0;
  while (done < len) {
    ssize_t w = write(fd, p + done, len - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      s = ut_fail(UT_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
      break;
    }
    done += (size_t)w;
  }
  if (s == UT_OK && fsync(fd) != 0) s = ut_fail(UT_ERR_IO, "%s: fsync failed: %s", tmp, strerror(errno));
  if (close(fd) != 0 && s == UT_OK) s = ut_fail(UT_ERR_IO, "%s: close failed: %s", tmp, strerror(errno));
  if (s == UT_OK && rename(tmp, path) != 0)
    s = ut_fail(UT_ERR_IO, "%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
  if (s != UT_OK)
    unlink(tmp);
  else
    ut_data_sync_parent(path);
  free(tmp);
  return s;
}
