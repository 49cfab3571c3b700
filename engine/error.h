/* Error reporting inside the engine: every failure sets the thread's message once, where it
 * is detected, and the status travels up unchanged. */
#ifndef UT_ERROR_H
#define UT_ERROR_H

#include "untangle.h"

/* ut_fail and ut_error_prefix are public (untangle.h). */

/* Reports an OpenCL failure: "<call> failed: CL_OUT_OF_RESOURCES (-5) <context>". */
ut_status ut_fail_cl(int cl_err, const char *call, const char *context_fmt, ...)
    __attribute__((format(printf, 3, 4)));

void ut_clear_error(void);

#endif
