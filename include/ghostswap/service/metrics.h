/* ghostswap service: the device's figures in the Prometheus text
 * exposition format (version 0.0.4), for node_exporter's textfile
 * collector and for scrapers (metrics-listen=).
 *
 * Every metric is named ghostswap_*, has its # HELP and # TYPE lines,
 * uses base units (bytes, seconds), and every sample carries the
 * device's name label first, so the files of several devices
 * concatenated (node_exporter reads one directory) hold no duplicate
 * series.  One shape per concept: slots by tier are one family with a
 * state label, requests one counter with an op label, request latency
 * one histogram with an op label, each backing's figures (errors
 * included) one family per figure with a path label.  Label values are
 * escaped as the format requires (\\, \" and \n).  The engine's
 * statistics come from GS_STATS_FIELDS (ghostswap/stats.h).
 */
#ifndef GHOSTSWAP_SERVICE_METRICS_H
#define GHOSTSWAP_SERVICE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "ghostswap/backing.h"
#include "ghostswap/stats.h"
#include "ghostswap/service/latency.h"

struct gs_device;

/* One device as the metrics describe it. */
struct gs_metrics_source {
  struct gs_device *dev;
  const char *name;             /* the name label */
  const char *frontend;         /* "nbd" (nbdkit plugin) or "fuse" (ghostswapd) */
  const char *transport;        /* atomic: how clients reach the device
                                 * ("unix", "tcp", "fuse", ...; "none" until
                                 * known) */
  const struct gs_latency *latency;  /* may be NULL */
  uint64_t memory_peak;         /* atomic: the highest pool_bytes +
                                 * metadata_bytes seen (gs_metrics_sample) */
};

/* Everything one exposition shows, for gs_metrics_format. */
struct gs_metrics_input {
  const char *name, *frontend, *transport, *version;
  const struct gs_stats *stats;
  const struct gs_backing_info *backings;
  unsigned nbackings;
  const struct gs_drain_status *drain;  /* NULL: none */
  const struct gs_latency *latency;     /* NULL: no histogram */
  uint64_t memory_peak_bytes;
  uint64_t resident_peak_bytes;         /* the process's VmHWM; 0: unknown */
};

/* gs_metrics_format - write the exposition of @in into a malloc'd
 * NUL-terminated string *@textp of *@lenp bytes, which the caller frees.
 * Context: any.
 * Return: 0 or -ENOMEM.
 */
int gs_metrics_format (const struct gs_metrics_input *in,
                       char **textp, size_t *lenp);

/* gs_metrics_sample - take the device's figures now into @src's peak.
 * The service calls it every second; gs_metrics_collect too.
 * Context: takes pool locks briefly.  Return: nothing.
 */
void gs_metrics_sample (struct gs_metrics_source *src);

/* gs_metrics_collect - the exposition of @src's device as it is now
 * (gs_metrics_format of its statistics, backings, drain and latency).
 * Context: takes pool and backing list locks briefly; allocates.
 * Return: 0 or -ENOMEM.
 */
int gs_metrics_collect (struct gs_metrics_source *src,
                        char **textp, size_t *lenp);

#endif /* GHOSTSWAP_SERVICE_METRICS_H */
