/* Whether a program binary from PoCL is whole, before it is cached or loaded.
 *
 * PoCL's binary is not the compiled code itself but a copy of the program's folder in PoCL's
 * own disk cache (program.bc and each kernel's compiled variants), read back file by file when
 * the binary is asked for. When that folder is being written by another process at that moment
 * (two test suites or two trainings building one program), a file can be missing, and PoCL
 * 3.1 then serialises program.bc as an entry of 0 bytes; loading that binary fails an
 * assertion (pocl_binary.c, "len > 0") and aborts the process, in this run and in every later
 * one that finds the entry in our cache. CI saw it in test_bench. So a PoCL binary with an
 * empty or cut-short entry is neither stored nor loaded; the program is built from source.
 *
 * The layout walked here is PoCL's binary format, versions 9 to 11 (PoCL 3.0 to 6.x), all
 * integers little-endian:
 *   "poclbin\0" | u64 device id | u32 version | u32 kernel count | u64 flags |
 *   u32 root entry count | build hash (40 characters and a NUL) | (version 10 on) u64
 *   program-scope variable bytes |
 *   per root entry (program.bc, ...): u64 size, then its files, filling that size |
 *   per kernel: u64 record size | u64 size of its files | u32 arg-info size | ... metadata ... |
 *   its files, to the end of the record
 * where a file is u32 name length | name | u32 content length | content, the name never empty.
 * A binary of another version or another driver is not judged (nothing is known about it). */
#include <stdint.h>
#include <string.h>

#include "runtime_internal.h"

static const char pocl_magic[8] = { 'p', 'o', 'c', 'l', 'b', 'i', 'n', '\0' };

static int read_u32(const unsigned char *p, size_t at, size_t end, uint32_t *v) {
  if (at > end || end - at < 4) return -1;
  *v = (uint32_t)p[at] | (uint32_t)p[at + 1] << 8 | (uint32_t)p[at + 2] << 16 | (uint32_t)p[at + 3] << 24;
  return 0;
}

static int read_u64(const unsigned char *p, size_t at, size_t end, uint64_t *v) {
  uint32_t lo, hi;
  if (read_u32(p, at, end, &lo) || read_u32(p, at + 4, end, &hi)) return -1;
  *v = (uint64_t)hi << 32 | lo;
  return 0;
}

/* The files that exactly fill [at, end), each with a name. */
static int whole_files(const unsigned char *p, size_t at, size_t end) {
  while (at < end) {
    for (int part = 0; part < 2; part++) { /* name, content */
      uint32_t len;
      if (read_u32(p, at, end, &len) || (part == 0 && len == 0) || end - (at + 4) < len) return 0;
      at += 4 + (size_t)len;
    }
  }
  return at == end;
}

int ut_pocl_binary_whole(const unsigned char *binary, size_t size) {
  if (size < sizeof pocl_magic || memcmp(binary, pocl_magic, sizeof pocl_magic) != 0) return 1;
  uint32_t version, kernels, roots;
  if (read_u32(binary, 16, size, &version) || read_u32(binary, 20, size, &kernels) ||
      read_u32(binary, 32, size, &roots))
    return 0;
  if (version < 9 || version > 11) return 1;
  size_t at = 36 + 41 + (version >= 10 ? 8 : 0);
  for (uint32_t r = 0; r < roots; r++) {
    uint64_t bytes;
    if (read_u64(binary, at, size, &bytes) || bytes == 0 || bytes > size - (at + 8)) return 0;
    if (!whole_files(binary, at + 8, at + 8 + (size_t)bytes)) return 0;
    at += 8 + (size_t)bytes;
  }
  for (uint32_t k = 0; k < kernels; k++) {
    uint64_t record, files;
    if (read_u64(binary, at, size, &record) || read_u64(binary, at + 8, size, &files)) return 0;
    if (record < 20 || record > size - at || files > record - 20) return 0; /* 20: the three sizes */
    if (!whole_files(binary, at + (size_t)(record - files), at + (size_t)record)) return 0;
    at += (size_t)record;
  }
  return at == size;
}
