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

/* A front end whose transport can change names the one serving now (a
 * static string) and writes why it serves over it into @why (@len
 * bytes, "" if it recorded no reason; @len 0: not asked). */
typedef const char *(*gs_transport_fn) (void *arg, char *why, size_t len);

/* One device as the metrics describe it. */
struct gs_metrics_source {
  struct gs_device *dev;
  const char *name;             /* the name label */
  const char *frontend;         /* "nbd" (nbdkit plugin) or "fuse" (ghostswapd) */
  const char *transport;        /* atomic: how clients reach the device
                                 * ("unix", "tcp", ...; "none" until
                                 * known), unless transport_fn says */
  gs_transport_fn transport_fn; /* may be NULL */
  void *transport_arg;
  const struct gs_latency *latency;  /* may be NULL */
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

/* What serves a device: the labels of ghostswap_info, and the same
 * in the control socket's stats answer ("info").  Never NULL ("" for
 * what the front end did not say). */
struct gs_metrics_info {
  const char *version, *frontend, *transport;
  char transport_reason[640];   /* "" if none was recorded */
};

/* gs_metrics_get_info - what serves @src's device now into *@info.
 * Context: any; calls the front end's transport_fn.  Return: nothing.
 */
void gs_metrics_get_info (const struct gs_metrics_source *src,
                          struct gs_metrics_info *info);

/* gs_metrics_format - write the exposition of @in into a malloc'd
 * NUL-terminated string *@textp of *@lenp bytes, which the caller frees.
 * Context: any.
 * Return: 0 or -ENOMEM.
 */
int gs_metrics_format (const struct gs_metrics_input *in,
                       char **textp, size_t *lenp);

/* gs_metrics_collect - the exposition of @src's device as it is now
 * (gs_metrics_format of its statistics, backings, drain and latency).
 * Context: takes pool and backing list locks briefly; allocates.
 * Return: 0 or -ENOMEM.
 */
int gs_metrics_collect (struct gs_metrics_source *src,
                        char **textp, size_t *lenp);

#endif /* GHOSTSWAP_SERVICE_METRICS_H */
