/* ghostswap service: request latency, by operation, as histograms.
 *
 * The front ends time every request they hand to the engine:
 *
 *   uint64_t t0 = gs_latency_now ();
 *   r = gs_pread (dev, ...);
 *   gs_latency_record (&lat, GS_OP_READ, t0);
 *
 * Recording is lock-free (relaxed atomic adds on fixed buckets: no
 * allocation, no lock, safe under memory pressure) and a zeroed struct
 * gs_latency is ready to use, so a front end can keep one statically and
 * record before the service starts.  The metrics export them as the
 * Prometheus histogram ghostswap_request_duration_seconds{op=...}.
 */
#ifndef GHOSTSWAP_SERVICE_LATENCY_H
#define GHOSTSWAP_SERVICE_LATENCY_H

#include <stdint.h>
#include <time.h>

/* The operations, as the engine's request counters name them
 * (ghostswap_requests_total{op=...}). */
#define GS_OPS_LIST(X) \
  X (READ, "read") X (WRITE, "write") X (TRIM, "trim") X (ZERO, "zero") \
  X (FLUSH, "flush") X (CACHE, "cache") X (EXTENTS, "extents")

enum gs_op {
#define GS_OP_ENUM(e, s) GS_OP_##e,
  GS_OPS_LIST (GS_OP_ENUM)
#undef GS_OP_ENUM
  GS_OPS
};

/* Upper bounds of the buckets in nanoseconds (the last bucket, +Inf, is
 * implicit): from a page served from RAM (a few µs) to a backing read
 * stuck behind a slow disk. */
#define GS_LATENCY_BOUNDS_NS                                            \
  { 2000, 5000, 10000, 25000, 50000, 100000, 250000, 500000,            \
    1000000, 2500000, 5000000, 10000000, 25000000, 100000000,           \
    1000000000 }
#define GS_LATENCY_BUCKETS 16   /* the bounds above, plus +Inf */

struct gs_latency {
  /* Per operation, requests whose latency fell in each bucket (not
   * cumulative: the export sums them) and the sum of latencies; every
   * field is updated with atomic adds only. */
  uint64_t bucket[GS_OPS][GS_LATENCY_BUCKETS];
  uint64_t sum_ns[GS_OPS];
};

/* gs_latency_now - the monotonic clock in nanoseconds, to pass to
 * gs_latency_record.
 * Context: any.  Return: the time.
 */
static inline uint64_t
gs_latency_now (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* gs_latency_record - count one @op request that started at @start_ns
 * (gs_latency_now) and ends now.  @lat NULL: nothing.
 * Context: any; lock-free, never allocates.  Return: nothing.
 */
void gs_latency_record (struct gs_latency *lat, enum gs_op op,
                        uint64_t start_ns);

/* gs_latency_snapshot - copy @lat into @out, field by field (each value
 * exact, the whole not one instant: counts may run ahead of sums by the
 * requests recorded meanwhile).
 * Context: any.  Return: nothing.
 */
void gs_latency_snapshot (const struct gs_latency *lat,
                          struct gs_latency *out);

/* gs_op_name - "read", "write", ... for @op.
 * Context: any.  Return: a static string.
 */
const char *gs_op_name (enum gs_op op);

#endif /* GHOSTSWAP_SERVICE_LATENCY_H */
