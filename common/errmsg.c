/* ghostswap: one-line error messages (see errmsg.h). */
#include <stdarg.h>
#include <stdio.h>

#include "errmsg.h"

/* gs_errmsg - see errmsg.h. */
int
gs_errmsg (char *err, size_t errlen, int r, const char *fmt, ...)
{
  va_list ap;

  if (errlen > 0) {
    va_start (ap, fmt);
    vsnprintf (err, errlen, fmt, ap);
    va_end (ap);
  }
  return r;
}
