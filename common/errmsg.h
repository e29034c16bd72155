/* ghostswap: one-line error messages for callers that pass a buffer. */
#ifndef GHOSTSWAP_ERRMSG_H
#define GHOSTSWAP_ERRMSG_H

#include <stddef.h>

/* gs_errmsg - format a message into @err (at most @errlen bytes,
 * NUL-terminated; nothing if @errlen is 0) and hand back @r.
 * Context: any.  Return: @r (a negative errno).
 */
int gs_errmsg (char *err, size_t errlen, int r, const char *fmt, ...)
  __attribute__ ((format (printf, 4, 5)));

/* Error texts in the engine and the plugin come from strerrordesc_np, not
 * strerror: a plugin built with AddressSanitizer and loaded into an
 * uninstrumented nbdkit leaves glibc's locale lock inconsistent through
 * the sanitizer's strerror interceptor (a translated message takes that
 * lock), and nbdkit then hangs at exit.  The untranslated description
 * needs no locale. */

#endif /* GHOSTSWAP_ERRMSG_H */
