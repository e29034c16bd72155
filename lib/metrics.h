/* ghostswap: the device's figures in the Prometheus text exposition
 * format (version 0.0.4), for node exporters' textfile collectors and
 * scrapers.
 *
 * Every metric is named ghostswap_*, has its # HELP and # TYPE lines, and
 * uses base units (bytes, not pages, where the engine counts bytes).
 * Slots by tier are one metric with a state label, requests one counter
 * with an op label, and each backing's figures carry a path label
 * (escaped as the format requires: \\, \" and \n).
 */
#ifndef GHOSTSWAP_METRICS_H
#define GHOSTSWAP_METRICS_H

#include <stddef.h>

#include "ghostswap/backing.h"
#include "ghostswap/stats.h"

/* gs_metrics_format - write the exposition of @st, of the @nbackings
 * backings at @backings and of the drain @drain (NULL: none) into a
 * malloc'd NUL-terminated string *@textp of *@lenp bytes, which the caller
 * frees.
 * Context: any.
 * Return: 0 or -ENOMEM.
 */
int gs_metrics_format (const struct gs_stats *st,
                       const struct gs_backing_info *backings,
                       unsigned nbackings,
                       const struct gs_drain_status *drain,
                       char **textp, size_t *lenp);

#endif /* GHOSTSWAP_METRICS_H */
