/* ghostswap service: Prometheus text exposition of a device's figures
 * (see ghostswap/service/metrics.h). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "ghostswap/backing.h"
#include "ghostswap/device.h"
#include "ghostswap/service/metrics.h"

/* The exposition being written: the stream and the name label. */
struct out {
  FILE *f;
  const char *name;
};

/* One metric family: its header, then its samples with sample_*(). */
static void
family (struct out *o, const char *metric, const char *type, const char *help)
{
  fprintf (o->f, "# HELP ghostswap_%s %s\n# TYPE ghostswap_%s %s\n",
           metric, help, metric, type);
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

/* The start of a sample: ghostswap_METRIC{name="...",@labels} where
 * @labels ("" or `k="v"`, already escaped) follows the name label, and
 * @key="@value" (escaped here; @key NULL: none) the rest. */
static void
sample_start (struct out *o, const char *metric, const char *labels,
              const char *key, const char *value)
{
  fprintf (o->f, "ghostswap_%s{name=\"", metric);
  put_label_value (o->f, o->name);
  fputc ('"', o->f);
  if (labels[0] != '\0')
    fprintf (o->f, ",%s", labels);
  if (key != NULL) {
    fprintf (o->f, ",%s=\"", key);
    put_label_value (o->f, value);
    fputc ('"', o->f);
  }
  fputs ("} ", o->f);
}

static void
sample_u64 (struct out *o, const char *metric, const char *labels,
            const char *key, const char *value, uint64_t v)
{
  sample_start (o, metric, labels, key, value);
  fprintf (o->f, "%" PRIu64 "\n", v);
}

/* A float as the format wants it: '.' whatever the locale, NaN, +Inf;
 * 17 significant digits, so that it reads back as the same double. */
static void
sample_double (struct out *o, const char *metric, const char *labels, double v)
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
      if (*p == ',')
        *p = '.';
  }
  sample_start (o, metric, labels, NULL, NULL);
  fprintf (o->f, "%s\n", num);
}

/* ---- The engine's statistics, from GS_STATS_FIELDS ---- */

enum kind { KIND_NONE, KIND_GAUGE, KIND_COUNTER };

struct row {
  const char *metric, *label, *help;
  enum kind kind;
  bool is_double;
  size_t offset;                /* of the field in struct gs_stats */
};

static const struct row rows[] = {
#define GS_STATS_ROW(type, field, metric, kind, label, help)            \
  { metric, label, help, KIND_##kind, #type[0] == 'D',                  \
    offsetof (struct gs_stats, field) },
  GS_STATS_FIELDS (GS_STATS_ROW)
#undef GS_STATS_ROW
};
#define NROWS (sizeof rows / sizeof rows[0])

static void
stats_metrics (struct out *o, const struct gs_stats *st)
{
  const char *base = (const char *) st;
  size_t i, j;

  /* Each family once, at its first row, with all its rows (those of a
   * family need not be adjacent in the table). */
  for (i = 0; i < NROWS; i++) {
    bool seen = false;

    if (rows[i].kind == KIND_NONE)
      continue;
    for (j = 0; j < i && !seen; j++)
      seen = rows[j].kind != KIND_NONE
        && strcmp (rows[j].metric, rows[i].metric) == 0;
    if (seen)
      continue;
    family (o, rows[i].metric,
            rows[i].kind == KIND_COUNTER ? "counter" : "gauge", rows[i].help);
    for (j = i; j < NROWS; j++) {
      if (rows[j].kind == KIND_NONE
          || strcmp (rows[j].metric, rows[i].metric) != 0)
        continue;
      if (rows[j].is_double) {
        double v;
        memcpy (&v, base + rows[j].offset, sizeof v);
        sample_double (o, rows[j].metric, rows[j].label, v);
      }
      else {
        uint64_t v;
        memcpy (&v, base + rows[j].offset, sizeof v);
        sample_u64 (o, rows[j].metric, rows[j].label, NULL, NULL, v);
      }
    }
  }
}

/* ---- Backings, drain, latency, memory, identity ---- */

/* backing_metrics - one family per figure of GS_BACKING_FIELDS, over
 * every backing, labelled by path. */
static void
backing_metrics (struct out *o, const struct gs_backing_info *b, unsigned n)
{
  char metric[96];
  unsigned i;

  if (n == 0)
    return;
#define GS_BACKING_NUM_U(v) (uint64_t) (v)
#define GS_BACKING_NUM_I(v) (uint64_t) (v)
#define GS_BACKING_NUM_B(v) (uint64_t) (v)
#define GS_BACKING_NUM_S(v) ((void) (v), (uint64_t) 0)
#define GS_BACKING_METRIC(type, field, m, kind, help)                   \
  if (strcmp (#kind, "NONE") != 0) {                                    \
    snprintf (metric, sizeof metric, "backing_%s", m);                  \
    family (o, metric, strcmp (#kind, "COUNTER") == 0 ? "counter"       \
            : "gauge", help);                                           \
    for (i = 0; i < n; i++)                                             \
      sample_u64 (o, metric, "", "path", b[i].path,                     \
                  GS_BACKING_NUM_##type (b[i].field));                  \
  }
  GS_BACKING_FIELDS (GS_BACKING_METRIC)
#undef GS_BACKING_METRIC
#undef GS_BACKING_NUM_U
#undef GS_BACKING_NUM_I
#undef GS_BACKING_NUM_B
#undef GS_BACKING_NUM_S
}

static void
drain_metrics (struct out *o, const struct gs_drain_status *d)
{
#define DRAIN(metric, help, sample)                     \
  family (o, "drain_" metric, "gauge", help);           \
  sample
  DRAIN ("running", "1 while a drain or migration runs.",
         sample_u64 (o, "drain_running", "", NULL, NULL, d->running));
  DRAIN ("total_slots",
         "Live slots on the source when the running or last drain started.",
         sample_u64 (o, "drain_total_slots", "", NULL, NULL, d->total));
  DRAIN ("done_slots", "Slots moved by the running or last drain.",
         sample_u64 (o, "drain_done_slots", "", NULL, NULL, d->done));
  DRAIN ("skipped_slots",
         "Slots the running or last drain skipped as they changed under it.",
         sample_u64 (o, "drain_skipped_slots", "", NULL, NULL, d->skipped));
  DRAIN ("bytes_per_second", "Throughput of the running or last drain.",
         sample_double (o, "drain_bytes_per_second", "", d->bytes_per_sec));
  DRAIN ("seconds", "Duration of the running or last drain.",
         sample_double (o, "drain_seconds", "", d->seconds));
  DRAIN ("failed", "1 if the last finished drain failed or was cancelled.",
         sample_u64 (o, "drain_failed", "", NULL, NULL,
                     !d->running && d->result != 0));
#undef DRAIN
}

/* latency_metrics - ghostswap_request_duration_seconds{op}, a histogram:
 * cumulative buckets with le in seconds, then _sum and _count. */
static void
latency_metrics (struct out *o, const struct gs_latency *lat)
{
  static const uint64_t bounds[GS_LATENCY_BUCKETS - 1] = GS_LATENCY_BOUNDS_NS;
  const char *m = "request_duration_seconds";
  unsigned op, b;

  fprintf (o->f, "# HELP ghostswap_%s Time the front end took to serve a "
           "request, by type.\n# TYPE ghostswap_%s histogram\n", m, m);
  for (op = 0; op < GS_OPS; op++) {
    char labels[64];
    uint64_t cum = 0;

    for (b = 0; b < GS_LATENCY_BUCKETS; b++) {
      char le[32];

      cum += lat->bucket[op][b];
      if (b < GS_LATENCY_BUCKETS - 1)
        snprintf (le, sizeof le, "%g", (double) bounds[b] / 1e9);
      else
        snprintf (le, sizeof le, "+Inf");
      snprintf (labels, sizeof labels, "op=\"%s\",le=\"%s\"",
                gs_op_name (op), le);
      sample_u64 (o, "request_duration_seconds_bucket", labels, NULL, NULL,
                  cum);
    }
    snprintf (labels, sizeof labels, "op=\"%s\"", gs_op_name (op));
    sample_double (o, "request_duration_seconds_sum", labels,
                   (double) lat->sum_ns[op] / 1e9);
    sample_u64 (o, "request_duration_seconds_count", labels, NULL, NULL, cum);
  }
}

static void
memory_metrics (struct out *o, const struct gs_metrics_input *in)
{
  family (o, "memory_peak_bytes", "gauge",
          "Highest memory the engine held (memory_bytes) since start or "
          "the last peak reset, kept by the engine itself.");
  sample_u64 (o, "memory_peak_bytes", "", NULL, NULL, in->memory_peak_bytes);
  if (in->resident_peak_bytes > 0) {
    family (o, "process_resident_peak_bytes", "gauge",
            "Peak resident memory of the serving process (VmHWM).");
    sample_u64 (o, "process_resident_peak_bytes", "", NULL, NULL,
                in->resident_peak_bytes);
  }
}

static void
info_metric (struct out *o, const struct gs_metrics_input *in)
{
  family (o, "info", "gauge",
          "Always 1: the version, front end and transport in labels.");
  fprintf (o->f, "ghostswap_info{name=\"");
  put_label_value (o->f, o->name);
  fprintf (o->f, "\",version=\"");
  put_label_value (o->f, in->version ? in->version : "");
  fprintf (o->f, "\",frontend=\"");
  put_label_value (o->f, in->frontend ? in->frontend : "");
  fprintf (o->f, "\",transport=\"");
  put_label_value (o->f, in->transport ? in->transport : "");
  fprintf (o->f, "\"} 1\n");
}

/* gs_metrics_format - see metrics.h. */
int
gs_metrics_format (const struct gs_metrics_input *in,
                   char **textp, size_t *lenp)
{
  struct out o = { .name = in->name ? in->name : "" };
  char *text = NULL;
  size_t len = 0;

  o.f = open_memstream (&text, &len);
  if (o.f == NULL)
    return -ENOMEM;
  info_metric (&o, in);
  stats_metrics (&o, in->stats);
  memory_metrics (&o, in);
  backing_metrics (&o, in->backings, in->nbackings);
  if (in->drain)
    drain_metrics (&o, in->drain);
  if (in->latency)
    latency_metrics (&o, in->latency);
  if (ferror (o.f)) {
    fclose (o.f);
    free (text);
    return -ENOMEM;
  }
  if (fclose (o.f) != 0) {
    free (text);
    return -ENOMEM;
  }
  *textp = text;
  *lenp = len;
  return 0;
}

/* resident_peak - VmHWM of /proc/self/status in bytes, or 0. */
static uint64_t
resident_peak (void)
{
  FILE *fp = fopen ("/proc/self/status", "re");
  char line[256];
  uint64_t kib = 0;

  if (fp == NULL)
    return 0;
  while (fgets (line, sizeof line, fp) != NULL)
    if (sscanf (line, "VmHWM: %" SCNu64 " kB", &kib) == 1)
      break;
  fclose (fp);
  return kib * 1024;
}

/* gs_metrics_get_info - see metrics.h. */
void
gs_metrics_get_info (const struct gs_metrics_source *src,
                     struct gs_metrics_info *info)
{
  info->version = PACKAGE_VERSION;
  info->frontend = src->frontend ? src->frontend : "";
  info->transport_reason[0] = '\0';
  if (src->transport_fn != NULL)
    info->transport = src->transport_fn (src->transport_arg,
                                         info->transport_reason,
                                         sizeof info->transport_reason);
  else
    info->transport = __atomic_load_n (&src->transport, __ATOMIC_ACQUIRE);
  if (info->transport == NULL)
    info->transport = "";
}

/* gs_metrics_collect - see metrics.h. */
int
gs_metrics_collect (struct gs_metrics_source *src, char **textp, size_t *lenp)
{
  CLEANUP_FREE struct gs_backing_info *b = NULL;
  struct gs_latency lat;
  struct gs_drain_status d;
  struct gs_metrics_info info;
  struct gs_stats st;
  struct gs_metrics_input in = {
    .name = src->name, .stats = &st, .drain = &d,
  };

  b = malloc (GS_MAX_BACKINGS * sizeof *b);
  if (b == NULL)
    return -ENOMEM;
  gs_get_stats (src->dev, &st);
  in.nbackings = gs_backing_list (src->dev, b, GS_MAX_BACKINGS);
  if (in.nbackings > GS_MAX_BACKINGS)
    in.nbackings = GS_MAX_BACKINGS;
  in.backings = b;
  gs_drain_get_status (src->dev, &d);
  if (src->latency) {
    gs_latency_snapshot (src->latency, &lat);
    in.latency = &lat;
  }
  gs_metrics_get_info (src, &info);
  in.version = info.version;
  in.frontend = info.frontend;
  in.transport = info.transport;
  in.memory_peak_bytes = st.memory_peak_bytes;
  in.resident_peak_bytes = resident_peak ();
  return gs_metrics_format (&in, textp, lenp);
}
