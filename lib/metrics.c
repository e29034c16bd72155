/* ghostswap: Prometheus text exposition of the device's figures
 * (see metrics.h). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

/* One metric family: its header, then its samples with put_*(). */
static void
family (FILE *f, const char *name, const char *type, const char *help)
{
  fprintf (f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
put_u64 (FILE *f, const char *name, uint64_t v)
{
  fprintf (f, "%s %" PRIu64 "\n", name, v);
}

/* A float as the format wants it: '.' whatever the locale, NaN, +Inf. */
static void
put_double (FILE *f, const char *name, double v)
{
  char num[64];
  char *p;

  if (isnan (v))
    snprintf (num, sizeof num, "NaN");
  else if (isinf (v))
    snprintf (num, sizeof num, "%cInf", v > 0 ? '+' : '-');
  else {
    snprintf (num, sizeof num, "%.17g", v);
    for (p = num; *p; p++)
      if (*p != '-' && *p != '+' && *p != 'e' && (*p < '0' || *p > '9'))
        *p = '.';
  }
  fprintf (f, "%s %s\n", name, num);
}

/* A label value, escaped: backslash, double quote and newline. */
static void
put_label_value (FILE *f, const char *s)
{
  for (; *s; s++) {
    switch (*s) {
    case '\\': fputs ("\\\\", f); break;
    case '"': fputs ("\\\"", f); break;
    case '\n': fputs ("\\n", f); break;
    default: fputc (*s, f);
    }
  }
}

/* name{label="value"} v */
static void
put_labelled (FILE *f, const char *name, const char *label, const char *value,
              uint64_t v)
{
  fprintf (f, "%s{%s=\"", name, label);
  put_label_value (f, value);
  fprintf (f, "\"} %" PRIu64 "\n", v);
}

static void
stats_metrics (FILE *f, const struct gs_stats *st)
{
#define GAUGE(name, value, help)                        \
  family (f, "ghostswap_" name, "gauge", help);         \
  put_u64 (f, "ghostswap_" name, value)
#define RATIO(name, value, help)                        \
  family (f, "ghostswap_" name, "gauge", help);         \
  put_double (f, "ghostswap_" name, value)
#define COUNTER(name, value, help)                      \
  family (f, "ghostswap_" name, "counter", help);       \
  put_u64 (f, "ghostswap_" name, value)

  GAUGE ("size_bytes", st->size, "Size of the device as its clients see it.");
  GAUGE ("ram_limit_bytes", st->ram_limit, "Cap on the RAM pool.");

  family (f, "ghostswap_slots", "gauge", "Slots of the device by tier.");
  put_labelled (f, "ghostswap_slots", "state", "empty", st->slots_empty);
  put_labelled (f, "ghostswap_slots", "state", "same", st->slots_same);
  put_labelled (f, "ghostswap_slots", "state", "ram", st->slots_ram);
  put_labelled (f, "ghostswap_slots", "state", "backing", st->slots_backing);
  GAUGE ("slots_same_zero", st->slots_same_zero,
         "Same-filled slots whose pattern is zero.");
  GAUGE ("slots_ram_raw", st->slots_ram_raw,
         "RAM slots stored uncompressed (incompressible pages).");

  GAUGE ("stored_bytes", st->stored_bytes,
         "Bytes of the pages held in the RAM pool, uncompressed.");
  GAUGE ("compressed_bytes", st->compressed_bytes,
         "Payload bytes of the objects in the RAM pool.");
  GAUGE ("pool_bytes", st->pool_bytes,
         "Memory held by the RAM pool's segments.");
  GAUGE ("pool_live_bytes", st->pool_live_bytes,
         "Bytes of live objects in the RAM pool, headers included.");
  GAUGE ("pool_garbage_bytes", st->pool_garbage_bytes,
         "Bytes of dead objects in the RAM pool, for compaction to reclaim.");
  RATIO ("pool_fragmentation_ratio", st->pool_fragmentation,
         "Share of the RAM pool not held by live objects.");
  RATIO ("compression_ratio", st->compression_ratio,
         "Stored bytes per compressed byte.");
  RATIO ("memory_ratio", st->memory_ratio,
         "Bytes of non-empty slots in RAM per byte of memory the engine holds.");
  GAUGE ("metadata_bytes", st->metadata_bytes,
         "Memory held by the engine's metadata.");
  RATIO ("metadata_bytes_per_ram_slot", st->metadata_per_ram_slot,
         "Metadata bytes per slot held in RAM.");
  GAUGE ("rmap_bytes", st->rmap_bytes,
         "Memory held by the backings' reverse maps.");
  RATIO ("metadata_bytes_per_backing_slot", st->metadata_per_backing_slot,
         "Metadata bytes per slot held on backing, reverse map included.");
  GAUGE ("clusters", st->clusters, "Clusters with an entry array.");
  GAUGE ("fixed_bytes", st->fixed_bytes,
         "Memory held by per-thread codec contexts and the device's structures.");
  GAUGE ("memory_bytes", st->memory_bytes,
         "Memory the engine holds: pool, table, patterns, reverse maps, fixed.");
  GAUGE ("memory_peak_bytes", st->memory_peak_bytes,
         "Highest memory_bytes since start or the last peak reset.");
  GAUGE ("metadata_limit_bytes", st->metadata_limit,
         "Cap on the cluster table's metadata (0: none).");
  GAUGE ("pool_segments", st->segments, "Segments of the RAM pool.");
  COUNTER ("compactions_total", st->compactions,
           "Compaction passes of the RAM pool that moved something.");
  COUNTER ("compaction_moved_objects_total", st->objects_moved,
           "Objects moved by compaction.");

  COUNTER ("writeback_pages_total", st->writeback_pages,
           "Pages moved from RAM to backing.");
  COUNTER ("writeback_batches_total", st->writeback_batches,
           "Batches of writeback.");
  COUNTER ("writeback_second_chances_total", st->writeback_second_chance,
           "Recently used pages writeback passed over, keeping them in RAM.");
  family (f, "ghostswap_backing_errors_total", "counter",
          "Failed backing I/O by direction, over every backing ever attached.");
  put_labelled (f, "ghostswap_backing_errors_total", "op", "read",
                st->backing_read_errors);
  put_labelled (f, "ghostswap_backing_errors_total", "op", "write",
                st->backing_write_errors);

  family (f, "ghostswap_requests_total", "counter", "Requests served, by type.");
  put_labelled (f, "ghostswap_requests_total", "op", "read", st->reads);
  put_labelled (f, "ghostswap_requests_total", "op", "write", st->writes);
  put_labelled (f, "ghostswap_requests_total", "op", "trim", st->trims);
  put_labelled (f, "ghostswap_requests_total", "op", "zero", st->zeroes);
  put_labelled (f, "ghostswap_requests_total", "op", "flush", st->flushes);
  put_labelled (f, "ghostswap_requests_total", "op", "cache", st->caches);
  put_labelled (f, "ghostswap_requests_total", "op", "extents", st->extents);
  COUNTER ("read_bytes_total", st->bytes_read, "Bytes read by clients.");
  COUNTER ("written_bytes_total", st->bytes_written,
           "Bytes written by clients.");
  COUNTER ("request_errors_total", st->errors, "Requests that failed.");
  COUNTER ("enospc_errors_total", st->enospc,
           "Requests that failed for want of space.");
#undef GAUGE
#undef RATIO
#undef COUNTER
}

static void
backing_metrics (FILE *f, const struct gs_backing_info *b, unsigned n)
{
  unsigned i;

  /* One family over every backing, labelled by path; @expr uses b[i]. */
#define PER_BACKING(name, type, help, expr)                             \
  family (f, "ghostswap_backing_" name, type, help);                    \
  for (i = 0; i < n; i++)                                               \
    put_labelled (f, "ghostswap_backing_" name, "path", b[i].path,      \
                  (uint64_t) (expr))

  family (f, "ghostswap_backings", "gauge", "Attached backings.");
  put_u64 (f, "ghostswap_backings", n);
  if (n == 0)
    return;
  PER_BACKING ("size_bytes", "gauge", "Size of the backing.", b[i].size);
  PER_BACKING ("slots", "gauge", "Physical slots of the backing.", b[i].slots);
  PER_BACKING ("used_slots", "gauge", "Live physical slots of the backing.",
               b[i].used);
  PER_BACKING ("healthy", "gauge",
               "1 unless a write to the backing failed (then it takes no "
               "new pages).", b[i].healthy);
  PER_BACKING ("draining", "gauge",
               "1 while a drain or migration empties the backing.",
               b[i].draining);
  PER_BACKING ("read_pages_total", "counter", "Pages read from the backing.",
               b[i].reads);
  PER_BACKING ("written_pages_total", "counter",
               "Pages written to the backing.", b[i].writes);
  PER_BACKING ("read_errors_total", "counter",
               "Reads from the backing that failed.", b[i].read_errors);
  PER_BACKING ("write_errors_total", "counter",
               "Writes to the backing that failed.", b[i].write_errors);
#undef PER_BACKING
}

static void
drain_metrics (FILE *f, const struct gs_drain_status *d)
{
  family (f, "ghostswap_drain_running", "gauge",
          "1 while a drain or migration runs.");
  put_u64 (f, "ghostswap_drain_running", d->running);
  family (f, "ghostswap_drain_total_slots", "gauge",
          "Live slots on the source when the running or last drain started.");
  put_u64 (f, "ghostswap_drain_total_slots", d->total);
  family (f, "ghostswap_drain_done_slots", "gauge",
          "Slots moved by the running or last drain.");
  put_u64 (f, "ghostswap_drain_done_slots", d->done);
  family (f, "ghostswap_drain_skipped_slots", "gauge",
          "Slots the running or last drain skipped as they changed under it.");
  put_u64 (f, "ghostswap_drain_skipped_slots", d->skipped);
  family (f, "ghostswap_drain_bytes_per_second", "gauge",
          "Throughput of the running or last drain.");
  put_double (f, "ghostswap_drain_bytes_per_second", d->bytes_per_sec);
  family (f, "ghostswap_drain_seconds", "gauge",
          "Duration of the running or last drain.");
  put_double (f, "ghostswap_drain_seconds", d->seconds);
  family (f, "ghostswap_drain_failed", "gauge",
          "1 if the last finished drain failed or was cancelled.");
  put_u64 (f, "ghostswap_drain_failed", !d->running && d->result != 0);
}

/* gs_metrics_format - see metrics.h. */
int
gs_metrics_format (const struct gs_stats *st,
                   const struct gs_backing_info *backings,
                   unsigned nbackings,
                   const struct gs_drain_status *drain,
                   char **textp, size_t *lenp)
{
  char *text = NULL;
  size_t len = 0;
  FILE *f;

  f = open_memstream (&text, &len);
  if (f == NULL)
    return -ENOMEM;
  stats_metrics (f, st);
  backing_metrics (f, backings, nbackings);
  if (drain)
    drain_metrics (f, drain);
  if (ferror (f)) {
    fclose (f);
    free (text);
    return -ENOMEM;
  }
  if (fclose (f) != 0) {
    free (text);
    return -ENOMEM;
  }
  *textp = text;
  *lenp = len;
  return 0;
}
