/* ghostswap service: GET /metrics over HTTP (metrics-listen=ADDR:PORT),
 * served by libmicrohttpd.
 *
 * Why libmicrohttpd fits a swap server's rules: it runs one internal
 * thread polling every connection (no thread per client), at most
 * GS_METRICS_HTTP_MAX_CLIENTS connections each with a fixed memory pool
 * (GS_METRICS_HTTP_CONN_MEMORY) and an idle timeout, so what a scraper
 * can make it allocate is bounded; it never touches the I/O path (a
 * scrape takes the engine's statistics locks only briefly, as the
 * control socket's stats does, and allocates after releasing them), and
 * under mlockall its pages are locked like the rest of the process.
 */
#ifndef GHOSTSWAP_SERVICE_METRICS_HTTP_H
#define GHOSTSWAP_SERVICE_METRICS_HTTP_H

#include <stddef.h>

#include "ghostswap/service/metrics.h"

#define GS_METRICS_HTTP_MAX_CLIENTS 8
#define GS_METRICS_HTTP_CONN_MEMORY (32 * 1024)
#define GS_METRICS_HTTP_TIMEOUT 10      /* seconds */

struct gs_metrics_http;

/* gs_metrics_http_start - listen on @addr ("HOST:PORT", "[V6]:PORT";
 * numeric only; port 0: one the kernel chooses) and serve @src's exposition at /metrics.  @src must
 * outlive the listener.
 * Context: starts a thread with every signal blocked.
 * Return: 0 and *@httpp, or -errno with a message in @err.
 */
int gs_metrics_http_start (const char *addr, struct gs_metrics_source *src,
                           struct gs_metrics_http **httpp,
                           char *err, size_t errlen);

/* gs_metrics_http_address - the address listened on, as HOST:PORT with
 * the port the kernel chose if @addr asked for port 0.
 * Context: any.  Return: a string owned by @http.
 */
const char *gs_metrics_http_address (const struct gs_metrics_http *http);

/* gs_metrics_http_stop - stop listening and free.  NULL: nothing.
 * Context: may sleep.  Return: nothing.
 */
void gs_metrics_http_stop (struct gs_metrics_http *http);

#endif /* GHOSTSWAP_SERVICE_METRICS_HTTP_H */
