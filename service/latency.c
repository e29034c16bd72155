/* ghostswap service: request latency histograms (see latency.h). */
#include <stddef.h>

#include "ghostswap/service/latency.h"

static const uint64_t bounds[GS_LATENCY_BUCKETS - 1] = GS_LATENCY_BOUNDS_NS;

_Static_assert (sizeof bounds / sizeof bounds[0] == GS_LATENCY_BUCKETS - 1,
                "GS_LATENCY_BUCKETS must be the number of bounds plus one");

/* gs_latency_record - see latency.h. */
void
gs_latency_record (struct gs_latency *lat, enum gs_op op, uint64_t start_ns)
{
  uint64_t now = gs_latency_now ();
  uint64_t ns = now > start_ns ? now - start_ns : 0;
  unsigned b = 0;

  if (lat == NULL || (unsigned) op >= GS_OPS)
    return;
  while (b < GS_LATENCY_BUCKETS - 1 && ns > bounds[b])
    b++;
  __atomic_fetch_add (&lat->bucket[op][b], 1, __ATOMIC_RELAXED);
  __atomic_fetch_add (&lat->sum_ns[op], ns, __ATOMIC_RELAXED);
}

/* gs_latency_snapshot - see latency.h. */
void
gs_latency_snapshot (const struct gs_latency *lat, struct gs_latency *out)
{
  unsigned op, b;

  for (op = 0; op < GS_OPS; op++) {
    for (b = 0; b < GS_LATENCY_BUCKETS; b++)
      out->bucket[op][b] = __atomic_load_n (&lat->bucket[op][b],
                                            __ATOMIC_RELAXED);
    out->sum_ns[op] = __atomic_load_n (&lat->sum_ns[op], __ATOMIC_RELAXED);
  }
}

/* gs_op_name - see latency.h. */
const char *
gs_op_name (enum gs_op op)
{
  static const char *const names[GS_OPS] = {
#define GS_OP_NAME(e, s) s,
    GS_OPS_LIST (GS_OP_NAME)
#undef GS_OP_NAME
  };

  return (unsigned) op < GS_OPS ? names[op] : "unknown";
}
