/* Shared by the libFuzzer targets: a private scratch folder for the parsers that read files,
 * and a check that stays on in release builds. */
#ifndef UT_FUZZ_SUPPORT_H
#define UT_FUZZ_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

/* The program cache key fuzz_program_cache looks up, shaped as a real one (platform, versions,
 * device, source hash and length, options); make_seeds writes its seed entries under it. */
#define FUZZ_CACHE_KEY \
  "Portable Computing Language|OpenCL 3.0 PoCL|cpu|3.1|OpenCL 3.0|0123456789abcdef|42|-cl-fast-relaxed-math"

/* This process's scratch folder ($TMPDIR or /tmp, "untangle-fuzz-XXXXXX"), made on first use
 * and removed with everything in it when the process exits. */
const char *fuzz_dir(void);

/* Writes `size` bytes to `name` inside fuzz_dir() and returns the whole path (a static buffer,
 * valid until the next call). Aborts when it cannot: a fuzz run without its file is no run. */
const char *fuzz_write(const char *name, const uint8_t *data, size_t size);

/* A path inside fuzz_dir() (static buffer, as fuzz_write). */
const char *fuzz_path(const char *name);

/* Crashes (so libFuzzer saves the input) when a property the parser promised does not hold. */
#define FUZZ_CHECK(cond)                                                                      \
  do {                                                                                        \
    if (!(cond)) fuzz_fail(__FILE__, __LINE__, #cond);                                        \
  } while (0)
_Noreturn void fuzz_fail(const char *file, int line, const char *what);

#endif
