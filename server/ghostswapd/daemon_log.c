/* ghostswapd: messages to stderr or syslog (see daemon_log.h). */
#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>

#include "daemon_log.h"

static bool to_syslog;
static bool verbose_on;

/* log_setup - see daemon_log.h. */
void
log_setup (bool use_syslog, bool verbose)
{
  to_syslog = use_syslog;
  verbose_on = verbose;
  if (use_syslog)
    openlog ("ghostswapd", LOG_PID, LOG_DAEMON);
}

/* vlog - one line at syslog @priority; on stderr, warnings and errors are
 * marked as such.  A single fprintf call per line keeps lines from
 * different threads whole (stdio locks the stream per call). */
static void __attribute__ ((format (printf, 2, 0)))
vlog (int priority, const char *fmt, va_list ap)
{
  char msg[2048];

  vsnprintf (msg, sizeof msg, fmt, ap);
  if (to_syslog) {
    syslog (priority, "%s", msg);
    return;
  }
  fprintf (stderr, "ghostswapd: %s%s\n",
           priority == LOG_ERR ? "error: "
           : priority == LOG_WARNING ? "warning: " : "",
           msg);
}

/* log_error - see daemon_log.h. */
void
log_error (const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  vlog (LOG_ERR, fmt, ap);
  va_end (ap);
}

/* log_warning - see daemon_log.h. */
void
log_warning (const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  vlog (LOG_WARNING, fmt, ap);
  va_end (ap);
}

/* log_notice - see daemon_log.h. */
void
log_notice (const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  vlog (LOG_NOTICE, fmt, ap);
  va_end (ap);
}

/* log_info - see daemon_log.h. */
void
log_info (const char *fmt, ...)
{
  va_list ap;

  if (!verbose_on)
    return;
  va_start (ap, fmt);
  vlog (LOG_INFO, fmt, ap);
  va_end (ap);
}
