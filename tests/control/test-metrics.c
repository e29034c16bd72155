/* ghostswap control tests: the Prometheus exposition (service/metrics.c).
 *
 * Checks the figures land in the right samples, that label values are
 * escaped, and that the text follows the format: every sample belongs to
 * a family announced by # HELP and # TYPE, and every line parses. */
#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ghostswap/service/metrics.h"
#include "test.h"

static bool
contains_line (const char *text, const char *line)
{
  size_t n = strlen (line);
  const char *p = text;

  while ((p = strstr (p, line)) != NULL) {
    if ((p == text || p[-1] == '\n') && p[n] == '\n')
      return true;
    p++;
  }
  return false;
}

#define CHECK_LINE(text, line) \
  CHECKF (contains_line (text, line), "no line '%s' in:\n%s", line, text)

/* check_format - every line is a comment (# HELP / # TYPE) or a sample
 * name{label="value",...} number, whose family was typed before it. */
static void
check_format (const char *text)
{
  char typed[200][80];
  unsigned ntyped = 0, i;
  const char *p = text, *nl;

  CHECK (text[strlen (text) - 1] == '\n');
  for (; *p; p = nl + 1) {
    char name[80];
    size_t n = 0;
    bool found = false;
    char *end;

    nl = strchr (p, '\n');
    CHECK (nl != NULL);
    if (strncmp (p, "# HELP ", 7) == 0)
      continue;
    if (strncmp (p, "# TYPE ", 7) == 0) {
      CHECK (sscanf (p + 7, "%79s", typed[ntyped]) == 1);
      CHECK (strncmp (typed[ntyped], "ghostswap_", 10) == 0);
      CHECK (strncmp (p + 7 + strlen (typed[ntyped]), " gauge\n", 7) == 0
             || strncmp (p + 7 + strlen (typed[ntyped]), " counter\n", 9) == 0
             || strncmp (p + 7 + strlen (typed[ntyped]), " histogram\n", 11)
             == 0);
      ntyped++;
      CHECK (ntyped < 200);
      continue;
    }
    CHECKF (*p != '#', "unknown comment: %.*s", (int) (nl - p), p);
    while (isalnum ((unsigned char) p[n]) || p[n] == '_')
      n++;
    CHECK (n > 0 && n < sizeof name);
    memcpy (name, p, n);
    name[n] = '\0';
    for (i = 0; i < ntyped; i++) {
      size_t tl = strlen (typed[i]);

      /* A histogram's samples: its name + _bucket, _sum or _count. */
      if (strcmp (typed[i], name) == 0
          || (strncmp (typed[i], name, tl) == 0
              && (strcmp (name + tl, "_bucket") == 0
                  || strcmp (name + tl, "_sum") == 0
                  || strcmp (name + tl, "_count") == 0)))
        found = true;
    }
    CHECKF (found, "sample %s before its # TYPE", name);
    p += n;
    if (*p == '{') {
      /* label="value" pairs; a value may hold \\ \" \n escapes only. */
      p++;
      for (;;) {
        while (isalnum ((unsigned char) *p) || *p == '_')
          p++;
        CHECK (p[0] == '=' && p[1] == '"');
        p += 2;
        while (*p != '"') {
          CHECK (*p != '\n' && *p != '\0');
          if (*p == '\\') {
            CHECK (p[1] == '\\' || p[1] == '"' || p[1] == 'n');
            p++;
          }
          p++;
        }
        p++;
        if (*p == ',') {
          p++;
          continue;
        }
        CHECK (*p == '}');
        p++;
        break;
      }
    }
    CHECK (*p == ' ');
    p++;
    if (strncmp (p, "NaN\n", 4) != 0 && strncmp (p, "+Inf\n", 5) != 0
        && strncmp (p, "-Inf\n", 5) != 0) {
      strtod (p, &end);
      CHECKF (end == nl, "bad value: %.*s", (int) (nl - p), p);
    }
  }
}

/* every_sample_named - every sample's first label is name="@name". */
static void
every_sample_named (const char *text, const char *name)
{
  char want[128];
  const char *p, *nl;

  snprintf (want, sizeof want, "{name=\"%s\"", name);
  for (p = text; *p; p = nl + 1) {
    nl = strchr (p, '\n');
    if (*p == '#')
      continue;
    CHECKF (strcspn (p, "{ ") < (size_t) (nl - p) && p[strcspn (p, "{ ")] == '{'
            && strncmp (p + strcspn (p, "{"), want, strlen (want)) == 0,
            "a sample without the name label: %.*s", (int) (nl - p), p);
  }
}

int
main (int argc, char **argv)
{
  struct gs_stats st;
  struct gs_backing_info b[2];
  struct gs_drain_status d;
  struct gs_latency lat;
  struct gs_metrics_input in = {
    .name = "swap0", .frontend = "fuse", .transport = "fuse",
    .version = "9.8.7", .stats = &st, .backings = b, .nbackings = 2,
    .drain = &d, .latency = &lat, .memory_peak_bytes = 98765,
    .resident_peak_bytes = 4096,
  };
  uint64_t t0;
  char *text;
  size_t len;
  unsigned i;

  TEST_INIT (argc, argv);

  memset (&st, 0, sizeof st);
  st.size = 1 << 30;
  st.slots = 262144;
  st.slots_empty = 262000;
  st.slots_same = 100;
  st.slots_ram = 7;
  st.slots_backing = 11;
  st.backing_write_errors = 3;
  st.pool_bytes = 12345;
  st.compression_ratio = 3.5;
  st.pool_fragmentation = NAN;
  st.reads = 11;
  st.extents = UINT64_MAX;
  st.bytes_written = 472602624;   /* 4.72603e+08 in the old writer */

  memset (b, 0, sizeof b);
  snprintf (b[0].path, sizeof b[0].path, "/a\"b\\c\nd");
  b[0].used = 5;
  b[0].healthy = true;
  snprintf (b[1].path, sizeof b[1].path, "/plain");
  b[1].used = 6;
  b[1].write_errors = 2;

  memset (&d, 0, sizeof d);
  d.running = true;
  d.total = 10;
  d.done = 4;
  d.bytes_per_sec = 1.5e9;

  /* Latency: 3 reads recorded now (fast: under 1 s each, the last bucket
   * below +Inf), one write 2 s ago (only in +Inf). */
  memset (&lat, 0, sizeof lat);
  for (i = 0; i < 3; i++)
    gs_latency_record (&lat, GS_OP_READ, gs_latency_now ());
  t0 = gs_latency_now () - 2000000000ull;
  gs_latency_record (&lat, GS_OP_WRITE, t0);

  CHECK_OK (gs_metrics_format (&in, &text, &len));
  CHECK (strlen (text) == len);
  check_format (text);
  every_sample_named (text, "swap0");
  CHECK_LINE (text, "ghostswap_info{name=\"swap0\",version=\"9.8.7\","
              "frontend=\"fuse\",transport=\"fuse\"} 1");
  CHECK_LINE (text, "# TYPE ghostswap_slots gauge");
  CHECK_LINE (text, "ghostswap_slots{name=\"swap0\",state=\"ram\"} 7");
  CHECK_LINE (text, "ghostswap_slots{name=\"swap0\",state=\"empty\"} 262000");
  CHECK_LINE (text, "ghostswap_slots{name=\"swap0\",state=\"backing\"} 11");
  CHECK_LINE (text, "ghostswap_pool_bytes{name=\"swap0\"} 12345");
  CHECK_LINE (text, "ghostswap_size_bytes{name=\"swap0\"} 1073741824");
  CHECK_LINE (text, "ghostswap_written_bytes_total{name=\"swap0\"} 472602624");
  CHECK_LINE (text, "ghostswap_compression_ratio{name=\"swap0\"} 3.5");
  CHECK_LINE (text, "ghostswap_pool_fragmentation_ratio{name=\"swap0\"} NaN");
  CHECK_LINE (text, "# TYPE ghostswap_requests_total counter");
  CHECK_LINE (text, "ghostswap_requests_total{name=\"swap0\",op=\"read\"} 11");
  CHECK_LINE (text, "ghostswap_requests_total{name=\"swap0\",op=\"extents\"} "
              "18446744073709551615");
  CHECK_LINE (text, "ghostswap_backings{name=\"swap0\"} 0");  /* st.backings */
  CHECK_LINE (text, "ghostswap_memory_peak_bytes{name=\"swap0\"} 98765");
  CHECK_LINE (text, "ghostswap_process_resident_peak_bytes{name=\"swap0\"} 4096");
  CHECK_LINE (text, "ghostswap_backing_used_slots{name=\"swap0\","
              "path=\"/a\\\"b\\\\c\\nd\"} 5");
  CHECK_LINE (text, "ghostswap_backing_used_slots{name=\"swap0\",path=\"/plain\"} 6");
  CHECK_LINE (text, "ghostswap_backing_healthy{name=\"swap0\",path=\"/plain\"} 0");
  CHECK_LINE (text, "ghostswap_backing_write_errors_total{name=\"swap0\","
              "path=\"/plain\"} 2");
  /* Backing errors in one shape only: per backing, not also as a total. */
  CHECK (strstr (text, "ghostswap_backing_errors_total") == NULL);
  CHECK (strstr (text, "op=\"write\"} 3\n") == NULL);
  CHECK_LINE (text, "ghostswap_drain_running{name=\"swap0\"} 1");
  CHECK_LINE (text, "ghostswap_drain_done_slots{name=\"swap0\"} 4");
  CHECK_LINE (text, "ghostswap_drain_bytes_per_second{name=\"swap0\"} 1500000000");
  /* The histogram: cumulative buckets, _count, _sum in seconds. */
  CHECK_LINE (text, "# TYPE ghostswap_request_duration_seconds histogram");
  CHECK_LINE (text, "ghostswap_request_duration_seconds_bucket{name=\"swap0\","
              "op=\"read\",le=\"1\"} 3");
  CHECK_LINE (text, "ghostswap_request_duration_seconds_bucket{name=\"swap0\","
              "op=\"read\",le=\"+Inf\"} 3");
  CHECK_LINE (text, "ghostswap_request_duration_seconds_count{name=\"swap0\","
              "op=\"read\"} 3");
  CHECK_LINE (text, "ghostswap_request_duration_seconds_bucket{name=\"swap0\","
              "op=\"write\",le=\"1\"} 0");
  CHECK_LINE (text, "ghostswap_request_duration_seconds_bucket{name=\"swap0\","
              "op=\"write\",le=\"+Inf\"} 1");
  CHECK_LINE (text, "ghostswap_request_duration_seconds_count{name=\"swap0\","
              "op=\"trim\"} 0");
  {
    const char *sum = strstr (text, "ghostswap_request_duration_seconds_sum"
                              "{name=\"swap0\",op=\"write\"} ");
    double secs;

    CHECK (sum != NULL);
    secs = strtod (strchr (sum, '}') + 2, NULL);
    CHECKF (secs >= 2.0 && secs < 60.0, "write latency sum %g s", secs);
  }
  free (text);

  /* No backing, no drain, no latency: none of their families; a label
   * value needing escapes in the name. */
  in.name = "we\"ird";
  in.nbackings = 0;
  in.drain = NULL;
  in.latency = NULL;
  in.resident_peak_bytes = 0;
  CHECK_OK (gs_metrics_format (&in, &text, &len));
  check_format (text);
  every_sample_named (text, "we\\\"ird");
  CHECK (strstr (text, ",path=") == NULL);
  CHECK (strstr (text, "ghostswap_backing_used_slots") == NULL);
  CHECK (strstr (text, "ghostswap_drain_") == NULL);
  CHECK (strstr (text, "ghostswap_request_duration") == NULL);
  CHECK (strstr (text, "ghostswap_process_resident_peak_bytes") == NULL);
  free (text);

  printf ("%s: ok\n", test_argv0);
  return 0;
}
