/* Error reporting inside the engine: every failure sets the thread's message once, where it
 * is detected, and the status travels up unchanged. */
#ifndef UT_ERROR_H
#define UT_ERROR_H

#include "untangle.h"

/* Formats the thread's last-error message and returns `status`, so a failure reads
 * `return ut_fail(UT_ERR_SHAPE, "add: %s vs %s", ...);`. */
ut_status ut_fail(ut_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reports an OpenCL failure: "<call> failed: CL_OUT_OF_RESOURCES (-5) <context>". */
ut_status ut_fail_cl(int cl_err, const char *call, const char *context_fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "prefix: " to the current message (adds the node or file to a lower-level error). */
void ut_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void ut_clear_error(void);

#endif
