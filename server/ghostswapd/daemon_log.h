/* ghostswapd: messages, to stderr in the foreground or to syslog once
 * daemonized.  The engine never logs; the daemon reports what it does
 * through these functions only. */
#ifndef GHOSTSWAPD_DAEMON_LOG_H
#define GHOSTSWAPD_DAEMON_LOG_H

#include <stdbool.h>

/* log_setup - choose the destination (@use_syslog: syslog, facility
 * daemon; else stderr, each line prefixed "ghostswapd: ") and whether
 * log_info lines are shown (@verbose).  Until it is called: stderr, not
 * verbose.
 * Context: while no other thread logs.  Return: nothing.
 */
void log_setup (bool use_syslog, bool verbose);

/* log_error, log_warning, log_notice, log_info - write one message line
 * (printf format, no newline needed).  log_notice is for what was asked
 * for (statistics on SIGUSR1); log_info writes only with -v.
 * Context: any thread.  Return: nothing.
 */
void log_error (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
void log_warning (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
void log_notice (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
void log_info (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

#endif /* GHOSTSWAPD_DAEMON_LOG_H */
